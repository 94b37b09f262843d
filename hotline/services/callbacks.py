"""Callbacks: when a call may be placed, who takes it, and the state machine of each attempt.

When. A request is tried at `next_attempt_at`: the time the caller chose (now, this evening, the
weekend) in the callee's own time zone, inside CALLING_HOURS, at least CALLBACK_RETRY_MINUTES after
the last attempt that rang them, at most CALLBACK_MAX_ATTEMPTS times. `next_reason` says why.

Who. The worker's periodic duty `place_due` places due requests by itself, ringing the first person
on the on-call roster for the callee's country (the next one after a staff phone that did not take
the call). "Call now" in the console (`bring_forward`) rings that staff member's own phone instead;
it may come before the chosen time, never outside calling hours nor within the spacing.

One attempt (CallbackAttempt.stage):
  placing   the row is written before Twilio is asked: a crash leaves a trace, not a ghost call. When
            Twilio's answer never came (a timeout after it accepted), the next try first asks Twilio
            for calls to that number since the attempt (`find_call`), so nobody is rung twice.
  staff     Twilio rings the staff phone; it hears a whisper: "press 1 to call the person now".
            Anything else (a voicemail, no key, another key) ends the attempt as `staff_missed`:
            the callee was never rung, so it costs them no attempt.
  callee    the staff member pressed 1; the person is rung from the hotline's number and first hears
            a neutral greeting and "if it is a good time to talk, press 1". A machine (asynchronous
            AMD) is hung up on with no message; anything but 1 is `unsafe` and a polite goodbye.
  bridging  the person pressed 1 while the staff leg was still there: Twilio bridges the two.
The attempt is `reached` only when Twilio reports the bridge (the Dial action's DialBridged, or the
staff leg ending after it bridged). Anything else leaves the request open for its next attempt; a
person who pressed 1 and could not be bridged hears a short apology in their language.

The web blueprint (hotline.web.outbound) is a thin TwiML adapter over the functions below. No SMS is
sent here, so a caller's opt-out (Caller.opted_out_at) is never at stake.
"""

from __future__ import annotations

import logging
import time as time_
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
import sqlalchemy as sa
from phonenumbers import timezone as phone_tz
from sqlalchemy.orm import Session

from hotline.background.outbox import add_job
from hotline.background.periodic import every
from hotline.background.runner import handler
from hotline.db import utcnow
from hotline.models import (
    Call,
    CallbackAttempt,
    CallbackRequest,
    CallbackStatus,
    Caller,
    Case,
    Direction,
    OutboxJob,
    StaffUser,
)
from hotline.phones import mask
from hotline.resources import Resources
from hotline.services import intake
from hotline.services.intake import CALLBACK_JOB
from hotline.settings import Settings
from hotline.telephony.transport import SendError, Sent, find_call

log = logging.getLogger(__name__)
SCHEDULE_JOB = CALLBACK_JOB  # written by hotline.services.intake.request_callback
PLACE_JOB = "callback.place"
HANGUP_JOB = "callback.hangup"
OUTCOMES = ("reached", "no_answer", "busy", "unsafe", "machine", "failed", "staff_missed", "bridge_failed")
# Outcomes of an attempt that rang the callee's phone: the spacing between attempts counts from these.
RANG_CALLEE = {"reached", "no_answer", "busy", "unsafe", "machine", "bridge_failed"}
ZONES = {"KH": "Asia/Phnom_Penh", "TH": "Asia/Bangkok"}
EVENING = time(18, 0)
FINAL_STATUSES = {"completed", "busy", "no-answer", "failed", "canceled"}
STALE_ATTEMPT = timedelta(minutes=15)  # no word from Twilio this long after placing: a lost callback
STALE_BRIDGED = timedelta(hours=4, minutes=10)  # a bridged call may last up to <Dial>'s 4-hour limit
RECONCILE_AFTER = timedelta(seconds=30)  # a placing attempt this old with no sid is asked about
STAFF_RETRY = timedelta(minutes=10)  # the staff phone did not take it: the next person, this much later
IVR_GRACE = timedelta(minutes=2)  # a caller still in the menu may yet choose a time; never ring them now
DIAL_TIMEOUT = 30
PER_TICK = 10  # due requests placed per run of the periodic duty
TICK_BUDGET_S = 5.0  # and no more once this much of the worker loop's time is spent


