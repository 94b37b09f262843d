"""Messages in and out, whatever carried them: Twilio SMS today; Telegram, LINE, Viber or an Android
SMS gateway later (Twilio has no two-way SMS in Thailand, and many Thai SIMs block foreign senders).

An adapter is one small module: it turns the provider's webhook into an `InboundMessage`, hands it
to `hotline.services.sms.handle_inbound`, and delivers the replies it gets back (as an inline
webhook answer, like Twilio's TwiML, or through the provider's API from a job). Every reply and every
send passes `hotline.services.sendgate` (opt-out); an adapter delivers only `sendgate.Cleared`
messages. The keyword engine and the stored rows are the same for every channel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from hotline.services.sendgate import Cleared


@dataclass(frozen=True)
class InboundMessage:
    """A text someone sent us."""

    channel: str  # "sms", "telegram", ...: stored in Message.channel
    provider: str  # "twilio", ...: stored in Message.provider
    sid: str | None  # the provider's id for this message; a redelivery carries the same one
    sender: str  # E.164 for phone channels, else a channel address such as "tg:12345"
    body: str
    answered_by_provider: bool = False  # the provider already replied (e.g. Twilio Advanced Opt-Out)
    provider_opt: str | None = None  # "stop" / "start" when the provider itself read an opt-out keyword


@dataclass(frozen=True)
class OutboundMessage:
    """A reply to send back: already rendered, counted and stored."""

    body: str
    language: str
    segments: int
    reply_to: str | None  # sid of the message it answers


class Channel(Protocol):
    """What a webhook adapter provides; see `hotline.channels.twilio_sms` for the first one."""

    channel: str
    provider: str

    def parse(self, form: Mapping[str, str]) -> InboundMessage: ...

    def answer(self, replies: Sequence[Cleared], *, status_callback: str | None) -> str: ...
