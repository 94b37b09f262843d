"""`hotline worker`: RQ workers, plus the worker's own loop (sweeper, periodic duties, heartbeat).

By default one process runs two RQ workers: one on `urgent`, `default`, `low` (in that order) and one
on `slow` (recording downloads, placing calls) in a thread, so a lawyer alert never waits behind a
download. `--queues` runs one worker on the queues named, to scale them separately.

Every tick (`WORKER_TICK_SECONDS`) the loop runs the periodic duties (database only: they go on while
Redis is away), re-enqueues outbox rows that never reached Redis or whose worker died, and writes
the heartbeat `/healthz/ready` reads: idle workers block in BLPOP for minutes, so RQ's own heartbeat
says nothing about a quiet night.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence
from typing import Any

from redis import Redis
from redis.exceptions import RedisError
from rq import SimpleWorker
from rq.serializers import JSONSerializer
from rq.timeouts import TimerDeathPenalty
from rq.worker import WorkerStatus

from hotline.background import outbox, periodic, runner
from hotline.background.queues import FAST_QUEUES, QUEUES, SLOW_QUEUE, queue
from hotline.resources import Resources

log = logging.getLogger(__name__)
# A sorted set: member "<rq worker name> <queue,queue>", score the time (epoch s) it counts as gone.
ALIVE_KEY = "hotline:workers-alive"


def alive_ttl(tick_seconds: float) -> int:
    """A worker missing three ticks in a row is gone."""
    return max(3, int(3 * tick_seconds) + 1)


class HotlineWorker(SimpleWorker):
    """Runs jobs in this process (no fork per job: ours are short, and a fork plus a fresh database
    pool per job cost ten times the job). Its scheduler moves due retries of every queue, so a slow
    job's retry runs even where only one worker holds the scheduler lock."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listening = threading.Event()  # set once work() has taken over signals: then it beats

    def _install_signal_handlers(self) -> None:
        super()._install_signal_handlers()
        self.listening.set()

    def _start_scheduler(self, *args: Any, **kwargs: Any) -> None:
        own = self.queues
        self.queues = [queue(self.connection, name) for name in QUEUES]  # type: ignore[arg-type]
        try:
            super()._start_scheduler(*args, **kwargs)
        finally:
            self.queues = own


class ThreadWorker(HotlineWorker):
    """The same, in a thread: only the main thread may set signal handlers, and a timer (not
    SIGALRM) bounds each job."""

    death_penalty_class = TimerDeathPenalty

    def _install_signal_handlers(self) -> None:
        self.listening.set()


def sweep_once(res: Resources) -> int:
    with res.db.session() as s:
        n = outbox.sweep(s, res.redis())
    if n:
        log.info("sweeper re-enqueued %d outbox job(s)", n)
    return n


def _member(w: SimpleWorker) -> str:
    return f"{w.name} {','.join(w.queue_names())}"


def beat(redis: Redis, workers: Sequence[SimpleWorker], ttl: int) -> None:
    now = time.time()
    with redis.pipeline() as pipe:
        pipe.zadd(ALIVE_KEY, {_member(w): now + ttl for w in workers})
        pipe.zremrangebyscore(ALIVE_KEY, "-inf", now)  # workers that died without a word
        pipe.execute()


def tick(res: Resources, workers: Sequence[SimpleWorker] = ()) -> None:
    """One round of the worker's loop. A Redis outage skips the sweep and the heartbeat, never the
    duties: escalation and overdue marks need only the database."""
    try:
        sweep_once(res)
        if workers:
            beat(res.redis(), workers, alive_ttl(res.settings.worker_tick_seconds))
    except (RedisError, OSError) as exc:
        log.warning("worker: redis unavailable (%s); periodic duties go on, the sweep waits", exc)
    except Exception:
        log.exception("sweeper failed; will try again")
    periodic.run_all(res)


