"""Redis connections and the RQ queues, JSON-serialised; one outbox row is one RQ job `outbox-<id>`.

Queues: `urgent` (lawyer alerts), `default`, `low`, and `slow` (recording downloads, placing calls),
which has a worker of its own so an alert never waits behind a download. Nothing connects at import
time; the app and the worker build these when they start.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from redis import Redis
from rq import Queue
from rq.exceptions import DuplicateJobError, NoSuchJobError
from rq.job import Job, JobStatus
from rq.serializers import JSONSerializer

if TYPE_CHECKING:
    from hotline.background.runner import JobSpec

log = logging.getLogger(__name__)

FAST_QUEUES = ("urgent", "default", "low")  # one worker takes them in this order
SLOW_QUEUE = "slow"
QUEUES = (*FAST_QUEUES, SLOW_QUEUE)
RUN_OUTBOX = "workers.jobs.run_outbox"
RESULT_TTL = 3600
FAILURE_TTL = 7 * 86400
WAITING = (JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED)


def connect(url: str, *, timeout: float = 2.0) -> Redis:
    # Short timeouts: a webhook must answer the caller even when Redis is down.
    return Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                          health_check_interval=30)


def queue(redis: Redis, name: str) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis, serializer=JSONSerializer)


def job_id(outbox_id: int) -> str:
    return f"outbox-{outbox_id}"


def enqueue_outbox(redis: Redis, outbox_id: int, queue_name: str, spec: JobSpec,
                   delay: timedelta | None = None) -> bool:
    """Push one outbox row's job once, now or after `delay`; False when `outbox-<id>` exists already.

    `unique=True` makes RQ refuse a second job with the same id (atomically, in a Lua script), so
    the after-commit hook and the sweeper racing on one row push it once. RQ retries it with the
    kind's intervals, each run bounded by the kind's timeout.
    """
    q = queue(redis, queue_name)
    options: dict[str, Any] = {"job_id": job_id(outbox_id), "retry": spec.rq_retry(), "job_timeout": spec.timeout,
                               "result_ttl": RESULT_TTL, "failure_ttl": FAILURE_TTL, "unique": True,
                               "description": f"{spec.kind} (outbox {outbox_id})"}
    try:
        if delay:
            q.enqueue_in(delay, RUN_OUTBOX, outbox_id, **options)
        else:
            q.enqueue(RUN_OUTBOX, outbox_id, **options)
    except DuplicateJobError:
        return False
    return True


def requeue_outbox(redis: Redis, outbox_id: int, queue_name: str, spec: JobSpec, *, abandoned: bool) -> bool:
    """Push a row the database still calls pending (or running, `abandoned` past its lease) unless RQ
    already holds it: waiting, scheduled for a retry, or running. Returns True when it was pushed.

    A job RQ has finished with (done, failed, stopped) while the row is not done is stale: it is
    deleted and pushed again. So is a job still marked started whose worker died mid-job.
    """
    try:
        existing = Job.fetch(job_id(outbox_id), connection=redis, serializer=JSONSerializer)
    except NoSuchJobError:
        existing = None
    if existing is not None:
        status = existing.get_status(refresh=False)
        if status in WAITING or (status == JobStatus.STARTED and not abandoned):
            return False
        existing.delete()
    return enqueue_outbox(redis, outbox_id, queue_name, spec)


def rq_status(redis: Redis, outbox_id: int) -> str | None:
    """What RQ says about the row's job (queued, scheduled, started, finished, failed) or None."""
    try:
        status = Job.fetch(job_id(outbox_id), connection=redis, serializer=JSONSerializer).get_status(refresh=False)
        return str(getattr(status, "value", status))
    except NoSuchJobError:
        return None
