"""Retention: recordings and message bodies older than a set age are purged; every row stays.

What a message said and what a caller recorded are the most sensitive things we hold, and the
people we serve may be watched. After the retention period (RETENTION_DAYS, or
`hotline purge --older-than 90d`) the body is emptied and the audio file deleted, here and at
Twilio; the rows stay, so counts, dates, statuses and cases are still reported.

A case that is still open keeps its evidence: its messages and recordings are purged once it is closed.
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
from hotline.models import Case, CaseStatus, Message, Recording
from hotline.resources import Resources
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

    def lines(self) -> list[str]:
        verb = "would purge" if self.dry_run else "purged"
        return [f"cutoff: {self.cutoff.isoformat(timespec='seconds')}",
                f"message bodies {verb}: {self.message_bodies} (messages kept: {self.messages_total})",
                f"recordings {verb}: {self.recordings} (recordings kept: {self.recordings_total})"]


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


def purge(session: Session, settings: Settings, older_than: timedelta, *, dry_run: bool = False,
          now: datetime | None = None) -> PurgeReport:
    """Empty old message bodies and delete old recordings' audio. The caller commits."""
    now = now or utcnow()
    cutoff = now - older_than
    old_bodies = sa.and_(Message.body.is_not(None), Message.created_at < cutoff, _not_in_open_case(Message.case_id))
    old_recordings = sa.and_(Recording.status != "purged", Recording.created_at < cutoff,
                             _not_in_open_case(Recording.case_id))
    if dry_run:
        n_bodies = session.scalar(sa.select(sa.func.count(Message.id)).where(old_bodies)) or 0
        n_recordings = session.scalar(sa.select(sa.func.count(Recording.id)).where(old_recordings)) or 0
        remote_failed = 0
    else:
        result = session.execute(sa.update(Message).where(old_bodies).values(body=None, body_purged_at=now)
                                 .execution_options(synchronize_session=False))
        n_bodies = result.rowcount  # type: ignore[attr-defined]
        n_recordings, remote_failed = _purge_recordings(session, settings, old_recordings, now)
    return PurgeReport(cutoff, dry_run, int(n_bodies), n_recordings, remote_failed,
                       session.scalar(sa.select(sa.func.count(Message.id))) or 0,
                       session.scalar(sa.select(sa.func.count(Recording.id))) or 0)


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
    if report.message_bodies or report.recordings:
        log.info("retention: %s", "; ".join(report.lines()))
    return report


@every
def purge_periodically(res: Resources) -> None:
    """With RETENTION_DAYS set, the worker purges about once an hour (the sweeper calls this every 15 s)."""
    global _last_run
    days = res.settings.retention_days
    if not days or (_last_run is not None and time.monotonic() - _last_run < PURGE_EVERY):
        return
    _last_run = time.monotonic()
    purge_now(res, timedelta(days=days))
