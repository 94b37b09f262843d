"""Inbound texts from any channel: store, act once, answer; and delivery status of what we sent.

`handle_inbound` takes the caller's session and does not commit: the webhook commits, then answers.
A case or callback request is written in that same transaction (its job reaches RQ after commit),
so the sender is only told "we will call" once it is stored.

Per message it costs a few statements: the caller with its count for the rate limit (one SELECT),
an INSERT or UPDATE of the caller, and the two message rows (one INSERT when nothing else is done).
The unique MessageSid decides a redelivery race: the INSERT fails, the session is rolled back, and
nothing is acted on twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from hotline.background.outbox import add_job
from hotline.channels import InboundMessage, OutboundMessage
from hotline.db import utcnow
from hotline.menus.keywords import MAX_MATCH_CHARS, Intent, KeywordSet, Match
from hotline.menus.textnorm import script_of, sms_segments
from hotline.models import (
    Caller,
    Case,
    CaseCategory,
    CasePriority,
    CaseStatus,
    CaseStatusChange,
    Direction,
    Language,
    Message,
    MessageStatus,
)
from hotline.phones import country_of, is_withheld
from hotline.services import consent, intake, sendgate
from hotline.telephony.transport import PERMANENT_CODES

log = logging.getLogger(__name__)

REPLY_PURPOSE = "reply"
# Statements built once with bound parameters: compiled once, cached by SQLAlchemy after that.
_messages = cast(sa.Table, Message.__table__)
_INSERT_MESSAGE = sa.insert(_messages)
_INSERT_INBOUND = sa.insert(_messages).returning(_messages.c.id)
_callers = cast(sa.Table, Caller.__table__)
# The caller and, in the same round trip, how many texts it sent in the rate-limit window.
_RECENT_INBOUND = sa.select(sa.func.count(_messages.c.id)).where(
    _messages.c.caller_id == _callers.c.id, _messages.c.direction == Direction.INBOUND.value,
    _messages.c.created_at > sa.bindparam("since", type_=_messages.c.created_at.type)).scalar_subquery()
_CALLER_BY_PHONE = sa.select(_callers.c.id, _callers.c.country, _callers.c.language, _callers.c.opted_out_at,
                             _RECENT_INBOUND.label("recent")).where(_callers.c.phone == sa.bindparam("phone"))
_INSERT_CALLER = sa.insert(_callers).returning(_callers.c.id)
_UPDATE_CALLER = sa.update(_callers).where(_callers.c.id == sa.bindparam("caller_key"))
_LINK_CASE = sa.update(_messages).where(_messages.c.id == sa.bindparam("message_id")).values(
    case_id=sa.bindparam("case_id"))
# Intents that change nothing but the reply: their two rows go in one INSERT.
_PURE = (Intent.EMPTY, Intent.UNKNOWN, Intent.HELP, Intent.TOPIC)
_REPLY_FOR = {Intent.EMPTY: "unknown", Intent.UNKNOWN: "unknown", Intent.HELP: "help",
              Intent.CALLBACK: "callback", Intent.URGENT: "urgent", Intent.POSSIBLE: "possible",
              Intent.STOP: "stop", Intent.START: "start"}


@dataclass(frozen=True)
class Outcome:
    replies: tuple[sendgate.Cleared, ...] = ()  # what the send gate let through
    match: Match | None = None
    duplicate: bool = False  # this MessageSid was already stored: nothing was done again
    rate_limited: bool = False
    case_id: int | None = None


def reply_key(inbound_sid: str) -> str:
    """Message.idempotency_key of the reply to an inbound message (one reply per inbound sid)."""
    return f"reply:{inbound_sid}"


def clean_body(body: str) -> str:
    # PostgreSQL text cannot hold NUL; beyond Twilio's 1600 characters nothing is read or kept.
    return body.replace("\x00", "")[:MAX_MATCH_CHARS]


def handle_inbound(session: Session, keywords: KeywordSet, msg: InboundMessage, *,
                   now: datetime | None = None) -> Outcome:
    """Store `msg`, act on it once (case, callback, opt-out, language) and return the reply to send.

    On a redelivered MessageSid the session is rolled back (it holds nothing else yet) and nothing
    is done again.
    """
    now = now or utcnow()
    for attempt in (1, 2):
        try:
            return _handle(session, keywords, msg, now)
        except IntegrityError:
            # The unique MessageSid (a redelivery, possibly at the same moment) or the unique phone
            # (two first texts from one new number at once). Nothing was acted on before this point.
            session.rollback()
            if msg.sid and session.scalar(sa.select(Message.id).where(Message.sid == msg.sid)) is not None:
                log.info("duplicate delivery of MessageSid=%s ignored", msg.sid)
                return Outcome(duplicate=True)
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _handle(session: Session, keywords: KeywordSet, msg: InboundMessage, now: datetime) -> Outcome:
    # Plain Core statements on the session's connection rather than ORM objects: these rows are
    # written once and not read back here, and the unit of work would cost more than the statements
    # (the webhook's throughput is benchmarked). Cases and callbacks still go through intake (ORM).
    conn = session.connection()
    body = clean_body(msg.body)
    match = keywords.match(body)
    if msg.callback_phone and match.intent in (Intent.UNKNOWN, Intent.EMPTY):
        match = Match(Intent.CALLBACK)  # a chat contact sent just a phone number: call it back
    caller, new, recent = _caller(conn, msg.sender, now, keywords.rate_limit[1])
    before = (caller.language, caller.opted_out_at)
    # STOP and START first, whatever else applies (rate limit, a flow, an open case): an opt-out
    # must never be swallowed. The send gate below decides on the changed row.
    _opt(caller, match, now, msg.provider_opt)
    limited = recent >= keywords.rate_limit[0]
    language = keywords.reply_language(body, caller.language)
    if caller.language is None and script_of(body) in keywords.languages:
        caller.language = Language(language)  # first text in Khmer or Thai script: remember it
    inbound = dict(sid=msg.sid, direction=Direction.INBOUND, channel=msg.channel, provider=msg.provider,
                   caller_id=caller.id, peer=caller.phone, body=body, language=Language(language),
                   keyword=match.label, created_at=now, segments=None, purpose=None, case_id=None,
                   idempotency_key=None, status=MessageStatus.IGNORED if limited else MessageStatus.RECEIVED)
    # A bare yes/no answering our consent question (hotline.services.consent): one SELECT, only then.
    answered = None if limited else consent.take_answer(session, caller.id, body, language, now)
    acts = limited or answered is not None or match.intent not in _PURE or msg.answered_by_provider
    if acts:
        # Stored before anything is done: a duplicate MessageSid fails this INSERT, before any action.
        inbound_id = conn.execute(_INSERT_INBOUND, inbound).scalar_one()
    if limited:
        case_id = _despite_limit(session, keywords, caller, msg, match, language, now)
        _save_caller(conn, caller, before, None if new else now)
        return Outcome(match=match, rate_limited=True, case_id=case_id)
    if answered is not None:
        reply_id, (case_id, answer_text) = "consent", answered
    else:
        reply_id, language, case_id = _act(session, caller, msg, match, language, now)
    _save_caller(conn, caller, before, None if new else now)
    if case_id is not None:
        conn.execute(_LINK_CASE, {"message_id": inbound_id, "case_id": case_id})
    if msg.answered_by_provider:
        return Outcome(match=match, case_id=case_id)
    text = answer_text if answered is not None else keywords.render(reply_id, language, caller.country)
    reply = OutboundMessage(body=text, language=language, segments=sms_segments(text), reply_to=msg.sid)
    replies = [reply]
    if reply_id == "urgent" and case_id is not None and consent.about_someone_else(body):
        # A family member's report: the first consent question follows the urgent reply.
        ask = consent.first_question(language)
        replies.append(OutboundMessage(body=ask, language=language, segments=sms_segments(ask), reply_to=msg.sid))
    # The opt-out was read with the caller row: the gate costs no round trip here.
    cleared = sendgate.clear_replies(caller.phone or "", replies, opted_out_at=caller.opted_out_at,
                                     was_opted_out_at=before[1])
    if not cleared:
        # Opted out: stored (and any case or callback request opened), but nothing is texted back.
        if not acts:
            conn.execute(_INSERT_MESSAGE, inbound)
        log.info("MessageSid=%s stored; no reply (opted out of SMS)", msg.sid)
        return Outcome(match=match, case_id=case_id)
    outbound = dict(sid=None, direction=Direction.OUTBOUND, channel=msg.channel, provider=msg.provider,
                    caller_id=caller.id, peer=caller.phone, body=text, language=Language(language), keyword=None,
                    created_at=now, segments=reply.segments, purpose=REPLY_PURPOSE, case_id=case_id,
                    idempotency_key=reply_key(msg.sid) if msg.sid else None, status=MessageStatus.QUEUED)
    rows = [outbound] + [{**outbound, "body": r.body, "segments": r.segments,
                          "idempotency_key": reply_key(msg.sid) + ":consent" if msg.sid else None}
                         for r in replies[1:]]
    # Nothing was acted on for a pure reply: both rows in one statement (a duplicate sid fails it whole).
    conn.execute(_INSERT_MESSAGE, rows if acts else [inbound, *rows])
    # The keyword is in the Message row; the log line stays free of anything the sender wrote.
    log.info("MessageSid=%s answered: language=%s parts=%d", msg.sid, language, reply.segments)
    return Outcome(replies=cleared, match=match, case_id=case_id)


def _caller(conn: Connection, sender: str, now: datetime, window: int) -> tuple[Caller, bool, int]:
    """The sender as a Caller object that is NOT in the session (changes are saved by `_save_caller`),
    whether the number is new, and its texts in the rate-limit window (counted in the database, not
    Redis: the webhook keeps working with Redis down). A race on a new number fails the INSERT;
    `handle_inbound` then starts over."""
    phone = sender.strip()[:64] or "unknown"
    row = conn.execute(_CALLER_BY_PHONE, {"phone": phone, "since": now - timedelta(seconds=window)}).first()
    if row is not None:
        return Caller(id=row.id, phone=phone, country=row.country, language=row.language,
                      opted_out_at=row.opted_out_at), False, row.recent
    country = country_of(phone)
    caller_id = conn.execute(_INSERT_CALLER, {"phone": phone, "country": country, "last_seen_at": now}).scalar_one()
    return Caller(id=caller_id, phone=phone, country=country), True, 0


def _save_caller(conn: Connection, caller: Caller, before: tuple[Any, Any], seen: datetime | None) -> None:
    """One UPDATE with what changed: last seen, language, opt-out."""
    changes: dict[str, Any] = {"last_seen_at": seen} if seen else {}
    if caller.language != before[0]:
        changes["language"] = caller.language
    if caller.opted_out_at != before[1]:
        changes["opted_out_at"] = caller.opted_out_at
    if changes:
        conn.execute(_UPDATE_CALLER, {"caller_key": caller.id, **changes})


def _act(session: Session, caller: Caller, msg: InboundMessage, match: Match, language: str,
         now: datetime) -> tuple[str, str, int | None]:
    """Do what the message asks; returns (reply id, reply language, case id)."""
    if match.intent == Intent.URGENT:
        return "urgent", language, _urgent_case(session, caller, msg, match, language)
    if match.intent == Intent.POSSIBLE:
        # Possible danger: a normal-priority case waits in the console for staff review (no page), and
        # the reply asks the sender to text SOS if they need help now; an urgent text upgrades it.
        case, _ = intake.open_case(session, caller=caller, source=msg.channel, source_sid=msg.sid,
                                   priority=CasePriority.NORMAL, category=CaseCategory(match.category or "other"),
                                   country=caller.country, language=language)
        return "possible", language, case.id
    if match.intent == Intent.CALLBACK:
        # The number a chat contact gave, else the sender's own (None only for a caller anonymised
        # by retention).
        phone = msg.callback_phone or caller.phone or ""
        # A channel address (telegram:...) or a withheld ID cannot be called back.
        if phone.startswith("+") and not is_withheld(phone):
            intake.request_callback(session, caller=caller, phone=phone, source=msg.channel,
                                    source_sid=msg.sid, language=language)
            return "callback", language, None
        return "help", language, None
    if match.intent == Intent.LANG:
        if match.language is None:
            return "lang_menu", language, None
        caller.language = Language(match.language)
        return "lang_set", match.language, None
    elif match.intent == Intent.TOPIC:
        return f"topic_{match.topic}", language, None
    return _REPLY_FOR[match.intent], language, None


def _opt(caller: Caller, match: Match, now: datetime, provider_opt: str | None = None) -> None:
    """STOP sets the opt-out (keeping the first time), START clears it; so does the provider's own
    reading of the message (Twilio's OptOutType). Twilio's opt-out also blocks sends after STOP
    (21610); every text we send passes `hotline.services.sendgate`."""
    if match.intent == Intent.STOP or provider_opt == "stop":
        caller.opted_out_at = caller.opted_out_at or now
    elif match.intent == Intent.START or provider_opt == "start":
        caller.opted_out_at = None


def _despite_limit(session: Session, keywords: KeywordSet, caller: Caller, msg: InboundMessage,
                   match: Match, language: str, now: datetime) -> int | None:
    """Over the rate limit nothing is answered, but STOP and START still count, and an urgent text
    still opens a case unless one was opened in the window: a flood gets no answers (cost), a real
    alert is not lost, and one case per window keeps a flood from paging the lawyer again and again.
    """
    if match.intent != Intent.URGENT:  # STOP and START were applied before the limit (`_opt`)
        return None
    since = now - timedelta(seconds=keywords.rate_limit[1])
    review = _review_case(session, caller)
    if review is not None:
        return _upgrade(session, review, msg, match)
    recent = session.scalar(sa.select(Case.id).where(Case.caller_id == caller.id, Case.created_at > since,
                                                     Case.status != CaseStatus.CLOSED).limit(1))
    if recent is not None:
        return None
    return _urgent_case(session, caller, msg, match, language)


def _urgent_case(session: Session, caller: Caller, msg: InboundMessage, match: Match, language: str) -> int:
    """An urgent case for this text (the lawyer is paged): the sender's case still waiting for review
    (opened by a possible-danger text) is upgraded at once; otherwise a new one is opened."""
    # A family member's report, new or upgrading a review case: the consent question follows, and
    # its answers are taken only on a case marked reported by someone else.
    for_other = consent.about_someone_else(msg.body)
    review = _review_case(session, caller)
    if review is not None:
        review.reported_by_other = review.reported_by_other or for_other
        return _upgrade(session, review, msg, match)
    case, _ = intake.open_case(session, caller=caller, source=msg.channel, source_sid=msg.sid,
                               priority=CasePriority.URGENT, category=CaseCategory(match.category or "other"),
                               country=caller.country, language=language, reported_by_other=for_other)
    return case.id


def _review_case(session: Session, caller: Caller) -> Case | None:
    """The sender's newest normal-priority case nobody has taken yet (status new)."""
    return session.scalar(sa.select(Case).where(Case.caller_id == caller.id, Case.priority == CasePriority.NORMAL,
                                                Case.status == CaseStatus.NEW)
                          .order_by(Case.created_at.desc(), Case.id.desc()).limit(1))


def _upgrade(session: Session, case: Case, msg: InboundMessage, match: Match) -> int:
    case.priority = CasePriority.URGENT
    if match.category and match.category != CaseCategory.OTHER:
        case.category = CaseCategory(match.category)
    session.add(CaseStatusChange(case_id=case.id, from_status=case.status, to_status=case.status,
                                 reason=f"priority urgent: a later text ({msg.channel})"))
    # The same notification a new urgent case gets; it reaches RQ after commit.
    add_job(session, intake.NOTIFY_JOB, {"case_id": case.id}, queue="urgent", case_id=case.id)
    log.info("MessageSid=%s upgraded case %s to urgent", msg.sid, case.ref)
    return case.id


# -- delivery status ------------------------------------------------------------------------------

# Callbacks may arrive out of order ("sent" after "delivered"): a status never moves backwards.
_RANK = {MessageStatus.QUEUED: 0, MessageStatus.SENDING: 1, MessageStatus.SENT: 2,
         MessageStatus.DELIVERED: 3, MessageStatus.UNDELIVERED: 3, MessageStatus.FAILED: 3}


def record_status(session: Session, *, sid: str, status: str, error_code: str | None = None,
                  reply_to: str | None = None) -> Message | None:
    """Apply a delivery status callback; unknown sids and statuses are ignored (the caller answers 200).

    A TwiML reply has no sid until Twilio sends it: its status URL carries `reply_to` (the inbound
    MessageSid, covered by the signature), and the first callback fills the sid in.
    """
    if not sid or status not in _RANK:
        return None
    msg = session.scalar(sa.select(Message).where(Message.sid == sid))
    if msg is None and reply_to:
        msg = session.scalar(sa.select(Message).where(Message.idempotency_key == reply_key(reply_to),
                                                      Message.sid.is_(None)))
        if msg is not None:
            msg.sid = sid
    if msg is None or msg.direction != Direction.OUTBOUND:
        return None
    new = MessageStatus(status)
    if _RANK[new] > _RANK.get(msg.status, -1) or (new == msg.status and error_code):
        msg.status = new
        if error_code:
            msg.error_code = error_code[:16]
            reason = PERMANENT_CODES.get(int(error_code)) if error_code.isdigit() else None
            msg.error_message = reason
            if error_code in sendgate.OPT_OUT_CODES and msg.peer:
                sendgate.record_opt_out(session, msg.peer)  # Twilio says the number texted STOP
    return msg
