"""Typed SQLAlchemy models. No Flask or Twilio imports here.

Phone numbers are stored in E.164; they are personal data: never log them whole (hotline.logs).
Message bodies and recordings are purged after a retention period; counts survive the purge.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from hotline.crypto import EncryptedText
from hotline.db import Base, UTCDateTime, utcnow


def _enum(cls: type[enum.Enum]) -> sa.Enum:
    # Stored as plain strings (no native enum, no CHECK): adding a value needs no migration.
    return sa.Enum(cls, native_enum=False, create_constraint=False, length=24,
                   values_callable=lambda c: [m.value for m in c])


def _now() -> Any:
    return sa.func.now()


class Language(enum.StrEnum):
    KM = "km"
    TH = "th"
    EN = "en"


class Direction(enum.StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class MessageStatus(enum.StrEnum):
    RECEIVED = "received"
    QUEUED = "queued"  # stored, waiting for the worker
    SENDING = "sending"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"
    IGNORED = "ignored"  # stored but not answered (rate limit, duplicate, opted out)


class CaseStatus(enum.StrEnum):
    NEW = "new"
    CLAIMED = "claimed"
    IN_PROGRESS = "in_progress"
    REFERRED = "referred"
    CLOSED = "closed"


class CasePriority(enum.StrEnum):
    URGENT = "urgent"
    NORMAL = "normal"


class CaseCategory(enum.StrEnum):
    TRAFFICKING = "trafficking"
    DOCUMENTS = "documents"  # passport or papers confiscated
    UNPAID_WAGES = "unpaid_wages"
    VIOLENCE = "violence"
    DETENTION = "detention"  # arrested or detained by police or immigration
    LOCKED_IN = "locked_in"  # locked in, cannot leave (a boat, a factory, a house)
    MISSING = "missing"  # a family member cannot be reached
    OTHER = "other"


class CallbackStatus(enum.StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    DONE = "done"
    FAILED = "failed"  # attempts used up
    CANCELLED = "cancelled"


class OutboxStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Role(enum.StrEnum):
    ADMIN = "admin"
    LAWYER = "lawyer"
    OPERATOR = "operator"
    REPORTS = "reports"  # the reports page only: aggregate counts, never a case or a number
    CONTENT = "content"  # the content studio (prompts, replies, menus, recordings) only: never a case


class Caller(Base):
    """A phone number that reached us, with its language and opt-out."""

    __tablename__ = "callers"
    id: Mapped[int] = mapped_column(primary_key=True)
    # E.164, or a chat contact's channel address ("telegram:123", "messenger:PSID", "line:U…").
    phone: Mapped[str | None] = mapped_column(sa.String(64), unique=True)  # None once purged (retention)
    country: Mapped[str | None] = mapped_column(sa.String(2))
    language: Mapped[Language | None] = mapped_column(_enum(Language))
    opted_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The voice menu asks once, after a message, which province the caller is from (skippable):
    # `province_asked_at` is set when asked (answered or not), `province` holds the answer's code.
    province: Mapped[str | None] = mapped_column(sa.String(2))
    province_asked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A chat contact who gave a phone number (a callback request): the caller of that number.
    linked_caller_id: Mapped[int | None] = mapped_column(sa.ForeignKey("callers.id", ondelete="SET NULL"))


class Call(Base):
    """One phone call, inbound or placed by us; `state` is the menu engine's state."""

    __tablename__ = "calls"
    # Reports count calls and distinct callers by period straight from this index.
    __table_args__ = (sa.Index("ix_calls_started_caller", "started_at", "caller_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    caller_id: Mapped[int | None] = mapped_column(sa.ForeignKey("callers.id", ondelete="SET NULL"), index=True)
    direction: Mapped[Direction] = mapped_column(_enum(Direction), default=Direction.INBOUND)
    line: Mapped[str] = mapped_column(sa.String(16), default="main")  # main | missed | outbound
    to_number: Mapped[str | None] = mapped_column(sa.String(20))
    purpose: Mapped[str | None] = mapped_column(sa.String(32))  # for calls we place: callback, ...
    status: Mapped[str] = mapped_column(sa.String(24), default="in-progress")
    answered_by: Mapped[str | None] = mapped_column(sa.String(32))
    language: Mapped[Language | None] = mapped_column(_enum(Language))
    state: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    last_node: Mapped[str | None] = mapped_column(sa.String(64))
    provider: Mapped[str] = mapped_column(sa.String(16), default="twilio")
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now(), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_s: Mapped[int | None] = mapped_column(sa.Integer)
    outcome: Mapped[str | None] = mapped_column(sa.String(32))
    events: Mapped[list[CallEvent]] = relationship(back_populates="call", order_by="CallEvent.id")


class CallEvent(Base):
    """A step of a call's path: node entered, key pressed, message completed, hang-up."""

    __tablename__ = "call_events"
    # Reports read messages played and the drop-off funnel from this index alone; (kind, call_id)
    # first, so distinct calls per kind come out in order (no sort, no hash of millions of pairs).
    __table_args__ = (sa.Index("ix_call_events_kind_call", "kind", "call_id", "at", "node", "detail"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    call_id: Mapped[int] = mapped_column(sa.ForeignKey("calls.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())
    kind: Mapped[str] = mapped_column(sa.String(32))
    node: Mapped[str | None] = mapped_column(sa.String(64))
    detail: Mapped[str | None] = mapped_column(sa.String(255))
    call: Mapped[Call] = relationship(back_populates="events")


class Message(Base):
    """An SMS (or other channel message), in or out, with its delivery status."""

    __tablename__ = "messages"
    id: Mapped[int] = mapped_column(primary_key=True)
    sid: Mapped[str | None] = mapped_column(sa.String(64), unique=True)  # MessageSid / provider id
    direction: Mapped[Direction] = mapped_column(_enum(Direction))
    channel: Mapped[str] = mapped_column(sa.String(16), default="sms")
    caller_id: Mapped[int | None] = mapped_column(sa.ForeignKey("callers.id", ondelete="SET NULL"), index=True)
    peer: Mapped[str | None] = mapped_column(sa.String(64))  # number or channel address; None once purged
    body: Mapped[str | None] = mapped_column(EncryptedText)  # encrypted at rest; purged after retention
    language: Mapped[Language | None] = mapped_column(_enum(Language))
    status: Mapped[MessageStatus] = mapped_column(_enum(MessageStatus))
    error_code: Mapped[str | None] = mapped_column(sa.String(16))
    error_message: Mapped[str | None] = mapped_column(sa.String(255))
    segments: Mapped[int | None] = mapped_column(sa.Integer)
    purpose: Mapped[str | None] = mapped_column(sa.String(32))  # reply, oncall_alert, ...
    keyword: Mapped[str | None] = mapped_column(sa.String(32))  # what an inbound text matched
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id", ondelete="SET NULL"), index=True)
    idempotency_key: Mapped[str | None] = mapped_column(sa.String(96), unique=True)
    provider: Mapped[str] = mapped_column(sa.String(16), default="twilio")  # twilio | local
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now(), index=True)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), onupdate=_now())
    body_purged_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class StaffUser(Base):
    __tablename__ = "staff_users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    name: Mapped[str] = mapped_column(sa.String(120), default="")
    password_hash: Mapped[str] = mapped_column(sa.String(255))
    role: Mapped[Role] = mapped_column(_enum(Role))
    language: Mapped[str] = mapped_column(sa.String(8), default="en")
    phone: Mapped[str | None] = mapped_column(sa.String(20))  # rings first when they place a callback
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(sa.Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Set for a password someone else chose (first run, `hotline staff add`, an admin's reset):
    # every console page sends them to "change password" until they have.
    must_change_password: Mapped[bool] = mapped_column(sa.Boolean, default=False, server_default=sa.false())
    # Two-factor (TOTP, RFC 6238), optional for admins and lawyers: the shared secret, encrypted at
    # rest, and the last 30-second step accepted (a code is good once).
    totp_secret: Mapped[str | None] = mapped_column(EncryptedText)
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())


class StaffSession(Base):
    """A console login, server-side: the cookie holds a random token whose SHA-256 is `id`.

    Deleting the row ends the session at once (logout, "log out everywhere", a disabled account,
    a password change or reset), whatever copy of the cookie exists.
    """

    __tablename__ = "staff_sessions"
    id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    remember: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    staff: Mapped[StaffUser] = relationship()


class Case(Base):
    """A request for legal aid: urgent (danger) or normal."""

    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(sa.String(16), unique=True)  # what staff and SMS alerts quote
    caller_id: Mapped[int | None] = mapped_column(sa.ForeignKey("callers.id", ondelete="SET NULL"), index=True)
    source: Mapped[str] = mapped_column(sa.String(16))  # voice | sms | staff
    source_sid: Mapped[str | None] = mapped_column(sa.String(64), unique=True)  # one case per call/message
    priority: Mapped[CasePriority] = mapped_column(_enum(CasePriority))
    category: Mapped[CaseCategory] = mapped_column(_enum(CaseCategory), default=CaseCategory.OTHER)
    status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus), default=CaseStatus.NEW, index=True)
    country: Mapped[str | None] = mapped_column(sa.String(2))  # where the caller is
    # Home province (and district) of the person the case is about: codes of hotline.services.places.
    province: Mapped[str | None] = mapped_column(sa.String(2))
    district: Mapped[str | None] = mapped_column(sa.String(4))
    language: Mapped[Language | None] = mapped_column(_enum(Language))
    # A family member may ask for someone else: who asked, for whom, and whether that person agreed.
    reported_by_other: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    subject_phone: Mapped[str | None] = mapped_column(sa.String(20))
    consent_contact: Mapped[bool | None] = mapped_column(sa.Boolean)
    consent_share: Mapped[bool | None] = mapped_column(sa.Boolean)
    claimed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="SET NULL"))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notified_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    escalation_level: Mapped[int] = mapped_column(sa.Integer, default=0)
    overdue: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    last_error: Mapped[str | None] = mapped_column(sa.String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now(), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    notes: Mapped[list[CaseNote]] = relationship(back_populates="case", order_by="CaseNote.id")
    history: Mapped[list[CaseStatusChange]] = relationship(back_populates="case", order_by="CaseStatusChange.id")
    caller: Mapped[Caller | None] = relationship()
    claimed_by: Mapped[StaffUser | None] = relationship()


class CaseNote(Base):
    __tablename__ = "case_notes"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="SET NULL"))
    body: Mapped[str] = mapped_column(EncryptedText)  # encrypted at rest (hotline.crypto)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())
    case: Mapped[Case] = relationship(back_populates="notes")
    staff: Mapped[StaffUser | None] = relationship()


