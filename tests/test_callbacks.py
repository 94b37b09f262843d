"""Callbacks: calling hours in the callee's time zone, preferred times, placing calls through a real
worker (staff phone first), attempts and outcomes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from hotline.background.outbox import add_job
from hotline.db import utcnow
from hotline.models import Call, CallbackAttempt, CallbackRequest, CallbackStatus, OutboxJob, OutboxStatus, StaffUser
from hotline.services import callers, intake
from hotline.services.callbacks import (
    callee_zone,
    due_callbacks,
    expire_stale_attempts,
    finish_attempt,
    next_calling_time,
    within_calling_hours,
)
from hotline.settings import Settings
from tests.conftest import PUBLIC, run_worker_burst

PP, BKK = ZoneInfo("Asia/Phnom_Penh"), ZoneInfo("Asia/Bangkok")
CALLEE, STAFF_PHONE = "+85512345678", "+85512999001"
ALL_DAY = "00:00-23:59:59.999999"  # for tests that must place a call whatever the hour they run at
HOURS = Settings()  # 08:00-20:00


def local(day: int, hour: int, minute: int = 0, zone: ZoneInfo = PP) -> datetime:
    """A moment in November 2026 (the 23rd is a Monday), local time, as UTC."""
    return datetime(2026, 11, day, hour, minute, tzinfo=zone).astimezone(UTC)


# -- calling hours (pure) -----------------------------------------------------------------------

@pytest.mark.parametrize("at,preferred,expected", [
    (local(23, 10), "now", local(23, 10)),
    (local(23, 6, 30), "now", local(23, 8)),
    (local(23, 20), "now", local(24, 8)),  # the end is exclusive
    (local(23, 23, 30), "now", local(24, 8)),
    (local(23, 10), "evening", local(23, 18)),
    (local(23, 19), "evening", local(23, 19)),
    (local(23, 21), "evening", local(24, 18)),
    (local(23, 10), "weekend", local(28, 8)),  # Monday -> Saturday morning
    (local(28, 12), "weekend", local(28, 12)),
    (local(29, 20, 30), "weekend", datetime(2026, 12, 5, 8, tzinfo=PP)),  # Sunday evening -> next Saturday
])
def test_next_calling_time_respects_preference_and_hours(at, preferred, expected) -> None:
    assert next_calling_time(HOURS, PP, at, preferred) == expected


def test_calling_hours_are_the_callees_not_the_hotlines() -> None:
    # 20:30 in Phnom Penh is 20:30 in Bangkok too; a Japanese number is two hours ahead.
    tokyo = callee_zone(HOURS, "+81312345678")
    assert tokyo == ZoneInfo("Asia/Tokyo")
    at = local(23, 19)  # 19:00 in Phnom Penh, 21:00 in Tokyo
    assert within_calling_hours(HOURS, PP, at) and not within_calling_hours(HOURS, tokyo, at)
    assert callee_zone(HOURS, "+66812345678") == BKK
    assert callee_zone(HOURS, "+85512345678") == PP
    assert callee_zone(HOURS, "not a number") == HOURS.tz


@hsettings(max_examples=80, deadline=None)
@given(at=st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31), timezones=st.just(UTC)),
       preferred=st.sampled_from(["now", "evening", "weekend"]),
       zone=st.sampled_from([PP, BKK, ZoneInfo("Asia/Tokyo")]))
def test_next_calling_time_is_never_early_and_always_within_hours(at, preferred, zone) -> None:
    t = next_calling_time(HOURS, zone, at, preferred)
    assert t >= at and within_calling_hours(HOURS, zone, t)
    assert t - at < timedelta(days=8)
    if preferred == "weekend":
        assert t.astimezone(zone).weekday() >= 5


# -- jobs through a real worker -----------------------------------------------------------------

def new_request(res, *, preferred: str = "now", phone: str = CALLEE) -> int:
    with res.db.Session() as s:
        caller = callers.get_or_create(s, phone)
        req, created = intake.request_callback(s, caller=caller, phone=phone, source="ivr",
                                               preferred_time=preferred)
        s.commit()
        assert created
        return req.id


def new_staff(db, phone: str | None = STAFF_PHONE) -> int:
    staff = StaffUser(email=f"lawyer{phone}@example.org", password_hash="x", role="lawyer", phone=phone)
    db.add(staff)
    db.commit()
    return staff.id


def call_now(res, callback_id: int, staff_id: int | None) -> None:
    """What the console's "Call now" button does."""
    with res.db.Session() as s:
        add_job(s, "callback.place", {"callback_id": callback_id, "staff_id": staff_id}, queue="urgent")
        s.commit()


