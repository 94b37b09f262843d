"""Callers: one row per phone number, with language and opt-out."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hotline.db import insert_ignore, utcnow
from hotline.models import Caller
from hotline.phones import country_of, is_withheld

SEEN_RESOLUTION = timedelta(hours=1)


def get_or_create(session: Session, phone: str) -> Caller:
    """The caller for `phone` (E.164 or whatever Twilio sent), created on first contact.

    Two webhooks from one new number can race; the unique index decides and the loser re-reads.
    """
    phone = phone.strip()[:20] or "unknown"
    now = utcnow()
    caller = session.scalar(sa.select(Caller).where(Caller.phone == phone))
    if caller is None:
        insert_ignore(session, Caller.__table__, {"phone": phone, "country": country_of(phone),
                                                  "created_at": now, "last_seen_at": now}, "phone")
        caller = session.scalar(sa.select(Caller).where(Caller.phone == phone))
        assert caller is not None
    elif caller.last_seen_at is None or now - caller.last_seen_at > SEEN_RESOLUTION:
        # Reporting needs "seen today", not the second: skip an UPDATE on most requests.
        caller.last_seen_at = now
    return caller


def known(session: Session, phone: str) -> Caller | None:
    """The caller for `phone`, or None when the number is withheld: withheld callers are strangers
    to each other, so they share no row (no remembered language, no history, no resume offer)."""
    return None if is_withheld(phone) else get_or_create(session, phone)
