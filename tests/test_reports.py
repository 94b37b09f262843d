"""Reports: every indicator checked on crafted data, small-cell suppression, and no personal data out."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
from itertools import count
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.models import (
    Call,
    CallbackAttempt,
    CallbackRequest,
    Caller,
    CallEvent,
    Case,
    CaseCategory,
    CaseNote,
    CasePriority,
    CaseStatus,
    Direction,
    Language,
    Message,
    MessageStatus,
    StaffUser,
)
from hotline.services import reports
from hotline.web.staff.i18n import report_label

TZ = ZoneInfo("Asia/Phnom_Penh")
PHONES = {"A": "+85510000001", "B": "+66810000002", "C": "+85510000003", "D": "+14155550100"}
BODY = "my boss took my passport zq7x"
NOTE = "secret note about Sokha zq8y"
STAFF_NAME = "Sokha Lawyer zq9w"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def crafted(db) -> dict[str, Case]:
    """A small hotline history around the month edges of Asia/Phnom_Penh (UTC+7)."""
    sid = count(1)
    who = {}
    for key, country, created in (("A", "KH", utc(2025, 12, 10)), ("B", "TH", utc(2026, 1, 5)),
                                  ("C", "KH", utc(2026, 2, 1, 3)), ("D", "US", utc(2026, 1, 20))):
        who[key] = Caller(phone=PHONES[key], country=country, created_at=created)
        db.add(who[key])
    db.flush()

    def call(key: str, at: datetime, lang: str | None, last: str | None, *, ended: bool = True,
             line: str = "main", direction: Direction = Direction.INBOUND, path=()) -> Call:
        c = Call(call_sid=f"CA{next(sid):032d}", caller_id=who[key].id, line=line, direction=direction,
                 language=Language(lang) if lang else None, last_node=last, started_at=at,
                 ended_at=at + timedelta(minutes=3) if ended else None, state={}, status="completed")
        db.add(c)
        db.flush()
        for n, (kind, node, detail) in enumerate(path):
            db.add(CallEvent(call_id=c.id, at=at + timedelta(seconds=10 * n), kind=kind, node=node, detail=detail))
        return c

    call("A", utc(2025, 12, 31, 17, 30), "km", "main", path=[("language", None, "km")])  # 00:30 on 1 Jan, local
    call("A", utc(2026, 1, 10), "km", "topic_passport",
         path=[("language", None, "km"), ("message_part", "topic_passport", "0"),
               ("message_completed", "topic_passport", None)])
    c3 = call("B", utc(2026, 1, 6), "th", "topic_wages",
              path=[("language", None, "th"), ("message_part", "topic_wages", "0"),
                    ("message_part", "topic_wages", "1"), ("urgent", "urgent", None)])
    call("B", utc(2026, 1, 31, 18), "th", "topic_wages",  # 01:00 on 1 February, local
         path=[("language", None, "th"), ("message_part", "topic_wages", "0"),
               ("message_completed", "topic_wages", None)])
    call("C", utc(2026, 2, 2), "km", None, ended=False, path=[("language", None, "km")])
    call("D", utc(2026, 2, 10), None, "language")
    call("A", utc(2026, 2, 28, 17, 30), "km", "main")  # 00:30 on 1 March, local: outside the range
    call("C", utc(2026, 2, 3), None, None, line="missed")
    call("A", utc(2026, 1, 15), "km", None, direction=Direction.OUTBOUND)  # a callback we placed: not a contact

    def text(key: str | None, at: datetime, keyword: str | None, lang: str | None, *,
             direction: Direction = Direction.INBOUND, purpose: str | None = None,
             status: MessageStatus = MessageStatus.RECEIVED) -> None:
        db.add(Message(direction=direction, channel="sms", caller_id=who[key].id if key else None,
                       peer=PHONES[key] if key else "+85599000001", body=BODY, language=lang, status=status,
                       keyword=keyword, purpose=purpose, created_at=at))

    text("A", utc(2026, 1, 3), "help", "km")
    text("B", utc(2026, 1, 4), "help", "th")
    text("C", utc(2026, 2, 4), "sos", "km")
    text("B", utc(2026, 2, 5), None, "th")
    text("A", utc(2026, 1, 3, 0, 1), None, "km", direction=Direction.OUTBOUND, status=MessageStatus.DELIVERED)
    text(None, utc(2026, 1, 20), None, None, direction=Direction.OUTBOUND, purpose="oncall_alert",
         status=MessageStatus.FAILED)
    text(None, utc(2026, 1, 21), None, None, direction=Direction.OUTBOUND, purpose="oncall_alert",
         status=MessageStatus.DELIVERED)

    def case(ref: str, key: str | None, created: datetime, priority: CasePriority, category: CaseCategory,
             status: CaseStatus, *, country: str | None, province: str | None, claimed_after: int | None = None,
             level: int = 0, overdue: bool = False, source_sid: str | None = None) -> Case:
        k = Case(ref=ref, caller_id=who[key].id if key else None, source="voice", source_sid=source_sid,
                 priority=priority, category=category, status=status, country=country, province=province,
                 created_at=created, escalation_level=level, overdue=overdue, subject_phone=PHONES["D"],
                 claimed_at=created + timedelta(seconds=claimed_after) if claimed_after else None)
        db.add(k)
        db.flush()
        return k

    k1 = case("K1", "B", utc(2026, 1, 6, 0, 0, 50), CasePriority.URGENT, CaseCategory.TRAFFICKING,
              CaseStatus.CLAIMED, country="TH", province="01", claimed_after=600, level=1, overdue=True,
              source_sid=c3.call_sid)
    # The urgent call of K1 reached a lawyer 120 s after the case was opened.
    db.add(CallEvent(call_id=c3.id, at=k1.created_at + timedelta(seconds=120), kind="dial", node="urgent",
                     detail="completed"))
    k2 = case("K2", "A", utc(2026, 1, 10, 5), CasePriority.URGENT, CaseCategory.DOCUMENTS, CaseStatus.CLAIMED,
              country="KH", province="17", claimed_after=1200)
    case("K3", "C", utc(2026, 2, 5), CasePriority.NORMAL, CaseCategory.UNPAID_WAGES, CaseStatus.NEW,
         country="KH", province="17")
    case("K4", None, utc(2026, 2, 7), CasePriority.URGENT, CaseCategory.OTHER, CaseStatus.NEW,
         country=None, province=None, level=2, overdue=True)
    staff = StaffUser(email="s@example.org", name=STAFF_NAME, password_hash="x", role="lawyer")
    db.add(staff)
    db.flush()
    db.add(CaseNote(case_id=k2.id, staff_id=staff.id, body=NOTE))

    def callback(key: str, created: datetime, status: str, outcome: str | None = None,
                 case_id: int | None = None, reached_after: int | None = None) -> None:
        r = CallbackRequest(caller_id=who[key].id, phone=PHONES[key], source="ivr", status=status,
                            outcome=outcome, case_id=case_id, created_at=created)
        db.add(r)
        db.flush()
        db.add(CallbackAttempt(request_id=r.id, outcome="no_answer", at=created + timedelta(seconds=60)))
        if reached_after:
            db.add(CallbackAttempt(request_id=r.id, outcome="reached", at=created + timedelta(seconds=reached_after)))

    # K2's first contact: a callback that reached the person 2400 s after the case was opened.
    callback("A", k2.created_at + timedelta(minutes=10), "done", "reached", k2.id, reached_after=1800)
    callback("B", utc(2026, 1, 12), "failed", "no_answer")
    callback("C", utc(2026, 2, 12), "open")
    callback("D", utc(2026, 2, 13), "cancelled")
    db.commit()
    return {"K1": k1, "K2": k2}


PERIOD = reports.Period(date(2026, 1, 1), date(2026, 2, 28), "month", TZ)
JAN, FEB = "2026-01-01", "2026-02-01"


def rows(report: reports.Report, table: str) -> dict[str, list]:
    return {r.key: r.cells for r in report.table(table).rows}


def test_every_indicator_on_crafted_data(db):
    crafted(db)
    rep = reports.build(db, PERIOD)
    assert rep.period.buckets() == [JAN, FEB]
    assert rows(rep, "contacts") == {"channel_voice": [3, 3], "channel_missed_call": [0, 1], "channel_sms": [2, 2]}
    callers = rep.table("callers")
    assert [(r.key, r.cells, r.total) for r in callers.rows] == [("first_time", [1, 1], 3), ("returning", [1, 2], 1)]
    assert rows(rep, "calls_language") == {"lang_km": [2, 1], "lang_th": [1, 1], "lang_en": [0, 0],
                                          "lang_unknown": [0, 1]}
    assert rows(rep, "calls_country") == {"country_KH": [2, 1], "country_TH": [1, 1], "country_other": [0, 1]}
    assert rows(rep, "messages") == {"topic_wages": [2, 1], "topic_passport": [1, 1]}
    assert rows(rep, "funnel") == {"stage_called": [6], "stage_language": [5], "stage_message": [3],
                                   "stage_completed": [2]}
    assert list(rows(rep, "hangups").items()) == [("topic_wages", [2]), ("language", [1]), ("main", [1]),
                                                  ("topic_passport", [1])]
    assert rows(rep, "sms_keyword") == {"help": [1, 1, 0, 0], "sos": [1, 0, 0, 0], "none": [0, 1, 0, 0]}
    assert rows(rep, "callbacks") == {"cb_reached": [1, 0], "cb_given_up": [1, 0], "cb_open": [0, 1],
                                      "cb_cancelled": [0, 1], "cb_closed_other": [0, 0]}
    assert rows(rep, "cases_category") == {"category_trafficking": [1, 0], "category_documents": [1, 0],
                                           "category_unpaid_wages": [0, 1], "category_violence": [0, 0],
                                           "category_detention": [0, 0], "category_locked_in": [0, 0],
                                           "category_missing": [0, 0], "category_other": [0, 1]}
    assert rows(rep, "cases_priority") == {"priority_urgent": [2, 1], "priority_normal": [0, 1]}
    assert rows(rep, "cases_status") == {"status_new": [0, 2], "status_claimed": [2, 0], "status_in_progress": [0, 0],
                                         "status_referred": [0, 0], "status_closed": [0, 0]}
    assert [r.key for r in rep.table("cases_category").rows][0] == "category_trafficking"
    assert rows(rep, "cases_country") == {"country_KH": [1, 1], "country_TH": [1, 0], "country_unknown": [0, 1]}
    assert rows(rep, "cases_province") == {"province_01": [1, 0], "province_17": [1, 1],
                                           "province_unknown": [0, 1]}
    assert rows(rep, "urgent") == {"urgent_opened": [2, 1], "urgent_escalated": [1, 1], "urgent_overdue": [1, 1],
                                   "alerts_failed": [1, 0]}
    # claim 600 s and 1200 s; first contact 120 s (the dial) and 2400 s (the callback); reach 1800 s.
    assert rows(rep, "durations") == {"time_to_claim": [2, 900.0, 1140.0], "time_to_contact": [2, 1260.0, 2172.0],
                                      "callback_time_to_reach": [1, 1800.0, 1800.0]}


def test_weeks_start_on_monday_local_time(db):
    crafted(db)
    rep = reports.build(db, reports.Period(date(2026, 1, 1), date(2026, 1, 14), "week", TZ))
    assert rep.period.buckets() == ["2025-12-29", "2026-01-05", "2026-01-12"]
    # Call 1 (local 1 January) falls in the week of 29 December; calls 2 and 3 in the week of 5 January.
    assert rows(rep, "contacts")["channel_voice"] == [1, 2, 0]


def test_percentiles_match_percentile_cont(db):
    caller = Caller(phone="+85510000009", created_at=utc(2026, 1, 1))
    db.add(caller)
    db.flush()
    claims = [5, 60, 61, 300, 900, 1000, 7200]
    for n, s in enumerate(claims):
        created = utc(2026, 1, 2) + timedelta(hours=n)
        db.add(Case(ref=f"P{n}", source="sms", priority=CasePriority.URGENT, created_at=created,
                    claimed_at=created + timedelta(seconds=s), status=CaseStatus.CLAIMED))
    db.commit()
    got = rows(reports.build(db, PERIOD), "durations")["time_to_claim"]
    # percentile_cont: position p*(n-1) = 3 for the median, 5.4 for p90: 1000 + 0.4 * 6200.
    assert got == [7, 300.0, 3480.0]


def test_empty_range_reports_zeros(db):
    rep = reports.build(db, PERIOD)
    assert rows(rep, "contacts")["channel_voice"] == [0, 0]
    assert rows(rep, "durations")["time_to_claim"] == [0, None, None]
    shown = reports.present(rep, 5, report_label("en"))
    assert all("<5" not in cell for t in shown for row in t.rows for cell in row)


def test_bad_ranges_are_refused():
    with pytest.raises(ValueError):
        reports.Period(date(2026, 2, 1), date(2026, 1, 1), "month", TZ)
    with pytest.raises(ValueError):
        reports.Period(date(2026, 1, 1), date(2026, 2, 1), "day", TZ)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        reports.Period(date(2020, 1, 1), date(2026, 2, 1), "month", TZ)


# --- suppression ----------------------------------------------------------------------------------

def marks_of(grid, k=5, rows_sum=True, cols_sum=True):
    return reports.suppress(grid, k, rows_sum=rows_sum, cols_sum=cols_sum)


def with_margins(inner):
    full = [row + [sum(row)] for row in inner]
    return full + [[sum(col) for col in zip(*full, strict=True)]]


def test_primary_hides_one_to_four_and_shows_zero():
    grid = with_margins([[0, 5, 12], [9, 7, 20]])
    assert all(m == "" for row in marks_of(grid) for m in row)
    m = marks_of([[4]], rows_sum=False, cols_sum=False)
    assert m == [["primary"]]
    assert marks_of([[0], [1], [5]], rows_sum=False, cols_sum=False) == [[""], ["primary"], [""]]


def test_secondary_hides_the_next_smallest_in_row_and_column():
    grid = with_margins([[3, 10, 12], [8, 9, 7], [20, 30, 6]])
    m = marks_of(grid)
    assert m[0][0] == "primary"
    # Row 0 would give 3 away from its total: 10 (its next smallest) goes too; column 0: 8 goes.
    assert m[0][1] == "secondary" and m[1][0] == "secondary"
    assert all(m[r][c] == "" for r in range(4) for c in range(4) if r == 3 or c == 3)  # totals stay
    assert_safe(grid, m)


def test_secondary_prefers_nonzero_cells_and_keeps_totals():
    grid = with_margins([[2, 0, 9], [0, 6, 7]])
    m = marks_of(grid)
    assert m[0][0] == "primary" and m[0][1] == "" and m[0][2] == "secondary"
    assert_safe(grid, m)


def test_a_total_below_k_is_hidden_by_the_primary_rule():
    grid = with_margins([[3, 0], [10, 12]])
    m = marks_of(grid)
    assert m[0][0] == "primary" and m[0][2] == "primary"
    assert_safe(grid, m)


def test_rows_only_tables_protect_along_rows():
    grid = [[3, 8, 9, 20], [6, 7, 8, 21]]
    m = marks_of(grid, cols_sum=False)
    assert m[0] == ["primary", "secondary", "", ""] and m[1] == ["", "", "", ""]


def test_two_hidden_cells_per_line_that_still_pin_one_down_are_caught():
    # Two 2x2 blocks of hidden cells joined by one cell: every line has two hidden cells, but the
    # joining cell follows from the equations. Feed that pattern in as primary cells.
    inner = [[1, 1, 9, 9, 9], [1, 1, 9, 9, 9], [9, 1, 1, 1, 9], [9, 9, 9, 1, 1]]
    grid = with_margins(inner)
    m = marks_of(grid)
    assert_safe(grid, m)


def test_a_cell_bridging_two_hidden_groups_is_protected():
    # Two 2x2 groups of small counts joined by one small cell (1, 2): every row and column holds two or
    # three hidden cells, so the line rule adds nothing, yet (1, 2) follows from the sums. One more goes.
    inner = [[9] * 6 for _ in range(6)]
    for i, j in ((0, 0), (0, 1), (1, 0), (1, 1), (2, 2), (2, 3), (3, 2), (3, 3), (1, 2)):
        inner[i][j] = 1
    grid = with_margins(inner)
    primary_only = [["primary" if 0 < v < 5 else "" for v in row] for row in grid]
    assert (1, 2) in determined_cells(grid, primary_only)
    m = marks_of(grid)
    assert any(v == "secondary" for row in m for v in row)
    assert_safe(grid, m)


def determined_cells(grid, marks, rows_sum=True, cols_sum=True):
    """Independent check: a hidden cell is determined iff adding "x = c" does not raise the rank
    of the system the shown numbers leave for the hidden ones."""
    hidden = [(i, j) for i, r in enumerate(marks) for j, v in enumerate(r) if v]
    eqs = []
    if rows_sum:
        for i, row in enumerate(grid):
            eqs.append({(i, j): (1 if j < len(row) - 1 else -1) for j in range(len(row))})
    if cols_sum:
        for j in range(len(grid[0])):
            eqs.append({(i, j): (1 if i < len(grid) - 1 else -1) for i in range(len(grid))})
    matrix = [[Fraction(e.get(h, 0)) for h in hidden] for e in eqs]

    def rank(m):
        m = [r[:] for r in m if any(r)]
        rk, cols = 0, len(hidden)
        for c in range(cols):
            p = next((r for r in range(rk, len(m)) if m[r][c]), None)
            if p is None:
                continue
            m[rk], m[p] = m[p], m[rk]
            for r in range(len(m)):
                if r != rk and m[r][c]:
                    f = m[r][c] / m[rk][c]
                    m[r] = [a - f * b for a, b in zip(m[r], m[rk], strict=True)]
            rk += 1
        return rk

    base = rank(matrix)
    return [h for n, h in enumerate(hidden)
            if rank(matrix + [[Fraction(1 if x == n else 0) for x in range(len(hidden))]]) == base]


def assert_safe(grid, marks, rows_sum=True, cols_sum=True):
    for i, row in enumerate(grid):
        for j, v in enumerate(row):
            if 0 < v < 5:
                assert marks[i][j], (i, j)
    assert determined_cells(grid, marks, rows_sum, cols_sum) == []


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 5).flatmap(lambda r: st.integers(1, 5).flatmap(
    lambda c: st.lists(st.lists(st.sampled_from([0, 0, 1, 2, 3, 4, 5, 6, 9, 17, 40]), min_size=c, max_size=c),
                       min_size=r, max_size=r))))
def test_no_hidden_cell_can_be_worked_out(inner):
    grid = with_margins(inner)
    assert_safe(grid, marks_of(grid))


def test_present_applies_suppression_to_every_table(db):
    crafted(db)
    shown = {t.id: t for t in reports.present(reports.build(db, PERIOD), 5, report_label("en"))}
    contacts = shown["contacts"]
    assert contacts.header == ["Channel", JAN, FEB, "Total"]
    assert contacts.rows[0] == ["Calls to the menu", "<5", "<5", "6"]
    assert contacts.values[0] == [None, None, 6.0]
    # Medians of fewer than five cases are not shown at all.
    assert shown["durations"].rows[0] == ["Urgent: time to claim", "<5", "", ""]
    for t in shown.values():
        for row, vals in zip(t.rows, t.values, strict=True):
            for cell, v in zip(row[1:], vals, strict=False):
                if cell in ("<5", "*"):
                    assert v is None
    # Without suppression (k=1) the same tables show the numbers.
    open_ = {t.id: t for t in reports.present(reports.build(db, PERIOD), 1, report_label("km"), "km")}
    assert open_["contacts"].rows[0] == ["ការហៅទៅម៉ឺនុយ", "3", "3", "6"]
    assert open_["cases_province"].rows[0][0] == "បន្ទាយមានជ័យ"
    assert open_["durations"].rows[0] == ["បន្ទាន់៖ រយៈពេលទទួលបន្ទុក", "2", "15m 00s", "19m 00s"]
    assert open_["messages"].rows[0][-1] == "50%"


def test_exports_hold_no_personal_data(db):
    crafted(db)
    rep = reports.build(db, PERIOD)
    for k in (1, 5):
        for lang in ("en", "km"):
            shown = reports.present(rep, k, report_label(lang), lang)
            texts = [reports.to_csv(shown, "t"), reports.to_json(shown, "t", {"k": k})]
            from openpyxl import load_workbook

            wb = load_workbook(io.BytesIO(reports.to_xlsx(shown, "t")))
            texts.append("\n".join(str(c) for ws in wb.worksheets for r in ws.iter_rows(values_only=True)
                                   for c in r if c is not None))
            for text in texts:
                for phone in PHONES.values():
                    assert phone not in text and phone[1:] not in text and phone[-8:] not in text
                for secret in (BODY, NOTE, STAFF_NAME, "zq7x", "zq8y", "zq9w"):
                    assert secret not in text
    data = json.loads(reports.to_json(reports.present(rep, 1, report_label("en")), "t", {}))
    assert {t["id"] for t in data["tables"]} >= {"contacts", "durations", "cases_province"}