def the_request(db, cb_id: int) -> CallbackRequest:
    db.expire_all()
    cb = db.get(CallbackRequest, cb_id)
    assert cb is not None
    return cb


def test_new_request_is_scheduled_for_the_callers_preferred_time(res, db, rest_settings) -> None:
    cb_id = new_request(res, preferred="weekend")
    run_worker_burst(rest_settings)
    cb = the_request(db, cb_id)
    when = cb.next_attempt_at.astimezone(PP)
    assert when >= utcnow() - timedelta(seconds=5) and when.weekday() >= 5 and 8 <= when.hour < 20
    assert cb.status == CallbackStatus.OPEN


def test_call_now_rings_the_staff_phone_first_from_the_hotline_number(res, db, rest_settings, fake_twilio) -> None:
    cb_id, staff_id = new_request(res), new_staff(db)
    call_now(res, cb_id, staff_id)
    run_worker_burst(rest_settings.with_(calling_hours=ALL_DAY))

    [call] = fake_twilio.calls
    attempt = db.scalar(sa.select(CallbackAttempt))
    assert (call["To"], call["From"], call["MachineDetection"]) == (STAFF_PHONE, "+85523000000", "Enable")
    assert call["Url"] == f"{PUBLIC}/twilio/outbound/staff?attempt={attempt.id}"
    assert call["StatusCallback"] == f"{PUBLIC}/twilio/outbound/status?attempt={attempt.id}&leg=staff"
    assert (attempt.call_sid, attempt.staff_id, attempt.outcome) == (call["sid"], staff_id, None)
    cb = the_request(db, cb_id)
    assert (cb.status, cb.assigned_to_id, cb.attempts) == (CallbackStatus.IN_PROGRESS, staff_id, 0)
    row = db.scalar(sa.select(Call).where(Call.call_sid == call["sid"]))
    assert (row.direction, row.line, row.purpose, row.to_number) == ("outbound", "outbound", "callback", STAFF_PHONE)


def test_without_a_staff_phone_the_caller_is_called_directly(res, db, rest_settings, fake_twilio) -> None:
    cb_id, staff_id = new_request(res), new_staff(db, phone=None)
    call_now(res, cb_id, staff_id)
    run_worker_burst(rest_settings.with_(calling_hours=ALL_DAY))
    [call] = fake_twilio.calls
    attempt_id = db.scalar(sa.select(CallbackAttempt.id))
    assert call["To"] == CALLEE
    assert call["Url"] == f"{PUBLIC}/twilio/outbound/callee?attempt={attempt_id}&leg=direct"


def test_pressing_call_now_twice_places_one_call(res, db, rest_settings, fake_twilio) -> None:
    cb_id, staff_id = new_request(res), new_staff(db)
    call_now(res, cb_id, staff_id)
    call_now(res, cb_id, staff_id)
    run_worker_burst(rest_settings.with_(calling_hours=ALL_DAY))
    assert len(fake_twilio.calls) == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(CallbackAttempt)) == 1


def test_no_call_outside_calling_hours_in_the_callees_time_zone(res, db, rest_settings, fake_twilio) -> None:
    now = utcnow().astimezone(PP)
    hours = "13:00-14:00" if now.hour < 12 else "01:00-02:00"  # a window that excludes this moment
    cb_id, staff_id = new_request(res), new_staff(db)
    call_now(res, cb_id, staff_id)
    run_worker_burst(rest_settings.with_(calling_hours=hours))
    assert fake_twilio.calls == []
    cb = the_request(db, cb_id)
    assert cb.status == CallbackStatus.OPEN and cb.outcome == "outside_calling_hours"
    assert cb.next_attempt_at.astimezone(PP).strftime("%H:%M") == hours[:5]


