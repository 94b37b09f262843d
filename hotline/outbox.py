"""Write first, enqueue after commit.

`add_job` writes an outbox row in the caller's transaction. When that transaction commits, the rows
are pushed to RQ. If Redis is down the push fails quietly; the worker's sweeper finds the row later.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from hotline.db import Database, utcnow
from hotline.models import OutboxJob, OutboxStatus
from hotline.queueing import enqueue_outbox

log = logging.getLogger(__name__)
_PENDING_KEY = "hotline.outbox.new"


def add_job(session: Session, kind: str, payload: dict[str, Any], *, queue: str = "default",
            case_id: int | None = None, run_after: datetime | None = None) -> OutboxJob:
    job = OutboxJob(kind=kind, payload=payload, queue=queue, case_id=case_id, run_after=run_after)
    session.add(job)
    session.info.setdefault(_PENDING_KEY, []).append(job)
    return job


def install(db: Database, redis_factory: Callable[[], Redis]) -> None:
    """Enqueue each session's new outbox rows once its transaction has committed (once per db)."""
    if getattr(db, "_outbox_installed", False):
        return
    db._outbox_installed = True  # type: ignore[attr-defined]

    def after_commit(session: Session) -> None:
        jobs: list[OutboxJob] = session.info.pop(_PENDING_KEY, [])
        if not jobs:
            return
        try:
            redis = redis_factory()
            for job in jobs:
                if job.id is None:
                    continue
                enqueue_outbox(redis, job.id, job.queue, delay=_delay(job.run_after))
        except (RedisError, OSError) as exc:
            # The row is committed; the sweeper in `hotline worker` will enqueue it when Redis is back.
            log.warning("could not enqueue %d outbox job(s), left for the sweeper: %s", len(jobs), exc)

    def after_rollback(session: Session) -> None:
        session.info.pop(_PENDING_KEY, None)

    db.after_commit_hooks.append(after_commit)
    sa.event.listen(db.Session, "after_soft_rollback", lambda s, _t: after_rollback(s))


def _delay(run_after: datetime | None) -> timedelta | None:
    if run_after is None:
        return None
    delta = run_after - utcnow()
    return delta if delta.total_seconds() > 1 else None


def sweep(session: Session, redis: Redis, *, stale_after: timedelta = timedelta(seconds=60),
          lease: timedelta = timedelta(minutes=5)) -> int:
    """Re-enqueue jobs that never reached Redis, or whose worker died mid-job. Returns how many.

    A pending row older than `stale_after` either never reached Redis or was lost with it; a running
    row past its lease belonged to a worker that died (e.g. SIGKILL). Jobs are idempotent, so a
    second copy of a job still in the queue does no harm: the claim in run_outbox lets one through.
    """
    now = utcnow()
    rows = session.scalars(
        sa.select(OutboxJob).where(
            sa.or_(
                sa.and_(OutboxJob.status == OutboxStatus.PENDING,
                        sa.or_(OutboxJob.enqueued_at.is_(None), OutboxJob.enqueued_at < now - stale_after),
                        OutboxJob.created_at < now - timedelta(seconds=5),
                        sa.or_(OutboxJob.run_after.is_(None), OutboxJob.run_after <= now)),
                sa.and_(OutboxJob.status == OutboxStatus.RUNNING, OutboxJob.claimed_at < now - lease),
            )
        ).order_by(OutboxJob.id).limit(500)
    ).all()
    for job in rows:
        enqueue_outbox(redis, job.id, job.queue)
        job.enqueued_at = now
    return len(rows)
