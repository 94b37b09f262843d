"""Voice-call use cases: start a call, apply what the menu engine asks for, store the call's path,
voicemails and outcome. Functions take a session and plain values; the caller commits."""

from __future__ import annotations

import atexit
import logging
import os
import queue
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.background.outbox import add_job
from hotline.db import Database, insert_ignore, utcnow
from hotline.menus.engine import (
    AskedProvince,
    Effect,
    Event,
    OpenUrgentCase,
    RequestCallback,
    SetCallbackTime,
    SetCaseCategory,
    SetConsent,
    SetLanguage,
    SetProvince,
)
from hotline.menus.schema import Script
from hotline.models import (
    Call,
    CallbackRequest,
    Caller,
    CallEvent,
    Case,
    CaseCategory,
    CasePriority,
    Direction,
    Language,
    Recording,
)
from hotline.phones import country_of, is_withheld, mask, to_e164
from hotline.services import callers, intake
from hotline.settings import Settings

log = logging.getLogger(__name__)
RECORDING_JOB = "recording.fetch"
FINAL_STATUSES = ("completed", "busy", "failed", "no-answer", "canceled")
TRANSFER_ACCEPTED = "oncall"  # Call.answered_by of an inbound call whose urgent transfer someone accepted


@dataclass(frozen=True)
class CallStart:
    call_id: int
    language: str | None  # remembered for the number, if any
    resume: str | None  # "message_node:part" a dropped call stopped in
    ask_province: bool = False  # never asked their province (never true for a withheld caller ID)


def begin_call(session: Session, script: Script, *, call_sid: str, from_: str, to: str,
               now: datetime) -> CallStart:
    """Store the call (once per CallSid) and find what the caller's number tells us (nothing if withheld)."""
    caller = callers.known(session, from_)
    call_id = session.scalar(sa.select(Call.id).where(Call.call_sid == call_sid)) if call_sid else None
    if call_id is None:
        values: dict[str, Any] = {"call_sid": call_sid or None, "caller_id": caller.id if caller else None,
                                   "to_number": to[:20], "line": "main",
                                   "language": caller.language if caller else None, "state": {}, "started_at": now,
                                   "direction": Direction.INBOUND, "status": "in-progress", "provider": "twilio"}
        if call_sid:
            call_id = insert_ignore(session, Call.__table__, values, "call_sid")
            if call_id is None:  # Twilio retried the first webhook concurrently
                call_id = session.scalar(sa.select(Call.id).where(Call.call_sid == call_sid))
        else:
            call_id = session.execute(sa.insert(Call).values(**values).returning(Call.id)).scalar()
        assert call_id is not None
    if caller is None:
        return CallStart(call_id, None, None)
    lang = str(caller.language) if caller.language else None
    resume, prev_lang = _dropped_message(session, script, caller, call_id, now)
    ask = bool(script.province_node) and caller.province_asked_at is None and not is_withheld(from_)
    return CallStart(call_id, lang or (prev_lang if resume else None), resume, ask_province=ask)


def _dropped_message(session: Session, script: Script, caller: Caller, call_id: int,
                     now: datetime) -> tuple[str | None, str | None]:
    """The message part a recent call of this caller ended in, if it ended in one."""
    if not script.resume_node or caller.id is None:
        return None, None
    since = now - timedelta(hours=script.resume_within_hours)
    prev = session.execute(
        sa.select(Call.id, Call.language).where(Call.caller_id == caller.id, Call.id != call_id,
                                                Call.started_at >= since).order_by(Call.id.desc()).limit(1)
    ).first()
    if prev is None:
        return None, None
    last = session.execute(
        sa.select(CallEvent.kind, CallEvent.node, CallEvent.detail)
        .where(CallEvent.call_id == prev.id, CallEvent.kind != "hangup")
        .order_by(CallEvent.at.desc(), CallEvent.id.desc()).limit(1)
    ).first()
    if last is None or last.kind != "message_part" or last.node not in script.nodes:
        return None, None
    return f"{last.node}:{last.detail or 0}", str(prev.language) if prev.language else None