class CaseStatusChange(Base):
    __tablename__ = "case_status_changes"
    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(sa.ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[CaseStatus | None] = mapped_column(_enum(CaseStatus))
    to_status: Mapped[CaseStatus] = mapped_column(_enum(CaseStatus))
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="SET NULL"))
    reason: Mapped[str | None] = mapped_column(sa.String(255))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())
    case: Mapped[Case] = relationship(back_populates="history")
    staff: Mapped[StaffUser | None] = relationship()


_OPEN_CALLBACK = "status IN ('open', 'in_progress')"


class CallbackRequest(Base):
    """Someone asked to be called back (IVR key 8, SMS CALL, or a missed call)."""

    __tablename__ = "callback_requests"
    __table_args__ = (
        # At most one open request per number, enforced by the database itself.
        sa.Index("uq_callback_open_phone", "phone", unique=True,
                 sqlite_where=sa.text(_OPEN_CALLBACK), postgresql_where=sa.text(_OPEN_CALLBACK)),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    caller_id: Mapped[int | None] = mapped_column(sa.ForeignKey("callers.id", ondelete="SET NULL"), index=True)
    phone: Mapped[str] = mapped_column(sa.String(20))  # the number to call; "" once purged (closed only)
    country: Mapped[str | None] = mapped_column(sa.String(2))
    language: Mapped[Language | None] = mapped_column(_enum(Language))
    source: Mapped[str] = mapped_column(sa.String(16))  # ivr | sms | missed_call | staff
    source_sid: Mapped[str | None] = mapped_column(sa.String(64))
    preferred_time: Mapped[str] = mapped_column(sa.String(16), default="now")  # now | evening | weekend
    for_someone_else: Mapped[bool] = mapped_column(sa.Boolean, default=False)
    consent_contact: Mapped[bool | None] = mapped_column(sa.Boolean)
    status: Mapped[CallbackStatus] = mapped_column(_enum(CallbackStatus), default=CallbackStatus.OPEN, index=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    assigned_to_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="SET NULL"))
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id", ondelete="SET NULL"), index=True)
    outcome: Mapped[str | None] = mapped_column(sa.String(32))
    # Why next_attempt_at is what it is ("the time the caller chose", "outside calling hours", ...).
    next_reason: Mapped[str | None] = mapped_column(sa.String(160))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now(), index=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempt_log: Mapped[list[CallbackAttempt]] = relationship(back_populates="request",
                                                              order_by="CallbackAttempt.id")


