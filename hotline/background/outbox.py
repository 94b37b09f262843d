"""Write first, enqueue after commit.

`add_job` writes an outbox row in the caller's transaction. When that transaction commits, the rows
are pushed to RQ (and marked enqueued). If Redis is down the push fails quietly; the worker's
sweeper finds the row later. A rolled-back savepoint drops only the jobs written inside it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, SessionTransaction

from hotline.background.queues import enqueue_outbox, requeue_outbox
from hotline.background.runner import LEASE, queue_for, spec_for
from hotline.db import Database, utcnow
from hotline.models import OutboxJob, OutboxStatus

log = logging.getLogger(__name__)
_PENDING_KEY = "hotline.outbox.new"
STALE_AFTER = timedelta(seconds=60)  # a pending row not seen in Redis this long after its push is swept


def add_job(session: Session, kind: str, payload: dict[str, Any], *, queue: str | None = None,
            case_id: int | None = None, run_after: datetime | None = None) -> OutboxJob:
    """Write a job row in the caller's transaction; it reaches RQ after commit. `queue` (urgent,
    default, low) defaults to the kind's own; slow kinds always go to the slow queue."""
    job = OutboxJob(kind=kind, payload=payload, queue=queue_for(kind, queue), case_id=case_id,
                    run_after=run_after)
    session.add(job)
    session.info.setdefault(_PENDING_KEY, []).append(job)
    return job


def install(db: Database, redis_factory: Callable[[], Redis]) -> None:
    """Enqueue each session's new outbox rows once its transaction has committed (once per db)."""
    if getattr(db, "_outbox_installed", False):
        return
    db._outbox_installed = True  # type: ignore[attr-defined]

    def after_commit(session: Session) -> None:
        jobs: list[OutboxJob] = [j for j in session.info.pop(_PENDING_KEY, []) if j.id is not None]
        if jobs:
            push(db, redis_factory, jobs)

    def after_soft_rollback(session: Session, previous: SessionTransaction) -> None:
        if not previous.nested:
            session.info.pop(_PENDING_KEY, None)
            return
        # A savepoint rolled back (e.g. intake's insert-or-take lost a race): its own rows left the
        # session; the jobs written before it are still part of the transaction and must go out.
        kept = [j for j in session.info.get(_PENDING_KEY, []) if j in session]
        session.info[_PENDING_KEY] = kept

    db.after_commit_hooks.append(after_commit)
    sa.event.listen(db.Session, "after_soft_rollback", after_soft_rollback)


def push(db: Database, redis_factory: Callable[[], Redis], jobs: list[OutboxJob]) -> None:
    """Push committed rows to RQ, then record `enqueued_at` (the sweeper leaves those alone)."""
    pushed: list[int] = []
    try:
        redis = redis_factory()
        for job in jobs:
            enqueue_outbox(redis, job.id, job.queue, spec_for(job.kind), delay=_delay(job.run_after))
            pushed.append(job.id)
    except (RedisError, OSError) as exc:
        # The rows are committed; the sweeper in `hotline worker` will enqueue them when Redis is back.
        log.warning("could not enqueue %d outbox job(s), left for the sweeper: %s", len(jobs) - len(pushed), exc)
    if not pushed:
        return
    try:
        with db.engine.begin() as conn:
            conn.execute(sa.update(OutboxJob).where(OutboxJob.id.in_(pushed)).values(enqueued_at=utcnow()))
    except SQLAlchemyError as exc:
        # The commit stands and the jobs are queued; without the mark the sweeper only looks again.
        log.warning("could not mark %d outbox job(s) enqueued: %s", len(pushed), type(exc).__name__)


def _delay(run_after: datetime | None) -> timedelta | None:
    if run_after is None:
        return None
    delta = run_after - utcnow()
    return delta if delta.total_seconds() > 1 else None


def sweep(session: Session, redis: Redis, *, stale_after: timedelta = STALE_AFTER, lease: timedelta = LEASE) -> int:
    """Push jobs that never reached Redis, or whose worker died mid-job. Returns how many.

    A pending row never enqueued (Redis was down), or enqueued long ago, is pushed unless RQ holds
    its job already (waiting, scheduled for a retry, running): one row is never twice in a queue.
    A running row past its lease belonged to a worker that died (e.g. SIGKILL).
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
    pushed = 0
    for job in rows:
        abandoned = job.status == OutboxStatus.RUNNING
        if requeue_outbox(redis, job.id, job.queue, spec_for(job.kind), abandoned=abandoned):
            pushed += 1
        job.enqueued_at = now
    return pushed
