"""RQ jobs. Resources are built on the first job a worker process runs, not at import."""

from __future__ import annotations

import os

from hotline.background import runner
from hotline.resources import Resources

_resources: Resources | None = None
_pid: int | None = None


def use(res: Resources) -> None:
    """Let a worker started in-process (`hotline worker`, tests) hand its resources to the jobs."""
    global _resources, _pid
    _resources, _pid = res, os.getpid()


def resources() -> Resources:
    global _resources, _pid
    if _resources is None:
        from hotline.settings import load_settings

        use(Resources(load_settings()))
    elif _pid != os.getpid():
        # A forking RQ worker runs each job in a child: never share the parent's pooled connections.
        _resources.db.engine.dispose(close=False)
        _resources._redis = None
        _pid = os.getpid()
    runner.load_handlers()
    assert _resources is not None
    return _resources


def run_outbox(outbox_id: int) -> str:
    """Run one outbox row (hotline.background.runner); RQ retries it with the kind's intervals."""
    return runner.run(resources(), int(outbox_id))