# -- calling hours (pure) -----------------------------------------------------------------------

def callee_zone(settings: Settings, phone: str | None, country: str | None = None) -> ZoneInfo:
    """The time zone of the person we call: by country, else by the number, else the hotline's."""
    if country in ZONES:
        return ZoneInfo(ZONES[country])
    try:
        zones = phone_tz.time_zones_for_number(phonenumbers.parse(phone or "", None))
    except phonenumbers.NumberParseException:
        zones = ()
    return ZoneInfo(zones[0]) if len(zones) == 1 and zones[0] != "Etc/Unknown" else settings.tz


def within_calling_hours(settings: Settings, zone: ZoneInfo, at: datetime) -> bool:
    start, end = settings.calling_window
    return start <= at.astimezone(zone).time() < end


def next_calling_time(settings: Settings, zone: ZoneInfo, at: datetime, preferred: str = "now") -> datetime:
    """The earliest moment at or after `at` that suits the preference and the calling hours (UTC)."""
    start, end = settings.calling_window
    # "evening" starts at 18:00 (or at the window's start if the window closes before then).
    floor = EVENING if preferred == "evening" and start <= EVENING < end else start
    local = at.astimezone(zone)
    for _ in range(9):  # a week and a bit always finds a slot
        if local.time() < floor:
            local = _at(local.date(), floor, zone)
        elif local.time() >= end:
            local = _at(local.date() + timedelta(days=1), floor, zone)
        elif preferred == "weekend" and local.weekday() < 5:
            local = _at(local.date() + timedelta(days=5 - local.weekday()), floor, zone)
        else:
            return local.astimezone(at.tzinfo)
    raise AssertionError("no calling time found")  # pragma: no cover - the window is never empty


def _at(day: date, clock: time, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, clock, tzinfo=zone)


# -- when the next attempt may be ---------------------------------------------------------------

def _zone(settings: Settings, cb: CallbackRequest) -> ZoneInfo:
    return callee_zone(settings, cb.phone, cb.country)


def last_rang(cb: CallbackRequest) -> datetime | None:
    """When an attempt last rang the callee's phone (the spacing counts from it)."""
    rang = [a.at for a in cb.attempt_log if a.stage in ("callee", "bridging") or a.outcome in RANG_CALLEE]
    return max(rang) if rang else None


def earliest(settings: Settings, cb: CallbackRequest, now: datetime, *, chosen: bool = True) -> tuple[datetime, str]:
    """The first moment the request may be tried, and why then. `chosen=False` ignores the caller's
    chosen time (a staff member brings it forward), never the calling hours nor the spacing."""
    zone = _zone(settings, cb)
    at, why = now, f"the time the caller chose ({cb.preferred_time or 'now'})"
    rang = last_rang(cb)
    if rang is not None and rang + timedelta(minutes=settings.callback_retry_minutes) > at:
        at = rang + timedelta(minutes=settings.callback_retry_minutes)
        why = f"{settings.callback_retry_minutes} min after the last attempt"
    when = next_calling_time(settings, zone, at, (cb.preferred_time or "now") if chosen else "now")
    if when > at and not within_calling_hours(settings, zone, at):
        why = f"calling hours in the callee's time zone ({zone.key})"
    elif when > at:
        why = f"the time the caller chose ({cb.preferred_time})"
    return when, why


def _set_next(cb: CallbackRequest, when: datetime | None, why: str) -> None:
    cb.next_attempt_at, cb.next_reason = when, why[:160]


