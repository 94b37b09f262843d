"""Indicators for partners and donors: aggregate SQL over a date range, grouped by week or month.

Every number is counted by the database (GROUP BY, COUNT DISTINCT, percentiles); no call, message or
case row is loaded into Python. The queries run on SQLite and PostgreSQL alike: the only dialect
differences are the period bucket, a duration in seconds and the percentiles (below).

Periods are local days in HOTLINE_TIMEZONE: a range of 2026-01-01..2026-06-30 means from local
midnight on 1 January to local midnight after 30 June; weeks start on Monday and are named by that
Monday's date, months by their first day. On PostgreSQL the bucket is `date_trunc` of the timestamp
`AT TIME ZONE` the zone; SQLite has no time zones, so the zone's offset at the range start is added
(right for Asia/Phnom_Penh and Asia/Bangkok, which have no daylight saving time).

Percentiles (median, 90th) are `percentile_cont` (linear interpolation) on PostgreSQL; on SQLite a
window query numbers the sorted durations and returns only the (at most four) rows either side of
each percentile's position, which Python interpolates exactly as `percentile_cont` does.

Reports hold counts and durations only: never a phone number, a name, a note or a message body.
Small counts are hidden by `suppress` before anything is shown or exported (see its docstring).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from time import perf_counter
from typing import Any, Literal
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hotline.models import (
    Call,
    CallbackAttempt,
    CallbackRequest,
    Caller,
    CallEvent,
    Case,
    CaseCategory,
    CasePriority,
    CaseStatus,
    Direction,
    Message,
    ReportCallDay,
    ReportEventDay,
    ReportFunnelDay,
)
from hotline.services import places, rollups

Grouping = Literal["week", "month"]
ALERT_PURPOSE = "oncall_alert"  # hotline.services.legal_aid.ALERT_PURPOSE (not imported: it pulls in jobs)
HIDDEN, PROTECTED = "<{k}", "*"


# --- the range -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Period:
    start: date
    end: date  # inclusive, as asked
    by: Grouping
    tz: ZoneInfo

    def __post_init__(self) -> None:
        if self.by not in ("week", "month"):
            raise ValueError("group by week or month")
        if self.end < self.start:
            raise ValueError("the range ends before it starts")
        if (self.end - self.start).days > 3 * 366:
            raise ValueError("a range of at most three years")

    @property
    def utc_bounds(self) -> tuple[datetime, datetime]:
        lo = datetime.combine(self.start, time(), self.tz).astimezone(UTC)
        hi = datetime.combine(self.end + timedelta(days=1), time(), self.tz).astimezone(UTC)
        return lo, hi

    def buckets(self) -> list[str]:
        """The period labels in order, as the SQL bucket names them (YYYY-MM-DD of the first day)."""
        out: list[str] = []
        if self.by == "month":
            d = self.start.replace(day=1)
            while d <= self.end:
                out.append(d.isoformat())
                d = (d.replace(day=28) + timedelta(days=4)).replace(day=1)
        else:
            d = self.start - timedelta(days=self.start.weekday())
            while d <= self.end:
                out.append(d.isoformat())
                d += timedelta(days=7)
        return out


def _bucket(col: Any, period: Period, dialect: str) -> Any:
    if dialect == "postgresql":
        # Literals, not bound parameters: PostgreSQL must see the GROUP BY expression as the SELECT's.
        local = sa.func.timezone(_quoted(period.tz.key), col)
        return sa.func.to_char(sa.func.date_trunc(_quoted(period.by), local), _quoted("YYYY-MM-DD"))
    offset = datetime.combine(period.start, time(), period.tz).utcoffset() or timedelta()
    shift = f"{int(offset.total_seconds() // 60):+d} minutes"
    if period.by == "month":
        return sa.func.strftime("%Y-%m-01", col, shift)
    return sa.func.date(col, shift, "-6 days", "weekday 1")


def _quoted(text: str) -> Any:
    return sa.literal_column("'" + text.replace("'", "''") + "'")


def _seconds(later: Any, earlier: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return sa.func.extract("epoch", later - earlier)
    return (sa.func.julianday(later) - sa.func.julianday(earlier)) * 86400.0


# --- tables --------------------------------------------------------------------------------------

@dataclass
class Row:
    key: str  # an interface string "rep_<key>" unless `label` names it
    cells: list[float | int | None]
    total: int | None = None  # a range total that is not the sum of the cells (distinct callers)
    label: dict[str, str] | None = None  # {"en": ..., "km": ...}; or the same text for both (menu nodes)


@dataclass
class Table:
    id: str
    row_header: str
    columns: list[str]  # period labels, or interface keys for metric columns
    rows: list[Row]
    periods: bool = True  # columns are periods (labels are dates), else interface keys
    rows_sum: bool = True  # a total column, the sum of each row
    cols_sum: bool = True  # a total row, the sum of each column
    chart: str | None = None  # line | bar | funnel
    kind: str = "count"  # count | duration (n, median, p90 in seconds)


@dataclass
class Report:
    period: Period
    tables: list[Table] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)  # time spent on each table's queries (bench)

    def table(self, table_id: str) -> Table:
        return next(t for t in self.tables if t.id == table_id)


def _grid(rows: Sequence[Any], keys: Sequence[str], columns: Sequence[str]) -> dict[str, list[float | int | None]]:
    """(row key, column, value) tuples from SQL into one list of cells per row key, zeros filled."""
    index = {c: i for i, c in enumerate(columns)}
    out: dict[str, list[float | int | None]] = {k: [0] * len(columns) for k in keys}
    for key, col, value in rows:
        key = "unknown" if key is None else str(key)
        if str(col) not in index:
            continue
        out.setdefault(key, [0] * len(columns))
        cell = out[key][index[str(col)]]
        out[key][index[str(col)]] = int(cell or 0) + int(value or 0)
    return out


# --- the indicators ------------------------------------------------------------------------------

def build(session: Session, period: Period) -> Report:
    """All indicators for the range: about twenty aggregate queries."""
    dialect = session.get_bind().dialect.name
    lo, hi = period.utc_bounds
    cols = period.buckets()
    rep = Report(period)
    clock = [perf_counter()]

    def timed(table: Table) -> None:
        now = perf_counter()
        rep.seconds[table.id] = now - clock[0]
        clock[0] = now
        rep.tables.append(table)

    def bucket(col: Any) -> Any:
        return _bucket(col, period, dialect)

    def in_range(col: Any) -> Any:
        return sa.and_(col >= lo, col < hi)

    calls = sa.and_(in_range(Call.started_at), Call.direction == Direction.INBOUND, Call.line == "main")
    # Calls, call events and distinct callers come from the daily roll-ups for the days they hold
    # (and live for the days after them); the same numbers either way (hotline.services.rollups).
    through = rollups.rolled_through(session, period.tz)
    through = through if through is not None and through >= period.start else None

    def rolled(model: Any) -> Any:
        assert through is not None
        return rollups.source(session, model, period.start, period.end, through, period.tz)

    def day_bucket(col: Any) -> Any:
        return rollups.day_bucket(col, period.by, dialect)

    # One pass over the calls of the range feeds contacts, languages, countries, hang-ups and the
    # funnel's first stage: GROUP BY every dimension at once (a few thousand groups at most).
    hang = sa.case((Call.ended_at.is_not(None), sa.func.coalesce(Call.last_node, "")), else_=None)
    q = (sa.select(Call.line, bucket(Call.started_at), Call.language, Caller.country, hang, sa.func.count())
         .select_from(Call).outerjoin(Caller, Caller.id == Call.caller_id)
         .where(in_range(Call.started_at), Call.direction == Direction.INBOUND)
         .group_by(Call.line, bucket(Call.started_at), Call.language, Caller.country, hang))
    if through is not None:
        src = rolled(ReportCallDay)
        q = (sa.select(src.c.line, day_bucket(src.c.day), src.c.language, src.c.country, src.c.hang_node,
                       sa.func.sum(src.c.calls))
             .group_by(src.c.line, day_bucket(src.c.day), src.c.language, src.c.country, src.c.hang_node))
    per_line, per_lang, per_country = [], [], []
    hangups: dict[str, int] = {}
    n_calls = 0
    for line, b, lang, country, node, n in session.execute(q):
        per_line.append(("voice" if line == "main" else "missed_call", b, n))
        if line != "main":
            continue
        n_calls += int(n)
        per_lang.append((str(lang) if lang else None, b, n))
        per_country.append((country if country in ("KH", "TH") else ("other" if country else None), b, n))
        if node is not None:
            hangups[node] = hangups.get(node, 0) + int(n)

    # Contacts by channel: menu calls, missed-call rings, and inbound texts per channel.
    q_msgs = (sa.select(Message.channel, bucket(Message.created_at), sa.func.count())
              .where(in_range(Message.created_at), Message.direction == Direction.INBOUND)
              .group_by(Message.channel, bucket(Message.created_at)))
    contacts = _grid(per_line + [(r[0], r[1], r[2]) for r in session.execute(q_msgs)],
                     ["voice", "missed_call", "sms"], cols)
    timed(Table("contacts", "rep_channel", cols,
                [Row(f"channel_{k}", v) for k, v in contacts.items()], chart="line"))

    # Callers: distinct numbers; first-time means the number first reached us in that period.
    first = sa.case((bucket(Caller.created_at) == bucket(Call.started_at), 1), else_=0)
    q = (sa.select(bucket(Call.started_at), sa.func.count(sa.distinct(Call.caller_id)),
                   sa.func.count(sa.distinct(sa.case((first == 1, Call.caller_id)))))
         .select_from(Call).join(Caller, Caller.id == Call.caller_id).where(calls)
         .group_by(bucket(Call.started_at)))
    unique = dict.fromkeys(cols, 0)
    new = dict.fromkeys(cols, 0)
    if through is not None:
        # Caller-days: a caller counts in a period on their first day in it (no DISTINCT).
        by_period, total_unique, total_new = rollups.callers(session, period.start, period.end, through,
                                                             period.by, period.tz)
        q_rows: Any = [(b, n, k) for b, (n, k) in by_period.items()]
    else:
        q_rows = session.execute(q)
    for b, n_unique, n_new in q_rows:
        if b in unique:
            unique[b], new[b] = int(n_unique or 0), int(n_new or 0)
    # The range's distinct numbers: DISTINCT first, then one join for those numbers only.
    if through is None:
        ids = (sa.select(Call.caller_id.label("caller_id")).where(calls, Call.caller_id.is_not(None))
               .distinct().subquery())
        total_unique, total_new = session.execute(
            sa.select(sa.func.count(), sa.func.sum(sa.case((in_range(Caller.created_at), 1), else_=0)))
            .select_from(ids).join(Caller, Caller.id == ids.c.caller_id)).one()
    total_new = total_new or 0
    timed(Table("callers", "rep_callers", cols, [
        Row("first_time", [new[c] for c in cols], int(total_new)),
        Row("returning", [unique[c] - new[c] for c in cols], int(total_unique) - int(total_new)),
    ], rows_sum=False, chart="line"))

    # Calls by language and by the caller's country.
    langs = _grid(per_lang, ["km", "th", "en"], cols)
    timed(Table("calls_language", "rep_language", cols, [Row(f"lang_{k}", v) for k, v in langs.items()]))
    countries = _grid(per_country, ["KH", "TH"], cols)
    timed(Table("calls_country", "rep_country", cols, [Row(f"country_{k}", v) for k, v in countries.items()]))

    # Messages: plays started from the first part, and plays heard to the end (a count of events,
    # not of distinct calls: a caller who plays a message twice counts twice; no sort needed).
    events = in_range(CallEvent.at)
    q = (sa.select(CallEvent.node, CallEvent.kind, sa.func.count())
         .where(events, sa.or_(sa.and_(CallEvent.kind == "message_part", CallEvent.detail == "0"),
                               CallEvent.kind == "message_completed"))
         .group_by(CallEvent.node, CallEvent.kind))
    if through is not None:
        ev = rolled(ReportEventDay)
        q = sa.select(ev.c.node, ev.c.kind, sa.func.sum(ev.c.events)).group_by(ev.c.node, ev.c.kind)
    heard: dict[str, list[float | int | None]] = {}
    for node, kind, n in session.execute(q):
        heard.setdefault(node or "unknown", [0, 0])[0 if kind == "message_part" else 1] = int(n)
    by_heard = sorted(heard.items(), key=lambda kv: (-int(kv[1][0] or 0), kv[0]))
    timed(Table("messages", "rep_message", ["rep_heard", "rep_completed"],
                [Row(node, v, label=_same(node)) for node, v in by_heard],
                periods=False, rows_sum=False, chart="bar"))

    # The drop-off funnel: calls, then those that chose a language, started and finished a message
    # (distinct calls: DISTINCT first, which PostgreSQL can hash, then a count per stage).
    pairs = (sa.select(CallEvent.kind, CallEvent.call_id)
             .where(events, CallEvent.kind.in_(("language", "message_part", "message_completed")))
             .distinct().subquery())
    q = sa.select(pairs.c.kind, sa.func.count()).group_by(pairs.c.kind)
    if through is not None:  # distinct calls: each day's, less those already counted the day before
        fd = rolled(ReportFunnelDay)
        q = (sa.select(fd.c.kind, sa.func.sum(fd.c.calls) - sa.func.sum(
                 sa.case((fd.c.day > sa.literal(period.start, sa.Date), fd.c.spanning), else_=0)))
             .group_by(fd.c.kind))
    stage = {k: int(n) for k, n in session.execute(q)}
    timed(Table("funnel", "rep_stage", ["rep_calls"], [
        Row("stage_called", [n_calls]), Row("stage_language", [stage.get("language", 0)]),
        Row("stage_message", [stage.get("message_part", 0)]),
        Row("stage_completed", [stage.get("message_completed", 0)]),
    ], periods=False, rows_sum=False, cols_sum=False, chart="funnel"))

    # Hang-ups: the last menu node of each finished call.
    timed(Table("hangups", "rep_node", ["rep_calls"],
                [Row(node or "unknown", [n], label=_same(node) if node else None)
                 for node, n in sorted(hangups.items(), key=lambda r: (-r[1], r[0] or "~"))],
                periods=False, rows_sum=False, chart="bar"))

    # Texts by keyword and language (inbound, any channel).
    q = (sa.select(Message.keyword, Message.language, sa.func.count())
         .where(in_range(Message.created_at), Message.direction == Direction.INBOUND)
         .group_by(Message.keyword, Message.language))
    sms = _grid([(r[0] or "none", str(r[1]) if r[1] else "unknown", r[2]) for r in session.execute(q)], [],
                ["km", "th", "en", "unknown"])
    timed(Table("sms_keyword", "rep_keyword", ["lang_km", "lang_th", "lang_en", "lang_unknown"],
                            [Row(k, v, label=None if k == "none" else _same(k.upper()))
                             for k, v in sorted(sms.items(), key=lambda kv: (-sum(int(x or 0) for x in kv[1]), kv[0]))],
                            periods=False))

    # Callbacks by what became of them, by the period they were asked for.
    state = sa.case((sa.and_(CallbackRequest.status == "done", CallbackRequest.outcome == "reached"), "reached"),
                    (CallbackRequest.status == "failed", "given_up"),
                    (CallbackRequest.status.in_(("open", "in_progress")), "open"),
                    (CallbackRequest.status == "cancelled", "cancelled"), else_="closed_other")
    q = (sa.select(state, bucket(CallbackRequest.created_at), sa.func.count())
         .where(in_range(CallbackRequest.created_at)).group_by(state, bucket(CallbackRequest.created_at)))
    cb = _grid(list(session.execute(q)), ["reached", "given_up", "open", "cancelled", "closed_other"], cols)
    timed(Table("callbacks", "rep_callback", cols, [Row(f"cb_{k}", v) for k, v in cb.items()]))

    # Cases by category, priority, status (now), country and home province.
    for attr, keys, chart in (("category", [c.value for c in CaseCategory], "bar"),
                              ("priority", ["urgent", "normal"], None),
                              ("status", [c.value for c in CaseStatus], None), ("country", ["KH", "TH"], None),
                              ("province", [], "bar")):
        col = getattr(Case, attr)
        q = (sa.select(col, bucket(Case.created_at), sa.func.count()).where(in_range(Case.created_at))
             .group_by(col, bucket(Case.created_at)))
        grid = _grid([(str(r[0]) if r[0] is not None else None, r[1], r[2]) for r in session.execute(q)], keys, cols)
        rows = [Row(f"{attr}_{k}", v, label=_province(k) if attr == "province" else None) for k, v in grid.items()]
        if attr == "province":
            rows.sort(key=lambda r: (r.key == "province_unknown", r.key))
        timed(Table(f"cases_{attr}", f"rep_case_{attr}", cols, rows, chart=chart))

    # Callers by the province they gave in the voice menu (asked once per caller, after a message):
    # the answers given in each period, from the path (a few rows: one per caller at most).
    answer = sa.and_(CallEvent.kind == "province", in_range(CallEvent.at), sa.func.length(CallEvent.detail) == 2)
    q = (sa.select(CallEvent.detail, bucket(CallEvent.at), sa.func.count()).where(answer)
         .group_by(CallEvent.detail, bucket(CallEvent.at)))
    grid = _grid(list(session.execute(q)), [], cols)
    timed(Table("callers_province", "rep_caller_province", cols,
                [Row(f"province_{k}", v, label=_province(k)) for k, v in sorted(grid.items())], chart="bar"))

    # Urgent cases: opened, escalated, overdue; alerts to on-call staff that failed.
    urgent = sa.and_(in_range(Case.created_at), Case.priority == CasePriority.URGENT)
    q = (sa.select(bucket(Case.created_at), sa.func.count(),
                   sa.func.sum(sa.case((Case.escalation_level > 0, 1), else_=0)),
                   sa.func.sum(sa.case((Case.overdue.is_(True), 1), else_=0)))
         .where(urgent).group_by(bucket(Case.created_at)))
    opened, escalated, overdue = (dict.fromkeys(cols, 0) for _ in range(3))
    for b, n, e, o in session.execute(q):
        if b in opened:
            opened[b], escalated[b], overdue[b] = int(n), int(e or 0), int(o or 0)
    q = (sa.select(bucket(Message.created_at), sa.func.count())
         .where(in_range(Message.created_at), Message.purpose == ALERT_PURPOSE,
                Message.status.in_(("failed", "undelivered")))
         .group_by(bucket(Message.created_at)))
    failed = dict.fromkeys(cols, 0)
    for b, n in session.execute(q):
        if b in failed:
            failed[b] = int(n)
    timed(Table("urgent", "rep_urgent", cols, [
        Row("urgent_opened", [opened[c] for c in cols]), Row("urgent_escalated", [escalated[c] for c in cols]),
        Row("urgent_overdue", [overdue[c] for c in cols]), Row("alerts_failed", [failed[c] for c in cols]),
    ], cols_sum=False))

    # Durations: urgent cases to claim and to first contact; callbacks to the call that reached them.
    claim = (sa.select(_seconds(Case.claimed_at, Case.created_at, dialect).label("d"))
             .where(urgent, Case.claimed_at.is_not(None)))
    # First contact: joins to two small aggregates (no correlated subquery per case).
    reached = (sa.select(CallbackRequest.case_id.label("case_id"), sa.func.min(CallbackAttempt.at).label("at"))
               .join(CallbackRequest, CallbackRequest.id == CallbackAttempt.request_id)
               .where(CallbackRequest.case_id.is_not(None), CallbackAttempt.outcome == "reached")
               .group_by(CallbackRequest.case_id).subquery())
    dialled = (sa.select(Call.call_sid.label("sid"), sa.func.min(CallEvent.at).label("at"))
               .join(Call, Call.id == CallEvent.call_id)
               .where(CallEvent.kind == "dial", CallEvent.detail == "completed", CallEvent.at >= lo)
               .group_by(Call.call_sid).subquery())
    pair = (sa.select(Case.created_at.label("created"), reached.c.at.label("a"), dialled.c.at.label("b"))
            .outerjoin(reached, reached.c.case_id == Case.id).outerjoin(dialled, dialled.c.sid == Case.source_sid)
            .where(urgent).subquery())
    first_contact = sa.case((pair.c.a.is_(None), pair.c.b), (pair.c.b.is_(None), pair.c.a),
                            (pair.c.a < pair.c.b, pair.c.a), else_=pair.c.b)
    contact = (sa.select(_seconds(first_contact, pair.c.created, dialect).label("d"))
               .where(sa.or_(pair.c.a.is_not(None), pair.c.b.is_not(None))))
    cb_reach = (sa.select(CallbackAttempt.request_id.label("id"), sa.func.min(CallbackAttempt.at).label("at"))
                .where(CallbackAttempt.outcome == "reached").group_by(CallbackAttempt.request_id).subquery())
    cb_pair = (sa.select(CallbackRequest.created_at.label("created"), cb_reach.c.at.label("at"))
               .join(cb_reach, cb_reach.c.id == CallbackRequest.id)
               .where(in_range(CallbackRequest.created_at)).subquery())
    to_reach = sa.select(_seconds(cb_pair.c.at, cb_pair.c.created, dialect).label("d")).where(cb_pair.c.at.is_not(None))
    timed(Table("durations", "rep_duration", ["rep_n", "rep_median", "rep_p90"], [
        Row("time_to_claim", list(percentiles(session, claim))),
        Row("time_to_contact", list(percentiles(session, contact))),
        Row("callback_time_to_reach", list(percentiles(session, to_reach))),
    ], periods=False, rows_sum=False, cols_sum=False, kind="duration"))
    return rep


def _same(text: str) -> dict[str, str]:
    return {"en": text, "km": text}


def _province(code: str) -> dict[str, str] | None:
    place = places.province(code)
    return {"en": place.name_en, "km": place.name_km} if place else None


def percentiles(session: Session, durations: sa.Select[Any]) -> tuple[int, float | None, float | None]:
    """(n, median, 90th percentile) of the single column `d` of `durations`, computed in SQL."""
    sub = durations.subquery()
    if session.get_bind().dialect.name == "postgresql":
        n, p50, p90 = session.execute(sa.select(
            sa.func.count(sub.c.d), sa.func.percentile_cont(0.5).within_group(sub.c.d),
            sa.func.percentile_cont(0.9).within_group(sub.c.d)).where(sub.c.d.is_not(None))).one()
        return int(n), _round(p50), _round(p90)
    numbered = sa.select(sub.c.d, sa.func.row_number().over(order_by=sub.c.d).label("rn"),
                         sa.func.count().over().label("n")).where(sub.c.d.is_not(None)).subquery()
    picks = []
    for p in (0.5, 0.9):
        lo = sa.cast(p * (numbered.c.n - 1), sa.Integer)
        picks += [numbered.c.rn - 1 == lo, numbered.c.rn - 1 == lo + 1]
    rows = session.execute(sa.select(numbered.c.rn, numbered.c.d, numbered.c.n).where(sa.or_(*picks))).all()
    if not rows:
        return 0, None, None
    n = int(rows[0].n)
    at = {int(r.rn) - 1: float(r.d) for r in rows}
    return n, _round(_interpolate(at, n, 0.5)), _round(_interpolate(at, n, 0.9))


def _interpolate(at: dict[int, float], n: int, p: float) -> float:
    pos = p * (n - 1)
    lo = int(pos)
    if lo + 1 >= n:
        return at[lo]
    return at[lo] + (pos - lo) * (at[lo + 1] - at[lo])


def _round(value: Any) -> float | None:
    return None if value is None else round(float(value), 1)


# --- small-cell suppression ----------------------------------------------------------------------

def suppress(grid: Sequence[Sequence[int | None]], k: int, *, rows_sum: bool, cols_sum: bool) -> list[list[str]]:
    """Which cells of a table may be shown: "" (shown), "primary" or "secondary" for each cell.

    `grid` is the whole table as shown, margins included: when `rows_sum`, the last entry of every
    row is that row's total; when `cols_sum`, the last row holds the column totals (and the corner
    the grand total). None is an empty cell (nothing to hide).

    Primary: a count from 1 to k-1 is hidden (shown as "<k"). Zero is shown: it identifies nobody.
    Secondary: in every line (row or column) that adds up to a shown total, a single hidden cell
    could be worked out by subtraction, so a second cell of that line is hidden too (shown as "*"):
    the smallest non-zero count that is not a total (the first of equals), or, when the line has no
    such cell left, its total. This repeats until no line has exactly one hidden cell, so no hidden
    cell can be derived from the rows, the columns or their totals. Totals are hidden only by the
    primary rule in practice (a line whose only other non-zero cell is its total has a total below
    k), which keeps totals that also appear in another table (calls per period) consistent.
    """
    marks = [["primary" if v is not None and 0 < v < k else "" for v in row] for row in grid]
    lines: list[list[tuple[int, int]]] = []
    if rows_sum:
        lines += [[(i, j) for j in range(len(row))] for i, row in enumerate(grid)]
    if cols_sum and grid:
        width = max(len(r) for r in grid)
        lines += [[(i, j) for i in range(len(grid)) if j < len(grid[i])] for j in range(width)]
    def hide_one_more(cells: list[tuple[int, int]]) -> None:
        inner = [(i, j) for i, j in cells[:-1] if not marks[i][j]]
        pool = [c for c in inner if (grid[c[0]][c[1]] or 0) > 0] or inner or [cells[-1]]
        i, j = min(pool, key=lambda c: grid[c[0]][c[1]] or 0)
        marks[i][j] = "secondary"

    while True:
        changed = True
        while changed:
            changed = False
            for line in lines:
                cells = [(i, j) for i, j in line if grid[i][j] is not None]
                if sum(1 for i, j in cells if marks[i][j]) == 1:
                    hide_one_more(cells)
                    changed = True
        # Lines with two hidden cells each can still pin one down together (a "bridge" between two
        # groups of hidden cells): solve the equations and hide more until none is determined.
        found = _determined(grid, marks, lines)
        if found is None:
            return marks
        line = next(ln for ln in lines if found in ln and any(marks[i][j] for i, j in ln if (i, j) != found))
        cells = [(i, j) for i, j in line if grid[i][j] is not None]
        if all(marks[i][j] for i, j in cells):
            return marks  # cannot happen with sums of non-negative counts; never loop forever
        hide_one_more(cells)


def _determined(grid: Sequence[Sequence[int | None]], marks: list[list[str]],
                lines: list[list[tuple[int, int]]]) -> tuple[int, int] | None:
    """A hidden cell whose value follows from the line sums and the shown cells, if there is one.

    With row and column sums every cell lies in exactly two lines, and after giving each line a
    sign the equations are those of a directed graph: lines are vertices, hidden cells are edges.
    A cell is then determined exactly when its edge is a bridge (on no cycle of hidden cells), so a
    linear-time bridge search replaces solving the system. With sums one way only, the lines share
    no cell and the line rule above already leaves nothing determined.
    """
    ends: dict[tuple[int, int], list[int]] = {}
    for n, line in enumerate(lines):
        for i, j in line:
            if grid[i][j] is not None and marks[i][j]:
                ends.setdefault((i, j), []).append(n)
    edges = [(cell, v[0], v[1]) for cell, v in sorted(ends.items()) if len(v) == 2]
    if not edges:
        return None
    adjacent: dict[int, list[tuple[int, int]]] = {}
    for e, (_cell, a, b) in enumerate(edges):
        adjacent.setdefault(a, []).append((b, e))
        adjacent.setdefault(b, []).append((a, e))
    order: dict[int, int] = {}
    low: dict[int, int] = {}
    bridges: list[int] = []
    for root in adjacent:
        if root in order:
            continue
        order[root] = low[root] = len(order)
        stack: list[tuple[int, int, int]] = [(root, -1, 0)]  # vertex, edge we came by, next neighbour
        while stack:
            v, via, k = stack[-1]
            if k < len(adjacent[v]):
                stack[-1] = (v, via, k + 1)
                w, e = adjacent[v][k]
                if e == via:
                    continue
                if w in order:
                    low[v] = min(low[v], order[w])
                else:
                    order[w] = low[w] = len(order)
                    stack.append((w, e, 0))
                continue
            stack.pop()
            if stack:
                parent = stack[-1][0]
                low[parent] = min(low[parent], low[v])
                if low[v] > order[parent]:
                    bridges.append(via)
    return min(edges[e][0] for e in bridges) if bridges else None


# --- what is shown and exported ------------------------------------------------------------------

@dataclass
class Shown:
    """A table as it may be published: labels resolved, hidden counts replaced by their marks."""

    id: str
    title: str
    header: list[str]  # the row header, then the column labels
    rows: list[list[str]]  # the row label, then the cells as text
    values: list[list[float | None]]  # the shown numbers (None where hidden), for charts
    labels: list[str]  # the row labels
    columns: list[str]
    chart: str | None
    note: str = ""


Label = Callable[[str], str]


def present(report: Report, k: int, label: Label, lang: str = "en") -> list[Shown]:
    """Every table with small cells suppressed, ready for the page, the charts and the exports."""
    return [_present(t, k, label, lang) for t in report.tables]


def _present(table: Table, k: int, label: Label, lang: str) -> Shown:
    columns = list(table.columns) if table.periods else [label(c) for c in table.columns]
    names = [r.label.get(lang, r.label.get("en", r.key)) if r.label else label(f"rep_{r.key}") for r in table.rows]
    if table.kind == "duration":
        return _present_durations(table, k, label, columns, names)
    has_total_col = table.rows_sum or any(r.total is not None for r in table.rows)
    grid: list[list[int | None]] = []
    for r in table.rows:
        cells = [None if c is None else int(c) for c in r.cells]
        if has_total_col:
            cells.append(r.total if r.total is not None else sum(c or 0 for c in cells))
        grid.append(cells)
    if table.cols_sum and table.rows:
        grid.append([sum(row[j] or 0 for row in grid) for j in range(len(grid[0]))])
    marks = suppress(grid, k, rows_sum=table.rows_sum, cols_sum=table.cols_sum)
    if has_total_col:
        columns.append(label("rep_total"))
    if table.cols_sum and table.rows:
        names.append(label("rep_total"))
    hidden = HIDDEN.format(k=k)
    rows, values = [], []
    for name, cells, mark in zip(names, grid, marks, strict=True):
        text = [("" if v is None else hidden if m == "primary" else PROTECTED if m else str(v))
                for v, m in zip(cells, mark, strict=True)]
        vals: list[float | None] = [None if (m or v is None) else float(v) for v, m in zip(cells, mark, strict=True)]
        if table.id == "messages":  # completion, only where both counts are shown
            done = vals[1] is not None and vals[0]
            text.append(f"{100 * (vals[1] or 0) / (vals[0] or 1):.0f}%" if done else "")
        rows.append([name, *text])
        values.append(vals)
    if table.id == "messages":
        columns.append(label("rep_completion"))
    return Shown(table.id, label(f"rep_t_{table.id}"), [label(table.row_header), *columns], rows, values,
                 names, columns, table.chart)


def _present_durations(table: Table, k: int, label: Label, columns: list[str], names: list[str]) -> Shown:
    rows: list[list[str]] = []
    values: list[list[float | None]] = []
    for name, r in zip(names, table.rows, strict=True):
        n, p50, p90 = int(r.cells[0] or 0), r.cells[1], r.cells[2]
        if 0 < n < k:  # a median of fewer than k cases says too much about each of them
            rows.append([name, HIDDEN.format(k=k), "", ""])
            values.append([None, None, None])
        else:
            rows.append([name, str(n), _duration(p50), _duration(p90)])
            values.append([float(n), None if p50 is None else float(p50), None if p90 is None else float(p90)])
    return Shown(table.id, label(f"rep_t_{table.id}"), [label(table.row_header), *columns], rows, values, names,
                 columns, None, note=label("rep_duration_note"))


def _duration(seconds: float | int | None) -> str:
    if seconds is None:
        return ""
    s = int(round(float(seconds)))
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    return f"{s // 3600}h {s % 3600 // 60:02d}m"


# --- exports (of exactly what is shown) ---------------------------------------------------------

def to_csv(shown: Sequence[Shown], title: str) -> str:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([title])
    for t in shown:
        w.writerow([])
        w.writerow([t.title])
        w.writerow(t.header)
        w.writerows(t.rows)
        if t.note:
            w.writerow([t.note])
    return out.getvalue()


def to_json(shown: Sequence[Shown], title: str, meta: dict[str, Any]) -> str:
    return json.dumps({"title": title, **meta,
                       "tables": [{"id": t.id, "title": t.title, "header": t.header, "rows": t.rows}
                                  for t in shown]}, ensure_ascii=False, indent=1)


def to_xlsx(shown: Sequence[Shown], title: str) -> bytes:
    """One sheet per table; cells that are shown as numbers are numbers, hidden ones keep their mark."""
    from openpyxl import Workbook

    wb = Workbook()
    first = wb.active
    assert first is not None
    first.title = "Report"
    first.append([title])
    for t in shown:
        ws = wb.create_sheet(t.id[:31])
        ws.append([t.title])
        ws.append(t.header)
        for row in t.rows:
            ws.append([row[0], *(_number(c) for c in row[1:])])
        if t.note:
            ws.append([t.note])
        first.append([t.title, t.id[:31]])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _number(text: str) -> int | str:
    return int(text) if text.isdigit() else text
