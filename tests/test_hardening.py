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


@pytest.fixture
def admin(app: Flask, db) -> Any:
    """A test client logged in as an admin (CSRF on, as in production)."""
    from tests.test_console import login, make_staff

    make_staff(db, "admin@example.org", role="admin")
    client = app.test_client()
    assert login(client, "admin@example.org").status_code in (302, 303)
    return client


def csrf(client: Any) -> str:
    from tests.test_console import token

    return token(client, "/staff/")


def assert_logged_once_without_traceback(caplog: pytest.LogCaptureFixture, path: str) -> None:
    assert tracebacks(caplog) == [], f"a traceback was logged for {path}"
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == [], f"an error was logged for {path}"
    assert len(request_lines(caplog, path)) == 1, f"{path}: {request_lines(caplog, path)}"


def post_routes(app: Flask) -> list[str]:
    return sorted({concrete_path(r) for r in app.url_map.iter_rules()
                   if "POST" in (r.methods or set()) and not r.endpoint.endswith("static")})


# -- malformed requests ----------------------------------------------------------------------------------

def test_a_body_over_the_limit_is_413_on_every_post_route(app: Flask, admin, quiet_logs) -> None:
    from hotline.web import UPLOAD_LIMITS
    from tests.test_security import concrete_path

    token = csrf(admin)
    routes = post_routes(app)
    assert len(routes) >= 10
    uploads = {concrete_path(r): UPLOAD_LIMITS[r.endpoint] for r in app.url_map.iter_rules()
               if r.endpoint in UPLOAD_LIMITS}
    assert uploads, "the recording upload has a limit of its own"
    for path in routes:
        # A route with a larger limit of its own (a recording upload) is refused over that limit.
        limit = uploads.get(path, app.config["MAX_CONTENT_LENGTH"])
        body = b"csrf_token=" + token.encode() + b"&Body=" + b"x" * limit
        quiet_logs.clear()
        resp = admin.post(path, data=body, content_type="application/x-www-form-urlencoded",
                          headers={"X-CSRFToken": token, "X-Twilio-Signature": "c2lnbmVk"})
        assert resp.status_code == 413, f"POST {path} answered {resp.status_code}"
        assert_logged_once_without_traceback(quiet_logs, path)


def _multipart(parts: int) -> tuple[bytes, str]:
    boundary = "hotlineboundary"
    chunks = [f'--{boundary}\r\nContent-Disposition: form-data; name="f{i}"\r\n\r\nx\r\n' for i in range(parts)]
    return ("".join(chunks) + f"--{boundary}--\r\n").encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("path", ["/twilio/sms", "/twilio/voice", "/staff/login", "/staff/language"])
def test_a_five_thousand_part_multipart_is_413(admin, quiet_logs, path: str) -> None:
    body, content_type = _multipart(5000)
    resp = admin.post(path, data=body, content_type=content_type,
                      headers={"X-CSRFToken": csrf(admin), "X-Twilio-Signature": "c2lnbmVk"})
    assert resp.status_code == 413
    assert_logged_once_without_traceback(quiet_logs, path)


BAD_CHUNKED = (b"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n"
               b"Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: c2lnbmVk\r\n"
               b"Connection: close\r\n\r\n"
               b"ZZ-not-hex\r\nFrom=%2B85512345678\r\n0\r\n\r\n")


def _raw(url: str, data: bytes) -> bytes:
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize("path", ["/twilio/sms", "/staff/login"])
def test_bad_chunked_encoding_is_400_under_the_dev_server(live_server, quiet_logs, path: str) -> None:
    answer = _raw(live_server.url, BAD_CHUNKED.replace(b"{path}", path.encode()))
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert tracebacks(quiet_logs) == []
    assert len(request_lines(quiet_logs, path)) == 1


def test_bad_chunked_encoding_is_400_under_gunicorn(settings: Settings, tmp_path: Path) -> None:
    from tests.test_faults_support import Web

    web = Web(settings, tmp_path / "web.log")
    try:
        answers = [_raw(web.url, BAD_CHUNKED.replace(b"{path}", p)) for p in (b"/twilio/sms", b"/staff/login")]
    finally:
        web.stop()
    assert all(a.startswith(b"HTTP/1.1 400") for a in answers), [a[:100] for a in answers]
    log = web.output()
    assert "Traceback" not in log, log[-3000:]
    assert log.count("POST /twilio/sms 400") == 1 and log.count("POST /staff/login 400") == 1, log[-3000:]


def int_rules(app: Flask) -> list[Any]:
    from werkzeug.routing import IntegerConverter

    return [r for r in app.url_map.iter_rules()
            if any(isinstance(c, IntegerConverter) for c in r._converters.values())]


@pytest.mark.parametrize("big", [2**31, 2**63, 2**64, 10**30])
def test_an_id_beyond_the_id_columns_is_404_on_every_int_route(app: Flask, admin, quiet_logs, big: int) -> None:
    rules = int_rules(app)
    assert len(rules) >= 5
    token = csrf(admin)
    for rule in rules:
        path = concrete_path(rule).replace("/1", f"/{big}", 1)
        assert str(big) in path, (rule.rule, path)
        for method in sorted((rule.methods or set()) - SKIP_METHODS):
            quiet_logs.clear()
            resp = admin.open(path, method=method, data={"csrf_token": token, "status": "closed", "body": "x"})
            assert resp.status_code == 404, f"{method} {path} answered {resp.status_code}"
            assert_logged_once_without_traceback(quiet_logs, path)