def accept_transfer(session: Session, *, call_id: int | None, parent_sid: str, leg_sid: str, phone: str,
                    now: datetime) -> bool:
    """An on-call person pressed 1 on the whisper. The first leg to do so takes the call (a conditional
    UPDATE: two lawyers pressing at once connect one) and the case; False for a later leg. The same
    leg's press redelivered by Twilio is still True (and changes nothing).

    Recorded on the call itself (`answered_by`, and the leg in `state`), where the Dial action reads
    it: DialCallStatus says "completed" for a voicemail that picked up too, so it cannot tell.
    """
    call_id = call_id or call_id_for(session, parent_sid)
    if not call_id:
        return False
    won = session.execute(sa.update(Call).where(Call.id == call_id, Call.answered_by.is_(None))
                          .values(answered_by=TRANSFER_ACCEPTED, state={"accepted_leg": leg_sid[:64]})
                          .execution_options(synchronize_session=False))
    if not won.rowcount:  # type: ignore[attr-defined]
        state = session.scalar(sa.select(Call.state).where(Call.id == call_id)) or {}
        return bool(leg_sid) and state.get("accepted_leg") == leg_sid[:64]
    from hotline.services.legal_aid import taken_on_the_phone

    call_sid = session.scalar(sa.select(Call.call_sid).where(Call.id == call_id))
    case = session.scalar(sa.select(Case).where(Case.source_sid == call_sid)) if call_sid else None
    if case is not None:
        taken_on_the_phone(session, case, phone, now)
    record_events(session, call_id, [Event("transfer_accepted", "urgent", mask(phone))], at=now)
    return True


def transfer_accepted(session: Session, call_id: int | None) -> bool:
    """Whether an on-call person accepted this call's urgent transfer (read by the Dial action only)."""
    if not call_id:
        return False
    return session.scalar(sa.select(Call.answered_by).where(Call.id == call_id)) == TRANSFER_ACCEPTED


def call_id_for(session: Session, call_sid: str) -> int | None:
    return session.scalar(sa.select(Call.id).where(Call.call_sid == call_sid)) if call_sid else None


def event_rows(call_id: int | None, events: Iterable[Event], at: datetime | None = None) -> list[dict[str, Any]]:
    at = at or utcnow()
    return [{"call_id": call_id, "at": at, "kind": e.kind[:32], "node": (e.node or None) and e.node[:64],
             "detail": e.detail[:255] if e.detail else None} for e in events] if call_id else []


def record_events(session: Session, call_id: int | None, events: Iterable[Event], at: datetime | None = None) -> None:
    rows = event_rows(call_id, events, at)
    if rows:
        session.execute(sa.insert(CallEvent), rows)


class EventWriter:
    """Writes the call path (node entered, key pressed...) in batches from a background thread.

    Why: an ordinary menu step then needs no database work at all, and under load one commit
    carries the events of dozens of steps instead of each step waiting for the write lock (SQLite
    has one writer; PostgreSQL pays a round trip and a WAL flush per commit). The trade-off: events
    of the last few milliseconds are lost if the process is killed outright (they are reporting
    data; cases, callback requests and recordings are always written in the request itself).
    Steps of one call may be written by different processes, so the path is ordered by `at`
    (the request's time), then id.
    """

    def __init__(self, db: Database, *, background: bool = True, batch: int = 500, idle_exit: float = 30.0):
        self.db, self.batch, self.idle_exit = db, batch, idle_exit  # an idle thread ends; put() starts one
        # Without a background thread (the app under test) each put() writes at once, so a test's
        # data is complete when its request returns and nothing writes during the next test's setup.
        self.background = background
        self.queue: queue.Queue[list[dict[str, Any]]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def put(self, rows: list[dict[str, Any]]) -> None:
        if not rows:
            return
        if not self.background:
            self._write(rows)
            return
        with self._lock:
            if self._pid != os.getpid():  # forked (gunicorn): the parent's queue and thread are not ours
                self.queue, self._thread, self._pid = queue.Queue(), None, os.getpid()
                atexit.register(self.flush)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="ivr-events", daemon=True)
                self._thread.start()
            self.queue.put(rows)

    def _loop(self) -> None:
        while True:
            try:
                batches = [self.queue.get(timeout=self.idle_exit)]
            except queue.Empty:
                with self._lock:  # put() holds this lock too: nothing can slip in while we leave
                    if self.queue.empty():
                        self._thread = None
                        return
                continue
            while len(batches) < self.batch:
                try:
                    batches.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                self._write([row for rows in batches for row in rows])
            finally:
                for _ in batches:
                    self.queue.task_done()

    def _write(self, rows: list[dict[str, Any]]) -> None:
        try:
            with self.db.engine.begin() as conn:
                conn.execute(sa.insert(CallEvent), rows)
            return
        except Exception:  # noqa: BLE001 - one bad row (a call id that is gone) must not lose the batch
            log.warning("batch of %d call events failed; writing them one by one", len(rows))
        for row in rows:
            try:
                with self.db.engine.begin() as conn:
                    conn.execute(sa.insert(CallEvent), [row])
            except Exception:  # noqa: BLE001
                log.exception("call event dropped: call_id=%s kind=%s", row.get("call_id"), row.get("kind"))

    def flush(self) -> None:
        """Wait until everything queued so far is written (tests, shutdown)."""
        if self._pid == os.getpid():
            self.queue.join()