def reschedule(settings: Settings, cb: CallbackRequest, now: datetime) -> None:
    """Put an open request at its first allowed moment (a new request, a new choice of time)."""
    if cb.source == "ivr" and cb.attempts == 0 and not cb.attempt_log:
        now = max(now, (cb.created_at or now) + IVR_GRACE)
    _set_next(cb, *earliest(settings, cb, now))


# -- who takes the call -------------------------------------------------------------------------

@dataclass(frozen=True)
class Taker:
    phone: str
    staff_id: int | None
    language: str


def roster_taker(session: Session, settings: Settings, cb: CallbackRequest) -> Taker | None:
    """The on-call person for the callee's country; after a staff phone that did not take the call,
    the next one on the list."""
    from hotline.services.legal_aid import oncall_numbers

    # Phones only: a roster entry may be a lawyer's Telegram, which takes alerts but cannot be rung.
    numbers = [n for n in oncall_numbers(session, settings, cb.country or "KH") if n.startswith("+")]
    if not numbers:
        return None
    missed = sum(1 for a in cb.attempt_log if a.outcome == "staff_missed")
    phone = numbers[missed % len(numbers)]
    staff = session.scalar(sa.select(StaffUser).where(StaffUser.phone == phone, StaffUser.active.is_(True)).limit(1))
    return Taker(phone, staff.id if staff else None, _staff_language(staff))


def _staff_language(staff: StaffUser | None) -> str:
    return staff.language if staff is not None and staff.language in ("km", "th", "en") else "en"


# -- placing an attempt -------------------------------------------------------------------------

@dataclass
class Decision:
    """What will happen, for the console and the log. `key` names a console message."""

    placed: bool
    key: str
    when: datetime | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def check(session: Session, settings: Settings, cb: CallbackRequest, now: datetime, *,
          staff: StaffUser | None = None, forced: bool = False) -> Decision:
    """May an attempt be placed now? Nothing is written."""
    if cb.status == CallbackStatus.IN_PROGRESS:
        return Decision(False, "call_under_way")
    if cb.status != CallbackStatus.OPEN:
        return Decision(False, "callback_closed")
    if cb.attempts >= settings.callback_max_attempts:
        return Decision(False, "max_attempts", detail={"n": settings.callback_max_attempts})
    when, why = earliest(settings, cb, now, chosen=not forced)
    if when > now + timedelta(seconds=1):
        key = "outside_calling_hours" if not within_calling_hours(settings, _zone(settings, cb), now) else (
            "too_soon" if forced or "after the last attempt" in why else "not_due")
        return Decision(False, key, when, {"why": why})
    if not forced and cb.next_attempt_at is not None and cb.next_attempt_at > now:
        return Decision(False, "not_due", cb.next_attempt_at, {"why": cb.next_reason or ""})
    if staff is not None and not staff.phone:
        if roster_taker(session, settings, cb) is None:
            return Decision(False, "no_staff_phone_nobody_on_call", detail={"country": cb.country or "KH"})
        return Decision(False, "no_staff_phone")
    if staff is None and roster_taker(session, settings, cb) is None:
        return Decision(False, "nobody_on_call", detail={"country": cb.country or "KH"})
    return Decision(True, "call_queued", now)


