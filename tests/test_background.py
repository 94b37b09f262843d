"""One background system: write first, enqueue after commit; RQ retries; every kind bounded.

Workers are real RQ workers (in burst mode, or a real `hotline worker` process) against real Redis.
Field conditions: a savepoint rolled back mid-transaction, a sweep while the job is still queued or
waiting out its backoff, Redis restarted empty, a handler with a bug, a 30 s download ahead of a
lawyer alert, Redis away while cases go overdue, an idle worker all night, a worker SIGKILLed.
"""

from __future__ import annotations

import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from hotline.background.outbox import add_job
from hotline.background.runner import HANDLERS, SPECS, handler, load_handlers, spec_for
from hotline.background.worker import sweep_once, tick
from hotline.cli import cli
from hotline.db import utcnow
from hotline.models import AuditEvent, Case, CasePriority, OutboxJob, OutboxStatus
from hotline.resources import Resources
from hotline.services import intake
from hotline.settings import Settings
from tests.conftest import run_worker_burst
from tests.test_faults_support import Web, start_worker, wait_for


@pytest.fixture
def kinds() -> Iterator[list[str]]:
    """Handlers a test registers, removed afterwards."""
    made: list[str] = []
    yield made
    for kind in made:
        HANDLERS.pop(kind, None)
        SPECS.pop(kind, None)


def register_audit(kinds: list[str], kind: str = "test.audit", **spec: object) -> None:
    @handler(kind, **spec)  # type: ignore[arg-type]
    def _audit(res: Resources, s, job: OutboxJob) -> None:  # type: ignore[no-untyped-def]
        s.add(AuditEvent(action="test.ran", object_id=str(job.payload["n"])))
        s.commit()

    kinds.append(kind)


def queued(res: Resources, name: str) -> list[str]:
    return Queue(name, connection=res.redis(), serializer=JSONSerializer).job_ids


def rows(res: Resources) -> list[OutboxJob]:
    with res.db.Session() as s:
        found = list(s.scalars(sa.select(OutboxJob).order_by(OutboxJob.id)))
        s.expunge_all()
        return found


def audits(res: Resources) -> list[str]:
    with res.db.Session() as s:
        return list(s.scalars(sa.select(AuditEvent.object_id).where(AuditEvent.action == "test.ran")))


def age(res: Resources, by: timedelta = timedelta(minutes=2)) -> None:
    """As if time had passed since the rows were written and pushed."""
    with res.db.Session() as s:
        s.execute(sa.update(OutboxJob).values(created_at=utcnow() - by))
        s.execute(sa.update(OutboxJob).where(OutboxJob.enqueued_at.is_not(None)).values(enqueued_at=utcnow() - by))
        s.commit()


# -- after commit -------------------------------------------------------------------------------

def test_a_rolled_back_savepoint_keeps_the_jobs_written_before_it(res, settings, kinds) -> None:
    register_audit(kinds)
    with res.db.Session() as s:
        first = add_job(s, "test.audit", {"n": 1})
        s.flush()
        with pytest.raises(RuntimeError), s.begin_nested():  # e.g. intake's insert-or-take losing a race
            add_job(s, "test.audit", {"n": 2})
            s.flush()
            raise RuntimeError("unique key taken")
        s.commit()
    assert queued(res, "default") == [f"outbox-{first.id}"]
    assert [r.payload for r in rows(res)] == [{"n": 1}]
    run_worker_burst(settings)
    assert audits(res) == ["1"]


def test_the_after_commit_push_records_enqueued_at(res, kinds) -> None:
    register_audit(kinds)
    with res.db.Session() as s:
        add_job(s, "test.audit", {"n": 1})
        s.commit()
    [row] = rows(res)
    assert row.enqueued_at is not None


# -- the sweeper ----------------------------------------------------------------------------------