def test_invalid_callee_number_fails_the_request_at_once(res, db, rest_settings, fake_twilio) -> None:
    cb_id, staff_id = new_request(res), new_staff(db, phone=None)
    fake_twilio.fail_next(1, status=400, code=21211)
    call_now(res, cb_id, staff_id)
    run_worker_burst(rest_settings.with_(calling_hours=ALL_DAY))
    job = db.scalar(sa.select(OutboxJob).where(OutboxJob.kind == "callback.place"))
    assert job.status == OutboxStatus.FAILED and "21211" in job.last_error
    cb = the_request(db, cb_id)
    assert (cb.status, cb.outcome, cb.attempts) == (CallbackStatus.FAILED, "failed", 1)


# -- outcomes -----------------------------------------------------------------------------------

def add_attempt(db, cb_id: int) -> int:
    db.execute(sa.update(CallbackRequest).where(CallbackRequest.id == cb_id)
               .values(status=CallbackStatus.IN_PROGRESS))
    attempt = CallbackAttempt(request_id=cb_id)
    db.add(attempt)
    db.commit()
    return attempt.id


def test_three_unanswered_attempts_give_up_with_a_wait_between(res, db, settings) -> None:
    cb_id = new_request(res)
    for n in (1, 2):
        before = utcnow()
        assert finish_attempt(db, settings, add_attempt(db, cb_id), "no_answer")
        db.commit()
        cb = the_request(db, cb_id)
        assert (cb.status, cb.attempts, cb.outcome) == (CallbackStatus.OPEN, n, "no_answer")
        assert cb.next_attempt_at >= before + timedelta(minutes=settings.callback_retry_minutes)
        assert within_calling_hours(settings, PP, cb.next_attempt_at)
    finish_attempt(db, settings, add_attempt(db, cb_id), "busy")
    db.commit()
    cb = the_request(db, cb_id)
    assert (cb.status, cb.attempts, cb.next_attempt_at) == (CallbackStatus.FAILED, 3, None)
    assert [a.outcome for a in cb.attempt_log] == ["no_answer", "no_answer", "busy"]


def test_a_retry_keeps_to_the_time_the_caller_chose(res, db, settings) -> None:
    cb_id = new_request(res, preferred="weekend")
    finish_attempt(db, settings, add_attempt(db, cb_id), "no_answer")
    db.commit()
    assert the_request(db, cb_id).next_attempt_at.astimezone(PP).weekday() >= 5


def test_an_outcome_reported_twice_counts_once(res, db, settings) -> None:
    cb_id = new_request(res)
    attempt_id = add_attempt(db, cb_id)
    assert finish_attempt(db, settings, attempt_id, "reached")
    assert not finish_attempt(db, settings, attempt_id, "no_answer")
    db.commit()
    cb = the_request(db, cb_id)
    assert (cb.status, cb.attempts, cb.outcome) == (CallbackStatus.DONE, 1, "reached")


def test_staff_phone_not_answering_does_not_use_up_an_attempt(res, db, settings) -> None:
    cb_id = new_request(res)
    finish_attempt(db, settings, add_attempt(db, cb_id), "failed", counts=False)
    db.commit()
    cb = the_request(db, cb_id)
    assert (cb.status, cb.attempts) == (CallbackStatus.OPEN, 0)
    assert [c.id for c in due_callbacks(db, utcnow() + timedelta(days=1))] == [cb_id]


def test_attempt_never_reported_on_is_closed_by_the_periodic_task(res, db, settings) -> None:
    cb_id = new_request(res)
    attempt_id = add_attempt(db, cb_id)
    expire_stale_attempts(res)
    assert the_request(db, cb_id).status == CallbackStatus.IN_PROGRESS  # too early
    db.execute(sa.update(CallbackAttempt).values(at=utcnow() - timedelta(minutes=20)))
    db.commit()
    expire_stale_attempts(res)
    cb = the_request(db, cb_id)
    assert (cb.status, cb.attempts) == (CallbackStatus.OPEN, 0)
    assert db.get(CallbackAttempt, attempt_id).outcome == "failed"