class CallbackAttempt(Base):
    __tablename__ = "callback_attempts"
    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(sa.ForeignKey("callback_requests.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="SET NULL"))
    call_sid: Mapped[str | None] = mapped_column(sa.String(64))
    outcome: Mapped[str | None] = mapped_column(sa.String(32))  # hotline.services.callbacks.OUTCOMES
    # placing (Twilio not yet confirmed) -> staff (staff phone rung) -> callee (staff pressed 1, the
    # person is rung) -> bridging (the person pressed 1): see hotline.services.callbacks.
    stage: Mapped[str | None] = mapped_column(sa.String(16))
    dialled: Mapped[str | None] = mapped_column(sa.String(20))  # the staff phone rung first
    reason: Mapped[str | None] = mapped_column(sa.String(200))  # why it was placed (schedule, "Call now: ...")
    # Set here to the microsecond: SQLite's CURRENT_TIMESTAMP keeps whole seconds, and the spacing
    # between attempts counts from this time (a truncated one made the wait up to 1 s short).
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, server_default=_now())
    request: Mapped[CallbackRequest] = relationship(back_populates="attempt_log")


class Recording(Base):
    """A voicemail, copied from Twilio into our own storage, encrypted at rest."""

    __tablename__ = "recordings"
    id: Mapped[int] = mapped_column(primary_key=True)
    recording_sid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    call_id: Mapped[int | None] = mapped_column(sa.ForeignKey("calls.id", ondelete="SET NULL"), index=True)
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id", ondelete="SET NULL"), index=True)
    remote_url: Mapped[str | None] = mapped_column(sa.String(512))
    duration_s: Mapped[int | None] = mapped_column(sa.Integer)
    storage_path: Mapped[str | None] = mapped_column(sa.String(512))
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    status: Mapped[str] = mapped_column(sa.String(16), default="pending")  # pending | stored | failed | purged
    fetched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    remote_deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())


