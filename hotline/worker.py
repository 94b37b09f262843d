"""`hotline worker`: an RQ worker on the urgent, default and low queues, plus the outbox sweeper.

RQ's scheduler (with_scheduler) runs delayed jobs and retries with backoff. The sweeper re-enqueues
outbox rows that never reached Redis (it was down) or whose worker died mid-job.
"""

from __future__ import annotations

import logging
import threading

from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.serializers import JSONSerializer

from hotline import jobs, outbox
from hotline.queueing import QUEUES
from hotline.resources import Resources

log = logging.getLogger(__name__)
SWEEP_EVERY = 15.0  # seconds


def sweep_once(res: Resources) -> int:
    with res.db.session() as s:
        n = outbox.sweep(s, res.redis())
    if n:
        log.info("sweeper re-enqueued %d outbox job(s)", n)
    return n


def _sweeper(res: Resources, stop: threading.Event) -> None:
    while not stop.wait(SWEEP_EVERY):
        try:
            sweep_once(res)
            from hotline.services import periodic

            periodic.run_all(res)
        except (RedisError, OSError) as exc:
            log.warning("sweeper: redis unavailable (%s); will try again", exc)
        except Exception:
            log.exception("sweeper failed; will try again")


def run_worker(res: Resources, *, burst: bool = False, sweeper: bool = True) -> None:
    import workers.jobs

    jobs.load_handlers()
    workers.jobs.use(res)
    stop = threading.Event()
    thread = None
    if sweeper and not burst:
        thread = threading.Thread(target=_sweeper, args=(res, stop), name="outbox-sweeper", daemon=True)
        thread.start()
    try:
        try:
            sweep_once(res)  # at start: whatever was left while no worker ran
        except (RedisError, OSError) as exc:
            log.warning("initial sweep skipped: %s", exc)
        # SimpleWorker runs jobs in this process instead of forking a work-horse per job: our jobs
        # are short (one SMS, one REST call), and a fork plus a fresh database pool per job cost
        # ten times the job itself, so under a burst of urgent cases the backlog grew. Isolation is
        # kept where it matters: every job is idempotent and claimed in the database, so a worker
        # that dies mid-job is simply replaced and the sweeper re-runs what it held.
        worker = SimpleWorker(list(QUEUES), connection=res.redis(), serializer=JSONSerializer)
        worker.work(burst=burst, with_scheduler=not burst, logging_level=res.settings.log_level)
    finally:
        stop.set()
