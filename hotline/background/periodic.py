"""Periodic duties the worker runs every tick (escalation of unclaimed urgent cases, callback
scheduling, retention). Each area registers a function with `@every`. They need only the database:
they run while Redis is away, and the jobs they write wait in the outbox for the sweeper."""

from __future__ import annotations

import logging
from collections.abc import Callable

from hotline.resources import Resources

log = logging.getLogger(__name__)
TASKS: list[Callable[[Resources], None]] = []


def every(fn: Callable[[Resources], None]) -> Callable[[Resources], None]:
    TASKS.append(fn)
    return fn


def run_all(res: Resources) -> None:
    for task in TASKS:
        try:
            task(res)
        except Exception:
            log.exception("periodic task %s failed", task.__name__)
