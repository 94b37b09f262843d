"""Login, logout, password change, two-factor enrolment and the console language."""

from __future__ import annotations

import functools
import secrets
from datetime import datetime
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask import session as cookie
from flask_login import current_user, login_user, logout_user

from hotline.db import utcnow
from hotline.models import StaffUser
from hotline.services import staff as staff_service
from hotline.web import safe_path, session
from hotline.web.staff.base import (
    IP_LIMIT,
    IP_WINDOW,
    TFA_WINDOW,
    StaffLogin,
    _browser_lang,
    _lang,
    audit,
    bp,
    client_ip,
    me,
    staff_required,
)
from hotline.web.staff.i18n import LANGUAGES, t

# --- login -----------------------------------------------------------------------------------


def failed_logins_from(ip: str | None, now: datetime) -> int:
    if ip is None:
        return 0
    return staff_service.failed_logins_from(session(), ip, now - IP_WINDOW)


@functools.cache
def _nobody() -> StaffUser:
    """A user with a real argon2 hash, checked when the email is unknown (same cost, same timing)."""
    from argon2 import PasswordHasher

    return StaffUser(password_hash=PasswordHasher().hash(secrets.token_urlsafe(16)))


def _safe_next(target: str | None) -> str:
    """Only a path on this site (the console, or a page such as the simulator that sent us here):
    `next=https://evil.example`, `//evil.example` or a CR/LF must not become a redirect elsewhere."""
    return safe_path(target, url_for("staff.queue"))


@bp.route("/login", methods=["GET", "POST"])
def login():  # type: ignore[no-untyped-def]
    """PUBLIC: the login page (rate-limited per account and per address; needs no Redis).

    A locked account is answered exactly like a wrong password (same status, same page) and costs
    the same argon2 check, as does an unknown email: neither reveals who has an account. Every
    refusal is audited: "staff.login_failed" (with reason "locked" when the account was locked) and
    "staff.login_refused" for an address over IP_LIMIT.
    """
    if current_user.is_authenticated and request.method == "GET":
        return redirect(_safe_next(request.args.get("next")))
    if request.method == "GET":
        return render_template("staff/login.html", email="")
    if "code" in request.form:
        return _second_factor()
    s, now, ip = session(), utcnow(), client_ip()
    email = request.form.get("email", "").strip().lower()[:254]
    lang = _browser_lang()
    if failed_logins_from(ip, now) >= IP_LIMIT:
        staff_service.audit(s, None, "staff.login_refused", "staff", None, ip=ip, reason="ip_limit")
        s.commit()
        return _login_refused(email, t("too_many_attempts", lang), 429)
    user = staff_service.by_email(s, email)
    # Counted (and committed) before the password is checked: parallel guesses cannot outrun the lock.
    open_ = staff_service.count_attempt(s, user.id, now) if user is not None else False
    s.commit()
    password = request.form.get("password", "")
    # Verify against a dummy hash for unknown emails too, so timing does not reveal who has an account.
    ok = staff_service.verify_password(user or _nobody(), password)
    if not ok or user is None or not open_ or not user.active:
        reason = {"reason": "locked"} if user is not None and not open_ else {}
        staff_service.audit(s, user.id if user else None, "staff.login_failed", "staff",
                            user.id if user else None, ip=ip, **reason)
        s.commit()
        return _login_refused(email, t("bad_login", lang), 401)
    staff_service.rehash_if_needed(user, password)
    remember = request.form.get("remember") == "1"
    if user.totp_secret:
        # The password was right; the count is not cleared until the code is, so guessing codes
        # between right passwords still meets the lockout.
        s.commit()
        cookie.clear()
        cookie.update({"tfa_user": user.id, "tfa_at": now.timestamp(), "tfa_remember": remember,
                       "tfa_next": request.args.get("next") or ""})
        return render_template("staff/login_code.html")
    return _finish_login(user, remember, request.args.get("next"))


def _second_factor() -> Any:
    """The code step: a signed cookie says whose password was right, and not long ago."""
    s, now, ip = session(), utcnow(), client_ip()
    lang = _browser_lang()
    user_id, at = cookie.get("tfa_user"), float(cookie.get("tfa_at", 0))
    user = staff_service.get(s, user_id) if isinstance(user_id, int) else None
    if user is None or now.timestamp() - at > TFA_WINDOW.total_seconds():
        cookie.clear()
        return _login_refused("", t("session_expired", lang), 401)
    open_ = staff_service.count_attempt(s, user.id, now)
    s.commit()
    if not open_ or not user.active or not staff_service.check_totp(s, user, request.form.get("code", ""), now):
        staff_service.audit(s, user.id, "staff.login_failed", "staff", user.id, ip=ip,
                            reason="locked" if not open_ else "code")
        s.commit()
        if not open_:
            cookie.clear()
            return _login_refused("", t("bad_login", lang), 401)
        return render_template("staff/login_code.html", error=t("totp_bad_code", lang)), 401
    return _finish_login(user, bool(cookie.get("tfa_remember")), cookie.get("tfa_next") or None, second_factor=True)