def place_attempt(res: Resources, s: Session, callback_id: int, *, staff_id: int | None = None,
                  reason: str = "scheduled", forced: bool = False, now: datetime | None = None) -> Decision:
    """Place one attempt (staff phone first), after reconciling a previous one Twilio may hold.

    Raises SendError when Twilio could not be asked (transient: the job is retried, and the retry
    reconciles first) or refused the staff number (permanent)."""
    settings, clock = res.settings, now
    now = clock or utcnow()
    cb = s.get(CallbackRequest, callback_id)
    if cb is None:
        return Decision(False, "callback_closed")
    if cb.status == CallbackStatus.IN_PROGRESS:
        held = _reconcile(res, s, cb, now)
        if held is not None:
            return held
        now = clock or utcnow()
    staff = s.get(StaffUser, staff_id) if staff_id else None
    decision = check(s, settings, cb, now, staff=staff, forced=forced)
    if not decision.placed:
        if decision.key == "max_attempts":
            cb.status, cb.closed_at = CallbackStatus.FAILED, now
            _set_next(cb, None, "no attempts left")
        elif not forced and decision.key in ("outside_calling_hours", "too_soon", "not_due") and decision.when:
            if cb.next_attempt_at != decision.when:
                _set_next(cb, decision.when, decision.detail.get("why", ""))
                cb.outcome = "outside_calling_hours" if decision.key == "outside_calling_hours" else cb.outcome
        elif decision.key == "nobody_on_call":
            why = f"nobody on call for {cb.country or 'KH'}: waiting for someone on the roster"
            if cb.next_reason != why:
                cb.next_reason = why
        s.commit()
        return decision
    taker = (Taker(staff.phone or "", staff.id, _staff_language(staff)) if staff is not None
             else roster_taker(s, settings, cb))
    assert taker is not None  # check() made sure
    # Claim: a double press of "Call now", a duplicated job or two sweepers place one call.
    claimed = s.execute(sa.update(CallbackRequest)
                        .where(CallbackRequest.id == cb.id, CallbackRequest.status == CallbackStatus.OPEN)
                        .values(status=CallbackStatus.IN_PROGRESS, assigned_to_id=taker.staff_id)
                        .execution_options(synchronize_session=False))
    if not claimed.rowcount:  # type: ignore[attr-defined]
        s.rollback()
        return Decision(False, "call_under_way")
    attempt = CallbackAttempt(request_id=cb.id, staff_id=taker.staff_id, stage="placing", dialled=taker.phone,
                              reason=reason[:200], at=now)
    s.add(attempt)
    s.commit()  # the attempt exists before Twilio is asked
    _dial_staff(res, s, cb, attempt)
    return Decision(True, "call_placed", now)


def _dial_staff(res: Resources, s: Session, cb: CallbackRequest, attempt: CallbackAttempt) -> None:
    settings = res.settings
    base = f"{settings.public_base_url}/twilio/outbound"
    to = attempt.dialled or ""
    try:
        sent = res.transport().place_call(to, url=f"{base}/staff?attempt={attempt.id}",
                                          status_callback=f"{base}/status?attempt={attempt.id}&leg=staff",
                                          machine_detection=True, timeout=DIAL_TIMEOUT,
                                          amd_callback=f"{base}/amd?attempt={attempt.id}&leg=staff")
    except SendError as exc:
        if exc.transient:
            # Twilio may have placed it anyway: the attempt stays "placing" and the next try asks first.
            log.warning("callback %s attempt %s: no answer from Twilio (%s); will reconcile", cb.id, attempt.id, exc)
        else:
            finish_attempt(s, settings, attempt.id, "failed", counts=False, why="the staff phone number was refused")
            s.commit()
        raise
    _adopt(s, cb, attempt, sent)
    log.info("callback %s attempt %s: ringing staff %s first %s", cb.id, attempt.id, mask(to), sent.sid)


def _adopt(s: Session, cb: CallbackRequest, attempt: CallbackAttempt, sent: Sent) -> None:
    attempt.call_sid, attempt.stage = sent.sid, "staff"
    if s.scalar(sa.select(Call.id).where(Call.call_sid == sent.sid)) is None:
        s.add(Call(call_sid=sent.sid, caller_id=cb.caller_id, direction=Direction.OUTBOUND, line="outbound",
                   to_number=attempt.dialled, purpose="callback", status=sent.status[:24] or "queued",
                   provider=sent.provider, language=cb.language))
    s.commit()


