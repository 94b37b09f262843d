"""What the staff console does with cases and callbacks: queue, claim, assign, status, notes, history.

Every function takes the caller's session and plain values; none commits. Auditing is the
console's job (it knows the IP), so these functions only change case rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.orm import Session, selectinload

from hotline.db import utcnow
from hotline.models import (
    Call,
    CallbackAttempt,
    CallbackRequest,
    CallbackStatus,
    Case,
    CaseNote,
    CasePriority,
    CaseStatus,
    CaseStatusChange,
    Message,
    Recording,
    Role,
    StaffUser,
)
from hotline.settings import Settings

URGENT_WAIT = timedelta(minutes=15)  # an urgent case nobody claimed for this long is overdue
MAX_NOTE = 10_000
CALLBACK_OUTCOMES = ("reached", "no_answer", "busy", "unsafe", "wrong_number")
OPEN_CASE_STATES = (CaseStatus.NEW, CaseStatus.CLAIMED, CaseStatus.IN_PROGRESS, CaseStatus.REFERRED)


class CaseError(ValueError):
    """A request the console must refuse, with a message key for the interface."""

    def __init__(self, key: str, **detail: object):
        super().__init__(key)
        self.key = key
        self.detail = detail


class CaseForbidden(CaseError):
    """A role rule refuses this change (the console answers 403 and audits the attempt)."""

    def __init__(self, action: str):
        super().__init__("case_not_allowed", action=action)
        self.action = action


# Who may do what to a case. Enforced here, whatever the page offered:
# - claim: anyone, and only a new case nobody holds (`claim`);
# - assign or reassign: admins and lawyers;
# - close: admins and lawyers;
# - reopen a closed case: an admin, or the person who held it;
# - any other status change (including back to "new", which releases it): admins and lawyers on any
#   case; an operator only on a case nobody holds or they hold themselves, so an operator can never
#   take a case from someone else (release it, then claim it) or move it under them;
# - notes: anyone (a note adds, it takes nothing away).
def may_assign(role: Role) -> bool:
    return role in (Role.ADMIN, Role.LAWYER)


def may_set_status(case: Case, to: CaseStatus, staff_id: int, role: Role) -> bool:
    if role == Role.ADMIN:
        return True
    if case.status == CaseStatus.CLOSED:
        return case.claimed_by_id == staff_id
    if to == CaseStatus.CLOSED:
        return role == Role.LAWYER
    return role == Role.LAWYER or case.claimed_by_id in (None, staff_id)


def allowed_statuses(case: Case, staff_id: int, role: Role) -> list[CaseStatus]:
    """What the case page offers this person (the service checks again on submit)."""
    return [s for s in CaseStatus if s != case.status and may_set_status(case, s, staff_id, role)]


@dataclass(frozen=True)
class QueueRow:
    case: Case
    waiting: timedelta
    overdue: bool


def is_overdue(case: Case, now: datetime) -> bool:
    """Flagged by the escalation job, or an urgent case still unclaimed after URGENT_WAIT."""
    if case.status == CaseStatus.CLOSED:
        return False
    if case.overdue:
        return True
    return (case.priority == CasePriority.URGENT and case.status == CaseStatus.NEW
            and now - case.created_at > URGENT_WAIT)


def queue(session: Session, now: datetime | None = None, *, include_closed: bool = False,
          mine: int | None = None, limit: int = 200) -> list[QueueRow]:
    """Open cases, urgent first, then the longest waiting first."""
    now = now or utcnow()
    urgent_first = sa.case((Case.priority == CasePriority.URGENT, 0), else_=1)
    q = (sa.select(Case).options(selectinload(Case.claimed_by))
         .order_by(urgent_first, Case.created_at, Case.id).limit(limit))
    if not include_closed:
        q = q.where(Case.status.in_(OPEN_CASE_STATES))
    if mine is not None:
        q = q.where(Case.claimed_by_id == mine)
    return [QueueRow(c, now - c.created_at, is_overdue(c, now)) for c in session.scalars(q)]


def _change(session: Session, case: Case, to: CaseStatus, staff_id: int | None, reason: str | None,
            from_: CaseStatus | None, now: datetime) -> None:
    session.add(CaseStatusChange(case_id=case.id, from_status=from_, to_status=to, staff_id=staff_id,
                                 reason=reason, at=now))


def claim(session: Session, case_id: int, staff_id: int, now: datetime | None = None) -> Case:
    """Claim a new, unclaimed case. Two staff pressing Claim at once: the database picks one.

    A conditional UPDATE, not a read-then-write: the loser's UPDATE matches no row, and it is told
    who has the case (CaseError "already_claimed").
    """
    now = now or utcnow()
    result = session.execute(
        sa.update(Case)
        .where(Case.id == case_id, Case.status == CaseStatus.NEW, Case.claimed_by_id.is_(None))
        .values(status=CaseStatus.CLAIMED, claimed_by_id=staff_id, claimed_at=now)
        .execution_options(synchronize_session=False))
    case = session.get(Case, case_id)
    if case is None:
        raise CaseError("not_found")
    session.refresh(case)
    if result.rowcount != 1:  # type: ignore[attr-defined]
        holder = case.claimed_by.name or case.claimed_by.email if case.claimed_by else None
        raise CaseError("already_claimed", by=holder or "-")
    _change(session, case, CaseStatus.CLAIMED, staff_id, None, CaseStatus.NEW, now)
    return case


def assign(session: Session, case: Case, to_staff_id: int, by_staff_id: int, now: datetime | None = None, *,
           role: Role) -> None:
    """Give a case to a lawyer or operator (admins and lawyers do this); a new case becomes claimed."""
    now = now or utcnow()
    if not may_assign(role):
        raise CaseForbidden("assign")
    target = session.get(StaffUser, to_staff_id)
    if target is None or not target.active:
        raise CaseError("no_such_staff")
    if case.status == CaseStatus.CLOSED:
        raise CaseError("case_closed")
    before = case.status
    case.claimed_by_id = target.id
    case.claimed_at = now
    if case.status == CaseStatus.NEW:
        case.status = CaseStatus.CLAIMED
    _change(session, case, case.status, by_staff_id, f"assigned to {target.name or target.email}", before, now)


def set_status(session: Session, case: Case, to: str, staff_id: int, reason: str | None = None,
               now: datetime | None = None, *, role: Role) -> None:
    """Move a case to another status if `role` may (see the rules above), recording who and when;
    closing stamps closed_at."""
    now = now or utcnow()
    try:
        target = CaseStatus(to)
    except ValueError:
        raise CaseError("bad_status") from None
    if target == case.status:
        raise CaseError("same_status")
    if not may_set_status(case, target, staff_id, role):
        raise CaseForbidden("reopen" if case.status == CaseStatus.CLOSED else
                            "close" if target == CaseStatus.CLOSED else "status")
    before = case.status
    case.status = target
    if target == CaseStatus.NEW:
        case.claimed_by_id, case.claimed_at = None, None  # back to the queue for anyone
    elif case.claimed_by_id is None:
        # Working on an unclaimed case makes it yours: the queue must show who has it.
        case.claimed_by_id, case.claimed_at = staff_id, now
    case.closed_at = now if target == CaseStatus.CLOSED else None
    _change(session, case, target, staff_id, (reason or "").strip()[:255] or None, before, now)


def add_note(session: Session, case: Case, staff_id: int, body: str) -> CaseNote:
    body = body.strip()
    if not body:
        raise CaseError("empty_note")
    if len(body) > MAX_NOTE:
        raise CaseError("note_too_long")
    note = CaseNote(case_id=case.id, staff_id=staff_id, body=body, created_at=utcnow())
    session.add(note)
    session.flush()
    return note


@dataclass
class History:
    """What the caller did: calls with their path, their own texts, recordings, earlier cases."""

    calls: list[Call] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    recordings: list[Recording] = field(default_factory=list)
    other_cases: list[Case] = field(default_factory=list)


def history(session: Session, case: Case, limit: int = 100) -> History:
    h = History()
    recs = sa.select(Recording).where(Recording.case_id == case.id)
    if case.caller_id is None and case.source_sid:
        # A withheld number has no caller row and so no history: only the call that opened this case.
        h.calls = list(session.scalars(sa.select(Call).options(selectinload(Call.events))
                                       .where(Call.call_sid == case.source_sid)))
    if case.caller_id is not None:
        h.calls = list(session.scalars(
            sa.select(Call).options(selectinload(Call.events)).where(Call.caller_id == case.caller_id)
            .order_by(Call.started_at.desc(), Call.id.desc()).limit(limit)))
        # Only the caller's own conversation: alerts about this case went to on-call staff, and
        # their bodies are not the caller's (Message.caller_id is set for the caller's thread only).
        h.messages = list(session.scalars(
            sa.select(Message).where(Message.caller_id == case.caller_id)
            .order_by(Message.created_at.desc(), Message.id.desc()).limit(limit)))
        h.other_cases = list(session.scalars(
            sa.select(Case).where(Case.caller_id == case.caller_id, Case.id != case.id)
            .order_by(Case.created_at.desc()).limit(limit)))
        call_ids = [c.id for c in h.calls]
        if call_ids:
            recs = sa.select(Recording).where(sa.or_(Recording.case_id == case.id, Recording.call_id.in_(call_ids)))
    h.recordings = list(session.scalars(recs.order_by(Recording.created_at.desc(), Recording.id.desc())))
    return h


def assignable_staff(session: Session) -> list[StaffUser]:
    return list(session.scalars(sa.select(StaffUser).where(StaffUser.active.is_(True), StaffUser.role != Role.REPORTS)
                                .order_by(StaffUser.name, StaffUser.email)))


def can_assign(role: Role) -> bool:
    return may_assign(role)


# --- callbacks -------------------------------------------------------------------------------

OPEN_CALLBACK_STATES = (CallbackStatus.OPEN, CallbackStatus.IN_PROGRESS)


def open_callbacks(session: Session, limit: int = 200) -> list[CallbackRequest]:
    """Open callback requests, the one due soonest first (never-tried ones by when they asked)."""
    due = sa.func.coalesce(CallbackRequest.next_attempt_at, CallbackRequest.created_at)
    return list(session.scalars(
        sa.select(CallbackRequest).options(selectinload(CallbackRequest.attempt_log))
        .where(CallbackRequest.status.in_(OPEN_CALLBACK_STATES))
        .order_by(due, CallbackRequest.id).limit(limit)))


def record_outcome(session: Session, settings: Settings, req: CallbackRequest, outcome: str, staff_id: int,
                   now: datetime | None = None) -> CallbackAttempt:
    """What happened when staff called: reached closes it, a wrong number fails it, the rest retry.

    The outcome goes to the attempt "Call now" placed if it has none yet (so Twilio's later status
    callback does not count it again); otherwise staff called by hand and a new attempt is written.
    Counting and retry times are the worker pipeline's (hotline.services.callbacks.finish_attempt).
    """
    from hotline.services import callbacks

    now = now or utcnow()
    if outcome not in CALLBACK_OUTCOMES:
        raise CaseError("bad_outcome")
    if req.status not in OPEN_CALLBACK_STATES:
        raise CaseError("callback_closed")
    attempt = next((a for a in reversed(req.attempt_log) if a.outcome is None), None)
    if attempt is None:
        attempt = CallbackAttempt(request_id=req.id, staff_id=staff_id, at=now)
        session.add(attempt)
        session.flush()
    if outcome == "wrong_number":
        # Not the person who asked: never call this number again for this request.
        callbacks.finish_attempt(session, settings, attempt.id, "failed", final=True)
        attempt.outcome = req.outcome = "wrong_number"
    else:
        callbacks.finish_attempt(session, settings, attempt.id, outcome)
    session.flush()
    session.refresh(req)
    return attempt


# --- single rows and small changes the console asks for -----------------------------------------


def get_case(session: Session, case_id: int) -> Case | None:
    return session.get(Case, case_id)


def get_callback(session: Session, callback_id: int) -> CallbackRequest | None:
    return session.get(CallbackRequest, callback_id)


def get_recording(session: Session, recording_id: int) -> Recording | None:
    return session.get(Recording, recording_id)


def set_place(case: Case, province: str | None, district: str | None) -> tuple[str | None, str | None]:
    """Set (or clear) the home province and district of the person the case is about (already
    checked by hotline.services.places.check); returns what they were."""
    before = (case.province, case.district)
    case.province, case.district = province, district
    return before
