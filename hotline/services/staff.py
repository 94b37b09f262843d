"""Staff accounts: argon2-hashed passwords, roles, server-side sessions, lockout, the audit log."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

import pyotp
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from hotline.db import UTCDateTime
from hotline.models import AuditEvent, Role, StaffSession, StaffUser

_hasher = PasswordHasher()
MIN_PASSWORD = 10
LOCK_AFTER = 5  # failed passwords in a row lock the account for LOCK_FOR
LOCK_FOR = timedelta(minutes=15)


class StaffError(ValueError):
    pass


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@") or len(email) > 254:
        raise StaffError(f"{email!r} is not an email address")
    return email


def create(session: Session, email: str, role: str, password: str, name: str = "",
           phone: str | None = None, *, must_change: bool = False) -> StaffUser:
    """A new account; `must_change` when someone other than its owner chose the password."""
    email = normalise_email(email)
    try:
        role_ = Role(role)
    except ValueError:
        raise StaffError(f"role must be one of: {', '.join(r.value for r in Role)}") from None
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"password must have at least {MIN_PASSWORD} characters")
    if session.scalar(sa.select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise StaffError(f"{email} already has an account")
    user = StaffUser(email=email, role=role_, name=name, phone=phone, password_hash=_hasher.hash(password),
                     must_change_password=must_change)
    session.add(user)
    session.flush()
    return user


def verify_password(user: StaffUser, password: str) -> bool:
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    return True


def rehash_if_needed(user: StaffUser, password: str) -> bool:
    """After a successful login: store a new hash when argon2's parameters have changed since."""
    try:
        needed = _hasher.check_needs_rehash(user.password_hash)
    except InvalidHashError:
        needed = True
    if needed:
        user.password_hash = _hasher.hash(password)
    return needed


def set_password(user: StaffUser, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"password must have at least {MIN_PASSWORD} characters")
    user.password_hash = _hasher.hash(password)


def change_password(session: Session, user: StaffUser, old: str, new: str, *, keep_session: str | None) -> None:
    """The owner changes their password (the old one is asked); their other sessions end."""
    if not verify_password(user, old):
        raise StaffError("wrong_old_password")
    if new == old:
        raise StaffError("same_password")
    set_password(user, new)
    user.must_change_password = False
    end_sessions(session, user.id, keep=keep_session)


def reset_password(session: Session, user: StaffUser) -> str:
    """An admin's reset: a temporary password (shown once), changed at the next login; sessions end.

    It also removes two-factor: a reset is what someone who lost their phone asks for, and they can
    enrol again once logged in."""
    password = secrets.token_urlsafe(12)
    set_password(user, password)
    user.must_change_password = True
    user.failed_logins, user.locked_until = 0, None
    user.totp_secret, user.totp_last_step = None, None
    end_sessions(session, user.id)
    return password


# --- two-factor (TOTP) ---------------------------------------------------------------------------

TOTP_ROLES = (Role.ADMIN, Role.LAWYER)
TOTP_STEP = 30  # seconds per code (what every authenticator app uses)
TOTP_ISSUER = "Hotline console"


def new_totp_secret() -> str:
    return pyotp.random_base32()  # 32 base32 characters: 160 bits


