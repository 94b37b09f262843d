"""The one way out for every text the hotline sends: webhook replies, REST sends, future channels.

A number that texted STOP (or that Twilio refused with 21610) gets nothing until it texts START
(UNSTOP, ចាប់ផ្តើម, เริ่ม, ...): the gate refuses it. Calls are not texts: a callback the person
asked for is still placed (every call asks first whether it is safe to talk).

- TwiML replies (`clear_replies`): the webhook already read the sender's row, opt-out included,
  so the gate decides on that value and costs no round trip. Channel adapters only send `Cleared`
  messages, which nothing but this module can make.
- REST sends (`send_sms`): one SELECT of the address's opt-out, then the transport. Twilio's 21610
  ("the recipient has opted out") is recorded as an opt-out, here and from status callbacks
  (`record_opt_out`).
- Chat channels (`send_channel`): an address `<prefix>:<id>` ("telegram:123", "line:U…") goes to
  the transport registered for its prefix (`register_channel`, called by `hotline.channels.register`
  for each adapter), after the same opt-out check. An address whose channel has no transport, or
  is off, is refused, so a broadcast can never route round the gate.

`tests/test_sendgate.py` checks that no other module calls a transport's `send_sms` or builds a
TwiML `<Message>`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hotline.channels import OutboundMessage
from hotline.db import utcnow
from hotline.models import Caller
from hotline.phones import country_of, mask
from hotline.telephony.transport import SendError, Sent, Transport

if TYPE_CHECKING:
    from hotline.channels import ChatReply
    from hotline.settings import Settings

log = logging.getLogger(__name__)

# Twilio: "Attempt to send to unsubscribed recipient" (the person texted STOP to Twilio).
OPT_OUT_CODES = frozenset({"21610"})
OPTED_OUT = "opted_out"  # our own refusal's code (Message.error_code)
_TOKEN = object()
_callers = cast(sa.Table, Caller.__table__)
_OPTED_OUT_AT = sa.select(_callers.c.opted_out_at).where(_callers.c.phone == sa.bindparam("phone"))


class OptedOut(SendError):
    """The address opted out of SMS: nothing is sent, and retrying will not help."""

    def __init__(self, address: str):
        super().__init__(f"{mask(address)} opted out of SMS (STOP); nothing is sent until it texts START",
                         transient=False, code=OPTED_OUT)


class Cleared:
    """A message the gate let through for `to`. Only this module makes them (a private token)."""

    __slots__ = ("to", "message")

    def __init__(self, to: str, message: OutboundMessage, token: object):
        if token is not _TOKEN:
            raise TypeError("only hotline.services.sendgate clears an outbound message")
        self.to = to
        self.message = message

    @property
    def body(self) -> str:
        return self.message.body


def may_text(opted_out_at: datetime | None) -> bool:
    return opted_out_at is None


def clear_replies(to: str, replies: Iterable[OutboundMessage], *, opted_out_at: datetime | None,
                  was_opted_out_at: datetime | None) -> tuple[Cleared, ...]:
    """Replies to an inbound text, decided on the sender's row as the webhook read and changed it.

    `opted_out_at` is the state after this message was acted on, `was_opted_out_at` before. The
    one text an opted-out number still gets is the confirmation of the STOP that just opted it out.
    """
    replies = tuple(replies)
    if opted_out_at is not None and was_opted_out_at is not None:
        if replies:
            log.info("reply to %s withheld: opted out of SMS", mask(to))
        return ()
    return tuple(Cleared(to, r, _TOKEN) for r in replies)


def opted_out_at(session: Session, address: str) -> datetime | None:
    return session.execute(_OPTED_OUT_AT, {"phone": address}).scalar()


def send_sms(session: Session, transport: Transport, to: str, body: str, *,
             status_callback: str | None = None, settings: Settings | None = None) -> Sent:
    """Send one text through the REST transport, unless `to` opted out (raises `OptedOut`). With
    `settings`, a chat address (an on-call lawyer's Telegram) goes through its channel instead.

    A Twilio refusal with 21610 records the opt-out in `session` (the caller commits) and is raised.
    """
    if not to.startswith("+"):
        # A chat address on the on-call roster ("telegram:123"): the alert goes on that channel.
        if settings is None or channel_transport(settings, to) is None:
            channel = to.partition(":")[0] or "unknown"
            raise SendError(f"no outbound transport for {channel!r} addresses", transient=False, code="no_channel")
        from hotline.channels import ChatReply

        platform_id = send_channel(session, settings, to, ChatReply(text=body, language="en", purpose="alert"))
        return Sent(sid=f"{to.partition(':')[0]}:{platform_id or 'sent'}"[:64], status="sent",
                    provider=to.partition(":")[0])
    if not may_text(opted_out_at(session, to)):
        log.info("text to %s refused: opted out of SMS", mask(to))
        raise OptedOut(to)
    try:
        return transport.send_sms(to, body, status_callback=status_callback)
    except SendError as exc:
        if exc.code in OPT_OUT_CODES:
            record_opt_out(session, to)
        raise


def record_opt_out(session: Session, address: str, at: datetime | None = None) -> None:
    """Mark `address` opted out (keeping an earlier time), creating its row if it has none (an
    on-call lawyer's number, say). One statement; the caller commits."""
    at = at or utcnow()
    if session.get_bind().dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert  # type: ignore[assignment]
    stmt = insert(_callers).values(phone=address[:64], country=country_of(address), opted_out_at=at)
    stmt = stmt.on_conflict_do_update(index_elements=["phone"], set_={
        "opted_out_at": sa.func.coalesce(_callers.c.opted_out_at, stmt.excluded.opted_out_at)})
    session.execute(stmt)
    log.info("%s recorded as opted out of SMS", mask(address))


# -- chat channels ----------------------------------------------------------------------------------

class ChannelTransport(Protocol):
    def send(self, to: str, reply: ChatReply) -> str | None: ...


# Address prefix -> a factory giving the channel's transport for these settings (None: it is off).
_CHANNELS: dict[str, Callable[[Settings], ChannelTransport | None]] = {}


def register_channel(prefix: str, factory: Callable[[Settings], ChannelTransport | None]) -> None:
    _CHANNELS[prefix] = factory


def channel_transport(settings: Settings, address: str) -> ChannelTransport | None:
    from hotline.channels import load_adapters

    load_adapters()
    prefix = address.partition(":")[0]
    factory = _CHANNELS.get(prefix)
    return factory(settings) if factory is not None else None


def opt_out_address(address: str) -> str:
    """Whose STOP applies: "sms:+66..." (a text through the SMS gateway's SIM) is the phone number
    itself, so one STOP holds for Twilio SMS, the gateway and calls' texts alike."""
    prefix, _, rest = address.partition(":")
    return rest if prefix == "sms" and rest.startswith("+") else address


def send_channel(session: Session, settings: Settings, to: str, reply: ChatReply, *,
                 confirms_stop: bool = False) -> str | None:
    """Send one chat message to a channel address unless it opted out (raises `OptedOut`); returns
    the platform's message id. `confirms_stop`: the reply to the STOP that just opted it out."""
    transport = channel_transport(settings, to)
    if transport is None:
        channel = to.partition(":")[0] or "unknown"
        raise SendError(f"no outbound transport for {channel!r} addresses (channel off or unknown)",
                        transient=False, code="no_channel")
    if not confirms_stop and not may_text(opted_out_at(session, opt_out_address(to))):
        log.info("message to %s refused: opted out (STOP)", mask(to))
        raise OptedOut(to)
    return transport.send(to.partition(":")[2], reply)
