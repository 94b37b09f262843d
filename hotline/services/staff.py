"""Staff accounts: argon2-hashed passwords, roles, and the audit log."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.orm import Session

from hotline.models import AuditEvent, Role, StaffUser

_hasher = PasswordHasher()
MIN_PASSWORD = 10


class StaffError(ValueError):
    pass


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or email.startswith("@") or email.endswith("@") or len(email) > 254:
        raise StaffError(f"{email!r} is not an email address")
    return email


def create(session: Session, email: str, role: str, password: str, name: str = "",
           phone: str | None = None) -> StaffUser:
    email = normalise_email(email)
    try:
        role_ = Role(role)
    except ValueError:
        raise StaffError(f"role must be one of: {', '.join(r.value for r in Role)}") from None
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"password must have at least {MIN_PASSWORD} characters")
    if session.scalar(sa.select(StaffUser.id).where(StaffUser.email == email)) is not None:
        raise StaffError(f"{email} already has an account")
    user = StaffUser(email=email, role=role_, name=name, phone=phone, password_hash=_hasher.hash(password))
    session.add(user)
    session.flush()
    return user


def verify_password(user: StaffUser, password: str) -> bool:
    try:
        _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    return True


def set_password(user: StaffUser, password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise StaffError(f"password must have at least {MIN_PASSWORD} characters")
    user.password_hash = _hasher.hash(password)


def audit(session: Session, staff_id: int | None, action: str, object_type: str | None = None,
          object_id: object = None, ip: str | None = None, **detail: Any) -> None:
    session.add(AuditEvent(staff_id=staff_id, action=action, object_type=object_type,
                           object_id=None if object_id is None else str(object_id), ip=ip,
                           detail=detail or None))