def _loop(res: Resources, stop: threading.Event, workers: list[tuple[HotlineWorker, threading.Thread | None]]) -> None:
    deadline = time.monotonic() + 10
    for w, _ in workers:  # the first beat as soon as the workers listen, not a tick later
        while not w.listening.wait(0.1) and time.monotonic() < deadline and not stop.is_set():
            pass
    while True:
        live = [w for w, t in workers if (t is None or t.is_alive()) and w.listening.is_set()]
        tick(res, live)
        if stop.wait(res.settings.worker_tick_seconds):
            return


def run_worker(res: Resources, *, burst: bool = False, queues: Sequence[str] | None = None,
               sweeper: bool = True) -> None:
    import workers.jobs

    runner.load_handlers()
    workers.jobs.use(res)
    for name in queues or ():
        if name not in QUEUES:
            raise ValueError(f"unknown queue {name!r} (queues: {', '.join(QUEUES)})")
    redis = res.redis()
    main_queues = list(queues) if queues else list(FAST_QUEUES)
    main = HotlineWorker(main_queues, connection=redis, serializer=JSONSerializer)
    slow = None if queues else ThreadWorker([SLOW_QUEUE], connection=redis, serializer=JSONSerializer)
    try:
        sweep_once(res)  # at start: whatever was left while no worker ran
    except (RedisError, OSError) as exc:
        log.warning("initial sweep skipped: %s", exc)
    if burst:
        _burst(res, main_queues, with_slow=slow is not None)
        return
    level = res.settings.log_level
    if threading.current_thread() is threading.main_thread():
        # Until RQ installs its own handlers (in work()), a stop request is kept for its loop to see;
        # raising here could leave the scheduler's forked process behind.
        def stop_soon(_signum: int, _frame: Any) -> None:
            main._stop_requested = True

        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, stop_soon)
    thread = None
    if slow is not None:
        thread = threading.Thread(target=slow.work, kwargs={"logging_level": level, "with_scheduler": False},
                                  name="rq-slow", daemon=True)
        thread.start()
    stop = threading.Event()
    loop = None
    if sweeper:
        members: list[tuple[HotlineWorker, threading.Thread | None]] = [(main, None)]
        if slow is not None:
            members.append((slow, thread))
        loop = threading.Thread(target=_loop, args=(res, stop, members), name="worker-loop", daemon=True)
        loop.start()
    try:
        main.work(with_scheduler=True, logging_level=level)
    finally:
        stop.set()
        _forget(redis, [w for w in (main, slow) if w is not None])
        if slow is not None and thread is not None:
            _stop_thread_worker(slow, thread)


def _stop_thread_worker(slow: ThreadWorker, thread: threading.Thread) -> None:
    """Let a slow job under way finish (within its timeout), as RQ's warm shutdown does for the main
    worker; an idle one is blocked in Redis and is simply deregistered. A job cut short anyway is
    run again by the next worker's sweeper once its row's lease is over (jobs are idempotent)."""
    slow._stop_requested = True
    if slow.get_state() == WorkerStatus.BUSY:
        thread.join(timeout=runner.LEASE.total_seconds())
    if thread.is_alive():
        slow.register_death()


def _burst(res: Resources, main_queues: list[str], *, with_slow: bool) -> None:
    """Run until every queue is empty (tests, `--burst`), both workers at once as in production."""
    redis = res.redis()
    names = main_queues + ([SLOW_QUEUE] if with_slow else [])
    for _ in range(10):
        thread = None
        if with_slow:
            slow = ThreadWorker([SLOW_QUEUE], connection=redis, serializer=JSONSerializer)
            thread = threading.Thread(target=slow.work, kwargs={"burst": True}, name="rq-slow", daemon=True)
            thread.start()
        main = HotlineWorker(main_queues, connection=redis, serializer=JSONSerializer)
        main.work(burst=True, with_scheduler=False, logging_level=res.settings.log_level)
        if thread is not None:
            thread.join()
        if not any(queue(redis, n).count for n in names):
            return


def _forget(redis: Redis, workers: Sequence[SimpleWorker]) -> None:
    try:
        redis.zrem(ALIVE_KEY, *[_member(w) for w in workers])
    except (RedisError, OSError):
        pass