def test_the_sweeper_never_pushes_a_job_still_waiting_in_its_queue(res, settings, kinds) -> None:
    register_audit(kinds)
    with res.db.Session() as s:
        job = add_job(s, "test.audit", {"n": 42})
        s.commit()
    age(res)  # long enough for the sweeper to look at it: no worker has taken it yet
    assert sweep_once(res) == 0
    assert sweep_once(res) == 0
    assert queued(res, "default") == [f"outbox-{job.id}"]
    run_worker_burst(settings)
    assert audits(res) == ["42"]


def test_a_job_lost_with_redis_is_pushed_again_once(res, settings, kinds) -> None:
    register_audit(kinds)
    with res.db.Session() as s:
        add_job(s, "test.audit", {"n": 7})
        s.commit()
    res.redis().flushdb()  # Redis restarted without its data
    age(res)
    assert sweep_once(res) == 1
    assert sweep_once(res) == 0
    run_worker_burst(settings)
    assert audits(res) == ["7"]


# -- bounded attempts -------------------------------------------------------------------------------

def test_a_job_with_a_bug_is_tried_a_bounded_number_of_times_then_failed_with_the_reason(res, settings,
                                                                                          kinds) -> None:
    calls: list[int] = []

    @handler("test.bug", attempts=3, intervals=[0])
    def _bug(res: Resources, s, job: OutboxJob) -> None:  # type: ignore[no-untyped-def]
        calls.append(job.attempts)
        raise KeyError("callback_id")

    kinds.append("test.bug")
    with res.db.Session() as s:
        add_job(s, "test.bug", {})
        s.commit()
    run_worker_burst(settings)
    [row] = rows(res)
    assert calls == [1, 2, 3]
    assert (row.status, row.attempts) == (OutboxStatus.FAILED, 3)
    assert row.last_error == "gave up after 3 attempts: KeyError: 'callback_id'"
    age(res, timedelta(hours=1))
    assert sweep_once(res) == 0  # failed for good: nothing takes it again by itself
    run_worker_burst(settings)
    assert calls == [1, 2, 3]


@pytest.mark.parametrize("queue", ["default", "slow"])
def test_a_run_longer_than_its_kind_allows_is_stopped_and_counted(res, settings, kinds, queue: str) -> None:
    @handler("test.hang", queue=queue, timeout=1, attempts=1)
    def _hang(res: Resources, s, job: OutboxJob) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 15  # a download that never ends
        while time.monotonic() < deadline:
            time.sleep(0.05)

    kinds.append("test.hang")
    with res.db.Session() as s:
        add_job(s, "test.hang", {})
        s.commit()
    t0 = time.monotonic()
    run_worker_burst(settings)
    assert time.monotonic() - t0 < 10
    [row] = rows(res)
    assert row.status == OutboxStatus.FAILED and row.attempts == 1
    assert row.last_error is not None and row.last_error.startswith("gave up after 1 attempt: JobTimeoutException")


def test_every_kind_has_a_bounded_number_of_attempts_and_a_timeout() -> None:
    load_handlers()
    assert {"case.notify", "recording.fetch", "callback.place", "callback.schedule"} <= set(SPECS)
    for kind, spec in SPECS.items():
        retry = spec.rq_retry()
        assert 1 <= spec.attempts <= 10 and 0 < spec.timeout < 300, kind
        assert (retry.max if retry else 0) == spec.attempts - 1, kind
    assert spec_for("recording.fetch").queue == spec_for("callback.place").queue == "slow"
    assert spec_for("case.notify").queue == "urgent"


def test_a_slow_kind_goes_to_the_slow_queue_whatever_the_caller_asks(res) -> None:
    load_handlers()
    with res.db.Session() as s:
        job = add_job(s, "recording.fetch", {"recording_id": 1}, queue="urgent")
        s.commit()
    assert job.queue == "slow" and queued(res, "slow") == [f"outbox-{job.id}"] and queued(res, "urgent") == []


# -- the slow queue -----------------------------------------------------------------------------------

