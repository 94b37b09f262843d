"""Intake shared by every channel (voice, SMS, missed call, console): open a case, ask for a callback.

Both write their row and an outbox job in the caller's transaction; the job reaches RQ only after
commit (hotline.background.outbox). Both are idempotent: the same CallSid/MessageSid opens one case, and a
number has at most one open callback request.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.background.outbox import add_job
from hotline.models import (
    CallbackRequest,
    CallbackStatus,
    Caller,
    Case,
    CaseCategory,
    CasePriority,
    CaseStatus,
    CaseStatusChange,
    Language,
)
from hotline.phones import country_of

T = TypeVar("T")
# Crockford base32 without look-alikes (no I, L, O, U): refs are read aloud over bad lines.
_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
NOTIFY_JOB = "case.notify"
CALLBACK_JOB = "callback.schedule"
OPEN_STATES = (CallbackStatus.OPEN, CallbackStatus.IN_PROGRESS)


def new_ref() -> str:
    return "HL-" + "".join(secrets.choice(_REF_ALPHABET) for _ in range(6))


def open_case(session: Session, *, caller: Caller | None, source: str, source_sid: str | None,
              priority: CasePriority, category: CaseCategory = CaseCategory.OTHER,
              country: str | None = None, language: Language | str | None = None,
              reported_by_other: bool = False, subject_phone: str | None = None,
              consent_contact: bool | None = None) -> tuple[Case, bool]:
    """Open a case and queue the legal-aid notification. Returns (case, created)."""
    if source_sid:
        existing = session.scalar(sa.select(Case).where(Case.source_sid == source_sid))
        if existing is not None:
            return existing, False
    case = Case(ref=new_ref(), caller_id=caller.id if caller else None, source=source, source_sid=source_sid,
                priority=priority, category=category, status=CaseStatus.NEW,
                country=country or (caller.country if caller else None),
                language=Language(language) if language else (caller.language if caller else None),
                reported_by_other=reported_by_other, subject_phone=subject_phone, consent_contact=consent_contact)
    # Twilio retried the same webhook concurrently: the other request opened it.
    winner = _add_unless_taken(session, case, lambda: session.scalar(
        sa.select(Case).where(Case.source_sid == source_sid)))
    if winner is not None:
        return winner, False
    session.add(CaseStatusChange(case_id=case.id, from_status=None, to_status=CaseStatus.NEW,
                                 reason=f"opened by {source}"))
    add_job(session, NOTIFY_JOB, {"case_id": case.id},
            queue="urgent" if priority == CasePriority.URGENT else "default", case_id=case.id)
    return case, True


def request_callback(session: Session, *, caller: Caller | None, phone: str, source: str,
                     source_sid: str | None = None, language: Language | str | None = None,
                     preferred_time: str = "now", for_someone_else: bool = False,
                     consent_contact: bool | None = None, case_id: int | None = None) -> tuple[CallbackRequest, bool]:
    """Store a callback request once per open request per number. Returns (request, created)."""
    existing = _open_request(session, phone)
    if existing is not None:
        return existing, False
    req = CallbackRequest(caller_id=caller.id if caller else None, phone=phone, country=country_of(phone),
                          language=Language(language) if language else (caller.language if caller else None),
                          source=source, source_sid=source_sid, preferred_time=preferred_time,
                          for_someone_else=for_someone_else, consent_contact=consent_contact, case_id=case_id)
    # The partial unique index (one open request per phone) catches a concurrent duplicate.
    winner = _add_unless_taken(session, req, lambda: _open_request(session, phone))
    if winner is not None:
        return winner, False
    add_job(session, CALLBACK_JOB, {"callback_id": req.id}, queue="default")
    return req, True


def _add_unless_taken(session: Session, row: T, winner: Callable[[], T | None]) -> T | None:
    """Insert `row` in a savepoint. None when it went in; when a unique key refused it, the row
    that holds the key (re-read by `winner`)."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        existing = winner()
        if existing is None:
            raise
        return existing
    return None


def _open_request(session: Session, phone: str) -> CallbackRequest | None:
    return session.scalar(sa.select(CallbackRequest).where(CallbackRequest.phone == phone,
                                                           CallbackRequest.status.in_(OPEN_STATES)))
