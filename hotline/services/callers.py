"""Callers: one row per phone number, with language and opt-out."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.db import utcnow
from hotline.models import Caller
from hotline.phones import country_of


def get_or_create(session: Session, phone: str) -> Caller:
    """The caller for `phone` (E.164 or whatever Twilio sent), created on first contact.

    Two webhooks from one new number can race; the unique index decides and the loser re-reads.
    """
    phone = phone.strip()[:20] or "unknown"
    caller = session.scalar(sa.select(Caller).where(Caller.phone == phone))
    if caller is None:
        try:
            with session.begin_nested():
                caller = Caller(phone=phone, country=country_of(phone))
                session.add(caller)
        except IntegrityError:
            caller = session.scalar(sa.select(Caller).where(Caller.phone == phone))
            assert caller is not None
    caller.last_seen_at = utcnow()
    return caller
