"""Nothing is lost between the webhook and the lawyer: Redis down during intake, a worker killed mid-send."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from hotline import create_app
from hotline.background.worker import sweep_once
from hotline.db import utcnow
from hotline.embedded import EmbeddedRedis
from hotline.models import Message, OutboxJob, OutboxStatus
from hotline.resources import resources_of
from tests.conftest import run_worker_burst
from tests.test_legal_aid import TH_FIRST, open_case, retry_due_jobs


def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def stop_quickly(server: EmbeddedRedis) -> None:
    """SIGTERM (redis-server saves and exits); EmbeddedRedis.stop() waits ~4 s on redis-py's retries."""
    if server.proc is not None:
        server.proc.terminate()
        server.proc.wait(10)
        server.proc = None


def test_redis_stopped_during_intake_the_case_still_reaches_the_lawyer(settings, fake_twilio) -> None:
    # A private redis-server we may stop (a short path: unix socket paths are limited to ~100 bytes).
    folder = Path(tempfile.mkdtemp(prefix="hl-", dir="/tmp"))
    server = EmbeddedRedis(folder).start()
    own = settings.with_(redis_url=server.url)
    app = create_app(own, TESTING=True)
    res = resources_of(app)
    try:
        stop_quickly(server)
        case_id = open_case(res)  # commits; the enqueue after commit fails quietly
        with res.db.Session() as s:
            assert s.scalar(sa.select(OutboxJob.status).where(OutboxJob.case_id == case_id)) == OutboxStatus.PENDING

        server = EmbeddedRedis(folder).start()
        assert retry_due_jobs(res) == 1  # the worker's sweeper finds the row
        run_worker_burst(own.with_(twilio_rest_enabled=True, twilio_api_base_url=fake_twilio.url))

        assert [m["To"] for m in fake_twilio.messages] == [TH_FIRST]
        with res.db.Session() as s:
            assert s.scalar(sa.select(OutboxJob.status)) == OutboxStatus.DONE
    finally:
        res.close()
        stop_quickly(server)
        shutil.rmtree(folder, ignore_errors=True)


def _children(pid: int) -> list[int]:
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def kill_worker(pid: int) -> None:
    """SIGKILL the worker and its work-horse (RQ puts the horse in a session of its own)."""
    for child in _children(pid):
        os.kill(child, signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)


def test_worker_killed_mid_send_completes_after_restart_and_texts_once(res, db, rest_settings,
                                                                        fake_twilio) -> None:
    open_case(res)
    fake_twilio.delay = 1.5  # Twilio answers slowly: the worker dies while waiting for the sid
    proc = multiprocessing.get_context("fork").Process(target=run_worker_burst, args=(rest_settings,))
    proc.start()
    wait_until(lambda: ("POST", f"/2010-04-01/Accounts/{fake_twilio.account_sid}/Messages.json")
               in fake_twilio.requests)
    kill_worker(proc.pid)
    proc.join(10)
    wait_until(lambda: len(fake_twilio.messages) == 1)  # Twilio accepted it all the same
    fake_twilio.delay = 0.0

    msg = db.scalar(sa.select(Message))
    assert (msg.status, msg.sid) == ("sending", None)  # we never learnt the sid
    assert db.scalar(sa.select(OutboxJob.status)) == OutboxStatus.RUNNING

    # After the lease, the sweeper of a restarted worker takes the job again.
    db.execute(sa.update(OutboxJob).values(claimed_at=utcnow() - timedelta(minutes=6)))
    db.commit()
    assert sweep_once(res) == 1
    run_worker_burst(rest_settings)

    [sms] = fake_twilio.sms_to(TH_FIRST)
    db.expire_all()
    msg = db.scalar(sa.select(Message))
    assert (msg.sid, msg.status) == (sms["sid"], "sent")
    assert db.scalar(sa.select(OutboxJob.status)) == OutboxStatus.DONE
