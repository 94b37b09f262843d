"""The outbox runner: claims a job row, runs its handler, records the outcome.

Handlers are registered with `@handler("kind")` in hotline.services modules. A handler gets the
worker's resources, an open session and the job row; it may commit its own progress (e.g. after each
SMS it sends) so a retry resumes instead of repeating.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hotline.db import utcnow
from hotline.models import Case, OutboxJob, OutboxStatus
from hotline.resources import Resources
from hotline.telephony.transport import SendError

log = logging.getLogger(__name__)
Handler = Callable[[Resources, Session, OutboxJob], None]
HANDLERS: dict[str, Handler] = {}
LEASE = timedelta(minutes=5)  # a running job older than this belonged to a dead worker
MAX_ATTEMPTS = 8


def backoff(attempts: int) -> timedelta:
    """Wait before retry number `attempts` (1-based): the same schedule RQ's Retry uses."""
    from hotline.queueing import RETRY_INTERVALS

    return timedelta(seconds=RETRY_INTERVALS[min(attempts, len(RETRY_INTERVALS)) - 1])


class Retry(Exception):
    """Raised by run_outbox so RQ retries the job with backoff."""


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        HANDLERS[kind] = fn
        return fn

    return register


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
    """Run one outbox job; returns what happened. Raises Retry on a transient failure."""
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
        except SendError as exc:
            s.rollback()
            job = s.get(OutboxJob, job_id)
            assert job is not None
            if exc.transient and job.attempts < MAX_ATTEMPTS:
                job.status, job.last_error = OutboxStatus.PENDING, str(exc)[:255]
                # The sweeper honours run_after, so it never re-runs a job before its backoff is over.
                job.run_after = utcnow() + backoff(job.attempts)
                _note_on_case(s, job, f"retrying: {exc}")
                s.commit()
                raise Retry(str(exc)) from None
            _finish(s, job, OutboxStatus.FAILED, str(exc))
            return f"failed: {exc}"
        except Exception as exc:
            s.rollback()
            job = s.get(OutboxJob, job_id)
            assert job is not None
            # A bug, not Twilio: keep the job pending so a fixed worker (or the sweeper) takes it again.
            job.status, job.last_error = OutboxStatus.PENDING, f"{type(exc).__name__}: {exc}"[:255]
            s.commit()
            raise
        _finish(s, job, OutboxStatus.DONE, None)
        return "done"


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
