"""The ground everything stands on: settings, signatures, schema check, health, transport, outbox."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from redis import Redis
from rq import Queue, Worker
from rq.serializers import JSONSerializer

from hotline import create_app
from hotline.background.outbox import add_job, sweep
from hotline.background.runner import HANDLERS, handler
from hotline.background.worker import beat
from hotline.db import SchemaNotReady, upgrade
from hotline.models import AuditEvent, Call, Message, OutboxJob, OutboxStatus, StaffUser
from hotline.phones import mask, mask_all, to_e164
from hotline.resources import Resources, resources_of
from hotline.settings import SettingsError, load_settings
from hotline.telephony.transport import LocalTransport, SendError, TwilioTransport
from tests.conftest import PUBLIC, new_call_sid, run_worker_burst

TWILIO_ROUTES = ["/twilio/voice", "/twilio/voice/status", "/twilio/sms", "/twilio/sms/status"]


# -- settings -----------------------------------------------------------------------------------

def test_production_refuses_to_start_without_secrets(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({"HOTLINE_ENV": "production", "HOTLINE_INSTANCE": str(tmp_path)})
    text = str(err.value)
    for name in ("TWILIO_AUTH_TOKEN", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL", "RECORDING_KEY"):
        assert name in text


def test_embedded_secrets_are_generated_once_and_kept(tmp_path: Path) -> None:
    env = {"HOTLINE_INSTANCE": str(tmp_path)}
    first, second = load_settings(env), load_settings(env)
    assert first.secret_key and first.secret_key == second.secret_key
    assert first.twilio_auth_token == second.twilio_auth_token
    assert not first.twilio_rest_enabled  # generated credentials never reach Twilio
    assert first.database_url == f"sqlite:///{tmp_path / 'hotline.db'}"
    assert first.embedded_redis
    assert (tmp_path / "secrets.json").stat().st_mode & 0o077 == 0


def test_secret_can_come_from_a_file(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("from-a-file\n")
    s = load_settings({"HOTLINE_INSTANCE": str(tmp_path), "TWILIO_AUTH_TOKEN_FILE": str(tmp_path / "token"),
                       "TWILIO_ACCOUNT_SID": "AC" + "2" * 32})
    assert s.twilio_auth_token == "from-a-file" and s.twilio_rest_enabled


def test_bad_values_are_all_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({"HOTLINE_INSTANCE": str(tmp_path), "HOTLINE_ONCALL": "+66 not a number",
                       "HOTLINE_TIMEZONE": "Mars/Olympus", "REDIS_URL": "http://x"})
    text = str(err.value)
    assert "HOTLINE_ONCALL" in text and "HOTLINE_TIMEZONE" in text and "REDIS_URL" in text


def test_oncall_numbers_serve_their_own_country(tmp_path: Path) -> None:
    s = load_settings({"HOTLINE_INSTANCE": str(tmp_path),
                       "HOTLINE_ONCALL": "+66812345001, KH:+85512345001,+66812345002",
                       "DATABASE_URL": "postgres://u@h/db"})
    assert s.oncall_for("TH") == ["+66812345001", "+66812345002"]
    assert s.oncall_for("KH") == ["+85512345001"]
    assert s.oncall_for("MY") == ["+66812345001", "+85512345001", "+66812345002"]
    assert s.database_url == "postgresql+psycopg://u@h/db"


# -- signatures ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", TWILIO_ROUTES)
def test_unsigned_request_is_refused(client, path: str) -> None:
    resp = client.post(path, data={"CallSid": new_call_sid(), "From": "+85512345678"})
    assert resp.status_code == 403


@pytest.mark.parametrize("path", TWILIO_ROUTES)
def test_wrongly_signed_request_is_refused(twilio, path: str) -> None:
    resp = twilio.post(path, twilio.voice_params(new_call_sid()), signature="L/OH5YylLD5NRKLltdqwSvS0BnU=")
    assert resp.status_code == 403


def test_tampered_parameter_is_refused(twilio, client) -> None:
    params = twilio.voice_params(new_call_sid())
    good = twilio.post("/twilio/voice", params)
    assert good.status_code == 200
    from hotline.telephony.signature import sign

    sig = sign(twilio.auth_token, PUBLIC + "/twilio/voice", params)
    resp = client.post("/twilio/voice", data={**params, "From": "+66999999999"}, headers={"X-Twilio-Signature": sig})
    assert resp.status_code == 403


def test_signed_call_gets_twiml_and_is_stored(twilio, db) -> None:
    sid = new_call_sid()
    resp = twilio.post("/twilio/voice", twilio.voice_params(sid))
    assert resp.status_code == 200
    assert resp.mimetype == "text/xml"
    assert resp.data.startswith(b'<?xml version="1.0" encoding="UTF-8"?><Response>')
    assert db.scalar(sa.select(Call).where(Call.call_sid == sid)) is not None


def test_signature_checked_against_public_url_not_internal_one(twilio, client) -> None:
    """Behind a proxy the app sees http://internal; Twilio signed the public https URL."""
    params = twilio.voice_params(new_call_sid())
    from hotline.telephony.signature import sign

    internal_sig = sign(twilio.auth_token, "http://localhost/twilio/voice", params)
    assert client.post("/twilio/voice", data=params, headers={"X-Twilio-Signature": internal_sig}).status_code == 403


