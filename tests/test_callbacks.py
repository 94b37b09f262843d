"""Callbacks: calling hours in the callee's time zone, preferred times, placing calls through a real
worker (staff phone first), attempts and outcomes."""

from __future__ import annotations

from collections.abc import Iterator
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
from hotline.resources import Resources
from hotline.services import callers, intake
from hotline.services.callbacks import (
    bring_forward,
    callee_zone,
    due_callbacks,
    expire_stale_attempts,
    finish_attempt,
    next_calling_time,
    place_due,
    reschedule,
    within_calling_hours,
)
from hotline.settings import Settings
from hotline.telephony.transport import TwilioTransport
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
    # Asynchronous AMD: the whisper plays at once, the verdict comes to its own callback.
    assert (call["AsyncAmd"], call["AsyncAmdStatusCallback"]) == (
        "true", f"{PUBLIC}/twilio/outbound/amd?attempt={attempt.id}&leg=staff")
    assert call["Url"] == f"{PUBLIC}/twilio/outbound/staff?attempt={attempt.id}"
    assert call["StatusCallback"] == f"{PUBLIC}/twilio/outbound/status?attempt={attempt.id}&leg=staff"
    assert (attempt.call_sid, attempt.staff_id, attempt.outcome, attempt.stage) == (call["sid"], staff_id, None,
                                                                                    "staff")
    cb = the_request(db, cb_id)
    assert (cb.status, cb.assigned_to_id, cb.attempts) == (CallbackStatus.IN_PROGRESS, staff_id, 0)
    row = db.scalar(sa.select(Call).where(Call.call_sid == call["sid"]))
    assert (row.direction, row.line, row.purpose, row.to_number) == ("outbound", "outbound", "callback", STAFF_PHONE)


def test_call_now_by_a_staff_member_without_a_phone_never_calls_the_person_directly(res, db, rest_settings,
                                                                                     fake_twilio) -> None:
    cb_id, staff_id = new_request(res), new_staff(db, phone=None)
    call_now(res, cb_id, staff_id)
    run_worker_burst(rest_settings.with_(calling_hours=ALL_DAY))
    assert fake_twilio.calls == []
    assert the_request(db, cb_id).status == CallbackStatus.OPEN


def test_pressing_call_now_twice_places_one_call(res, db, rest_settings, fake_twilio) -> None:
    cb_id, staff_id = new_request(res), new_staff(db)
    call_now(res, cb_id, staff_id)
    call_now(res, cb_id, staff_id)
    run_worker_burst(rest_settings.with_(calling_hours=ALL_DAY))
    assert len(fake_twilio.calls) == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(CallbackAttempt)) == 1


def test_call_now_outside_calling_hours_places_nothing(res, db, rest_settings, fake_twilio) -> None:
    now = utcnow().astimezone(PP)
    hours = "13:00-14:00" if now.hour < 12 else "01:00-02:00"  # a window that excludes this moment
    cb_id, staff_id = new_request(res), new_staff(db)
    call_now(res, cb_id, staff_id)
    run_worker_burst(rest_settings.with_(calling_hours=hours))
    assert fake_twilio.calls == []
    cb = the_request(db, cb_id)
    assert (cb.status, cb.attempts) == (CallbackStatus.OPEN, 0)


def test_a_refused_staff_number_leaves_the_request_open_and_uncounted(res, db, rest_settings, fake_twilio) -> None:
    cb_id, staff_id = new_request(res), new_staff(db)
    fake_twilio.fail_next(1, status=400, code=21211)
    call_now(res, cb_id, staff_id)
    run_worker_burst(rest_settings.with_(calling_hours=ALL_DAY))
    job = db.scalar(sa.select(OutboxJob).where(OutboxJob.kind == "callback.place"))
    assert job.status == OutboxStatus.FAILED and "21211" in job.last_error
    cb = the_request(db, cb_id)
    assert (cb.status, cb.outcome, cb.attempts) == (CallbackStatus.OPEN, "failed", 0)
    assert "staff phone number was refused" in cb.next_reason


# -- the worker places due callbacks by itself, at the chosen time (with a clock) ---------------

MONDAY_MORNING = local(23, 10)  # 10:00 in Phnom Penh and Bangkok, 11:00 in Kuala Lumpur


@pytest.fixture
def rest_res(rest_settings) -> Iterator[Resources]:
    """The hotline's resources with REST on (fake Twilio) and the server's own zone far from the callee's."""
    r = Resources(rest_settings.with_(timezone="UTC"))
    yield r
    r.close()


def scheduled(res, rest_res, *, preferred: str = "now", phone: str = CALLEE, now: datetime = MONDAY_MORNING) -> int:
    """A request as the scheduling job leaves it, at the clock's `now`."""
    cb_id = new_request(res, preferred=preferred, phone=phone)
    with rest_res.db.Session() as s:
        cb = s.get(CallbackRequest, cb_id)
        cb.source = "sms"  # not in the menu any more: no grace period
        reschedule(rest_res.settings, cb, now)
        s.commit()
    return cb_id