class OnCallEntry(Base):
    """The console's on-call roster; HOTLINE_ONCALL is used when it is empty."""

    __tablename__ = "oncall_roster"
    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str] = mapped_column(sa.String(2))
    phone: Mapped[str] = mapped_column(sa.String(64))  # E.164, or a chat address for alerts ("telegram:…")
    name: Mapped[str] = mapped_column(sa.String(120), default="")
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    active: Mapped[bool] = mapped_column(sa.Boolean, default=True)


class AuditEvent(Base):
    """Who saw or changed what; admins read it in the console."""

    __tablename__ = "audit_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now(), index=True)
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(sa.String(48))
    object_type: Mapped[str | None] = mapped_column(sa.String(32))
    object_id: Mapped[str | None] = mapped_column(sa.String(64))
    ip: Mapped[str | None] = mapped_column(sa.String(64))
    detail: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)


class OutboxJob(Base):
    """A job written in the same transaction as what caused it, enqueued to RQ after commit.

    The worker's sweeper re-enqueues rows that never reached Redis, so nothing is lost.
    """

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(sa.String(48))
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    queue: Mapped[str] = mapped_column(sa.String(16), default="default")  # urgent | default | low
    status: Mapped[OutboxStatus] = mapped_column(_enum(OutboxStatus), default=OutboxStatus.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0)
    run_after: Mapped[datetime | None] = mapped_column(UTCDateTime())
    enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.String(255))
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id", ondelete="SET NULL"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())


# -- content studio (hotline.services.content) -------------------------------------------------------

class ContentStatus(enum.StrEnum):
    DRAFT = "draft"  # at most one: where every edit collects until it is published
    PUBLISHED = "published"  # numbered and immutable; the highest number is what callers hear


class ContentReview(enum.StrEnum):
    DRAFT = "draft"  # being worked on
    NEEDS_REVIEW = "needs_review"  # ready for a native speaker
    REVIEWED = "reviewed"  # checked by `reviewed_by`