def _reconcile(res: Resources, s: Session, cb: CallbackRequest, now: datetime) -> Decision | None:
    """A request in progress: None when it may be tried again (its last attempt is closed now)."""
    attempt = next((a for a in reversed(cb.attempt_log) if a.outcome is None), None)
    if attempt is None:
        cb.status = CallbackStatus.OPEN  # in progress with nothing under way: a crash before the attempt row
        s.commit()
        return None
    if attempt.stage != "placing" or attempt.call_sid:
        return Decision(False, "call_under_way")
    found = find_call(res.transport(), to=attempt.dialled or "", created_after=attempt.at)
    if found is not None:
        log.info("callback %s attempt %s: Twilio had placed it (%s); not placing again", cb.id, attempt.id, found.sid)
        _adopt(s, cb, attempt, found)
        return Decision(False, "call_under_way")
    finish_attempt(s, res.settings, attempt.id, "failed", counts=False, wait=timedelta(0),
                   why="Twilio never placed the last attempt", now=now)
    s.commit()
    s.refresh(cb)
    return None


# -- what Twilio tells us (called by hotline.web.outbound) --------------------------------------

def attempt_by_id(s: Session, raw: str) -> CallbackAttempt | None:
    return s.get(CallbackAttempt, int(raw)) if raw.isdigit() and len(raw) < 12 else None


def callee_language(s: Session, attempt: CallbackAttempt) -> str:
    cb = attempt.request
    lang = cb.language
    if lang is None and cb.case_id:
        case = s.get(Case, cb.case_id)
        lang = case.language if case else None
    if lang is None and cb.caller_id:
        caller = s.get(Caller, cb.caller_id)
        lang = caller.language if caller else None
    return str(lang.value if hasattr(lang, "value") else lang) if lang else "km"


def staff_language(s: Session, attempt: CallbackAttempt) -> str:
    return _staff_language(s.get(StaffUser, attempt.staff_id) if attempt.staff_id else None)


def _advance(s: Session, attempt: CallbackAttempt, frm: tuple[str, ...], to: str) -> bool:
    """Move an open attempt to stage `to` if it is at one of `frm` (or has no stage: console rows)."""
    done = s.execute(sa.update(CallbackAttempt)
                     .where(CallbackAttempt.id == attempt.id, CallbackAttempt.outcome.is_(None),
                            sa.or_(CallbackAttempt.stage.is_(None), CallbackAttempt.stage.in_(frm)))
                     .values(stage=to).execution_options(synchronize_session=False))
    s.refresh(attempt)
    return bool(done.rowcount)  # type: ignore[attr-defined]


def staff_accepted(s: Session, attempt: CallbackAttempt) -> bool:
    """The staff member pressed 1: the person may be rung. False when the attempt is over already."""
    if attempt.stage == "callee" and attempt.outcome is None:
        return True  # the same key press delivered twice: the same answer
    return _advance(s, attempt, ("placing", "staff"), "callee")


def staff_missed(s: Session, settings: Settings, attempt: CallbackAttempt, why: str) -> None:
    """The staff phone did not take the call (no key, another key, a voicemail): the callee was never
    rung, so this costs them nothing; the next person on the roster is tried a little later."""
    if attempt.stage in (None, "placing", "staff"):
        finish_attempt(s, settings, attempt.id, "staff_missed", counts=False, why=why)


def callee_safe(s: Session, settings: Settings, attempt: CallbackAttempt) -> bool:
    """The person pressed 1. True: bridge now. False: the staff leg is gone; they hear an apology."""
    if attempt.stage == "bridging" and attempt.outcome is None:
        return True  # the same answer delivered twice
    staff_call = s.scalar(sa.select(Call).where(Call.call_sid == attempt.call_sid)) if attempt.call_sid else None
    if staff_call is not None and staff_call.status in FINAL_STATUSES:
        finish_attempt(s, settings, attempt.id, "bridge_failed", counts=False,
                       why="the staff member had hung up before the person could be connected")
        return False
    if not _advance(s, attempt, ("callee",), "bridging"):
        if attempt.outcome is None:
            finish_attempt(s, settings, attempt.id, "bridge_failed", counts=False, why="the call was not ready")
        return False
    return True


