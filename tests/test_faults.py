"""Fault suite: the hotline's real processes (gunicorn web, `python -m hotline worker`) while a part
fails. Callers must still hear the next prompt, and nothing reported may be lost or sent twice.

- Redis stopped mid-traffic: calls go on; an urgent case is stored and reaches the lawyer once Redis
  is back.
- Worker SIGKILLed mid-send (Twilio accepted, we never heard): after a restart, one SMS, not two.
- PostgreSQL connections dropped (as in a server restart): web and worker recover by themselves.
- Twilio REST timing out, 429, 5xx: retried with backoff, delivered once; invalid or opted-out
  numbers: failed at once, the reason on the case.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from redis import Redis
from rq import Queue
from rq.registry import ScheduledJobRegistry
from rq.serializers import JSONSerializer

from hotline.background import runner as jobs
from hotline.db import Database, utcnow
from hotline.embedded import EmbeddedRedis
from hotline.models import Call, Case, CasePriority, Message, MessageStatus, OutboxJob, OutboxStatus
from hotline.resources import Resources
from hotline.services import callers, intake
from hotline.settings import Settings
from hotline.telephony.transport import SendError
from tests.conftest import ENV_DB, new_call_sid, run_worker_burst
from tests.test_faults_support import Web, start_worker, wait_for

pytestmark = pytest.mark.slow
KH_LAWYER = "+85512345001"  # the on-call number for Cambodian cases in the test settings
MESSAGES_POST = "/Messages.json"


def voice(sid: str, from_: str, **extra: str) -> dict[str, str]:
    return {"AccountSid": "AC" + "1" * 32, "CallSid": sid, "From": from_, "Caller": from_, "To": "+85523000000",
            "Called": "+85523000000", "CallStatus": "in-progress", "Direction": "inbound", **extra}


def sms(body: str, from_: str, sid: str) -> dict[str, str]:
    return {"AccountSid": "AC" + "1" * 32, "MessageSid": sid, "SmsSid": sid, "From": from_, "To": "+85523000000",
            "Body": body, "NumMedia": "0"}


def assert_prompt(status: int, twiml: str) -> ET.Element:
    """A real next step: 200, TwiML, and not the apology a broken step falls back to."""
    assert status == 200, twiml[:500]
    root = ET.fromstring(twiml)
    assert root.tag == "Response"
    assert "system_error" not in twiml, f"the caller heard the apology:\n{twiml}"
    return root


def gather_action(root: ET.Element, base: str) -> str | None:
    for el in root.iter("Gather"):
        return (el.get("action") or "/twilio/voice").removeprefix(base)
    return None


def lawyer_alerts(fake) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    return fake.sms_to(KH_LAWYER)


def case_ref_of(settings: Settings, message_sid: str) -> str:
    d = Database(settings.database_url)
    try:
        with d.Session() as s:
            case = s.scalar(sa.select(Case).where(Case.source_sid == message_sid))
            assert case is not None, f"no case stored for {message_sid}"
            assert case.priority == CasePriority.URGENT
            return case.ref
    finally:
        d.dispose()


# -- Redis stopped mid-traffic ----------------------------------------------------------------------

@pytest.fixture
def private_redis() -> Iterator[EmbeddedRedis]:
    """A redis-server of this test's own (a short folder: unix socket paths are limited to ~100 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="hl-faults-", dir="/tmp"))
    server = EmbeddedRedis(folder).start()
    yield server
    stop_redis(server)
    shutil.rmtree(folder, ignore_errors=True)


def stop_redis(server: EmbeddedRedis) -> None:
    """SIGTERM: redis-server saves its data and exits, as in a restart or a crash-free outage."""
    if server.proc is not None:
        server.proc.terminate()
        server.proc.wait(10)
        server.proc = None