class ContentVersion(Base):
    """One version of what callers hear and read: the draft, or a published (numbered) version."""

    __tablename__ = "content_versions"
    __table_args__ = (
        # One draft at a time: two editors starting one at once get the same one (see content.draft()).
        sa.Index("uq_content_versions_one_draft", "status", unique=True,
                 sqlite_where=sa.text("status = 'draft'"), postgresql_where=sa.text("status = 'draft'")),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[int | None] = mapped_column(sa.Integer, unique=True)  # None while a draft
    status: Mapped[ContentStatus] = mapped_column(_enum(ContentStatus), default=ContentStatus.DRAFT)
    based_on: Mapped[int | None] = mapped_column(sa.Integer)  # the published number a draft was copied from
    revision: Mapped[int] = mapped_column(sa.Integer, default=1)  # +1 on every draft change (the cache key)
    note: Mapped[str] = mapped_column(sa.String(255), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())
    created_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="SET NULL"))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    published_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="SET NULL"))


class ContentItem(Base):
    """One piece of a version: a prompt's text in one language, an SMS reply, a menu node, a file.

    `kind` and `key` (and `lang`) say which; `value` is text, or JSON for structured kinds.
    `revision` is the optimistic lock of the editor: an edit names the revision it started from.
    """

    __tablename__ = "content_items"
    __table_args__ = (sa.UniqueConstraint("version_id", "kind", "key", "lang"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(sa.ForeignKey("content_versions.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(sa.String(16))
    key: Mapped[str] = mapped_column(sa.String(120))
    lang: Mapped[str] = mapped_column(sa.String(8), default="")
    position: Mapped[int] = mapped_column(sa.Integer, default=0)
    value: Mapped[str] = mapped_column(sa.Text, default="")
    review: Mapped[ContentReview] = mapped_column(_enum(ContentReview), default=ContentReview.NEEDS_REVIEW)
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="SET NULL"))
    revision: Mapped[int] = mapped_column(sa.Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())
    updated_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="SET NULL"))


class ContentTake(Base):
    """A processed recording of one prompt in one language; the file is in the content store by sha256."""

    __tablename__ = "content_takes"
    id: Mapped[int] = mapped_column(primary_key=True)
    prompt_id: Mapped[str] = mapped_column(sa.String(120), index=True)
    audio_name: Mapped[str] = mapped_column(sa.String(120))
    language: Mapped[str] = mapped_column(sa.String(8))
    sha256: Mapped[str] = mapped_column(sa.String(64), index=True)
    duration_ms: Mapped[int] = mapped_column(sa.Integer)
    source: Mapped[str] = mapped_column(sa.String(16))  # browser | phone | upload | import
    review: Mapped[ContentReview] = mapped_column(_enum(ContentReview), default=ContentReview.NEEDS_REVIEW)
    reviewed_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="SET NULL"))
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    recorded_by_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())

class StaffPin(Base):
    """A staff member's PIN for the content line (recording prompts by phone): argon2, like passwords.

    Kept apart from the password: a PIN typed on a phone keypad is short, so it has its own lockout
    (LOCK_AFTER wrong PINs in a row lock the PIN, not the console login).
    """

    __tablename__ = "staff_pins"
    staff_id: Mapped[int] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="CASCADE"), primary_key=True)
    pin_hash: Mapped[str] = mapped_column(sa.String(255))
    failed: Mapped[int] = mapped_column(sa.Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    set_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())