@pytest.mark.parametrize("proxies,expected", [(1, 200), (0, 403)])
def test_proxy_headers_rebuild_the_url_only_from_a_trusted_proxy(settings, proxies: int, expected: int) -> None:
    # With no PUBLIC_BASE_URL the signed URL is rebuilt from X-Forwarded-*, but only when TRUSTED_PROXIES
    # says a proxy set them; otherwise anyone could choose the URL (and address) the app believes.
    app = create_app(settings.with_(public_base_url="", trusted_proxies=proxies), TESTING=True)
    from hotline.telephony.signature import sign

    params = {"CallSid": new_call_sid(), "From": "+85512345678", "To": "+85523000000"}
    sig = sign(settings.twilio_auth_token, "https://public.example.org/twilio/voice/status", params)
    resp = app.test_client().post("/twilio/voice/status", data=params, headers={
        "X-Twilio-Signature": sig, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "public.example.org"})
    assert resp.status_code == expected
    resources_of(app).close()


def test_status_callback_for_unknown_sid_is_answered(twilio) -> None:
    resp = twilio.post("/twilio/sms/status", {"MessageSid": "SMunknown", "MessageStatus": "delivered"})
    assert resp.status_code == 200


def test_sms_status_callback_updates_the_message(twilio, db) -> None:
    db.add(Message(sid="SMabc", direction="outbound", peer="+66812345001", body="x", status="sent"))
    db.commit()
    resp = twilio.post("/twilio/sms/status", {"MessageSid": "SMabc", "MessageStatus": "undelivered",
                                              "ErrorCode": "30003"})
    assert resp.status_code == 200
    db.expire_all()
    msg = db.scalar(sa.select(Message).where(Message.sid == "SMabc"))
    assert (msg.status, msg.error_code) == ("undelivered", "30003")


# -- schema -------------------------------------------------------------------------------------

def test_unmigrated_database_is_refused_with_the_command_to_run(settings, tmp_path: Path) -> None:
    with pytest.raises(SchemaNotReady, match="hotline db upgrade"):
        create_app(settings.with_(database_url=f"sqlite:///{tmp_path / 'empty.db'}"))


def test_db_upgrade_is_idempotent(settings) -> None:
    upgrade(settings.database_url)
    upgrade(settings.database_url)
    create_app(settings)  # still current


# -- health -------------------------------------------------------------------------------------

def test_health_names_the_missing_worker_in_readiness_not_liveness(client) -> None:
    assert client.get("/healthz").status_code == 200  # no worker: this process is still fine
    resp = client.get("/healthz/ready")
    assert resp.status_code == 503
    assert resp.json["checks"]["database"] == "ok" and resp.json["checks"]["redis"] == "ok"
    assert resp.json["checks"]["worker"].startswith("down") and resp.json["down"] == ["worker"]


def test_health_is_ready_with_a_live_worker_on_every_queue(client, settings) -> None:
    worker = Worker(["urgent", "default", "low", "slow"], connection=Redis.from_url(settings.redis_url),
                    serializer=JSONSerializer)
    beat(Redis.from_url(settings.redis_url), [worker], ttl=30)
    resp = client.get("/healthz/ready")
    assert resp.status_code == 200, resp.json
    assert resp.json["workers"] == 1


def test_readiness_names_a_queue_no_worker_takes(client, settings) -> None:
    worker = Worker(["urgent", "default", "low"], connection=Redis.from_url(settings.redis_url),
                    serializer=JSONSerializer)
    beat(Redis.from_url(settings.redis_url), [worker], ttl=30)
    resp = client.get("/healthz/ready")
    assert resp.status_code == 503 and "slow" in resp.json["checks"]["worker"]