def test_redis_stopped_mid_traffic_calls_go_on_and_the_urgent_case_reaches_the_lawyer_after(
        rest_settings: Settings, fake_twilio, private_redis: EmbeddedRedis, tmp_path: Path) -> None:
    own = rest_settings.with_(redis_url=private_redis.url)
    web = Web(own, tmp_path / "web.log", workers=2)
    worker = start_worker(web.settings, tmp_path / "worker.log")
    try:
        # Before: an urgent SMS reaches the lawyer through Redis and the worker.
        assert web.post("/twilio/sms", sms("SOS", "+85512398001", "SM" + "a" * 32))[0] == 200
        wait_for(lambda: len(lawyer_alerts(fake_twilio)) == 1, 30, "the first alert")

        stop_redis(private_redis)
        # During: every caller still hears the next prompt, and can go on pressing keys.
        for i in range(6):
            sid = new_call_sid()
            root = assert_prompt(*web.post("/twilio/voice", voice(sid, f"+8551239801{i}")))
            action = gather_action(root, web.url)
            if action:
                assert_prompt(*web.post(action, voice(sid, f"+8551239801{i}", Digits="1")))
        # ... and an urgent SMS sent now is stored, with its job, although nothing can be queued.
        assert web.post("/twilio/sms", sms("SOS", "+85512398002", "SM" + "b" * 32))[0] == 200
        ref = case_ref_of(own, "SM" + "b" * 32)
        assert len(lawyer_alerts(fake_twilio)) == 1

        # After: Redis is back; the worker's sweeper finds the stored job and the lawyer is texted, once.
        private_redis.start()
        wait_for(lambda: any(ref in m["Body"] for m in lawyer_alerts(fake_twilio)), 90,
                 f"the alert for {ref} after Redis returned (worker log: {worker.log})", every=0.2)
        assert web.post("/twilio/voice", voice(new_call_sid(), "+85512398020"))[0] == 200
    finally:
        worker.stop()
        web.stop()
    alerts = lawyer_alerts(fake_twilio)
    assert len(alerts) == 2 and sum(ref in m["Body"] for m in alerts) == 1
    assert " 500 " not in web.output()


# -- Worker SIGKILLed mid-job -----------------------------------------------------------------------

def open_urgent_case(settings: Settings, caller_phone: str = "+85512398100") -> int:
    res = Resources(settings)
    from hotline.background import outbox

    outbox.install(res.db, res.redis)
    try:
        with res.db.session() as s:
            caller = callers.get_or_create(s, caller_phone)
            case, _ = intake.open_case(s, caller=caller, source="sms", source_sid="SM" + new_call_sid()[2:],
                                       priority=CasePriority.URGENT, country="KH")
            s.flush()
            return case.id
    finally:
        res.close()


def test_worker_killed_mid_send_completes_after_restart_and_the_lawyer_gets_one_sms(
        rest_settings: Settings, fake_twilio, tmp_path: Path) -> None:
    case_id = open_urgent_case(rest_settings)
    fake_twilio.delay = 2.0  # Twilio is slow to answer: the worker dies waiting for the sid
    worker = start_worker(rest_settings, tmp_path / "worker1.log")
    wait_for(lambda: any(m == "POST" and p.endswith(MESSAGES_POST) for m, p in fake_twilio.requests), 30,
             "the worker's send to reach Twilio")
    worker.kill()  # SIGKILL, worker and work-horse
    wait_for(lambda: len(fake_twilio.messages) == 1, 10, "Twilio to accept the message all the same")
    fake_twilio.delay = 0.0

    d = Database(rest_settings.database_url)
    try:
        with d.Session() as s:
            assert s.scalar(sa.select(OutboxJob.status).where(OutboxJob.case_id == case_id)) == OutboxStatus.RUNNING
            # The dead worker's lease runs out (5 minutes; we move the clock rather than wait).
            s.execute(sa.update(OutboxJob).values(claimed_at=utcnow() - timedelta(minutes=6)))
            s.commit()
        restarted = start_worker(rest_settings, tmp_path / "worker2.log")
        try:
            def done() -> bool:
                with d.Session() as s:
                    return s.scalar(sa.select(OutboxJob.status).where(OutboxJob.case_id == case_id)) \
                        == OutboxStatus.DONE
            wait_for(done, 60, f"the job to complete after the restart (log: {restarted.log})", every=0.2)
        finally:
            restarted.stop()
        [alert] = lawyer_alerts(fake_twilio)  # one SMS, not two
        with d.Session() as s:
            msg = s.scalar(sa.select(Message).where(Message.case_id == case_id))
            assert msg is not None and (msg.sid, msg.status) == (alert["sid"], MessageStatus.SENT)
    finally:
        d.dispose()


