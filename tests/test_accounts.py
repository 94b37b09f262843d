"""Staff accounts that can be secured: password change and reset, server-side sessions, remember-me,
rehash, the lockout under parallel guesses, refusals that reveal nothing and are audited."""

from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
from argon2 import PasswordHasher
from click.testing import CliRunner
from test_console import PASSWORD, audit_actions, login, make_case, make_staff, post, token
from test_faults_support import env_for

from hotline.cli import _ensure_first_admin, cli
from hotline.db import utcnow
from hotline.models import AuditEvent, Case, StaffSession, StaffUser
from hotline.services import staff as staff_service
from hotline.web.staff import IP_LIMIT, LOCK_AFTER

NEW_PASSWORD = "a new and longer passphrase"


def sessions_of(db, user_id: int) -> int:
    db.expire_all()
    return db.scalar(sa.select(sa.func.count()).select_from(StaffSession).where(StaffSession.staff_id == user_id)) or 0


def change_password(client, old: str, new: str, confirm: str | None = None):
    return client.post("/staff/password", data={"old_password": old, "new_password": new,
                                                "confirm_password": new if confirm is None else confirm,
                                                "csrf_token": token(client, "/staff/password")})


# --- password change and reset -------------------------------------------------------------------


def test_changing_my_password_asks_the_old_one_and_ends_my_other_sessions(app, db) -> None:
    user = make_staff(db)
    here, elsewhere = app.test_client(), app.test_client()
    login(here), login(elsewhere)
    assert sessions_of(db, user.id) == 2
    resp = change_password(here, "not my password", NEW_PASSWORD)
    assert resp.status_code == 400 and "The current password is wrong." in resp.get_data(as_text=True)
    assert change_password(here, PASSWORD, NEW_PASSWORD, confirm="something else").status_code == 400
    assert change_password(here, PASSWORD, "short").status_code == 400
    assert change_password(here, PASSWORD, NEW_PASSWORD).location == "/staff/"
    assert here.get("/staff/").status_code == 200  # this session goes on
    assert elsewhere.get("/staff/").status_code == 302  # the other one ended
    assert sessions_of(db, user.id) == 1 and "staff.password_changed" in audit_actions(db)
    fresh = app.test_client()
    assert login(fresh).status_code == 401
    assert login(fresh, password=NEW_PASSWORD).status_code == 302


def test_admin_reset_forces_a_change_at_next_login_and_ends_sessions(app, client, db) -> None:
    lawyer = make_staff(db)
    make_staff(db, "admin@example.org", "admin")
    case = make_case(db)
    lawyer_client = app.test_client()
    login(lawyer_client)
    login(client, "admin@example.org")
    page = post(client, f"/staff/accounts/{lawyer.id}/reset")
    assert page.status_code == 200
    temporary = re.search(r"shown once: (\S+) ", page.get_data(as_text=True)).group(1)
    assert lawyer_client.get("/staff/").status_code == 302  # their session ended with the reset
    assert login(lawyer_client).status_code == 401  # the old password no longer works
    resp = login(lawyer_client, password=temporary)
    assert resp.status_code == 302 and resp.location == "/staff/password"
    # Every console page and action sends them to "change password" first.
    for path in ("/staff/", f"/staff/cases/{case.id}", "/staff/callbacks"):
        assert lawyer_client.get(path).location == "/staff/password", path
    claim = lawyer_client.post(f"/staff/cases/{case.id}/claim",
                               data={"csrf_token": token(lawyer_client, "/staff/password")})
    assert claim.location == "/staff/password"
    db.expire_all()
    assert db.get(Case, case.id).claimed_by_id is None
    page = lawyer_client.get("/staff/password").get_data(as_text=True)
    assert "Choose your own password" in page
    assert change_password(lawyer_client, temporary, NEW_PASSWORD).location == "/staff/"
    assert lawyer_client.get("/staff/").status_code == 200
    assert "staff.password_reset" in audit_actions(db)


def test_first_admin_password_printed_by_run_must_be_changed_at_first_login(app, client, settings, db) -> None:
    email, password = _ensure_first_admin(settings)
    resp = login(client, email, password)
    assert resp.location == "/staff/password"
    assert client.get("/staff/oncall").location == "/staff/password"


def test_staff_add_and_reset_password_commands_give_temporary_passwords(app, client, settings, db) -> None:
    env = env_for(settings, HOTLINE_STAFF_PASSWORD=PASSWORD)
    result = CliRunner().invoke(cli, ["staff", "add", "op@example.org", "--role", "operator"], env=env)
    assert result.exit_code == 0, result.output
    assert login(client, "op@example.org").location == "/staff/password"
    result = CliRunner().invoke(cli, ["staff", "reset-password", "op@example.org"], env=env)
    assert result.exit_code == 0, result.output
    temporary = result.output.strip().rsplit(" ", 1)[1]
    assert client.get("/staff/password").status_code == 302  # the reset ended the session
    assert login(client, "op@example.org", temporary).location == "/staff/password"
    result = CliRunner().invoke(cli, ["staff", "reset-password", "nobody@example.org"], env=env)
    assert result.exit_code == 1 and "no account" in result.output


# --- server-side sessions -----------------------------------------------------------------------


def test_logout_ends_the_session_even_for_a_copied_cookie(app, client, db) -> None:
    make_staff(db)
    login(client)
    stolen = client.get_cookie("session").value
    post(client, "/staff/logout")
    thief = app.test_client()
    thief.set_cookie("session", stolen)
    assert thief.get("/staff/").status_code == 302