def test_health_names_redis_when_it_is_down(settings) -> None:
    app = create_app(settings.with_(redis_url="redis://127.0.0.1:1/0"), TESTING=True)
    assert app.test_client().get("/healthz").status_code == 200
    resp = app.test_client().get("/healthz/ready")
    assert resp.status_code == 503
    assert resp.json["checks"]["redis"].startswith("down") and resp.json["checks"]["database"] == "ok"
    assert resp.json["down"] == ["redis", "worker"]


# -- transport ----------------------------------------------------------------------------------

def test_twilio_transport_sends_through_the_rest_api(rest_settings, fake_twilio) -> None:
    sent = TwilioTransport(rest_settings).send_sms("+66812345001", "ref K1", status_callback=PUBLIC + "/s")
    assert sent.sid.startswith("SM") and sent.provider == "twilio"
    [msg] = fake_twilio.messages
    assert (msg["To"], msg["From"], msg["Body"], msg["StatusCallback"]) == (
        "+66812345001", "+85523000000", "ref K1", PUBLIC + "/s")


@pytest.mark.parametrize("status,code,transient", [(500, 20500, True), (503, 503, True), (429, 20429, True),
                                                   (400, 21610, False), (400, 21211, False)])
def test_twilio_errors_are_sorted_transient_or_permanent(rest_settings, fake_twilio, status, code,
                                                         transient) -> None:
    fake_twilio.fail_next(1, status=status, code=code)
    with pytest.raises(SendError) as err:
        TwilioTransport(rest_settings).send_sms("+66812345001", "x")
    assert err.value.transient is transient
    assert err.value.code == str(code)


def test_twilio_timeout_is_transient(rest_settings, fake_twilio) -> None:
    fake_twilio.delay = 1.0
    with pytest.raises(SendError) as err:
        TwilioTransport(rest_settings, timeout=0.2).send_sms("+66812345001", "x")
    assert err.value.transient


def test_call_is_placed_with_answering_machine_detection(rest_settings, fake_twilio) -> None:
    TwilioTransport(rest_settings).place_call("+66812345001", url=PUBLIC + "/x", status_callback=PUBLIC + "/st")
    [call] = fake_twilio.calls
    assert call["MachineDetection"] == "Enable" and call["From"] == "+85523000000"
    assert call["StatusCallbackEvent"] == "initiated,answered,completed"


def test_local_transport_sends_nothing_out() -> None:
    sent = LocalTransport().send_sms("+66812345001", "x")
    assert sent.provider == "local" and sent.sid.startswith("SM")


# -- outbox -------------------------------------------------------------------------------------

@pytest.fixture
def audit_handler():
    @handler("test.audit")
    def _audit(res: Resources, s, job: OutboxJob) -> None:
        s.add(AuditEvent(action="test.ran", object_id=str(job.payload["n"])))
        s.commit()

    yield
    HANDLERS.pop("test.audit", None)


def test_job_is_enqueued_only_after_commit_and_run_by_a_real_worker(res, settings, audit_handler) -> None:
    q = Queue("urgent", connection=res.redis(), serializer=JSONSerializer)
    with res.db.Session() as s:
        add_job(s, "test.audit", {"n": 7}, queue="urgent")
        s.flush()
        assert q.count == 0  # not before commit
        s.commit()
    assert q.count == 1
    run_worker_burst(settings)
    with res.db.Session() as s:
        assert s.scalar(sa.select(AuditEvent.object_id).where(AuditEvent.action == "test.ran")) == "7"
        assert s.scalar(sa.select(OutboxJob.status)) == OutboxStatus.DONE


def test_rolled_back_job_is_never_enqueued(res) -> None:
    with res.db.Session() as s:
        add_job(s, "test.audit", {"n": 1}, queue="urgent")
        s.flush()
        s.rollback()
    assert Queue("urgent", connection=res.redis(), serializer=JSONSerializer).count == 0


def test_job_written_while_redis_is_down_is_swept_later(settings, audit_handler) -> None:
    down = Resources(settings.with_(redis_url="redis://127.0.0.1:1/0"))
    from hotline.background import outbox

    outbox.install(down.db, down.redis)
    with down.db.Session() as s:
        add_job(s, "test.audit", {"n": 3}, queue="urgent")
        s.commit()  # must not raise: the caller is still answered
    up = Resources(settings)
    with up.db.Session() as s:
        s.execute(sa.update(OutboxJob).values(created_at=sa.func.datetime("now", "-1 minute")
                                                if up.db.engine.dialect.name == "sqlite"
                                                else sa.text("now() - interval '1 minute'")))
        s.commit()
        assert sweep(s, up.redis()) == 1
        s.commit()
    run_worker_burst(settings)
    with up.db.Session() as s:
        assert s.scalar(sa.select(OutboxJob.status)) == OutboxStatus.DONE
    down.close()
    up.close()


