"""Urgent cases reach a lawyer's phone: the on-call alert (job "case.notify") and escalation.

Alerts are neutral: a case reference, a category label and the country; never the caller's number or
words. Each alert is a Message row whose idempotency key names the case, the escalation level and
the number, so a retried or duplicated job sends nothing twice.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.background import outbox
from hotline.background.periodic import every
from hotline.background.runner import handler
from hotline.db import utcnow
from hotline.models import (
    Case,
    CaseCategory,
    CaseNote,
    CasePriority,
    CaseStatus,
    CaseStatusChange,
    Direction,
    Message,
    MessageStatus,
    OnCallEntry,
    OutboxJob,
    StaffUser,
)
from hotline.phones import mask
from hotline.resources import Resources
from hotline.services import sendgate
from hotline.services.intake import NOTIFY_JOB
from hotline.settings import Settings
from hotline.telephony.transport import SendError, Sent, Transport, find_sms

log = logging.getLogger(__name__)
# NOTIFY_JOB ("case.notify") is written by hotline.services.intake.open_case.
ALERT_PURPOSE = "oncall_alert"

# What the alert calls each category. The words a watcher would notice ("trafficking", "violence")
# never appear, even on a lawyer's phone; the console shows the real category.
ALERT_LABELS = {
    CaseCategory.TRAFFICKING: "exploitation",
    CaseCategory.DOCUMENTS: "documents",
    CaseCategory.UNPAID_WAGES: "unpaid wages",
    CaseCategory.VIOLENCE: "personal safety",
    CaseCategory.DETENTION: "detention",
    CaseCategory.LOCKED_IN: "movement",
    CaseCategory.MISSING: "family contact",
    CaseCategory.OTHER: "other",
}


# What the carrier errors of a delivery report mean, for the case page (Twilio's error dictionary).
CARRIER_ERRORS = {
    "30003": "phone unreachable or switched off",
    "30004": "message blocked",
    "30005": "unknown or inactive number",
    "30006": "landline or unreachable carrier",
    "30007": "filtered by the carrier",
    "30008": "unknown carrier error",
}


def oncall_numbers(session: Session, settings: Settings, country: str | None) -> list[str]:
    """On-call numbers for a country, in order: the console's roster, else HOTLINE_ONCALL."""
    query = sa.select(OnCallEntry.phone).where(OnCallEntry.active.is_(True))
    if country:
        query = query.where(OnCallEntry.country == country)
    roster = list(session.scalars(query.order_by(OnCallEntry.position, OnCallEntry.id)))
    return list(dict.fromkeys(roster)) or settings.oncall_for(country or "")


def taken_on_the_phone(s: Session, case: Case, phone: str, now: datetime) -> None:
    """The on-call person at `phone` accepted the urgent call: the case is claimed, which stops the
    escalation (it only texts NEW cases). By their staff account where a staff member has that
    phone number; otherwise the case is claimed by nobody in particular and a note says who took it."""
    staff = s.scalar(sa.select(StaffUser).where(StaffUser.phone == phone, StaffUser.active.is_(True)).limit(1))
    staff_id = staff.id if staff else None
    won = s.execute(sa.update(Case).where(Case.id == case.id, Case.status == CaseStatus.NEW)
                    .values(status=CaseStatus.CLAIMED, claimed_by_id=staff_id, claimed_at=now)
                    .execution_options(synchronize_session=False))
    if won.rowcount:  # type: ignore[attr-defined]
        s.add(CaseStatusChange(case_id=case.id, from_status=CaseStatus.NEW, to_status=CaseStatus.CLAIMED,
                               staff_id=staff_id, reason="took the urgent call on the phone", at=now))
    if staff_id is None or not won.rowcount:  # type: ignore[attr-defined]
        name = s.scalar(sa.select(OnCallEntry.name).where(OnCallEntry.phone == phone).limit(1))
        who = f"{name} ({mask(phone)})" if name else mask(phone)
        s.add(CaseNote(case_id=case.id, staff_id=None, body=f"Urgent call taken on the phone by {who}.",
                       created_at=now))
    log.info("urgent case %s taken on the phone by %s", case.ref, mask(phone))


def alert_text(case: Case, level: int, settings: Settings) -> str:
    label = ALERT_LABELS.get(CaseCategory(case.category), "other")
    where = f", {case.country}" if case.country else ""
    if level == 0:
        return f"Hotline: urgent case {case.ref} ({label}{where}). Please claim it in the console."
    return (f"Hotline: urgent case {case.ref} ({label}{where}) is still unclaimed after "
            f"{settings.escalate_after_minutes * level} min. Please claim it in the console.")


def recipient(numbers: list[str], level: int) -> str:
    """Level 0 texts the first on-call number, each escalation the next one, wrapping around."""
    return numbers[level % len(numbers)]