def test_log_out_everywhere_ends_every_device(app, db) -> None:
    user = make_staff(db)
    devices = [app.test_client() for _ in range(3)]
    for d in devices:
        login(d)
    assert post(devices[0], "/staff/logout-everywhere").location == "/staff/login"
    assert [d.get("/staff/").status_code for d in devices] == [302, 302, 302]
    assert sessions_of(db, user.id) == 0 and audit_actions(db)[-1] == "staff.logout_everywhere"


def test_disabling_an_account_ends_its_sessions_for_good(app, client, db) -> None:
    lawyer = make_staff(db)
    make_staff(db, "admin@example.org", "admin")
    lawyer_client = app.test_client()
    login(lawyer_client)
    login(client, "admin@example.org")
    post(client, f"/staff/accounts/{lawyer.id}/active", {"active": "0"})
    assert sessions_of(db, lawyer.id) == 0
    post(client, f"/staff/accounts/{lawyer.id}/active", {"active": "1"})
    assert lawyer_client.get("/staff/").status_code == 302  # re-enabling does not revive the old session


def test_session_cookie_ends_with_the_browser_unless_remember_is_chosen(client, db) -> None:
    make_staff(db)
    resp = login(client)
    cookie = resp.headers["Set-Cookie"]
    assert cookie.startswith("session=") and "Expires" not in cookie and "Max-Age" not in cookie
    post(client, "/staff/logout")
    resp = client.post("/staff/login", data={"email": "lawyer@example.org", "password": PASSWORD, "remember": "1",
                                             "csrf_token": token(client)})
    assert resp.status_code == 302
    cookie = resp.headers["Set-Cookie"]
    assert "Expires" in cookie
    db.expire_all()
    row = db.scalars(sa.select(StaffSession)).one()
    assert row.remember is True
    assert timedelta(hours=7, minutes=59) < row.expires_at - row.created_at <= timedelta(hours=8)


def test_server_side_session_expires_with_its_row(client, db) -> None:
    make_staff(db)
    login(client)
    db.execute(sa.update(StaffSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    db.commit()
    assert client.get("/staff/").status_code == 302


def test_an_old_hash_is_upgraded_at_login(client, db) -> None:
    user = make_staff(db)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)
    user.password_hash = old = weak.hash(PASSWORD)
    db.commit()
    assert login(client).status_code == 302
    db.expire_all()
    upgraded = db.get(StaffUser, user.id).password_hash
    assert upgraded != old and not PasswordHasher().check_needs_rehash(upgraded)
    assert staff_service.verify_password(db.get(StaffUser, user.id), PASSWORD)


# --- lockout and enumeration ------------------------------------------------------------------


def _live_login(url: str, email: str, password: str, start: threading.Barrier | None = None) -> int:
    with requests.Session() as http:
        page = http.get(f"{url}/staff/login", timeout=30).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        if start is not None:
            start.wait(timeout=30)
        resp = http.post(f"{url}/staff/login", data={"email": email, "password": password, "csrf_token": csrf},
                         allow_redirects=False, timeout=60)
        return resp.status_code


@pytest.mark.slow
def test_parallel_wrong_passwords_cannot_outrun_the_lockout(live_server, db) -> None:
    """The field: a script fires many guesses at once. Each is counted before its ~100 ms argon2 check,
    so at most LOCK_AFTER are checked at all, and the right password afterwards is refused too."""
    user = make_staff(db)
    n = IP_LIMIT - 2  # 18 at once; more would trip the per-address limit (429), tested apart
    start = threading.Barrier(n)
    codes: list[int] = []
    lock = threading.Lock()

    def guess(i: int) -> None:
        code = _live_login(live_server.url, user.email, f"wrong guess {i:04d}", start)
        with lock:
            codes.append(code)

    threads = [threading.Thread(target=guess, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=120)
    assert codes == [401] * n
    assert _live_login(live_server.url, user.email, PASSWORD) == 401  # still locked
    db.expire_all()
    locked = db.get(StaffUser, user.id)
    assert locked.locked_until is not None and locked.locked_until > utcnow()
    reasons = [d for d in db.scalars(sa.select(AuditEvent.detail).where(AuditEvent.action == "staff.login_failed"))]
    assert len(reasons) == n + 1
    assert reasons.count({"reason": "locked"}) == n + 1 - LOCK_AFTER


def test_a_locked_account_looks_exactly_like_a_wrong_password(client, db) -> None:
    user = make_staff(db)
    wrong = login(client, password="wrong password!")
    user.locked_until = utcnow() + timedelta(minutes=10)
    db.commit()
    locked = login(client)  # the right password, on a locked account
    unknown = login(client, "nobody@example.org")
    assert wrong.status_code == locked.status_code == 401

    def body(resp) -> str:  # the same page, but for the CSRF token and the email typed back
        return re.sub(r'value="[^"]*"', "", resp.get_data(as_text=True))

    assert body(wrong) == body(locked) == body(unknown)


def test_refused_attempts_from_a_limited_address_are_audited(client, db) -> None:
    make_staff(db)
    db.add_all([AuditEvent(action="staff.login_failed", object_type="staff", ip="127.0.0.1", at=utcnow())
                for _ in range(IP_LIMIT)])
    db.commit()
    assert login(client).status_code == 429
    db.expire_all()
    refused = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "staff.login_refused")).one()
    assert refused.ip == "127.0.0.1" and refused.detail == {"reason": "ip_limit"}
