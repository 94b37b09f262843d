"""The content line: staff record prompts by phone (PIN, the next prompt, record, listen, keep or redo).

Who may use it: an active account with the content or admin role, calling from the phone number on
its account, with a PIN of its own. The PIN is checked with the same care as a console password:
argon2, a dummy check of the same cost when the number is unknown (timing does not tell which
numbers are staff phones), an attempt counted by a conditional UPDATE committed before the check
(parallel calls cannot outrun the lock), LOCK_AFTER wrong PINs in a row lock it for LOCK_FOR, and
every attempt is in the audit log.

A kept take is fetched from Twilio by a job ("content.phone_take", slow queue, retried while Twilio
has not got the file ready), run through the audio pipeline and put into the draft
(hotline.services.takes). A refused take keeps its reason; the caller hears it at the next prompt.
"""

from __future__ import annotations

import functools
import logging
import secrets
import tempfile
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from hotline.audio_tools import AudioError
from hotline.background.outbox import add_job
from hotline.background.runner import handler
from hotline.db import UTCDateTime, utcnow
from hotline.models import ContentCall, OutboxJob, PhoneTake, Role, StaffPin, StaffUser
from hotline.phones import mask
from hotline.resources import Resources
from hotline.services import content
from hotline.services import staff as staff_service
from hotline.services.recordings import trusted_url
from hotline.services.takes import put_take
from hotline.telephony.transport import SendError, delete_recording, fetch_recording

log = logging.getLogger(__name__)
_hasher = PasswordHasher()
ROLES = tuple(r for r in Role if r.value in ("admin", "content"))
PIN_MIN, PIN_MAX = 6, 8
LOCK_AFTER = 5
LOCK_FOR = timedelta(minutes=15)
TRIES_PER_CALL = 3
TAKE_JOB = "content.phone_take"


class PinError(ValueError):
    pass


# -- PINs ---------------------------------------------------------------------------------------------

def check_new_pin(pin: str, phone: str | None = None) -> None:
    """6 to 8 digits, not one digit repeated, not a run (123456), not the end of the staff phone."""
    if not (pin.isascii() and pin.isdigit() and PIN_MIN <= len(pin) <= PIN_MAX):
        raise PinError(f"a PIN is {PIN_MIN} to {PIN_MAX} digits")
    steps = {(int(b) - int(a)) % 10 for a, b in zip(pin, pin[1:], strict=False)}
    if len(set(pin)) == 1 or steps in ({1}, {9}):
        raise PinError("that PIN is too easy to guess (one digit repeated, or a run like 123456)")
    if phone and phone.endswith(pin):
        raise PinError("that PIN is the end of your phone number; choose another")


def set_pin(session: Session, user: StaffUser, pin: str) -> None:
    check_new_pin(pin, user.phone)
    row = session.get(StaffPin, user.id)
    if row is None:
        session.add(StaffPin(staff_id=user.id, pin_hash=_hasher.hash(pin), failed=0, set_at=utcnow()))
    else:
        row.pin_hash, row.failed, row.locked_until, row.set_at = _hasher.hash(pin), 0, None, utcnow()


def has_pin(session: Session, staff_id: int) -> bool:
    return session.get(StaffPin, staff_id) is not None


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash(secrets.token_urlsafe(16))


def _verify(pin_hash: str, pin: str) -> bool:
    try:
        return bool(_hasher.verify(pin_hash, pin))
    except (VerificationError, InvalidHashError):
        return False


