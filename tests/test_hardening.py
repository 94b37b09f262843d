"""The edges an attacker or a broken client reaches: forged proxy headers, odd signatures, malformed
requests, the header policy on every page, the SQLite file's mode, and who may use the simulator."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from hotline import create_app
from hotline.db import Database, upgrade
from hotline.models import AuditEvent
from hotline.resources import resources_of
from hotline.settings import Settings, load_settings
from tests.conftest import new_call_sid
from tests.test_security import SKIP_METHODS, concrete_path, rules_under


def _app(settings: Settings, **overrides: Any) -> Flask:
    return create_app(settings, TESTING=True, **overrides)


# -- TRUSTED_PROXIES ----------------------------------------------------------------------------------

def _failed_login(client: Any, email: str, forwarded: str) -> int:
    return client.post("/staff/login", data={"email": email, "password": "wrong"},
                       headers={"X-Forwarded-For": forwarded, "X-Forwarded-Proto": "https"}).status_code


def test_trusted_proxies_is_read_and_defaults_to_none(tmp_path: Path) -> None:
    assert load_settings({"HOTLINE_INSTANCE": str(tmp_path)}).trusted_proxies == 0
    assert load_settings({"HOTLINE_INSTANCE": str(tmp_path), "TRUSTED_PROXIES": "1"}).trusted_proxies == 1
    with pytest.raises(Exception, match="TRUSTED_PROXIES"):
        load_settings({"HOTLINE_INSTANCE": str(tmp_path), "TRUSTED_PROXIES": "-1"})


def test_a_forged_x_forwarded_for_changes_neither_the_audit_nor_the_per_ip_limit(settings: Settings, db) -> None:
    from hotline.services import staff as staff_service
    from hotline.web.staff import IP_LIMIT

    app = _app(settings, WTF_CSRF_ENABLED=False)
    try:
        staff_service.create(db, "lawyer@example.org", "lawyer", "right-password-123")
        db.commit()
        client = app.test_client()
        for i in range(IP_LIMIT):  # unknown emails: no account lockout, only the per-address count
            _failed_login(client, f"nobody{i}@example.org", f"203.0.113.{i}")
        ips = set(db.scalars(sa.select(AuditEvent.ip).where(AuditEvent.action == "staff.login_failed")))
        assert ips == {"127.0.0.1"}, f"the audit log recorded forged addresses: {ips}"
        resp = client.post("/staff/login", data={"email": "lawyer@example.org", "password": "right-password-123"},
                           headers={"X-Forwarded-For": "198.51.100.7"})
        assert resp.status_code not in (302, 303), "a forged X-Forwarded-For escaped the per-address limit"
    finally:
        resources_of(app).close()


def test_with_one_trusted_proxy_its_forwarded_address_is_used(settings: Settings, db) -> None:
    app = _app(settings.with_(trusted_proxies=1), WTF_CSRF_ENABLED=False)
    try:
        _failed_login(app.test_client(), "nobody@example.org", "203.0.113.9")
        assert db.scalar(sa.select(AuditEvent.ip)) == "203.0.113.9"
    finally:
        resources_of(app).close()


# -- X-Twilio-Signature that is not ASCII -------------------------------------------------------------

@pytest.mark.parametrize("signature", ["Ünïcödé-ß=", "abc\u00ff"])
def test_a_non_ascii_signature_is_refused_with_403_on_every_twilio_route(app: Flask, client, signature: str) -> None:
    params = {"CallSid": new_call_sid(), "From": "+85512345678", "To": "+85523000000", "Body": "HELP",
              "MessageSid": "SM" + "1" * 32, "CallStatus": "completed", "MessageStatus": "delivered"}
    checked = 0
    for rule in rules_under(app, "/twilio"):
        path = concrete_path(rule)
        for method in sorted((rule.methods or set()) - SKIP_METHODS):
            resp = client.open(path, method=method, data=params if method == "POST" else None,
                               headers={"X-Twilio-Signature": signature})
            assert resp.status_code == 403, f"{method} {path} answered {resp.status_code}"
            checked += 1
    assert checked >= 4


# -- the SQLite file ----------------------------------------------------------------------------------

def _mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_a_new_sqlite_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the common default: SQLite alone would make the file 0644
    try:
        path = tmp_path / "instance" / "hotline.db"
        upgrade(f"sqlite:///{path}")  # `hotline db upgrade` on a fresh instance
        assert _mode(path) == 0o600
        d = Database(f"sqlite:///{path}")
        with d.engine.begin() as conn:
            conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
            conn.execute(sa.text("INSERT INTO t VALUES (1)"))
            side = [p for p in (Path(f"{path}-wal"), Path(f"{path}-shm")) if p.exists()]
            assert side, "WAL mode should have made a -wal file"
            assert {p.name: _mode(p) for p in side} == {p.name: 0o600 for p in side}
        d.dispose()
        other = tmp_path / "old.db"
        other.write_bytes(b"")
        os.chmod(other, 0o644)  # made by an earlier version
        Database(f"sqlite:///{other}").dispose()
        assert _mode(other) == 0o600
    finally:
        os.umask(old)


# -- helpers -------------------------------------------------------------------------------------------

def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info or "Traceback" in r.getMessage()]


@pytest.fixture
def quiet_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO)
    return caplog


def request_lines(caplog: pytest.LogCaptureFixture, path: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "hotline.request" and f" {path} " in r.getMessage()]