def test_the_largest_id_is_still_a_plain_not_found(admin, quiet_logs) -> None:
    path = f"/staff/cases/{2**31 - 1}"
    assert admin.get(path).status_code == 404
    assert_logged_once_without_traceback(quiet_logs, path)


CRLF = ["/staff/\r\nSet-Cookie: owned=1", "/staff/\nx", "/\t/evil.example",
        "//evil.example", "/\\evil.example", "https://evil.example/"]


@pytest.mark.parametrize("target", CRLF)
def test_crlf_or_another_site_in_next_or_back_redirects_home(app: Flask, admin, quiet_logs, target: str) -> None:
    from urllib.parse import quote

    answers = [
        ("/staff/login", admin.get("/staff/login?next=" + quote(target, safe=""))),
        ("/staff/language", admin.post("/staff/language", data={"language": "en", "back": target,
                                                                "csrf_token": csrf(admin)})),
    ]
    fresh = app.test_client()
    answers.append(("/staff/login", fresh.post("/staff/login?next=" + quote(target, safe=""),
                                               data={"email": "admin@example.org", "password": "correct horse battery",
                                                     "csrf_token": csrf_login(fresh)})))
    for path, resp in answers:
        assert resp.status_code in (302, 303), f"{path} answered {resp.status_code}"
        location = resp.headers["Location"]
        assert "\r" not in location and "\n" not in location and "evil" not in location, location
        assert location.split("?")[0].endswith("/staff/"), location
        assert "owned" not in str(resp.headers.get("Set-Cookie", ""))
    assert tracebacks(quiet_logs) == []


def csrf_login(client: Any) -> str:
    from tests.test_console import token

    return token(client)


# -- the header policy ---------------------------------------------------------------------------------

POLICY = {"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin"}


def assert_policy(resp: Any, where: str) -> None:
    for name, value in POLICY.items():
        assert resp.headers.get(name) == value, f"{where}: {name}={resp.headers.get(name)!r}"
    csp = resp.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp and "script-src 'self'" in csp, \
        f"{where}: CSP {csp!r}"


def test_every_get_route_carries_the_header_policy_and_html_is_not_stored(app: Flask, admin) -> None:
    rules = [r for r in app.url_map.iter_rules() if "GET" in (r.methods or set())]
    html = 0
    for rule in rules:
        path = concrete_path(rule) if rule.arguments else rule.rule
        if rule.endpoint.endswith("static"):
            path = "/static/simulator/simulator.js" if rule.endpoint == "static" else "/staff/static/staff.css"
        if rule.endpoint == "audio.prompt":
            path = "/audio/km/main_menu.mp3"
        resp = admin.get(path)
        health = path in ("/healthz", "/healthz/ready")  # 503 while a part is down, by design
        assert resp.status_code < 500 or health, f"GET {path} answered {resp.status_code}"
        assert_policy(resp, f"GET {path}")
        if resp.mimetype == "text/html":
            html += 1
            assert resp.headers.get("Cache-Control") == "no-store", f"GET {path} may be cached"
    assert html >= 6, "the inventory did not reach the console and simulator pages"
    for path in ("/simulator", "/staff/", "/staff/login", "/no-such-page"):
        resp = admin.get(path)
        assert_policy(resp, path)
        assert resp.headers.get("Cache-Control") == "no-store", path
    assert "no-store" not in admin.get("/static/simulator/simulator.js").headers.get("Cache-Control", "")


def test_webhook_answers_and_errors_carry_it_too(app: Flask, twilio, client) -> None:
    assert_policy(twilio.post("/twilio/sms", twilio.sms_params("HELP")), "POST /twilio/sms")
    assert_policy(client.post("/twilio/voice"), "unsigned POST /twilio/voice")  # 403
    assert_policy(client.get("/staff/cases/1"), "logged out")  # redirect to login


def test_hsts_only_over_https_and_forwarded_https_only_through_a_trusted_proxy(settings: Settings) -> None:
    plain = _app(settings)
    proxied = _app(settings.with_(trusted_proxies=1))
    try:
        c = plain.test_client()
        assert "Strict-Transport-Security" not in c.get("/staff/login").headers
        assert "Strict-Transport-Security" in c.get("/staff/login", base_url="https://hotline.example.org").headers
        forged = c.get("/staff/login", headers={"X-Forwarded-Proto": "https"})
        assert "Strict-Transport-Security" not in forged.headers  # nobody vouches for that header
        behind = proxied.test_client().get("/staff/login", headers={"X-Forwarded-Proto": "https"})
        assert behind.headers.get("Strict-Transport-Security", "").startswith("max-age=")
    finally:
        resources_of(plain).close()
        resources_of(proxied).close()


def test_prompts_from_a_cdn_are_allowed_as_media_and_nothing_else(settings: Settings) -> None:
    app = _app(settings.with_(audio_base_url="https://cdn.example.net/hotline/audio"))
    try:
        csp = app.test_client().get("/simulator").headers["Content-Security-Policy"]
        assert "media-src 'self' https://cdn.example.net;" in csp and csp.count("cdn.example.net") == 1
    finally:
        resources_of(app).close()