@pytest.mark.parametrize("phone,zone,roster", [
    ("+66812345678", BKK, "+66812345001"),  # a Thai SIM: Bangkok time, the TH roster rings first
    ("+85512345678", PP, "+85512345001"),  # a Cambodian SIM: Phnom Penh time, the KH roster
    ("+60123456789", ZoneInfo("Asia/Kuala_Lumpur"), "+66812345001"),  # Malaysia: an hour ahead
])
def test_an_evening_choice_is_never_called_before_the_evening_in_the_callees_zone(
        res, db, rest_res, fake_twilio, phone, zone, roster) -> None:
    cb_id = scheduled(res, rest_res, preferred="evening", phone=phone)
    evening = datetime(2026, 11, 23, 18, 0, tzinfo=zone).astimezone(UTC)
    cb = the_request(db, cb_id)
    assert cb.next_attempt_at == evening and "evening" in cb.next_reason
    for hour in (11, 14, 17):
        place_due(rest_res, now=datetime(2026, 11, 23, hour, 59, tzinfo=zone).astimezone(UTC))
    assert fake_twilio.calls == []
    place_due(rest_res, now=evening + timedelta(minutes=1))
    [call] = fake_twilio.calls
    assert call["To"] == roster  # the on-call person's phone rings first, never the person's
    assert the_request(db, cb_id).status == CallbackStatus.IN_PROGRESS


def test_a_new_request_made_in_the_menu_is_not_rung_while_the_caller_may_still_choose(res, db, rest_res,
                                                                                       fake_twilio) -> None:
    cb_id = new_request(res)  # source "ivr"
    with rest_res.db.Session() as s:
        cb = s.get(CallbackRequest, cb_id)
        cb.created_at = MONDAY_MORNING
        reschedule(rest_res.settings, cb, MONDAY_MORNING)
        s.commit()
    assert the_request(db, cb_id).next_attempt_at == MONDAY_MORNING + timedelta(minutes=2)
    place_due(rest_res, now=MONDAY_MORNING + timedelta(minutes=1))
    assert fake_twilio.calls == []


def test_retries_are_spaced_and_call_now_cannot_bring_one_inside_the_spacing(res, db, rest_res, fake_twilio) -> None:
    cb_id = scheduled(res, rest_res)
    place_due(rest_res, now=MONDAY_MORNING)
    [first] = fake_twilio.calls
    attempt_id = db.scalar(sa.select(CallbackAttempt.id))
    db.execute(sa.update(CallbackAttempt).values(stage="callee"))  # the staff member pressed 1
    db.commit()
    with rest_res.db.Session() as s:
        finish_attempt(s, rest_res.settings, attempt_id, "no_answer", now=MONDAY_MORNING + timedelta(minutes=1))
        s.commit()
    cb = the_request(db, cb_id)
    assert (cb.status, cb.attempts) == (CallbackStatus.OPEN, 1)
    assert cb.next_attempt_at == MONDAY_MORNING + timedelta(minutes=60)
    place_due(rest_res, now=MONDAY_MORNING + timedelta(minutes=30))
    assert len(fake_twilio.calls) == 1
    staff_id = new_staff(db)
    with rest_res.db.Session() as s:
        req, staff = s.get(CallbackRequest, cb_id), s.get(StaffUser, staff_id)
        decision = bring_forward(s, rest_res.settings, req, staff, "they texted",
                                 now=MONDAY_MORNING + timedelta(minutes=30))
    assert (decision.placed, decision.key, decision.when) == (False, "too_soon", MONDAY_MORNING + timedelta(minutes=60))
    place_due(rest_res, now=MONDAY_MORNING + timedelta(minutes=61))
    assert len(fake_twilio.calls) == 2


def test_at_most_max_attempts(res, db, rest_res, fake_twilio) -> None:
    cb_id = scheduled(res, rest_res)
    now = MONDAY_MORNING
    for n in range(1, 4):
        place_due(rest_res, now=now)
        assert len(fake_twilio.calls) == n
        attempt_id = db.scalar(sa.select(sa.func.max(CallbackAttempt.id)))
        db.execute(sa.update(CallbackAttempt).where(CallbackAttempt.id == attempt_id).values(stage="callee"))
        db.commit()
        with rest_res.db.Session() as s:
            finish_attempt(s, rest_res.settings, attempt_id, "busy", now=now)
            s.commit()
        now += timedelta(minutes=61)
    cb = the_request(db, cb_id)
    assert (cb.status, cb.attempts, cb.next_attempt_at) == (CallbackStatus.FAILED, 3, None)
    place_due(rest_res, now=now + timedelta(days=1))
    assert len(fake_twilio.calls) == 3