def test_a_job_runs_once_even_if_enqueued_twice(res, settings, audit_handler) -> None:
    with res.db.Session() as s:
        job = add_job(s, "test.audit", {"n": 5}, queue="default")
        s.commit()
        from hotline.background.queues import queue

        queue(res.redis(), "default").enqueue("workers.jobs.run_outbox", job.id)  # a duplicate
    run_worker_burst(settings)
    with res.db.Session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == 1


# -- logs and phones ----------------------------------------------------------------------------

def test_masking_keeps_country_and_last_digits() -> None:
    assert mask("+85512345678") == "+855*****678"
    assert mask("+66812345678") == "+66******678"
    assert "12345678" not in mask_all("from +85512345678 and 012 345 678")


@pytest.mark.parametrize("text,expected", [
    ("call 081-234-5678.", "call *******678."),
    ("(+855 12 345 678)", "(+855*****678)"),
    ("phone 0812345678", "phone *******678"),
    # Not phone numbers: logs stay readable.
    ("GET 127.0.0.1 /2010-04-01/Accounts", "GET 127.0.0.1 /2010-04-01/Accounts"),
    ("/staff/cases/1 200 348.0ms", "/staff/cases/1 200 348.0ms"),
    ("sid SM0123456789abcdef", "sid SM0123456789abcdef"),
])
def test_log_masking_hides_numbers_and_nothing_else(text, expected) -> None:
    assert mask_all(text) == expected


def test_request_log_line_never_holds_a_whole_number(twilio, caplog) -> None:
    from hotline.logs import MaskingFilter

    caplog.handler.addFilter(MaskingFilter())
    with caplog.at_level(logging.INFO):
        twilio.post("/twilio/sms", twilio.sms_params("help", from_="+85512345678"))
    text = caplog.text
    assert "/twilio/sms 200" in text and "MessageSid=SM" in text
    assert "+855*****678" in text
    assert "12345678" not in text and "help" not in text


@pytest.mark.parametrize("raw,region,expected", [
    ("012 345 678", "KH", "+85512345678"),
    ("០១២ ៣៤៥ ៦៧៨", "KH", "+85512345678"),
    ("081-234-5678", "TH", "+66812345678"),
    ("๐๘๑-๒๓๔-๕๖๗๘", "KH", "+66812345678"),  # a Thai number keyed by a caller from Cambodia
    ("00855 12 345 678", "TH", "+85512345678"),  # not Brazil
    ("0066812345678", "KH", "+66812345678"),
    ("12", "KH", None),
])
def test_numbers_typed_in_any_script_are_read(raw, region, expected) -> None:
    assert to_e164(raw, region) == expected


# -- command line -------------------------------------------------------------------------------

def test_cli_db_upgrade_and_staff_add(tmp_path: Path, monkeypatch) -> None:
    from hotline.cli import cli

    monkeypatch.setenv("HOTLINE_INSTANCE", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    runner = CliRunner()
    for _ in range(2):
        result = runner.invoke(cli, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["staff", "add", "Lawyer@Example.org", "--role", "lawyer"],
                           env={"HOTLINE_STAFF_PASSWORD": "correct horse battery"})
    assert result.exit_code == 0, result.output
    again = runner.invoke(cli, ["staff", "add", "lawyer@example.org"],
                          env={"HOTLINE_STAFF_PASSWORD": "correct horse battery"})
    assert again.exit_code != 0 and "already has an account" in again.output
    short = runner.invoke(cli, ["staff", "add", "x@example.org"], env={"HOTLINE_STAFF_PASSWORD": "short"})
    assert short.exit_code != 0 and "at least" in short.output
    eng = sa.create_engine(f"sqlite:///{tmp_path / 'hotline.db'}")
    with eng.connect() as conn:
        row = conn.execute(sa.select(StaffUser.email, StaffUser.role, StaffUser.password_hash)).one()
    assert row.email == "lawyer@example.org" and row.role == "lawyer"
    assert row.password_hash.startswith("$argon2") and "horse" not in row.password_hash


def test_python_dash_m_works() -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "hotline", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "worker" in out.stdout and "run" in out.stdout


def test_models_and_migrations_agree(settings) -> None:
    """A model changed without its migration fails here, not in production."""
    from alembic import command

    from hotline.db import alembic_config

    command.check(alembic_config(settings.database_url))  # raises when autogenerate finds a difference