def apply_effects(session: Session, effects: Sequence[Effect], *, call_id: int | None, call_sid: str,
                  from_: str, lang: str, country: str | None) -> None:
    """Do what the engine asked: in the caller's transaction, which commits before the TwiML goes out."""
    for effect in effects:
        if isinstance(effect, SetLanguage):
            if call_id:
                session.execute(sa.update(Call).where(Call.id == call_id).values(language=Language(effect.lang)))
            caller = callers.known(session, from_) if effect.remember else None
            if caller is not None:
                caller.language = Language(effect.lang)
        elif isinstance(effect, OpenUrgentCase):
            case, created = intake.open_case(session, caller=callers.known(session, from_), source="voice",
                                             source_sid=call_sid or None, priority=CasePriority.URGENT,
                                             country=country, language=lang)
            log.info("urgent case %s %s from CallSid=%s", case.ref, "opened" if created else "already open", call_sid)
        elif isinstance(effect, RequestCallback):
            # A withheld caller is never offered "this number" (Context.own_number): effect.phone is set.
            phone = effect.phone or to_e164(from_) or from_
            caller = callers.known(session, from_)
            case_id = None
            if effect.for_someone_else and call_sid:
                # Another person's number: a (normal) case records who asked, for whom, and the consent
                # answers that follow; one per call, so a redelivered step opens no second one.
                case, _ = intake.open_case(session, caller=caller, source="voice", source_sid=report_sid(call_sid),
                                           priority=CasePriority.NORMAL, country=country, language=lang,
                                           reported_by_other=True, subject_phone=phone)
                case_id = case.id
            intake.request_callback(session, caller=caller, phone=phone, source="ivr", source_sid=call_sid or None,
                                    language=lang, for_someone_else=effect.for_someone_else, case_id=case_id)
        elif isinstance(effect, SetConsent) and call_sid:
            column = {"contact": "consent_contact", "share": "consent_share"}[effect.question]
            session.execute(sa.update(Case).where(Case.source_sid == report_sid(call_sid))
                            .values({column: effect.answer}))
            if effect.question == "contact":
                session.execute(sa.update(CallbackRequest)
                                .where(CallbackRequest.source_sid == call_sid,
                                       CallbackRequest.status.in_(intake.OPEN_STATES))
                                .values(consent_contact=effect.answer))
        elif isinstance(effect, AskedProvince | SetProvince) and call_id:
            # On the caller's row (a withheld caller has none, and is never asked): asked once only.
            caller_id = sa.select(Call.caller_id).where(Call.id == call_id).scalar_subquery()
            values: dict[str, Any] = ({"province_asked_at": utcnow()} if isinstance(effect, AskedProvince)
                                      else {"province": effect.code})
            session.execute(sa.update(Caller).where(Caller.id == caller_id).values(values)
                            .execution_options(synchronize_session=False))
        elif isinstance(effect, SetCaseCategory) and call_sid:
            # The caller's answer after the urgent recording; a category staff already set stays.
            session.execute(sa.update(Case).where(Case.source_sid == call_sid, Case.category == CaseCategory.OTHER)
                            .values(category=CaseCategory(effect.category)))
        elif isinstance(effect, SetCallbackTime) and call_sid:
            # The request this call made or took over (e.g. an open missed-call request).
            for req in session.scalars(sa.select(CallbackRequest).where(
                    CallbackRequest.source_sid == call_sid, CallbackRequest.status.in_(intake.OPEN_STATES))):
                intake.choose_time(session, req, effect.when)


def report_sid(call_sid: str) -> str:
    """Case.source_sid of the report a call made for someone else (its urgent case has the CallSid)."""
    return f"{call_sid}:other"