def test_a_staff_leg_that_never_accepts_moves_on_to_the_next_person_on_call(res, db, rest_res, fake_twilio,
                                                                           twilio) -> None:
    cb_id = scheduled(res, rest_res, phone="+66812345678")
    place_due(rest_res, now=MONDAY_MORNING)
    [first] = fake_twilio.calls
    url = first["Url"].replace(PUBLIC, "")
    form = twilio.voice_params(first["sid"], from_="+85523000000", to=first["To"], Direction="outbound-api")
    accept = twilio.post(url, form).data.decode().split('action="')[1].split('"')[0].replace(PUBLIC, "")
    twilio.post(accept.replace("&amp;", "&"), fake_twilio.gather_timeout(form))  # nobody pressed anything
    cb = the_request(db, cb_id)
    assert (cb.status, cb.attempts, cb.outcome) == (CallbackStatus.OPEN, 0, "staff_missed")
    assert cb.next_attempt_at > utcnow()
    later = MONDAY_MORNING + timedelta(minutes=11)
    db.execute(sa.update(CallbackRequest).values(next_attempt_at=later))  # the webhook ran on the real clock
    db.commit()
    place_due(rest_res, now=later)
    assert [c["To"] for c in fake_twilio.calls] == ["+66812345001", "+66812345002"]


def test_nobody_on_call_places_nothing_and_says_so(res, db, rest_settings, fake_twilio) -> None:
    r = Resources(rest_settings.with_(oncall=()))
    try:
        cb_id = scheduled(res, r)
        place_due(r, now=MONDAY_MORNING)
    finally:
        r.close()
    assert fake_twilio.calls == []
    cb = the_request(db, cb_id)
    assert cb.status == CallbackStatus.OPEN and cb.next_reason.startswith("nobody on call for KH")


def test_outside_calling_hours_the_schedule_says_why(res, db, rest_res, fake_twilio) -> None:
    cb_id = scheduled(res, rest_res, now=local(23, 21))
    cb = the_request(db, cb_id)
    assert cb.next_attempt_at == local(24, 8) and "calling hours" in cb.next_reason
    place_due(rest_res, now=local(23, 23))
    assert fake_twilio.calls == []


# -- a timeout after Twilio accepted the call --------------------------------------------------

def test_a_timeout_after_twilio_accepted_is_reconciled_never_rung_twice(res, db, rest_res, fake_twilio,
                                                                        monkeypatch) -> None:
    monkeypatch.setattr(TwilioTransport, "timeout", 0.5)
    fake_twilio.accept_then_timeout(1, hang=1.5)
    cb_id = scheduled(res, rest_res)
    place_due(rest_res, now=MONDAY_MORNING)  # Twilio placed it; we never heard
    assert len(fake_twilio.calls) == 1 and fake_twilio.calls[0]["status"] == "queued"
    attempt = db.scalar(sa.select(CallbackAttempt))
    assert (attempt.stage, attempt.call_sid, attempt.outcome) == ("placing", None, None)
    assert the_request(db, cb_id).status == CallbackStatus.IN_PROGRESS
    # The next sweep asks Twilio first: the call is there (still queued: no StartTime yet).
    place_due(rest_res, now=MONDAY_MORNING + timedelta(minutes=1))
    assert len(fake_twilio.calls) == 1
    db.expire_all()
    attempt = db.scalar(sa.select(CallbackAttempt))
    assert (attempt.stage, attempt.call_sid) == ("staff", fake_twilio.calls[0]["sid"])
    assert ("GET", f"/2010-04-01/Accounts/{rest_res.settings.twilio_account_sid}/Calls.json") in fake_twilio.requests


def test_a_request_twilio_never_received_is_placed_again_once(res, db, rest_res, fake_twilio) -> None:
    cb_id = scheduled(res, rest_res)
    fake_twilio.fail_next(1, status=503)
    place_due(rest_res, now=MONDAY_MORNING)
    assert fake_twilio.calls == []
    place_due(rest_res, now=MONDAY_MORNING + timedelta(minutes=1))
    place_due(rest_res, now=MONDAY_MORNING + timedelta(minutes=2))
    assert len(fake_twilio.calls) == 1
    assert [a.outcome for a in the_request(db, cb_id).attempt_log] == ["failed", None]


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


def test_a_twilio_outage_costs_the_worker_loop_one_timeout_per_tick(res, db, rest_res, fake_twilio) -> None:
    """The loop that places callbacks also escalates urgent cases: it must not wait on every request."""
    for n in range(3):
        scheduled(res, rest_res, phone=f"+8551234567{n}")
    fake_twilio.fail_next(5, status=503)
    place_due(rest_res, now=MONDAY_MORNING)
    posts = [r for r in fake_twilio.requests if r[0] == "POST"]
    assert len(posts) == 1  # the first refusal stops this tick
    place_due(rest_res, now=MONDAY_MORNING + timedelta(minutes=1))
    assert len([r for r in fake_twilio.requests if r[0] == "POST"]) == 2  # again one, after asking first