# -- PostgreSQL restarted ---------------------------------------------------------------------------

def with_app_name(url: str, name: str) -> str:
    return url + ("&" if "?" in url else "?") + f"application_name={name}"


def terminate_backends(database_url: str, app_name: str) -> int:
    """What a PostgreSQL restart does to the hotline: every one of its sessions is ended at once.

    Only the sessions of this test's processes (by application_name) are ended, never the server."""
    engine = sa.create_engine(database_url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            n = conn.scalar(sa.text("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                    "WHERE datname = current_database() AND application_name = :name"),
                            {"name": app_name})
    finally:
        engine.dispose()
    return int(n or 0)


@pytest.mark.skipif(not ENV_DB, reason="PostgreSQL backend only (DATABASE_URL=postgresql://...): "
                                       "SQLite has no server connections to lose")
def test_postgres_connections_dropped_web_and_worker_recover_without_a_restart(
        rest_settings: Settings, fake_twilio, tmp_path: Path) -> None:
    app_name = "hotline-fault-" + new_call_sid()[-8:]
    own = rest_settings.with_(database_url=with_app_name(rest_settings.database_url, app_name))
    web = Web(own, tmp_path / "web.log", workers=2)
    worker = start_worker(web.settings, tmp_path / "worker.log")
    try:
        for _ in range(4):  # every web process has a pooled connection now
            assert_prompt(*web.post("/twilio/voice", voice(new_call_sid(), "+85512398200")))
        assert web.post("/twilio/sms", sms("SOS", "+85512398201", "SM" + "c" * 32))[0] == 200
        wait_for(lambda: len(lawyer_alerts(fake_twilio)) == 1, 30, "the first alert")

        assert terminate_backends(rest_settings.database_url, app_name) >= 2

        sid = new_call_sid()
        for _ in range(4):
            assert_prompt(*web.post("/twilio/voice", voice(sid, "+85512398202")))
        assert web.post("/twilio/sms", sms("SOS", "+85512398203", "SM" + "d" * 32))[0] == 200
        ref = case_ref_of(rest_settings, "SM" + "d" * 32)
        wait_for(lambda: any(ref in m["Body"] for m in lawyer_alerts(fake_twilio)), 30,
                 f"the alert for {ref} (worker log: {worker.log})", every=0.1)
        d = Database(rest_settings.database_url)
        with d.Session() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(Call).where(Call.call_sid == sid)) == 1
        d.dispose()
        assert web.process.alive() and worker.alive()  # recovered by themselves
    finally:
        worker.stop()
        web.stop()
    assert " 500 " not in web.output() and "step failed" not in web.output()


# -- Twilio REST failures ---------------------------------------------------------------------------

def scheduled_retries(settings: Settings) -> dict[str, datetime]:
    redis = Redis.from_url(settings.redis_url or "")
    registry = ScheduledJobRegistry("urgent", connection=redis, serializer=JSONSerializer)
    return {job_id: registry.get_scheduled_time(job_id) for job_id in registry.get_job_ids()}


def run_due_retries(settings: Settings) -> None:
    """Run the retries RQ scheduled (what the worker's scheduler does when each is due), then the queue."""
    redis = Redis.from_url(settings.redis_url or "")
    queue = Queue("urgent", connection=redis, serializer=JSONSerializer)
    registry = ScheduledJobRegistry("urgent", connection=redis, serializer=JSONSerializer)
    for job_id in registry.get_job_ids():
        registry.requeue(job_id)
    assert queue.count >= 1
    run_worker_burst(settings)


def outbox_row(settings: Settings, case_id: int) -> tuple[OutboxJob, Case]:
    d = Database(settings.database_url)
    try:
        with d.Session() as s:
            job = s.scalar(sa.select(OutboxJob).where(OutboxJob.case_id == case_id))
            case = s.get(Case, case_id)
            assert job is not None and case is not None
            s.expunge_all()
            return job, case
    finally:
        d.dispose()


@pytest.mark.parametrize("status,code", [(500, 20500), (503, 503), (429, 20429)])
def test_twilio_5xx_and_429_are_retried_with_backoff_and_delivered_once(rest_settings: Settings, fake_twilio,
                                                                        status: int, code: int) -> None:
    case_id = open_urgent_case(rest_settings)
    fake_twilio.fail_next(2, status=status, code=code)

    t0 = datetime.now(UTC)
    run_worker_burst(rest_settings)  # a real RQ worker: the send fails, RQ schedules a retry
    [(job_key, first_retry)] = scheduled_retries(rest_settings).items()
    job, case = outbox_row(rest_settings, case_id)
    assert job_key == f"outbox-{job.id}" and job.status == OutboxStatus.PENDING and job.attempts == 1
    assert timedelta(seconds=3) <= first_retry - t0 <= timedelta(seconds=20)  # backoff, not at once
    assert case.last_error is not None and f"Twilio {status}/{code}" in case.last_error

    run_due_retries(rest_settings)  # fails again: the next wait is longer
    [second_retry] = scheduled_retries(rest_settings).values()
    assert second_retry - datetime.now(UTC) >= timedelta(seconds=10)
    run_due_retries(rest_settings)  # Twilio is fine now

    job, case = outbox_row(rest_settings, case_id)
    assert (job.status, job.attempts, case.last_error) == (OutboxStatus.DONE, 3, None)
    assert len(lawyer_alerts(fake_twilio)) == 1
    assert scheduled_retries(rest_settings) == {}


def test_twilio_timeout_is_retried_and_a_message_twilio_did_accept_is_not_sent_again(
        rest_settings: Settings, fake_twilio) -> None:
    case_id = open_urgent_case(rest_settings)
    fake_twilio.delay = 11.0  # longer than the REST client's 10 s timeout; Twilio still accepts it
    res = Resources(rest_settings)
    try:
        job, _ = outbox_row(rest_settings, case_id)
        with pytest.raises(SendError, match="unreachable"):  # raised for RQ to retry
            jobs.run(res, job.id)
        job, case = outbox_row(rest_settings, case_id)
        assert job.status == OutboxStatus.PENDING and case.last_error and "retrying" in case.last_error
        wait_for(lambda: len(fake_twilio.messages) == 1, 10, "Twilio to accept the slow message")
        fake_twilio.delay = 0.0
        assert jobs.run(res, job.id) == "done"  # the retry asks Twilio first, and finds it
    finally:
        res.close()
    assert len(lawyer_alerts(fake_twilio)) == 1


@pytest.mark.parametrize("code,reason", [(21610, "opted out"), (21211, "invalid 'To' number"),
                                         (21614, "not a mobile number")])
def test_invalid_or_opted_out_number_fails_at_once_with_the_reason_on_the_case(rest_settings: Settings,
                                                                               fake_twilio, code: int,
                                                                               reason: str) -> None:
    case_id = open_urgent_case(rest_settings)
    fake_twilio.fail_next(1, status=400, code=code, message="refused")
    run_worker_burst(rest_settings)
    job, case = outbox_row(rest_settings, case_id)
    assert (job.status, job.attempts) == (OutboxStatus.FAILED, 1)  # no retry
    assert scheduled_retries(rest_settings) == {}
    assert case.last_error is not None and reason in case.last_error and str(code) in case.last_error
    d = Database(rest_settings.database_url)
    with d.Session() as s:
        msg = s.scalar(sa.select(Message).where(Message.case_id == case_id))
        assert msg is not None and (msg.status, msg.error_code) == (MessageStatus.FAILED, str(code))
    d.dispose()
    assert fake_twilio.messages == []


def test_the_failure_reason_is_shown_on_the_case_page(rest_settings: Settings, fake_twilio, client, db) -> None:
    from tests.test_console import login, make_staff

    case_id = open_urgent_case(rest_settings)
    fake_twilio.fail_next(1, status=400, code=21610, message="refused")
    run_worker_burst(rest_settings)
    make_staff(db)
    assert login(client).status_code in (302, 303)
    page = client.get(f"/staff/cases/{case_id}").get_data(as_text=True)
    assert re.search(r"opted out", page), "the case page does not show why the alert failed"