def callee_declined(s: Session, settings: Settings, attempt: CallbackAttempt) -> None:
    """Anything but 1 (or silence) at the question: not a good time; nothing else is said."""
    finish_attempt(s, settings, attempt.id, "unsafe")


def machine(s: Session, settings: Settings, attempt: CallbackAttempt, *, leg: str, call_sid: str) -> bool:
    """Asynchronous AMD says a machine answered: end that leg with no message, at once. A verdict that
    comes after a human acted (the staff member pressed 1, the person pressed 1) is ignored: AMD also
    mistakes people for machines, and hanging up on them then would be worse than a late verdict."""
    if leg == "staff":
        ended = attempt.stage in (None, "placing", "staff") and finish_attempt(
            s, settings, attempt.id, "staff_missed", counts=False, why="a voicemail answered the staff phone")
    else:
        ended = attempt.stage in (None, "callee") and finish_attempt(s, settings, attempt.id, "machine")
    if ended and call_sid:
        add_job(s, HANGUP_JOB, {"call_sid": call_sid})
    return bool(ended)


DIAL_OUTCOME = {"busy": "busy", "no-answer": "no_answer", "canceled": "no_answer", "failed": "failed",
                "completed": "unsafe"}  # answered, then hung up before pressing 1


def dial_ended(s: Session, settings: Settings, attempt: CallbackAttempt, status: str, bridged: str) -> str | None:
    """The staff leg's <Dial> to the person ended. Returns the attempt's outcome."""
    if attempt.outcome is None:
        if bridged == "true" or (bridged == "" and status == "completed" and attempt.stage == "bridging"):
            finish_attempt(s, settings, attempt.id, "reached")
        elif status in DIAL_OUTCOME:
            outcome = DIAL_OUTCOME[status]
            if attempt.stage == "bridging":  # pressed 1, yet Twilio did not bridge
                outcome = "bridge_failed"
            finish_attempt(s, settings, attempt.id, outcome, counts=outcome != "bridge_failed")
    s.refresh(attempt)
    return attempt.outcome


def call_status(s: Session, settings: Settings, attempt: CallbackAttempt | None, form: dict[str, str]) -> None:
    """A status callback of the staff leg we placed: keep its Call row, close what it ends."""
    sid = form.get("CallSid", "")
    call = s.scalar(sa.select(Call).where(Call.call_sid == sid)) if sid else None
    if call is not None:
        call.status = (form.get("CallStatus") or call.status)[:24]
        call.answered_by = (form.get("AnsweredBy") or call.answered_by or "")[:32] or None
        duration = form.get("CallDuration", "")
        if duration.isdigit():
            call.duration_s = int(duration)
    status = form.get("CallStatus", "")
    if attempt is not None and attempt.outcome is None and status in FINAL_STATUSES:
        if attempt.stage == "bridging":
            finish_attempt(s, settings, attempt.id, "reached")  # both were connected; the call is over
        elif attempt.stage in ("callee",):
            finish_attempt(s, settings, attempt.id, "failed", counts=False,
                           why="the staff member hung up while the person was being rung")
        else:
            staff_missed(s, settings, attempt, "the staff phone did not take the call")
        s.refresh(attempt)
    if call is not None and call.status in FINAL_STATUSES:
        call.ended_at = call.ended_at or utcnow()
        call.outcome = call.outcome or (attempt.outcome if attempt else None)


# -- outcomes -----------------------------------------------------------------------------------