class ContentCall(Base):
    """One call to the content line: who proved their PIN on it (staff_id stays None until then)."""

    __tablename__ = "content_calls"
    id: Mapped[int] = mapped_column(primary_key=True)
    call_sid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="SET NULL"))
    pin_tries: Mapped[int] = mapped_column(sa.Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class PhoneTake(Base):
    """A prompt recorded on the content line: Twilio's recording, then (kept) our processed copy in the draft.

    recorded -> kept (1 pressed; job queued) -> stored (in the draft) | refused (the pipeline's reason)
    recorded -> discarded (2 pressed: record again); failed when Twilio never delivered the file.
    """

    __tablename__ = "phone_takes"
    id: Mapped[int] = mapped_column(primary_key=True)
    content_call_id: Mapped[int] = mapped_column(sa.ForeignKey("content_calls.id", ondelete="CASCADE"), index=True)
    staff_id: Mapped[int | None] = mapped_column(sa.ForeignKey("staff_users.id", ondelete="SET NULL"))
    lang: Mapped[str] = mapped_column(sa.String(8))
    prompt_id: Mapped[str] = mapped_column(sa.String(80))
    recording_sid: Mapped[str] = mapped_column(sa.String(64), unique=True)
    remote_url: Mapped[str | None] = mapped_column(sa.String(512))
    duration_s: Mapped[int | None] = mapped_column(sa.Integer)
    status: Mapped[str] = mapped_column(sa.String(16), default="recorded")
    reason: Mapped[str | None] = mapped_column(sa.String(300))
    seconds: Mapped[float | None] = mapped_column(sa.Float)  # after the pipeline
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
# --- daily roll-ups for the reports (hotline.services.rollups): counts only, never a number ------

class ReportRollupState(Base):
    """How far the roll-ups reach: every local day up to `through` (in zone `tz`) is rolled up."""

    __tablename__ = "report_rollup_state"
    id: Mapped[int] = mapped_column(primary_key=True)
    tz: Mapped[str] = mapped_column(sa.String(64))
    through: Mapped[date] = mapped_column(sa.Date)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now())


class ReportCallDay(Base):
    """Inbound calls per local day and dimension (line, language, the caller's country, hang-up node:
    None while the call had not ended, "" when it ended before any node)."""

    __tablename__ = "report_call_days"
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, index=True)
    line: Mapped[str] = mapped_column(sa.String(16))
    language: Mapped[str | None] = mapped_column(sa.String(24))
    country: Mapped[str | None] = mapped_column(sa.String(2))
    hang_node: Mapped[str | None] = mapped_column(sa.String(64))
    calls: Mapped[int] = mapped_column(sa.Integer)


class ReportEventDay(Base):
    """Messages started (kind message_part: first parts only) and heard to the end, per day and node."""

    __tablename__ = "report_event_days"
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    node: Mapped[str | None] = mapped_column(sa.String(64))
    events: Mapped[int] = mapped_column(sa.Integer)


class ReportFunnelDay(Base):
    """Distinct calls with an event of `kind` that day, and how many of them had one the day before
    too (so distinct calls over a range are the sum of `calls` less the `spanning` inside it)."""

    __tablename__ = "report_funnel_days"
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    calls: Mapped[int] = mapped_column(sa.Integer)
    spanning: Mapped[int] = mapped_column(sa.Integer)


class ReportCallerDay(Base):
    """One row per caller per local day with a menu call: the caller's previous such day and the day
    the number first reached us. Distinct callers in any range [a, b] are the rows in it whose
    `prev_day` is before a, so counts stay exact without a DISTINCT. `caller_id` only links the next
    day's row to this one; the retention purge empties it with the caller's number."""

    __tablename__ = "report_caller_days"
    __table_args__ = (sa.Index("ix_report_caller_days_caller_day", "caller_id", "day"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, index=True)
    caller_id: Mapped[int | None] = mapped_column(sa.Integer)
    prev_day: Mapped[date | None] = mapped_column(sa.Date)
    first_day: Mapped[date | None] = mapped_column(sa.Date)


class ReportCallerCount(Base):
    """Per day, from `report_caller_days`: callers whose day it is first in its week (month) as of that
    day, and those of them whose number first reached us that week (month). A whole period's distinct
    and first-time callers are the sums over its days."""

    __tablename__ = "report_caller_counts"
    id: Mapped[int] = mapped_column(primary_key=True)
    day: Mapped[date] = mapped_column(sa.Date, index=True)
    week_callers: Mapped[int] = mapped_column(sa.Integer)
    week_first: Mapped[int] = mapped_column(sa.Integer)
    month_callers: Mapped[int] = mapped_column(sa.Integer)
    month_first: Mapped[int] = mapped_column(sa.Integer)


class ChannelEvent(Base):
    """A chat platform's event id, once: a redelivered or racing duplicate fails the unique key and
    is acted on no more (hotline.services.chat). Kept as long as the messages it made."""

    __tablename__ = "channel_events"
    __table_args__ = (sa.UniqueConstraint("channel", "event_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    channel: Mapped[str] = mapped_column(sa.String(16))
    event_id: Mapped[str] = mapped_column(sa.String(96))
    kind: Mapped[str] = mapped_column(sa.String(16))  # text | button | voice | unsupported
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), server_default=_now(), index=True)
