"""Optional two-factor login (TOTP) for admins and lawyers: enrolment with a secret shown once, a code
asked after the password, a code good once, and code guesses under the same lockout."""

from __future__ import annotations

import re
from datetime import timedelta

import pyotp
import sqlalchemy as sa
from test_console import PASSWORD, login, make_staff, post, token

from hotline import crypto
from hotline.db import utcnow
from hotline.models import AuditEvent, StaffUser
from hotline.services import staff as staff_service
from hotline.web.staff import LOCK_AFTER


def enrolled(db, email: str = "lawyer@example.org", role: str = "lawyer") -> tuple[StaffUser, pyotp.TOTP]:
    user = make_staff(db, email, role)
    secret = staff_service.new_totp_secret()
    totp = pyotp.TOTP(secret)
    now = utcnow()
    # Enrolled with the previous step's code, so the current code is still unused.
    staff_service.enable_totp(user, secret, totp.at(now - timedelta(seconds=30)), now)
    db.commit()
    return user, totp


def code_step(client, code: str):
    return client.post("/staff/login", data={"code": code, "csrf_token": token(client)})


def test_enrolment_shows_the_secret_once_and_needs_a_code_from_the_app(client, db) -> None:
    user = make_staff(db)
    login(client)
    page = client.get("/staff/two-factor").get_data(as_text=True)
    secret = re.search(r'<code id="tfa-secret">([A-Z2-7]{32})</code>', page).group(1)
    assert "<svg" in page
    form = {"secret": secret, "csrf_token": token(client, "/staff/two-factor")}
    assert client.post("/staff/two-factor", data={**form, "code": "000000"}).status_code == 400
    assert client.post("/staff/two-factor", data={**form, "code": pyotp.TOTP(secret).now()}).status_code == 302
    db.expire_all()
    assert db.get(StaffUser, user.id).totp_secret == secret
    [stored] = [r[0] for r in db.execute(sa.text("SELECT totp_secret FROM staff_users"))]
    assert stored.startswith(crypto.TOKEN_PREFIX)  # encrypted at rest with DATA_KEY
    assert secret not in client.get("/staff/two-factor").get_data(as_text=True)  # never shown again


def test_login_asks_for_the_code_after_the_password(client, db) -> None:
    _, totp = enrolled(db)
    resp = login(client)
    assert resp.status_code == 200 and 'name="code"' in resp.get_data(as_text=True)
    assert client.get("/staff/").status_code == 302  # not logged in yet
    assert code_step(client, "123456").status_code == 401
    resp = code_step(client, totp.now())
    assert resp.status_code == 302 and resp.location == "/staff/"
    assert client.get("/staff/").status_code == 200
    detail = db.scalars(sa.select(AuditEvent.detail).where(AuditEvent.action == "staff.login")).one()
    assert detail["second_factor"] is True


def test_a_code_is_good_once(app, client, db) -> None:
    _, totp = enrolled(db)
    code = totp.now()
    login(client)
    assert code_step(client, code).status_code == 302
    other = app.test_client()
    login(other)
    assert code_step(other, code).status_code == 401  # replayed (seen over a shoulder, say)


def test_guessing_codes_meets_the_account_lockout(client, db) -> None:
    user, totp = enrolled(db)
    login(client)  # a right password counts as one attempt until its code is right too
    for _ in range(LOCK_AFTER - 1):
        assert code_step(client, "000000").status_code == 401
    assert code_step(client, totp.now()).status_code == 401  # locked: even the right code
    db.expire_all()
    assert db.get(StaffUser, user.id).locked_until is not None


def test_the_code_step_expires(client, db) -> None:
    _, totp = enrolled(db)
    login(client)
    with client.session_transaction() as sess:
        sess["tfa_at"] = (utcnow() - timedelta(minutes=6)).timestamp()
    assert code_step(client, totp.now()).status_code == 401
    assert client.get("/staff/").status_code == 302


def test_operators_do_not_enrol_and_an_admin_reset_removes_two_factor(app, client, db) -> None:
    make_staff(db, "op@example.org", "operator")
    login(client, "op@example.org")
    assert client.get("/staff/two-factor").status_code == 403
    lawyer, _ = enrolled(db)
    make_staff(db, "admin@example.org", "admin")
    admin = app.test_client()
    login(admin, "admin@example.org")
    page = post(admin, f"/staff/accounts/{lawyer.id}/reset").get_data(as_text=True)
    temporary = re.search(r"shown once: (\S+) ", page).group(1)
    fresh = app.test_client()
    assert login(fresh, password=temporary).location == "/staff/password"  # no code asked: lost phone
    db.expire_all()
    assert db.get(StaffUser, lawyer.id).totp_secret is None


def test_turning_two_factor_off_needs_the_password(client, db) -> None:
    _, totp = enrolled(db)
    login(client)
    code_step(client, totp.now())
    form = {"csrf_token": token(client, "/staff/two-factor")}
    assert client.post("/staff/two-factor/off", data={**form, "password": "wrong password!"}).status_code == 400
    assert client.post("/staff/two-factor/off", data={**form, "password": PASSWORD}).status_code == 302
    db.expire_all()
    assert db.scalars(sa.select(StaffUser.totp_secret)).one() is None