def max_level(numbers: list[str]) -> int:
    """Escalate until everyone on the list has been texted; a list of one gets one reminder."""
    return max(len(numbers) - 1, 1)


@handler(NOTIFY_JOB, queue="urgent", timeout=45)
def notify(res: Resources, s: Session, job: OutboxJob) -> None:
    """Text the on-call number for this case's level, once, unless the case was claimed meanwhile."""
    case = s.get(Case, job.payload["case_id"])
    level = int(job.payload.get("level", 0))
    if case is None or case.priority != CasePriority.URGENT or case.status != CaseStatus.NEW:
        return  # normal cases wait in the console; a claimed case needs no alert
    numbers = oncall_numbers(s, res.settings, case.country)
    if not numbers:
        raise SendError("no on-call number is set (HOTLINE_ONCALL or the console roster)", transient=False)
    phone = recipient(numbers, level)
    try:
        send_alert(s, res.transport(), res.settings, case, level, phone)
    except SendError as exc:
        if not exc.transient:
            skip_to_next(res, s, case, level, numbers)
        raise
    case.notified_at = case.notified_at if level == 0 and case.notified_at else utcnow()
    if case.last_error and case.last_error.startswith(f"{NOTIFY_JOB}: retrying"):
        case.last_error = None  # delivered after all; a permanent failure's note stays for staff
    s.commit()


def skip_to_next(res: Resources, s: Session, case: Case, level: int, numbers: list[str]) -> None:
    """A number that can never be reached (invalid, opted out) must not cost the caller the
    escalation wait: text the next on-call person now. This job still fails, visibly."""
    if pass_on(s, case.id, level, numbers):
        s.commit()  # the outbox hook enqueues it after this commit (hotline.background.outbox.install)


def pass_on(s: Session, case_id: int, level: int, numbers: list[str]) -> bool:
    """Queue the alert for the next on-call person now, if the case is still at `level` and unclaimed.
    A conditional UPDATE: a retried job, a redelivered status callback and the escalation sweep
    racing on one case pass it on once. The caller commits."""
    if level >= max_level(numbers) or recipient(numbers, level + 1) == recipient(numbers, level):
        return False
    result = s.execute(sa.update(Case).where(Case.id == case_id, Case.escalation_level == level,
                                             Case.status == CaseStatus.NEW)
                       .values(escalation_level=level + 1, notified_at=utcnow())
                       .execution_options(synchronize_session=False))
    if not result.rowcount:  # type: ignore[attr-defined]
        return False
    outbox.add_job(s, NOTIFY_JOB, {"case_id": case_id, "level": level + 1}, queue="urgent", case_id=case_id)
    return True


def alert_not_delivered(s: Session, settings: Settings, msg: Message) -> bool:
    """A delivery report says an alert never reached the phone (carrier errors 30003-30008 and the
    like, reported minutes after Twilio accepted it): show it on the case and pass the alert to the
    next on-call person at once, instead of after the escalation wait. Once, however often or in
    whatever order the status callbacks come. Returns whether the next person was queued."""
    if (msg.purpose != ALERT_PURPOSE or msg.case_id is None
            or msg.status not in (MessageStatus.UNDELIVERED, MessageStatus.FAILED)):
        return False
    parts = (msg.idempotency_key or "").split(":")  # case:<id>:alert:<level>:<phone> (send_alert)
    if len(parts) != 5 or not parts[3].isdigit():
        return False
    case = s.get(Case, msg.case_id)
    if case is None:
        return False
    why = msg.error_message or CARRIER_ERRORS.get(msg.error_code or "")
    reason = f" ({msg.error_code}{': ' + why if why else ''})" if msg.error_code else ""
    case.last_error = f"alert to {mask(msg.peer)} {msg.status}{reason}"[:255]
    if case.priority != CasePriority.URGENT or case.status != CaseStatus.NEW:
        return False
    passed = pass_on(s, case.id, int(parts[3]), oncall_numbers(s, settings, case.country))
    if passed:
        log.warning("alert for case %s %s (%s): passed to the next on-call person", case.ref, msg.status,
                    msg.error_code)
    return passed