def finish_attempt(s: Session, settings: Settings, attempt_id: int, outcome: str, *, counts: bool = True,
                   final: bool = False, wait: timedelta | None = None, why: str = "",
                   now: datetime | None = None) -> bool:
    """Record an attempt's outcome once (Twilio may tell us twice) and move the request on.

    `counts`: the attempt reached the callee's phone and uses up one of CALLBACK_MAX_ATTEMPTS; a
    staff phone that never took the call does not. The next attempt keeps to the caller's chosen
    time, the calling hours and the spacing (`earliest`); `wait` overrides the pause after an attempt
    that never rang the callee. Returns False when the outcome was already recorded. Does not commit.
    """
    if outcome not in OUTCOMES:
        raise ValueError(f"unknown outcome {outcome!r}")
    result = s.execute(sa.update(CallbackAttempt)
                       .where(CallbackAttempt.id == attempt_id, CallbackAttempt.outcome.is_(None))
                       .values(outcome=outcome).execution_options(synchronize_session=False))
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    attempt = s.get(CallbackAttempt, attempt_id)
    assert attempt is not None
    s.refresh(attempt)
    cb = attempt.request
    s.refresh(cb)
    now = now or utcnow()
    cb.outcome = outcome
    if counts:
        cb.attempts += 1
    if outcome == "reached":
        cb.status, cb.closed_at = CallbackStatus.DONE, now
        _set_next(cb, None, "reached")
    elif final or cb.attempts >= settings.callback_max_attempts:
        cb.status, cb.closed_at = CallbackStatus.FAILED, now
        _set_next(cb, None, "no attempts left" if not final else "closed")
    else:
        cb.status = CallbackStatus.OPEN
        rang = counts or attempt.stage in ("callee", "bridging") or outcome in RANG_CALLEE
        pause = timedelta(0) if rang else (STAFF_RETRY if wait is None else wait)
        when, reason = earliest(settings, cb, now + pause)
        _set_next(cb, when, f"{why}; {reason}" if why else reason)
    return True


# -- jobs and periodic duties -------------------------------------------------------------------

@handler(SCHEDULE_JOB)
def schedule(res: Resources, s: Session, job: OutboxJob) -> None:
    """Put a new request on the list for the first moment that suits the caller and the hours."""
    cb = s.get(CallbackRequest, job.payload["callback_id"])
    if cb is None or cb.status != CallbackStatus.OPEN or cb.next_attempt_at is not None:
        return
    reschedule(res.settings, cb, utcnow())
    s.commit()


@handler(PLACE_JOB, queue="slow", timeout=60, attempts=3)
def place(res: Resources, s: Session, job: OutboxJob) -> None:
    """"Call now" from the console (or a case page): ring that staff member's phone first."""
    decision = place_attempt(res, s, job.payload["callback_id"], staff_id=job.payload.get("staff_id"),
                             reason=str(job.payload.get("reason") or "call now"), forced=True)
    log.info("callback %s call now: %s", job.payload["callback_id"], decision.key)


@handler(HANGUP_JOB, queue="urgent", timeout=30, attempts=3)
def hang_up(res: Resources, s: Session, job: OutboxJob) -> None:
    """End a leg a machine answered (asynchronous AMD), so no message is ever left."""
    res.transport().hang_up(str(job.payload["call_sid"]))


@every
def place_due(res: Resources, now: datetime | None = None) -> None:
    """Periodic: place open requests whose next attempt is due, and reconcile attempts whose placing
    never got Twilio's answer. One by one (Twilio admits one call a second), at most PER_TICK a tick,
    and none more once Twilio fails to answer: the worker's loop also escalates urgent cases, so a
    Twilio outage must cost it one timeout a tick, not one per due request."""
    clock = now
    now = now or utcnow()
    started = time_.monotonic()
    with res.db.Session() as s:
        unsure = list(s.scalars(sa.select(CallbackAttempt.request_id).where(
            CallbackAttempt.outcome.is_(None), CallbackAttempt.stage == "placing",
            CallbackAttempt.call_sid.is_(None), CallbackAttempt.at < now - RECONCILE_AFTER).limit(PER_TICK)))
        due = list(s.scalars(sa.select(CallbackRequest.id).where(
            CallbackRequest.status == CallbackStatus.OPEN, CallbackRequest.next_attempt_at.is_not(None),
            CallbackRequest.next_attempt_at <= now).order_by(CallbackRequest.next_attempt_at).limit(PER_TICK)))
    for cb_id in list(dict.fromkeys([*unsure, *due]))[:PER_TICK]:
        with res.db.Session() as s:
            try:
                place_attempt(res, s, cb_id, reason="scheduled", now=clock)
            except SendError as exc:
                log.warning("callback %s: not placed (%s)", cb_id, exc)
                if exc.transient:
                    return  # Twilio is not answering: the rest wait for the next tick
        if time_.monotonic() - started > TICK_BUDGET_S:
            return


