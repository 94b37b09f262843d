"""Transactions hold on both backends: a rollback takes back everything, savepoints included."""

from __future__ import annotations

import threading

import sqlalchemy as sa

from hotline.models import AuditEvent, Case, CasePriority, OutboxJob
from hotline.services import intake


def counts(res) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with res.db.Session() as s:
        return (s.scalar(sa.select(sa.func.count()).select_from(Case)) or 0,
                s.scalar(sa.select(sa.func.count()).select_from(OutboxJob)) or 0)


def test_rollback_after_open_case_leaves_neither_the_case_nor_its_alert_job(res, backend) -> None:
    # No caller row first: the intake savepoint is the transaction's first write. pysqlite sent no
    # BEGIN before it, so its RELEASE committed the case at once and the rollback kept it, alone.
    with res.db.Session() as s:
        case, created = intake.open_case(s, caller=None, source="sms", source_sid="SM-rollback",
                                         priority=CasePriority.URGENT, country="KH")
        assert created and case.id
        s.rollback()
    assert counts(res) == (0, 0), backend


def test_committed_open_case_keeps_the_case_and_its_alert_job(res) -> None:
    with res.db.Session() as s:
        intake.open_case(s, caller=None, source="sms", source_sid="SM-commit", priority=CasePriority.URGENT)
        s.commit()
    assert counts(res) == (1, 1)


def test_a_write_after_a_slow_step_survives_another_process_committing_meanwhile(res) -> None:
    """A job reads, waits on the network, then writes while someone else has committed: on SQLite a
    BEGIN sent at the transaction's start would fail that write at once with "database is locked"."""
    with res.db.Session() as job:
        job.scalar(sa.select(sa.func.count()).select_from(Case))  # the job's first read

        def other_process() -> None:
            with res.db.session() as web:
                web.add(AuditEvent(action="test.meanwhile"))

        t = threading.Thread(target=other_process)
        t.start()
        t.join(10)
        job.add(AuditEvent(action="test.after-download"))
        job.commit()
    with res.db.Session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 2
