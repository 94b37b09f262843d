"""Callbacks: when we may call (calling hours in the callee's time zone), placing the call, attempts.

Staff work callbacks from the console's list ("Call now" enqueues job "callback.place"). The hotline
places the call through Twilio: the staff member's phone rings first, then the caller is bridged
after a safety check (hotline.web.outbound). Without a staff phone the caller is called directly,
with the same safety check, and bridged to the on-call lawyers.

Attempts: each call placed is a CallbackAttempt row; its outcome arrives later from Twilio
(TwiML steps and status callbacks) through `finish_attempt`, which counts it exactly once.
No SMS is started here, so a caller's opt-out (Caller.opted_out_at) is never at stake.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import phonenumbers
import sqlalchemy as sa
from phonenumbers import timezone as phone_tz
from sqlalchemy.orm import Session

from hotline.background.periodic import every
from hotline.background.runner import handler
from hotline.db import utcnow
from hotline.models import (
    Call,
    CallbackAttempt,
    CallbackRequest,
    CallbackStatus,
    Direction,
    OutboxJob,
    StaffUser,
)
from hotline.phones import mask
from hotline.resources import Resources
from hotline.services.intake import CALLBACK_JOB
from hotline.settings import Settings
from hotline.telephony.transport import SendError

log = logging.getLogger(__name__)
SCHEDULE_JOB = CALLBACK_JOB  # written by hotline.services.intake.request_callback
PLACE_JOB = "callback.place"
OUTCOMES = ("reached", "no_answer", "busy", "unsafe", "machine", "failed")
ZONES = {"KH": "Asia/Phnom_Penh", "TH": "Asia/Bangkok"}
EVENING = time(18, 0)
STALE_ATTEMPT = timedelta(minutes=15)  # no word from Twilio this long after placing: a lost callback


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


# -- jobs ---------------------------------------------------------------------------------------

@handler(SCHEDULE_JOB)
def schedule(res: Resources, s: Session, job: OutboxJob) -> None:
    """Put a new request on the list for the first moment that suits the caller and the hours."""
    cb = s.get(CallbackRequest, job.payload["callback_id"])
    if cb is None or cb.status != CallbackStatus.OPEN or cb.next_attempt_at is not None:
        return
    zone = callee_zone(res.settings, cb.phone, cb.country)
    cb.next_attempt_at = next_calling_time(res.settings, zone, utcnow(), cb.preferred_time or "now")
    s.commit()


@handler(PLACE_JOB, queue="slow", timeout=60, attempts=3)
def place(res: Resources, s: Session, job: OutboxJob) -> None:
    """Place one attempt: ring the staff member first (or the caller, without a staff phone)."""
    settings = res.settings
    cb = s.get(CallbackRequest, job.payload["callback_id"])
    if cb is None or cb.status != CallbackStatus.OPEN:
        return  # done, given up, or a call is already under way
    staff_id = job.payload.get("staff_id")
    staff = s.get(StaffUser, staff_id) if staff_id else None
    now = utcnow()
    zone = callee_zone(settings, cb.phone, cb.country)
    if not within_calling_hours(settings, zone, now):
        cb.next_attempt_at, cb.outcome = next_calling_time(settings, zone, now), "outside_calling_hours"
        s.commit()
        return
    # Claim: a double press of "Call now", or a duplicated job, places one call.
    claimed = s.execute(sa.update(CallbackRequest)
                        .where(CallbackRequest.id == cb.id, CallbackRequest.status == CallbackStatus.OPEN)
                        .values(status=CallbackStatus.IN_PROGRESS, assigned_to_id=staff.id if staff else None)
                        .execution_options(synchronize_session=False))
    if not claimed.rowcount:  # type: ignore[attr-defined]
        s.rollback()
        return
    attempt = CallbackAttempt(request_id=cb.id, staff_id=staff.id if staff else None)
    s.add(attempt)
    s.commit()  # the attempt exists before Twilio is asked: a crash leaves a trace, not a ghost call
    leg = "staff" if staff is not None and staff.phone else "direct"
    to = staff.phone if leg == "staff" and staff is not None and staff.phone else cb.phone
    base = f"{settings.public_base_url}/twilio/outbound"
    url = f"{base}/staff?attempt={attempt.id}" if leg == "staff" else f"{base}/callee?attempt={attempt.id}&leg=direct"
    try:
        sent = res.transport().place_call(to, url=url, status_callback=f"{base}/status?attempt={attempt.id}&leg={leg}",
                                          machine_detection=True, timeout=30)
    except SendError as exc:
        # A refused callee number (direct call) ends the request; any other failure leaves it open.
        finish_attempt(s, settings, attempt.id, "failed", counts=leg == "direct" and not exc.transient,
                       final=leg == "direct" and not exc.transient)
        s.commit()
        raise
    attempt.call_sid = sent.sid
    s.add(Call(call_sid=sent.sid, caller_id=cb.caller_id, direction=Direction.OUTBOUND, line="outbound",
               to_number=to, purpose="callback", status="queued", provider=sent.provider,
               language=cb.language))
    s.commit()
    log.info("callback %s attempt %s: calling %s (%s leg) %s", cb.id, attempt.id, mask(to), leg, sent.sid)


# -- outcomes -----------------------------------------------------------------------------------

def finish_attempt(s: Session, settings: Settings, attempt_id: int, outcome: str, *, counts: bool = True,
                   final: bool = False) -> bool:
    """Record an attempt's outcome once (Twilio may tell us twice) and move the request on.

    `counts`: the attempt reached the callee's phone (busy, no answer, a machine, unsafe, reached)
    and uses up one of CALLBACK_MAX_ATTEMPTS; a staff phone that never answered does not.
    Returns False when the outcome was already recorded. Does not commit.
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
    now = utcnow()
    cb.outcome = outcome
    if counts:
        cb.attempts += 1
    if outcome == "reached":
        cb.status, cb.closed_at, cb.next_attempt_at = CallbackStatus.DONE, now, None
    elif final or cb.attempts >= settings.callback_max_attempts:
        cb.status, cb.closed_at, cb.next_attempt_at = CallbackStatus.FAILED, now, None
    else:
        zone = callee_zone(settings, cb.phone, cb.country)
        wait = timedelta(minutes=settings.callback_retry_minutes) if counts else timedelta(0)
        # The next try keeps to what the caller chose ("weekend" stays on a weekend).
        cb.status = CallbackStatus.OPEN
        cb.next_attempt_at = next_calling_time(settings, zone, now + wait, cb.preferred_time or "now")
    return True


def due_callbacks(s: Session, now: datetime | None = None, limit: int = 100) -> list[CallbackRequest]:
    """The list staff work from: open requests whose next attempt is due, oldest first."""
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
    "in progress" forever; it is closed as failed (not counted) and the request goes back on the list."""
    cutoff = utcnow() - STALE_ATTEMPT
    with res.db.Session() as s:
        stale = s.scalars(sa.select(CallbackAttempt.id).where(CallbackAttempt.outcome.is_(None),
                                                              CallbackAttempt.at < cutoff)).all()
        for attempt_id in stale:
            if finish_attempt(s, res.settings, attempt_id, "failed", counts=False):
                log.warning("callback attempt %s had no outcome after %s; marked failed", attempt_id, STALE_ATTEMPT)
            s.commit()