def test_a_lawyer_alert_never_waits_behind_a_slow_download(res, settings, kinds) -> None:
    @handler("test.download", queue="slow", timeout=30, attempts=1)
    def _download(res: Resources, s, job: OutboxJob) -> None:  # type: ignore[no-untyped-def]
        # A download that lasts until the alert has gone out: behind it, on one worker, the alert
        # would wait for ever (here: 10 s, then this job fails).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with res.db.Session() as other:
                if other.scalar(sa.select(OutboxJob.status).where(OutboxJob.kind == "test.alert")) == "done":
                    return
            time.sleep(0.05)
        raise AssertionError("the alert waited behind the download")

    register_audit(kinds, "test.alert", queue="urgent")
    kinds.append("test.download")
    with res.db.Session() as s:
        add_job(s, "test.download", {})
        s.commit()
    with res.db.Session() as s:
        add_job(s, "test.alert", {"n": 1}, queue="urgent")
        s.commit()
    run_worker_burst(settings)
    assert [(r.kind, r.status) for r in rows(res)] == [("test.download", "done"), ("test.alert", "done")]


# -- periodic duties without Redis ------------------------------------------------------------------

def test_cases_go_overdue_and_escalate_while_redis_is_away(settings) -> None:
    down = Resources(settings.with_(redis_url="redis://127.0.0.1:1/0"))
    try:
        with down.db.session() as s:
            case, _ = intake.open_case(s, caller=None, source="sms", source_sid="SM-away",
                                       priority=CasePriority.URGENT, country="TH")
            s.flush()
            case_id = case.id
        with down.db.session() as s:
            s.execute(sa.update(Case).values(created_at=utcnow() - timedelta(minutes=20),
                                             notified_at=utcnow() - timedelta(minutes=20)))
        tick(down)  # the sweep fails on Redis; the duties run all the same
        with down.db.Session() as s:
            case = s.get(Case, case_id)
            assert case is not None and case.overdue and case.escalation_level == 1
            levels = s.scalars(sa.select(OutboxJob.payload).where(OutboxJob.case_id == case_id)).all()
            assert [p.get("level", 0) for p in levels] == [0, 1]  # waiting in the outbox for Redis
    finally:
        down.close()


# -- operators ------------------------------------------------------------------------------------------

def test_failed_jobs_are_listed_and_retried_by_hand(res, settings, kinds, monkeypatch, tmp_path: Path) -> None:
    broken = {"on": True}

    @handler("test.flaky", attempts=1)
    def _flaky(res: Resources, s, job: OutboxJob) -> None:  # type: ignore[no-untyped-def]
        if broken["on"]:
            raise ValueError("template missing")
        s.add(AuditEvent(action="test.ran", object_id="fixed"))
        s.commit()

    kinds.append("test.flaky")
    with res.db.Session() as s:
        job = add_job(s, "test.flaky", {})
        s.commit()
    run_worker_burst(settings)
    env = {"DATABASE_URL": settings.database_url, "REDIS_URL": settings.redis_url,
           "HOTLINE_INSTANCE": str(tmp_path / "instance")}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    runner = CliRunner()
    out = runner.invoke(cli, ["jobs", "list", "--failed"])
    assert out.exit_code == 0, out.output
    assert f"{job.id}" in out.output and "test.flaky" in out.output and "ValueError: template missing" in out.output
    assert "rq=finished" in out.output

    broken["on"] = False
    out = runner.invoke(cli, ["jobs", "retry", str(job.id)])
    assert out.exit_code == 0, out.output
    assert queued(res, "default") == [f"outbox-{job.id}"]
    run_worker_burst(settings)
    assert audits(res) == ["fixed"] and rows(res)[0].status == OutboxStatus.DONE
    assert "no failed jobs" in runner.invoke(cli, ["jobs", "list", "--failed"]).output
    out = runner.invoke(cli, ["jobs", "retry", str(job.id)])
    assert out.exit_code != 0 and "not failed" in out.output


# -- health ------------------------------------------------------------------------------------------------