def _count_attempt(session: Session, staff_id: int, now: datetime) -> bool:
    """As staff.count_attempt for passwords: counted before the check; False while locked."""
    lock_over = sa.and_(StaffPin.locked_until.is_not(None), StaffPin.locked_until <= now)
    count = sa.case((lock_over, 1), else_=StaffPin.failed + 1)
    result = session.execute(
        sa.update(StaffPin)
        .where(StaffPin.staff_id == staff_id, sa.or_(StaffPin.locked_until.is_(None), StaffPin.locked_until <= now))
        .values(failed=count, locked_until=sa.case((count >= LOCK_AFTER, sa.literal(now + LOCK_FOR, UTCDateTime())),
                                                   else_=sa.null()))
        .execution_options(synchronize_session=False))
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def start_call(session: Session, call_sid: str) -> ContentCall:
    call = session.scalar(sa.select(ContentCall).where(ContentCall.call_sid == call_sid))
    if call is None:
        call = ContentCall(call_sid=call_sid, pin_tries=0, started_at=utcnow())
        session.add(call)
        session.flush()
    return call


def login(session: Session, call: ContentCall, from_: str, pin: str, now: datetime) -> StaffUser | None:
    """Check the PIN typed on `call` from `from_`; commits the attempt count before checking.

    Returns the staff member, or None (wrong PIN, unknown number, locked, inactive: all alike)."""
    pin = "".join(ch for ch in pin if ch.isdigit())[:PIN_MAX + 4]
    candidates = list(session.execute(
        sa.select(StaffUser, StaffPin).join(StaffPin, StaffPin.staff_id == StaffUser.id)
        .where(StaffUser.phone == from_, StaffUser.active.is_(True), StaffUser.role.in_(ROLES))
        .order_by(StaffUser.id)).all()) if from_ else []
    call.pin_tries += 1
    open_ = {user.id: _count_attempt(session, user.id, now) for user, _ in candidates}
    session.commit()  # counted before the (slow) check: parallel guesses meet the lock
    found = None
    for user, row in candidates:
        if _verify(row.pin_hash, pin) and open_[user.id] and found is None:
            found = user
    if not candidates:
        _verify(_dummy_hash(), pin)  # the same cost as a real check
    if found is None:
        reason = ("unknown_number" if not candidates else
                  "locked" if not any(open_.values()) else "wrong_pin")
        staff_service.audit(session, candidates[0][0].id if len(candidates) == 1 else None,
                            "content_line.pin_failed", "content_call", call.id, reason=reason, phone=mask(from_),
                            try_=call.pin_tries)
        return None
    session.execute(sa.update(StaffPin).where(StaffPin.staff_id == found.id).values(failed=0, locked_until=None))
    call.staff_id = found.id
    staff_service.audit(session, found.id, "content_line.login", "content_call", call.id, phone=mask(from_))
    return found


def get_call(session: Session, call_id: int) -> ContentCall | None:
    return session.get(ContentCall, call_id)


def authenticated(session: Session, call_id: int, call_sid: str) -> ContentCall | None:
    """The content call of this CallSid whose PIN was right (every step after the PIN asks this)."""
    call = session.get(ContentCall, call_id)
    if call is None or call.call_sid != call_sid or call.staff_id is None or call.ended_at is not None:
        return None
    user = session.get(StaffUser, call.staff_id)
    if user is None or not user.active or user.role not in ROLES:
        return None
    return call


# -- what to record next ----------------------------------------------------------------------------------

def languages(session: Session) -> tuple[str, ...]:
    return content.languages(session, content.draft(session))


def numbered(session: Session) -> list[str]:
    """Prompt ids in the matrix order: prompt number n is ids[n - 1] (what the phone line says)."""
    return content.prompt_ids(session, content.draft(session))


def next_prompt(session: Session, lang: str, after: str | None) -> content.Cell | None:
    return content.next_needing_recording(session, lang, after=after)


# -- takes ------------------------------------------------------------------------------------------------------

def record_take(session: Session, call: ContentCall, *, lang: str, prompt_id: str, recording_sid: str, url: str,
                duration: str) -> PhoneTake:
    """The <Record> action: a take exists (not yet kept). Twilio retrying the request finds the same row."""
    take = session.scalar(sa.select(PhoneTake).where(PhoneTake.recording_sid == recording_sid))
    if take is None:
        take = PhoneTake(content_call_id=call.id, staff_id=call.staff_id, lang=lang, prompt_id=prompt_id,
                         recording_sid=recording_sid, remote_url=url[:512],
                         duration_s=int(duration) if duration.isdigit() else None, status="recorded")
        session.add(take)
        session.flush()
    return take