def send_alert(s: Session, transport: Transport, settings: Settings, case: Case, level: int, phone: str) -> None:
    """Send one alert exactly once, surviving a worker killed at any point.

    The Message row is written with status "sending" and committed BEFORE Twilio is asked, then the
    sid is recorded. A retry that finds a "sending" row without a sid cannot know whether the worker
    died before or after Twilio accepted the message, so it asks Twilio (the Messages list for that
    number) and resends only if Twilio has no such message: one SMS, never two.
    """
    key = f"case:{case.id}:alert:{level}:{phone}"
    body = alert_text(case, level, settings)
    msg = s.scalar(sa.select(Message).where(Message.idempotency_key == key))
    if msg is not None and (msg.sid or msg.status == MessageStatus.FAILED):
        if msg.status == MessageStatus.FAILED:
            raise SendError(f"alert to {mask(phone)} failed: {msg.error_message}", transient=False,
                            code=msg.error_code)
        return  # already sent
    if msg is None:
        msg = _new_alert(s, case, key, phone, body, transport.name)
    elif phone.startswith("+"):  # a chat address (Telegram) has no Twilio list to reconcile with
        found = find_sms(transport, to=phone, body=msg.body or body,
                         created_after=(msg.created_at or utcnow()) - timedelta(minutes=2))
        if found is not None:
            log.info("alert for case %s level %d was already accepted by Twilio (%s)", case.ref, level, found.sid)
            _record_sent(s, msg, found)
            return
    try:
        sent = sendgate.send_sms(s, transport, phone, msg.body or body,
                                 status_callback=f"{settings.public_base_url}/twilio/sms/status", settings=settings)
    except SendError as exc:
        msg.error_code, msg.error_message = exc.code, str(exc)[:255]
        if not exc.transient:
            msg.status = MessageStatus.FAILED
        s.commit()  # the job runner rolls back on error: keep what we learnt
        raise
    _record_sent(s, msg, sent)


def _new_alert(s: Session, case: Case, key: str, phone: str, body: str, provider: str) -> Message:
    channel = "sms" if phone.startswith("+") else phone.partition(":")[0]  # an on-call lawyer's Telegram
    msg = Message(direction=Direction.OUTBOUND, channel=channel, peer=phone, body=body, status=MessageStatus.SENDING,
                  purpose=ALERT_PURPOSE, case_id=case.id, idempotency_key=key, provider=provider,
                  segments=segments(body))
    try:
        s.add(msg)
        s.commit()
    except IntegrityError:
        # Only possible if two workers ran the same job at once (a lease expired under a slow send).
        s.rollback()
        raise SendError("another worker is sending this alert", transient=True) from None
    return msg


def _record_sent(s: Session, msg: Message, sent: Sent) -> None:
    msg.sid, msg.provider, msg.error_code, msg.error_message = sent.sid, sent.provider, None, None
    msg.status = MessageStatus.DELIVERED if sent.status == "delivered" else MessageStatus.SENT
    s.commit()


def segments(body: str) -> int:
    """SMS parts: GSM-7 160/153 characters, UCS-2 (any Khmer or Thai) 70/67."""
    gsm = all(ord(c) < 128 for c in body)
    single, multi = (160, 153) if gsm else (70, 67)
    return 1 if len(body) <= single else -(-len(body) // multi)


@every
def escalate(res: Resources) -> None:
    """Periodic: run by the worker's sweeper thread every few seconds."""
    escalate_overdue(res)


def escalate_overdue(res: Resources) -> int:
    """Escalate urgent cases still unclaimed ESCALATE_AFTER_MINUTES after their last alert.

    Each escalation is a conditional UPDATE on (id, escalation_level, status): two sweepers (or two
    worker hosts) racing on the same case escalate it once. Returns how many cases were escalated.
    """
    cutoff = utcnow() - timedelta(minutes=res.settings.escalate_after_minutes)
    escalated = 0
    with res.db.Session() as s:
        due = s.execute(sa.select(Case.id, Case.escalation_level, Case.country).where(
            Case.priority == CasePriority.URGENT, Case.status == CaseStatus.NEW, Case.claimed_by_id.is_(None),
            sa.func.coalesce(Case.notified_at, Case.created_at) < cutoff)).all()
        for case_id, level, country in due:
            numbers = oncall_numbers(s, res.settings, country)
            values: dict[str, Any] = {"overdue": True}
            more = bool(numbers) and level < max_level(numbers)
            if more:
                values.update(escalation_level=level + 1, notified_at=utcnow())
            # Past the last level the case only stays overdue: update (and log) that once.
            unchanged = sa.true() if more else Case.overdue.is_(False)
            result = s.execute(sa.update(Case).where(Case.id == case_id, Case.escalation_level == level,
                                                     Case.status == CaseStatus.NEW, unchanged)
                               .values(**values).execution_options(synchronize_session=False))
            won = bool(result.rowcount)  # type: ignore[attr-defined]
            if not (won and more):
                s.commit()
                continue
            outbox.add_job(s, NOTIFY_JOB, {"case_id": case_id, "level": level + 1}, queue="urgent",
                           case_id=case_id)
            s.commit()  # enqueued after commit by the outbox hook
            escalated += 1
            log.warning("case %s unclaimed: escalated to level %d", case_id, level + 1)
    return escalated
