"""Redis connections and RQ queues (urgent, default, low), JSON-serialised.

Nothing connects at import time; the app and the worker build these when they start.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from redis import Redis
from rq import Queue, Retry
from rq.serializers import JSONSerializer

log = logging.getLogger(__name__)

QUEUES = ("urgent", "default", "low")  # a worker takes them in this order
RUN_OUTBOX = "workers.jobs.run_outbox"
# Backoff for transient failures (Twilio timeouts, 429, 5xx): about 7 minutes in all.
RETRY_INTERVALS = [5, 15, 45, 120, 240, 480, 900]
RETRY = Retry(max=5, interval=RETRY_INTERVALS[:5])


def connect(url: str, *, timeout: float = 2.0) -> Redis:
    # Short timeouts: a webhook must answer the caller even when Redis is down.
    return Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout,
                          health_check_interval=30)


def queue(redis: Redis, name: str) -> Queue:
    if name not in QUEUES:
        raise ValueError(f"unknown queue {name!r}")
    return Queue(name, connection=redis, serializer=JSONSerializer)


def enqueue_outbox(redis: Redis, outbox_id: int, queue_name: str, delay: timedelta | None = None) -> None:
    """Push one outbox row's job, now or after `delay`, with the same retry policy either way."""
    q = queue(redis, queue_name)
    # The job id makes a re-enqueue by the sweeper replace, not duplicate, a job still waiting.
    options: dict[str, Any] = {"job_id": f"outbox-{outbox_id}", "retry": RETRY, "result_ttl": 3600,
                               "failure_ttl": 7 * 86400}
    if delay:
        q.enqueue_in(delay, RUN_OUTBOX, outbox_id, **options)
    else:
        q.enqueue(RUN_OUTBOX, outbox_id, **options)
