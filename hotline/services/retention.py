"""Retention: recordings, message bodies, phone numbers and closed cases' notes older than a set age
are purged; every counted row stays.

What a message said, what a caller recorded and who they are are the most sensitive things we hold,
and the people we serve may be watched. After the retention period (RETENTION_DAYS, 365 by default,
or `hotline purge --older-than 90d`): the body is emptied and the audio file deleted, here and at
Twilio; phone numbers are emptied (callers, messages, calls, closed callback requests, a case's
subject); the notes of cases closed that long ago are deleted. The rows stay, so counts, dates,
countries, languages, statuses and cases are still reported. The reports' daily roll-ups hold counts
and dates only; their caller-days lose the link to a caller whose number is purged.

A case that is still open keeps its evidence, and a caller with an open case or callback keeps their
number: they are purged once it is closed. A caller who opted out of SMS keeps their number, so the
opt-out is still honoured if they text again (the only personal thing kept past retention).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hotline.background.periodic import every
from hotline.db import utcnow
from hotline.models import (
    Call,
    CallbackRequest,
    CallbackStatus,
    Caller,
    Case,
    CaseNote,
    CaseStatus,
    Message,
    Recording,
)
from hotline.resources import Resources
from hotline.services import rollups
from hotline.settings import Settings
from hotline.telephony.transport import SendError

log = logging.getLogger(__name__)
PURGE_EVERY = 3600.0  # seconds between two periodic purges in one worker process
_last_run: float | None = None


@dataclass(frozen=True)
class PurgeReport:
    cutoff: datetime
    dry_run: bool
    message_bodies: int  # bodies emptied (or that would be)
    recordings: int  # recordings whose audio was deleted (or would be)
    remote_failed: int  # Twilio copies we could not delete this time (tried again next run)
    messages_total: int  # rows kept: the counts survive the purge
    recordings_total: int
    phone_numbers: int = 0  # numbers emptied: callers, messages, calls, callback requests, case subjects
    case_notes: int = 0  # notes of cases closed before the cutoff, deleted

    def lines(self) -> list[str]:
        verb = "would purge" if self.dry_run else "purged"
        return [f"cutoff: {self.cutoff.isoformat(timespec='seconds')}",
                f"message bodies {verb}: {self.message_bodies} (messages kept: {self.messages_total})",
                f"recordings {verb}: {self.recordings} (recordings kept: {self.recordings_total})",
                f"phone numbers {verb}: {self.phone_numbers}",
                f"notes of closed cases {verb}: {self.case_notes}"]


def parse_age(text: str) -> timedelta:
    """`90d`, `12w`, `36h`, `30m`, or a bare number of days."""
    m = re.fullmatch(r"\s*(\d+)\s*([dwhm]?)\s*", text.lower())
    if not m or int(m.group(1)) == 0:
        raise ValueError(f"{text!r} is not an age like 90d, 12w or 36h")
    n, unit = int(m.group(1)), m.group(2) or "d"
    return {"d": timedelta(days=n), "w": timedelta(weeks=n), "h": timedelta(hours=n), "m": timedelta(minutes=n)}[unit]


def _not_in_open_case(column: Any) -> sa.ColumnElement[bool]:
    open_cases = sa.select(Case.id).where(Case.status != CaseStatus.CLOSED)
    return sa.or_(column.is_(None), column.not_in(open_cases))


def _no_open_business(caller_id: Any) -> sa.ColumnElement[bool]:
    """The caller (if any) has no open case and no open callback request."""
    busy = sa.union(
        sa.select(Case.caller_id).where(Case.status != CaseStatus.CLOSED, Case.caller_id.is_not(None)),
        sa.select(CallbackRequest.caller_id).where(
            CallbackRequest.status.in_((CallbackStatus.OPEN, CallbackStatus.IN_PROGRESS)),
            CallbackRequest.caller_id.is_not(None)))
    return sa.or_(caller_id.is_(None), caller_id.not_in(busy))


def _update(session: Session, model: Any, where: sa.ColumnElement[bool], values: dict[str, Any],
            dry_run: bool) -> int:
    if dry_run:
        return session.scalar(sa.select(sa.func.count()).select_from(model).where(where)) or 0
    result = session.execute(sa.update(model).where(where).values(values)
                             .execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


def _purge_numbers(session: Session, cutoff: datetime, closed_long_ago: Any, dry_run: bool) -> int:
    """Empty old phone numbers wherever they are kept; the rows stay for the counts."""
    n = _update(session, Message, sa.and_(Message.peer.is_not(None), Message.created_at < cutoff,
                                          _not_in_open_case(Message.case_id), _no_open_business(Message.caller_id)),
                {"peer": None}, dry_run)
    n += _update(session, Call, sa.and_(Call.to_number.is_not(None), Call.started_at < cutoff,
                                        _no_open_business(Call.caller_id)), {"to_number": None}, dry_run)
    # A closed request is never called again; the column stays NOT NULL for the open ones.
    n += _update(session, CallbackRequest, sa.and_(
        CallbackRequest.phone != "", CallbackRequest.created_at < cutoff,
        CallbackRequest.status.not_in((CallbackStatus.OPEN, CallbackStatus.IN_PROGRESS))), {"phone": ""}, dry_run)
    n += _update(session, Case, sa.and_(Case.subject_phone.is_not(None), Case.id.in_(closed_long_ago)),
                 {"subject_phone": None}, dry_run)
    n += _update(session, Caller, sa.and_(
        Caller.phone.is_not(None), sa.func.coalesce(Caller.last_seen_at, Caller.created_at) < cutoff,
        Caller.opted_out_at.is_(None), _no_open_business(Caller.id)), {"phone": None}, dry_run)
    if not dry_run:  # the reports' caller-days keep their counts, unlinked from the purged callers
        rollups.forget_callers(session, sa.select(Caller.id).where(Caller.phone.is_(None)))
    return n


def purge(session: Session, settings: Settings, older_than: timedelta, *, dry_run: bool = False,
          now: datetime | None = None) -> PurgeReport:
    """Empty old message bodies and numbers, delete old recordings' audio and old closed cases' notes.
    The caller commits."""
    now = now or utcnow()
    cutoff = now - older_than
    # A caller with an open case keeps all their messages: the case page shows the caller's history.
    old_bodies = sa.and_(Message.body.is_not(None), Message.created_at < cutoff, _not_in_open_case(Message.case_id),
                         _no_open_business(Message.caller_id))
    old_recordings = sa.and_(Recording.status != "purged", Recording.created_at < cutoff,
                             _not_in_open_case(Recording.case_id))
    closed_long_ago = sa.select(Case.id).where(
        Case.status == CaseStatus.CLOSED, sa.func.coalesce(Case.closed_at, Case.created_at) < cutoff)
    old_notes = CaseNote.case_id.in_(closed_long_ago)
    n_bodies = _update(session, Message, old_bodies, {"body": None, "body_purged_at": now}, dry_run)
    n_numbers = _purge_numbers(session, cutoff, closed_long_ago, dry_run)
    if dry_run:
        n_recordings = session.scalar(sa.select(sa.func.count(Recording.id)).where(old_recordings)) or 0
        n_notes = session.scalar(sa.select(sa.func.count(CaseNote.id)).where(old_notes)) or 0
        remote_failed = 0
    else:
        n_notes = session.execute(sa.delete(CaseNote).where(old_notes)
                                  .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
        n_recordings, remote_failed = _purge_recordings(session, settings, old_recordings, now)
    return PurgeReport(cutoff, dry_run, int(n_bodies), n_recordings, remote_failed,
                       session.scalar(sa.select(sa.func.count(Message.id))) or 0,
                       session.scalar(sa.select(sa.func.count(Recording.id))) or 0,
                       phone_numbers=n_numbers, case_notes=int(n_notes))


def _purge_recordings(session: Session, settings: Settings, where: sa.ColumnElement[bool],
                      now: datetime) -> tuple[int, int]:
    purged = remote_failed = 0
    for rec in session.scalars(sa.select(Recording).where(where).order_by(Recording.id)):
        if rec.storage_path:
            path = Path(rec.storage_path)
            path = path if path.is_absolute() else settings.recordings_path / path
            path.unlink(missing_ok=True)
        if settings.twilio_rest_enabled and rec.remote_deleted_at is None and rec.remote_url:
            try:
                from hotline.telephony.transport import delete_recording

                delete_recording(settings, rec.recording_sid)
                rec.remote_deleted_at = now
            except SendError as exc:
                # Our copy is gone either way; Twilio's is deleted by a later run.
                remote_failed += 1
                log.warning("retention: Twilio's copy of recording %s not deleted: %s", rec.recording_sid, exc)
        rec.status, rec.storage_path = "purged", None
        purged += 1
    return purged, remote_failed


def purge_now(res: Resources, older_than: timedelta, *, dry_run: bool = False) -> PurgeReport:
    with res.db.session() as s:
        report = purge(s, res.settings, older_than, dry_run=dry_run)
    if report.message_bodies or report.recordings or report.phone_numbers or report.case_notes:
        log.info("retention: %s", "; ".join(report.lines()))
    return report


@every
def purge_periodically(res: Resources) -> None:
    """The worker purges about once an hour (the sweeper calls this every 15 s); RETENTION_DAYS=0 turns it off."""
    global _last_run
    days = res.settings.retention_days
    if not days or (_last_run is not None and time.monotonic() - _last_run < PURGE_EVERY):
        return
    _last_run = time.monotonic()
    purge_now(res, timedelta(days=days))