def _finish_login(user: StaffUser, remember: bool, next_: str | None, *, second_factor: bool = False) -> Any:
    s, now, ip = session(), utcnow(), client_ip()
    staff_service.login_ok(user, now)
    token = staff_service.start_session(s, user, now=now, lifetime=current_app.permanent_session_lifetime,
                                        remember=remember, ip=ip)
    staff_service.audit(s, user.id, "staff.login", "staff", user.id, ip=ip, remember=remember,
                        **({"second_factor": True} if second_factor else {}))
    s.commit()
    cookie.clear()  # a fresh session: nothing from before the login survives it
    login_user(StaffLogin(user, token))
    # Without "remember this device" the cookie has no expiry: it ends when the browser closes.
    cookie.permanent = remember
    cookie["staff_login_at"] = cookie["staff_seen"] = now.timestamp()
    if user.must_change_password:
        return redirect(url_for("staff.password"))
    return redirect(_safe_next(next_))


def _login_refused(email: str, message: str, status: int) -> Any:
    return render_template("staff/login.html", email=email, error=message), status


@bp.post("/logout")
def logout():  # type: ignore[no-untyped-def]
    staff_service.end_session(session(), me().token)
    staff_service.audit(session(), me().id, "staff.logout", "staff", me().id, ip=client_ip())
    session().commit()
    logout_user()
    cookie.clear()
    return redirect(url_for("staff.login"))


@bp.post("/logout-everywhere")
def logout_everywhere():  # type: ignore[no-untyped-def]
    """End every session of mine, on every device, this one included."""
    n = staff_service.end_sessions(session(), me().id)
    staff_service.audit(session(), me().id, "staff.logout_everywhere", "staff", me().id, ip=client_ip(), sessions=n)
    session().commit()
    logout_user()
    cookie.clear()
    return redirect(url_for("staff.login"))


@bp.route("/password", methods=["GET", "POST"])
def password():  # type: ignore[no-untyped-def]
    """Change my own password (the old one is asked); my other sessions end."""
    if request.method == "GET":
        return render_template("staff/password.html")
    lang = _lang()
    new = request.form.get("new_password", "")
    error = None
    if new != request.form.get("confirm_password", ""):
        error = t("passwords_differ", lang)
    else:
        try:
            staff_service.change_password(session(), me().user, request.form.get("old_password", ""), new,
                                          keep_session=me().token)
        except staff_service.StaffError as exc:
            session().rollback()
            key = str(exc)
            error = t(key, lang) if key in ("wrong_old_password", "same_password") else t("password_rule", lang)
    if error:
        return render_template("staff/password.html", error=error), 400
    audit("staff.password_changed", "staff", me().id)
    session().commit()
    flash(t("password_changed", lang), "ok")
    return redirect(url_for("staff.queue"))


@bp.route("/two-factor", methods=["GET", "POST"])
@staff_required(roles=staff_service.TOTP_ROLES)
def two_factor():  # type: ignore[no-untyped-def]
    """Enrol an authenticator app: a new secret, shown once (text and QR code), proved by a code."""
    user, lang = me().user, _lang()
    if request.method == "POST":
        secret = request.form.get("secret", "")
        try:
            staff_service.enable_totp(user, secret, request.form.get("code", ""), utcnow())
        except staff_service.StaffError:
            session().rollback()
            return _render_two_factor(secret, t("totp_bad_code", lang)), 400
        audit("staff.totp_enabled", "staff", user.id)
        session().commit()
        flash(t("totp_enabled", lang), "ok")
        return redirect(url_for("staff.two_factor"))
    if user.totp_secret:
        return render_template("staff/two_factor.html", enrolled=True)
    return _render_two_factor(staff_service.new_totp_secret())


def _render_two_factor(secret: str, error: str | None = None) -> str:
    import segno

    uri = staff_service.totp_uri(secret, me().email)
    qr = segno.make(uri, error="m").svg_inline(scale=4, title="QR")
    return render_template("staff/two_factor.html", enrolled=False, secret=secret, qr=qr, error=error)


@bp.post("/two-factor/off")
@staff_required(roles=staff_service.TOTP_ROLES)
def two_factor_off():  # type: ignore[no-untyped-def]
    try:
        staff_service.disable_totp(me().user, request.form.get("password", ""))
    except staff_service.StaffError:
        session().rollback()
        return render_template("staff/two_factor.html", enrolled=True,
                               error=t("wrong_old_password", _lang())), 400
    audit("staff.totp_disabled", "staff", me().id)
    session().commit()
    return redirect(url_for("staff.two_factor"))


@bp.post("/language")
def language():  # type: ignore[no-untyped-def]
    lang = request.form.get("language", "")
    if lang not in LANGUAGES:
        abort(400)
    staff_service.set_language(me().user, lang)
    session().commit()
    return redirect(_safe_next(request.form.get("back")))


# The case and admin pages add their routes to `bp`; they must be imported before it is registered.
