"""Retention of who people are: phone numbers and closed cases' notes go after RETENTION_DAYS, the
rows (and so every count) stay; open business keeps its numbers; an opted-out number is kept."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from hotline.db import utcnow
from hotline.models import (
    Call,
    CallbackRequest,
    CallbackStatus,
    Caller,
    Case,
    CaseNote,
    CasePriority,
    CaseStatus,
    Direction,
    Message,
    MessageStatus,
)
from hotline.services import retention

YEAR = timedelta(days=365)
NOW = utcnow()
LONG_AGO = NOW - timedelta(days=400)
LATELY = NOW - timedelta(days=10)


def _caller(db, phone: str, seen, **kw) -> Caller:
    c = Caller(phone=phone, country="KH", last_seen_at=seen, created_at=seen, **kw)
    db.add(c)
    db.flush()
    return c


def _case(db, ref: str, caller: Caller, status: CaseStatus, closed=None, **kw) -> Case:
    case = Case(ref=ref, source="sms", priority=CasePriority.URGENT, status=status, caller_id=caller.id,
                created_at=LONG_AGO, closed_at=closed, **kw)
    db.add(case)
    db.flush()
    return case


def arrange(db) -> dict[str, int]:
    gone = _caller(db, "+85512340001", LONG_AGO)
    busy = _caller(db, "+85512340002", LONG_AGO)
    opted_out = _caller(db, "+85512340003", LONG_AGO, opted_out_at=LONG_AGO)
    recent = _caller(db, "+85512340004", LATELY)
    waiting = _caller(db, "+85512340005", LONG_AGO)
    closed_old = _case(db, "HL-OLD", gone, CaseStatus.CLOSED, LONG_AGO, subject_phone="+66812340009")
    closed_lately = _case(db, "HL-LATE", recent, CaseStatus.CLOSED, LATELY, subject_phone="+66812340008")
    still_open = _case(db, "HL-OPEN", busy, CaseStatus.IN_PROGRESS, subject_phone="+66812340007")
    for case, body in ((closed_old, "boss has her passport"), (closed_old, "shelter found"),
                       (closed_lately, "called back"), (still_open, "waiting for the embassy")):
        db.add(CaseNote(case_id=case.id, body=body, created_at=LONG_AGO))
    msgs = {
        "gone": Message(direction=Direction.INBOUND, peer=gone.phone, caller_id=gone.id, body="help",
                        status=MessageStatus.RECEIVED, created_at=LONG_AGO, case_id=closed_old.id),
        "busy": Message(direction=Direction.INBOUND, peer=busy.phone, caller_id=busy.id, body="help me",
                        status=MessageStatus.RECEIVED, created_at=LONG_AGO),
        "recent": Message(direction=Direction.INBOUND, peer=recent.phone, caller_id=recent.id, body="INFO",
                          status=MessageStatus.RECEIVED, created_at=LATELY),
    }
    calls = {"gone": Call(call_sid="CA-old", caller_id=gone.id, direction=Direction.OUTBOUND,
                          to_number=gone.phone, started_at=LONG_AGO),
             "recent": Call(call_sid="CA-new", caller_id=recent.id, direction=Direction.OUTBOUND,
                            to_number=recent.phone, started_at=LATELY)}
    callbacks = {"done": CallbackRequest(caller_id=gone.id, phone=gone.phone, source="sms",
                                         status=CallbackStatus.DONE, created_at=LONG_AGO),
                 "open": CallbackRequest(caller_id=waiting.id, phone=waiting.phone, source="ivr",
                                         status=CallbackStatus.OPEN, created_at=LONG_AGO)}
    db.add_all([*msgs.values(), *calls.values(), *callbacks.values()])
    db.commit()
    ids = {"gone": gone.id, "busy": busy.id, "opted_out": opted_out.id, "recent": recent.id,
           "waiting": waiting.id, "closed_old": closed_old.id, "closed_lately": closed_lately.id,
           "still_open": still_open.id}
    ids.update({f"msg_{k}": m.id for k, m in msgs.items()})
    ids.update({f"call_{k}": c.id for k, c in calls.items()})
    ids.update({f"cb_{k}": c.id for k, c in callbacks.items()})
    return ids


def counts(db) -> tuple[int, ...]:
    return tuple(db.scalar(sa.select(sa.func.count()).select_from(m))
                 for m in (Caller, Case, Message, Call, CallbackRequest))


def test_numbers_and_closed_cases_notes_go_after_a_year_and_every_row_stays(res, db) -> None:
    ids = arrange(db)
    before = counts(db)
    dry = retention.purge(db, res.settings, YEAR, dry_run=True, now=NOW)
    db.rollback()
    assert (dry.phone_numbers, dry.case_notes) == (5, 2)
    assert db.get(Caller, ids["gone"]).phone == "+85512340001"  # a dry run changes nothing

    report = retention.purge(db, res.settings, YEAR, now=NOW)
    db.commit()
    db.expire_all()
    assert (report.phone_numbers, report.case_notes) == (5, 2)
    assert "phone numbers purged: 5" in report.lines() and "notes of closed cases purged: 2" in report.lines()
    phones = {k: db.get(Caller, ids[k]).phone for k in ("gone", "busy", "opted_out", "recent", "waiting")}
    assert phones == {"gone": None, "busy": "+85512340002", "opted_out": "+85512340003",
                      "recent": "+85512340004", "waiting": "+85512340005"}
    assert db.get(Message, ids["msg_gone"]).peer is None and db.get(Message, ids["msg_gone"]).body is None
    assert db.get(Message, ids["msg_busy"]).peer == "+85512340002"  # the caller's case is open
    assert db.get(Message, ids["msg_busy"]).body == "help me"
    assert db.get(Message, ids["msg_recent"]).peer == "+85512340004"
    assert db.get(Call, ids["call_gone"]).to_number is None
    assert db.get(Call, ids["call_recent"]).to_number == "+85512340004"
    assert db.get(CallbackRequest, ids["cb_done"]).phone == ""
    assert db.get(CallbackRequest, ids["cb_open"]).phone == "+85512340005"
    assert db.get(Case, ids["closed_old"]).subject_phone is None
    assert db.get(Case, ids["closed_lately"]).subject_phone == "+66812340008"
    assert db.get(Case, ids["still_open"]).subject_phone == "+66812340007"
    notes = sorted(db.scalars(sa.select(CaseNote.body)))
    assert notes == ["called back", "waiting for the embassy"]
    # Anonymous counts survive: every row, its country, status and dates.
    assert counts(db) == before
    old = db.get(Case, ids["closed_old"])
    assert (old.status, old.closed_at is not None, db.get(Caller, ids["gone"]).country) == ("closed", True, "KH")

    again = retention.purge(db, res.settings, YEAR, now=NOW)
    assert (again.phone_numbers, again.case_notes, again.message_bodies) == (0, 0, 0)


def test_an_anonymised_caller_who_texts_again_is_a_new_caller(res, db, twilio) -> None:
    ids = arrange(db)
    retention.purge(db, res.settings, YEAR, now=NOW)
    db.commit()
    resp = twilio.post("/twilio/sms", twilio.sms_params("INFO", from_="+85512340001"))
    assert resp.status_code == 200 and "<Message" in resp.get_data(as_text=True)
    db.expire_all()
    fresh = db.scalars(sa.select(Caller).where(Caller.phone == "+85512340001")).one()
    assert fresh.id != ids["gone"] and db.get(Caller, ids["gone"]).phone is None


def test_the_default_retention_is_a_year() -> None:
    from hotline.settings import Settings

    assert Settings().retention_days == 365
