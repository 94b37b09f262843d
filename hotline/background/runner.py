"""The outbox runner: claims a job row, runs its handler, records the outcome.

Handlers are registered with `@handler("kind", queue=..., timeout=..., attempts=...)` in
hotline.services modules. A handler gets the worker's resources, an open session and the job row; it
may commit its own progress (e.g. after each SMS it sends) so a retry resumes instead of repeating.

One retry policy: RQ retries (rq.Retry with the kind's intervals); the row records the attempts and
the last error. A transient failure (Twilio timeout, 429, 5xx) or a bug raises, so RQ runs the job
again later; a permanent one (an invalid number) fails at once. After the kind's number of attempts
the row is FAILED with the reason, whatever went wrong, and `hotline jobs list --failed` shows it.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from rq import Retry
from sqlalchemy.orm import Session

from hotline.background.queues import QUEUES, SLOW_QUEUE
from hotline.db import utcnow
from hotline.models import Case, OutboxJob, OutboxStatus
from hotline.resources import Resources
from hotline.telephony.transport import SendError

log = logging.getLogger(__name__)
Handler = Callable[[Resources, Session, OutboxJob], None]
# Backoff between attempts (Twilio timeouts, 429, 5xx): about 7 minutes over five retries.
RETRY_INTERVALS = (5, 15, 45, 120, 240)
# A running row older than this belonged to a dead worker; longer than any kind's timeout.
LEASE = timedelta(minutes=5)


@dataclass(frozen=True)
class JobSpec:
    """How one kind of job runs: its queue, the time one run may take, how often it is tried."""

    kind: str
    queue: str = "default"
    timeout: int = 60  # seconds; RQ stops a run that takes longer (and it counts as a failure)
    attempts: int = 6  # runs in all, the first included; then the row is FAILED
    intervals: tuple[int, ...] = RETRY_INTERVALS

    def rq_retry(self) -> Retry | None:
        if self.attempts <= 1:
            return None
        return Retry(max=self.attempts - 1, interval=list(self.intervals))


HANDLERS: dict[str, Handler] = {}
SPECS: dict[str, JobSpec] = {}


def handler(kind: str, *, queue: str = "default", timeout: int = 60, attempts: int = 6,
            intervals: Sequence[int] = RETRY_INTERVALS) -> Callable[[Handler], Handler]:
    """Register the function that runs jobs of `kind`. `queue="slow"` for anything that may take
    seconds (downloads, placing calls): those always run on the slow queue's worker."""
    if queue not in QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    if timeout >= LEASE.total_seconds() or attempts < 1:
        raise ValueError("timeout must stay under the lease and attempts be at least 1")
    spec = JobSpec(kind, queue, timeout, attempts, tuple(intervals) or (0,))

    def register(fn: Handler) -> Handler:
        HANDLERS[kind], SPECS[kind] = fn, spec
        return fn

    return register


def spec_for(kind: str) -> JobSpec:
    if kind not in SPECS:
        load_handlers()
    return SPECS.get(kind) or JobSpec(kind)


def queue_for(kind: str, asked: str | None) -> str:
    """Slow kinds always go to the slow queue; others where asked (urgent for alerts), else their own."""
    if asked is not None and asked not in QUEUES:
        raise ValueError(f"unknown queue {asked!r} (queues: {', '.join(QUEUES)})")
    spec = spec_for(kind)
    if spec.queue == SLOW_QUEUE:
        return SLOW_QUEUE
    return asked or spec.queue


_loaded = False


def load_handlers() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    import hotline.services as services

    for info in pkgutil.iter_modules(services.__path__):
        importlib.import_module(f"{services.__name__}.{info.name}")


def claim(session: Session, job_id: int) -> bool:
    """Conditional UPDATE: exactly one worker wins a job, even when RQ runs it twice."""
    now = utcnow()
    result = session.execute(
        sa.update(OutboxJob)
        .where(OutboxJob.id == job_id,
               sa.or_(OutboxJob.status == OutboxStatus.PENDING,
                      sa.and_(OutboxJob.status == OutboxStatus.RUNNING, OutboxJob.claimed_at < now - LEASE)))
        .values(status=OutboxStatus.RUNNING, claimed_at=now, attempts=OutboxJob.attempts + 1)
        .execution_options(synchronize_session=False)
    )
    session.commit()
    return bool(result.rowcount)  # type: ignore[attr-defined]


def run(res: Resources, job_id: int) -> str:
    """Run one outbox job; returns what happened. Raises (so RQ retries) while attempts are left."""
    with res.db.Session() as s:
        if not claim(s, job_id):
            return "skipped: already done or running elsewhere"
        job = s.get(OutboxJob, job_id)
        assert job is not None
        fn = HANDLERS.get(job.kind)
        if fn is None:
            _finish(s, job, OutboxStatus.FAILED, f"no handler for job kind {job.kind!r}")
            return "failed: unknown kind"
        try:
            fn(res, s, job)
        except Exception as exc:  # noqa: BLE001 - a bug is bounded like a failure: retried, then FAILED
            s.rollback()
            job = s.get(OutboxJob, job_id)
            assert job is not None
            return _failed(s, job, exc)
        _finish(s, job, OutboxStatus.DONE, None)
        return "done"


def _failed(s: Session, job: OutboxJob, exc: Exception) -> str:
    """Record a failed run: retry later (re-raise for RQ) while attempts are left, else FAILED."""
    spec = spec_for(job.kind)
    bug = not isinstance(exc, SendError)
    reason = f"{type(exc).__name__}: {exc}" if bug else str(exc)
    if (bug or exc.transient) and job.attempts < spec.attempts:  # type: ignore[attr-defined]
        # RQ logs the traceback and schedules the next attempt.
        job.status, job.last_error = OutboxStatus.PENDING, reason[:255]
        _note_on_case(s, job, f"retrying: {reason}")
        s.commit()
        raise exc
    if bug:
        log.error("outbox job %s (%s) raised on its last attempt", job.id, job.kind, exc_info=exc)
    if job.attempts >= spec.attempts and (bug or exc.transient):  # type: ignore[attr-defined]
        reason = f"gave up after {job.attempts} attempt{'s' if job.attempts != 1 else ''}: {reason}"
    _finish(s, job, OutboxStatus.FAILED, reason)
    return f"failed: {reason}"


def _finish(s: Session, job: OutboxJob, status: OutboxStatus, error: str | None) -> None:
    job.status, job.done_at = status, utcnow()
    job.last_error = error[:255] if error else None
    if error:
        _note_on_case(s, job, error)
        log.warning("outbox job %s (%s) failed: %s", job.id, job.kind, error)
    s.commit()


def _note_on_case(s: Session, job: OutboxJob, error: str) -> None:
    if job.case_id:
        case = s.get(Case, job.case_id)
        if case is not None:
            case.last_error = f"{job.kind}: {error}"[:255]