def oncall_numbers(session: Session, settings: Settings, country: str | None) -> tuple[str, ...]:
    """Who to ring for an urgent call: the same list the SMS alerts use (hotline.services.legal_aid)."""
    from hotline.services.legal_aid import oncall_numbers as ordered

    # Phones only (a roster entry may be a lawyer's Telegram, for alerts); <Dial> rings at most 10 at once.
    return tuple(n for n in ordered(session, settings, country or "KH") if n.startswith("+"))[:10]


def missed_call(session: Session, *, call_sid: str, from_: str, to: str, tz: ZoneInfo, now: datetime) -> bool:
    """A ring on the missed-call line: store a callback request at most once per number per day."""
    caller = callers.known(session, from_)
    if call_sid and session.scalar(sa.select(Call.id).where(Call.call_sid == call_sid)) is None:
        session.add(Call(call_sid=call_sid, caller_id=caller.id if caller else None, to_number=to[:20],
                         line="missed", status="busy", outcome="missed_call", state={}))
    phone = to_e164(from_) if caller is not None else None
    if phone is None:
        return False  # withheld or not a number: nothing to call back
    local = now.astimezone(tz)
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    today = session.scalar(sa.select(CallbackRequest.id).where(CallbackRequest.phone == phone,
                                                               CallbackRequest.created_at >= midnight).limit(1))
    if today is not None:
        return False
    _req, created = intake.request_callback(session, caller=caller, phone=phone, source="missed_call",
                                            source_sid=call_sid or None, language=caller.language if caller else None)
    return created


def store_recording(session: Session, *, call_sid: str, recording_sid: str, url: str,
                    duration: str) -> Recording | None:
    """A finished voicemail: one row per RecordingSid and a job for legal aid to fetch it."""
    if not recording_sid or session.scalar(sa.select(Recording.id).where(Recording.recording_sid == recording_sid)):
        return None
    call_id = call_id_for(session, call_sid)
    case_id = session.scalar(sa.select(Case.id).where(Case.source_sid == call_sid)) if call_sid else None
    rec = Recording(recording_sid=recording_sid[:64], call_id=call_id, case_id=case_id, remote_url=url[:512] or None,
                    duration_s=int(duration) if duration.isdigit() else None, status="pending")
    try:
        with session.begin_nested():
            session.add(rec)
            session.flush()
    except IntegrityError:  # the same callback delivered twice at once
        return None
    add_job(session, RECORDING_JOB, {"recording_id": rec.id}, queue="urgent", case_id=case_id)
    record_events(session, call_id, [Event("recording_stored", None, recording_sid[:64])])
    return rec


def finish_call(session: Session, *, call_sid: str, status: str, duration: str, now: datetime) -> None:
    """Status callback: duration, outcome and the point where the caller hung up, once."""
    call = session.scalar(sa.select(Call).where(Call.call_sid == call_sid)) if call_sid else None
    if call is None:
        return
    call.status = (status or call.status)[:24]
    if duration.isdigit():
        call.duration_s = int(duration)
    if call.status not in FINAL_STATUSES or call.ended_at is not None:
        return
    call.ended_at = now
    rows = session.execute(sa.select(CallEvent.kind, CallEvent.node).where(CallEvent.call_id == call.id)
                           .order_by(CallEvent.at, CallEvent.id)).all()
    kinds = {r.kind for r in rows}
    last_node = next((r.node for r in reversed(rows) if r.node), None)
    call.last_node = last_node
    if call.outcome is None:
        call.outcome = _outcome(kinds, call.status)
    record_events(session, call.id, [Event("hangup", last_node, call.status)], at=now)


def _outcome(kinds: set[str], status: str) -> str:
    for kind, outcome in (("urgent", "urgent"), ("callback_requested", "callback"),
                          ("message_completed", "listened"), ("message_part", "listened_partly")):
        if kind in kinds:
            return outcome
    return "hung_up" if status == "completed" else status


_HOME_PREFIXES = (("+855", "KH"), ("+66", "TH"))


def country_for(from_: str) -> str | None:
    """Country of a caller ID; the two home countries without a full parse (it runs on every step).
    A withheld ID has none, even in its keypad form (+266696687 would parse as Lesotho)."""
    for prefix, country in _HOME_PREFIXES:
        if from_.startswith(prefix) and from_[1:].isdigit():
            return country
    return country_of(from_) if from_.startswith("+") and not is_withheld(from_) else None