def get(url: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    import json

    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - local
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.mark.slow
def test_an_idle_worker_stays_healthy_all_night_and_a_dead_one_is_named(settings: Settings, tmp_path: Path) -> None:
    """An idle RQ worker blocks in BLPOP and heartbeats only every few minutes; the worker's own loop
    beats every tick. With a 1 s tick, 8 s idle stands for a quiet night."""
    own = settings.with_(worker_tick_seconds=1)
    web = Web(own, tmp_path / "web.log")
    worker = start_worker(web.settings, tmp_path / "worker.log")
    try:
        wait_for(lambda: get(web.url + "/healthz/ready")[0] == 200, 30, f"a ready worker ({worker.log})")
        started = time.monotonic()
        while time.monotonic() - started < 8:  # idle: no job at all
            assert get(web.url + "/healthz")[0] == 200
            status, body = get(web.url + "/healthz/ready")
            assert status == 200, body
            time.sleep(0.5)
        assert body["workers"] == 2  # the fast worker and the slow one
        # RQ's own heartbeat has gone stale meanwhile: a window on it would have called this worker dead.
        from rq import Worker

        beats = [w.last_heartbeat for w in Worker.all(connection=Redis.from_url(own.redis_url))]
        assert beats and all(b is not None and utcnow() - b > timedelta(seconds=5) for b in beats)

        worker.kill()  # SIGKILL: no goodbye written
        wait_for(lambda: get(web.url + "/healthz/ready")[0] == 503, 10, "readiness to notice the dead worker")
        status, body = get(web.url + "/healthz/ready")
        assert body["down"] == ["worker"] and "hotline worker" in body["checks"]["worker"]
        assert get(web.url + "/healthz")[0] == 200  # liveness: this web process is fine
    finally:
        worker.stop()
        web.stop()



# -- an external Redis (CI's second suite) ------------------------------------------------------------

def test_a_job_goes_through_the_redis_named_by_redis_url(settings: Settings, external_redis_url: str,
                                                           kinds) -> None:
    register_audit(kinds)
    own = settings.with_(redis_url=external_redis_url)
    res = Resources(own)
    try:
        with res.db.Session() as s:
            job = add_job(s, "test.audit", {"n": 9})
            s.commit()
        assert queued(res, "default") == [f"outbox-{job.id}"]
        run_worker_burst(own)
        assert audits(res) == ["9"]
    finally:
        res.close()


@pytest.mark.slow
def test_a_stopped_worker_exits_at_once_and_says_goodbye(settings: Settings, tmp_path: Path) -> None:
    own = settings.with_(worker_tick_seconds=1)
    web = Web(own, tmp_path / "web.log")
    worker = start_worker(web.settings, tmp_path / "worker.log", queues="slow")
    try:
        wait_for(lambda: get(web.url + "/healthz/ready")[1].get("workers") == 1, 30, f"the worker ({worker.log})")
        assert "urgent" in get(web.url + "/healthz/ready")[1]["checks"]["worker"]  # nobody takes urgent
        worker.proc.send_signal(signal.SIGTERM)
        assert worker.wait(10) == 0
        assert get(web.url + "/healthz/ready")[1]["workers"] == 0  # at once, not three ticks later
        # Stopped while still starting, before RQ has taken over the signals (it forks its scheduler
        # then): the request is kept for its loop, and it exits cleanly instead of hanging.
        early = start_worker(web.settings, tmp_path / "worker-early.log")
        wait_for(lambda: "started with PID" in early.output(), 30, "the worker to start", every=0.005)
        early.proc.send_signal(signal.SIGTERM)
        assert early.wait(15) == 0, early.output()[-2000:]
        early.stop()
    finally:
        worker.stop()
        web.stop()


def test_worker_refuses_an_unknown_queue_name() -> None:
    out = CliRunner().invoke(cli, ["worker", "--queues", "urgent,fast"])
    assert out.exit_code == 2 and "urgent, default, low, slow" in out.output