def totp_uri(secret: str, email: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret, interval=TOTP_STEP).provisioning_uri(name=email, issuer_name=TOTP_ISSUER)


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The step (this one, or one either side for clock drift) whose code this is."""
    code = "".join(ch for ch in code if ch.isdigit())
    if len(code) != 6:
        return None
    totp, step = pyotp.TOTP(secret, interval=TOTP_STEP), int(now.timestamp()) // TOTP_STEP
    for s in (step - 1, step, step + 1):
        if secrets.compare_digest(totp.at(s * TOTP_STEP), code):
            return s
    return None


def check_totp(session: Session, user: StaffUser, code: str, now: datetime) -> bool:
    """A right code, not used before: recorded by a conditional UPDATE, so two requests replaying
    one code cannot both pass."""
    if not user.totp_secret:
        return False
    step = _matching_step(user.totp_secret, code, now)
    if step is None:
        return False
    result = session.execute(
        sa.update(StaffUser)
        .where(StaffUser.id == user.id,
               sa.or_(StaffUser.totp_last_step.is_(None), StaffUser.totp_last_step < step))
        .values(totp_last_step=step).execution_options(synchronize_session=False))
    session.expire(user, ["totp_last_step"])
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def enable_totp(user: StaffUser, secret: str, code: str, now: datetime) -> None:
    """Enrolment: the code from the app proves it holds the secret shown."""
    if Role(user.role) not in TOTP_ROLES:
        raise StaffError("totp_not_for_role")
    if len(secret) != 32 or any(ch not in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for ch in secret):
        raise StaffError("totp_bad_code")
    step = _matching_step(secret, code, now)
    if step is None:
        raise StaffError("totp_bad_code")
    user.totp_secret, user.totp_last_step = secret, step


def disable_totp(user: StaffUser, password: str) -> None:
    if not verify_password(user, password):
        raise StaffError("wrong_old_password")
    user.totp_secret, user.totp_last_step = None, None


# --- lockout -----------------------------------------------------------------------------------


def count_attempt(session: Session, user_id: int, now: datetime) -> bool:
    """Count a login attempt BEFORE the password is checked; False when the account is locked.

    One conditional UPDATE, committed at once: parallel attempts cannot all read the same count and
    all be checked (argon2 takes ~100 ms, plenty of time for a race). The LOCK_AFTER-th attempt sets
    the lock; the ones after it match no row. A right password then clears the count (`login_ok`).
    A lock that has run out starts the count again at 1. The caller commits at once, before it
    checks the password, so the count is visible to every other attempt (and no lock is held).
    """
    lock_over = sa.and_(StaffUser.locked_until.is_not(None), StaffUser.locked_until <= now)
    count = sa.case((lock_over, 1), else_=StaffUser.failed_logins + 1)
    result = session.execute(
        sa.update(StaffUser)
        .where(StaffUser.id == user_id, sa.or_(StaffUser.locked_until.is_(None), StaffUser.locked_until <= now))
        .values(failed_logins=count,
                locked_until=sa.case((count >= LOCK_AFTER, sa.literal(now + LOCK_FOR, UTCDateTime())),
                                     else_=sa.null()))
        .execution_options(synchronize_session=False))
    user = session.get(StaffUser, user_id)
    if user is not None:  # what was loaded is stale now; `login_ok` must write its reset, not skip it
        session.expire(user, ["failed_logins", "locked_until"])
    return result.rowcount == 1  # type: ignore[attr-defined,no-any-return]


def login_ok(user: StaffUser, now: datetime) -> None:
    user.failed_logins, user.locked_until, user.last_login_at = 0, None, now


# --- sessions ----------------------------------------------------------------------------------


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(session: Session, user: StaffUser, *, now: datetime, lifetime: timedelta, remember: bool,
                  ip: str | None) -> str:
    """A new server-side session; returns the token for the cookie (only its digest is stored)."""
    session.execute(sa.delete(StaffSession).where(StaffSession.staff_id == user.id, StaffSession.expires_at <= now))
    token = secrets.token_urlsafe(32)
    session.add(StaffSession(id=_digest(token), staff_id=user.id, created_at=now, expires_at=now + lifetime,
                             remember=remember, ip=ip))
    return token


def session_user(session: Session, token: str, now: datetime) -> StaffUser | None:
    """The active user whose live session this token is, in one query; None otherwise."""
    return session.scalar(
        sa.select(StaffUser).join(StaffSession, StaffSession.staff_id == StaffUser.id)
        .where(StaffSession.id == _digest(token), StaffSession.expires_at > now, StaffUser.active.is_(True)))


def end_session(session: Session, token: str) -> None:
    session.execute(sa.delete(StaffSession).where(StaffSession.id == _digest(token)))


def end_sessions(session: Session, staff_id: int, *, keep: str | None = None) -> int:
    """End every session of one person (all but `keep`, the token of the session asking)."""
    q = sa.delete(StaffSession).where(StaffSession.staff_id == staff_id)
    if keep is not None:
        q = q.where(StaffSession.id != _digest(keep))
    return session.execute(q.execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined,no-any-return]


def audit(session: Session, staff_id: int | None, action: str, object_type: str | None = None,
          object_id: object = None, ip: str | None = None, **detail: Any) -> None:
    session.add(AuditEvent(staff_id=staff_id, action=action, object_type=object_type,
                           object_id=None if object_id is None else str(object_id), ip=ip,
                           detail=detail or None))


# --- what the console reads and changes (the web layer never queries models itself) ------------


def get(session: Session, staff_id: int) -> StaffUser | None:
    return session.get(StaffUser, staff_id)


def by_email(session: Session, email: str) -> StaffUser | None:
    """The account with this (already normalised) email, if any."""
    return session.scalar(sa.select(StaffUser).where(StaffUser.email == email)) if email else None


def all_staff(session: Session) -> list[StaffUser]:
    """Every account, active or not, by email (the accounts page)."""
    return list(session.scalars(sa.select(StaffUser).order_by(StaffUser.email)))


def set_active(session: Session, user: StaffUser, active: bool) -> int:
    """(De)activate an account; deactivating ends its sessions at once. Returns how many ended."""
    user.active = active
    return 0 if active else end_sessions(session, user.id)


def set_language(user: StaffUser, language: str) -> None:
    user.language = language


def failed_logins_from(session: Session, ip: str, since: datetime) -> int:
    """Failed logins from one address since a time (the per-address limit, counted in the database)."""
    return session.scalar(sa.select(sa.func.count(AuditEvent.id)).where(
        AuditEvent.action == "staff.login_failed", AuditEvent.ip == ip, AuditEvent.at > since)) or 0


def audit_events(session: Session, *, object_type: str = "", object_id: str = "", staff_id: int | None = None,
                 limit: int = 200) -> list[AuditEvent]:
    """The newest audit events, optionally for one object type, object id or staff member."""
    q = sa.select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit)
    if object_type:
        q = q.where(AuditEvent.object_type == object_type)
    if object_id:
        q = q.where(AuditEvent.object_id == object_id)
    if staff_id is not None:
        q = q.where(AuditEvent.staff_id == staff_id)
    return list(session.scalars(q))


def emails_by_id(session: Session) -> dict[int, str]:
    return {i: e for i, e in session.execute(sa.select(StaffUser.id, StaffUser.email))}