def take_of(session: Session, call: ContentCall, take_id: int) -> PhoneTake | None:
    take = session.get(PhoneTake, take_id)
    return take if take is not None and take.content_call_id == call.id else None


def keep(session: Session, take: PhoneTake) -> None:
    """1 pressed: queue the fetch + pipeline (after commit). Pressing 1 twice queues it once."""
    if take.status != "recorded":
        return
    take.status = "kept"
    add_job(session, TAKE_JOB, {"take_id": take.id})


def discard(take: PhoneTake) -> None:
    if take.status == "recorded":
        take.status = "discarded"


def recording_status(session: Session, recording_sid: str, status: str) -> None:
    """recordingStatusCallback: only a failure matters (the job fetches once the file is there)."""
    take = session.scalar(sa.select(PhoneTake).where(PhoneTake.recording_sid == recording_sid))
    if take is not None and status in ("failed", "absent") and take.status in ("recorded", "kept"):
        take.status, take.reason = "failed", f"Twilio reported the recording {status}; record it again"


def unreported_refusals(session: Session, call: ContentCall, since_id: int) -> list[PhoneTake]:
    """Takes of this call refused by the pipeline after take `since_id`: said at the next prompt."""
    return list(session.scalars(sa.select(PhoneTake).where(
        PhoneTake.content_call_id == call.id, PhoneTake.id > since_id,
        PhoneTake.status.in_(("refused", "failed"))).order_by(PhoneTake.id)))


def recent_takes(session: Session, prompt_id: str, lang: str, limit: int = 5) -> list[PhoneTake]:
    """The latest phone takes of one cell, with what became of them (shown on its recording page)."""
    return list(session.scalars(sa.select(PhoneTake).where(PhoneTake.prompt_id == prompt_id, PhoneTake.lang == lang,
                                                           PhoneTake.status != "discarded")
                                .order_by(PhoneTake.id.desc()).limit(limit)))


def end_call(session: Session, call_sid: str) -> None:
    call = session.scalar(sa.select(ContentCall).where(ContentCall.call_sid == call_sid))
    if call is not None and call.ended_at is None:
        call.ended_at = utcnow()


@handler(TAKE_JOB, queue="slow", timeout=120)
def process_take(res: Resources, s: Session, job: OutboxJob) -> None:
    """Fetch a kept phone take from Twilio, run the pipeline, put it in the draft (or keep the reason)."""
    take = s.get(PhoneTake, job.payload["take_id"])
    if take is None or take.status != "kept":
        return
    settings = res.settings
    url = trusted_url(settings, take.remote_url or "")
    audio = fetch_recording(settings, url)
    with tempfile.TemporaryDirectory() as t:
        src = Path(t) / f"{take.recording_sid}{Path(url).suffix}"
        src.write_bytes(audio)
        try:
            with s.begin_nested():
                stored = put_take(s, settings, prompt_id=take.prompt_id, lang=take.lang, src=src, source="phone",
                                  staff_id=take.staff_id)
        except AudioError as exc:
            take.status, take.reason = "refused", str(exc)[:300]
            staff_service.audit(s, take.staff_id, "content.take_refused", "phone_take", take.id,
                                prompt=take.prompt_id, language=take.lang, reason=exc.code)
        except content.ContentError as exc:
            take.status, take.reason = "refused", f"the draft did not take it ({exc.key})"
        else:
            take.status, take.seconds = "stored", stored.made.seconds
    take.processed_at = utcnow()
    s.commit()
    log.info("phone take %s %s (%s/%s)", take.id, take.status, take.lang, take.prompt_id)
    if settings.recordings_delete_remote and settings.twilio_rest_enabled:
        try:
            delete_recording(settings, take.recording_sid)
        except SendError as exc:  # the take is stored; Twilio's copy is a leftover, not a failure
            log.warning("phone take %s: Twilio copy not deleted: %s", take.id, exc)
