"""What operators see of background work: live workers, failed jobs, and a retry by hand."""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa
from redis import Redis
from redis.exceptions import RedisError
from sqlalchemy.orm import Session

from hotline.background.queues import QUEUES, requeue_outbox
from hotline.background.runner import spec_for
from hotline.background.worker import ALIVE_KEY
from hotline.models import OutboxJob, OutboxStatus
from hotline.resources import Resources


def live_workers(redis: Redis) -> dict[str, list[str]]:
    """Worker name -> its queues, for every worker whose loop beat within its last three ticks."""
    found: dict[str, list[str]] = {}
    for member in redis.zrangebyscore(ALIVE_KEY, time.time(), "+inf"):
        name, _, queues = (member.decode() if isinstance(member, bytes) else str(member)).partition(" ")
        found[name] = [q for q in queues.split(",") if q]
    return found


def uncovered_queues(workers: dict[str, list[str]]) -> list[str]:
    covered = {q for queues in workers.values() for q in queues}
    return [q for q in QUEUES if q not in covered]


def list_jobs(session: Session, *, failed: bool = False, limit: int = 50) -> Sequence[OutboxJob]:
    """Newest first: failed jobs only, or every job not done yet (pending, running, failed)."""
    query = sa.select(OutboxJob).order_by(OutboxJob.id.desc()).limit(limit)
    if failed:
        query = query.where(OutboxJob.status == OutboxStatus.FAILED)
    else:
        query = query.where(OutboxJob.status != OutboxStatus.DONE)
    return session.scalars(query).all()


class RetryRefused(Exception):
    """The job cannot be retried by hand (missing, or not failed)."""


class RetryQueued(Exception):
    """The job is pending again, but could not be pushed now."""


def retry_job(res: Resources, job_id: int) -> OutboxJob:
    """Give a failed job a fresh set of attempts and push it now."""
    with res.db.session() as s:
        job = s.get(OutboxJob, job_id)
        if job is None:
            raise RetryRefused(f"no job {job_id}")
        if job.status != OutboxStatus.FAILED:
            raise RetryRefused(f"job {job_id} is {job.status}, not failed; only failed jobs are retried by hand")
        job.status, job.attempts, job.done_at, job.run_after = OutboxStatus.PENDING, 0, None, None
        job.enqueued_at = None  # should the push below fail, the sweeper pushes it
        s.flush()
    # Committed first: a worker taking the job at once finds it pending.
    try:
        requeue_outbox(res.redis(), job.id, job.queue, spec_for(job.kind), abandoned=False)
    except (RedisError, OSError):
        raise RetryQueued(f"job {job_id} is pending again; Redis is unreachable, so the worker's sweeper "
                          "will queue it when Redis is back") from None
    return job