def bring_forward(s: Session, settings: Settings, cb: CallbackRequest, staff: StaffUser, reason: str,
                  now: datetime | None = None) -> Decision:
    """"Call now": queue a call to `staff`'s phone if the rules allow it now; say honestly otherwise.
    Writes the job (the caller commits, and audits)."""
    now = now or utcnow()
    decision = check(s, settings, cb, now, staff=staff, forced=True)
    if decision.placed:
        add_job(s, PLACE_JOB, {"callback_id": cb.id, "staff_id": staff.id, "reason": f"call now: {reason}"[:200]},
                case_id=cb.case_id)
    return decision


def request_for_case(s: Session, settings: Settings, case: Case, staff: StaffUser, reason: str) -> tuple[
        CallbackRequest | None, Decision]:
    """A staff member calls an urgent case back from its page: the same staff-first, safety-question
    flow from the hotline's number. Uses the number's open request, or opens one for the case."""
    caller = s.get(Caller, case.caller_id) if case.caller_id else None
    phone = caller.phone if caller is not None and (caller.phone or "").startswith("+") else None
    if phone is None:
        return None, Decision(False, "no_number")
    cb, _created = intake.request_callback(s, caller=caller, phone=phone, source="staff",
                                           language=case.language, case_id=case.id)
    if cb.case_id is None:
        cb.case_id = case.id
    s.flush()
    s.refresh(cb)
    return cb, bring_forward(s, settings, cb, staff, reason)


def due_callbacks(s: Session, now: datetime | None = None, limit: int = 100) -> list[CallbackRequest]:
    """Open requests whose next attempt is due, oldest first."""
    now = now or utcnow()
    return list(s.scalars(sa.select(CallbackRequest)
                          .where(CallbackRequest.status == CallbackStatus.OPEN,
                                 sa.or_(CallbackRequest.next_attempt_at.is_(None),
                                        CallbackRequest.next_attempt_at <= now))
                          .order_by(sa.func.coalesce(CallbackRequest.next_attempt_at, CallbackRequest.created_at))
                          .limit(limit)))


@every
def expire_stale_attempts(res: Resources) -> None:
    """Periodic: an attempt Twilio never reported on (lost callback, crash) must not hold its request
    "in progress" forever; it is closed as failed (not counted) and the request goes back on the list.
    A bridged attempt is given <Dial>'s whole time limit."""
    now = utcnow()
    with res.db.Session() as s:
        stale = s.scalars(sa.select(CallbackAttempt.id).where(
            CallbackAttempt.outcome.is_(None),
            sa.or_(sa.and_(CallbackAttempt.stage.is_distinct_from("bridging"),
                           CallbackAttempt.at < now - STALE_ATTEMPT),
                   CallbackAttempt.at < now - STALE_BRIDGED))).all()
        for attempt_id in stale:
            if finish_attempt(s, res.settings, attempt_id, "failed", counts=False, wait=timedelta(0),
                              why="Twilio never reported on the last attempt"):
                log.warning("callback attempt %s had no outcome after %s; marked failed", attempt_id, STALE_ATTEMPT)
            s.commit()
