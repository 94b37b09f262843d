"""Messages in and out, whatever carried them: Twilio SMS, and the chat and gateway channels of
issue #18 (Telegram, Facebook Messenger, LINE, an Android phone's SIM through SMS Gateway for Android).

Twilio SMS (`twilio_sms`) answers inline with TwiML. Every other channel is a *chat adapter*: it
checks the platform's signature on the raw body, turns the webhook into `InboundMessage`s, and
sends what it is given through the platform's HTTP API from a background job. The keyword engine,
urgent detection, cases, callbacks, opt-out and the stored rows are the same for every channel.

How a chat adapter plugs in (Telegram, `hotline/channels/telegram.py`, is the worked example)
-------------------------------------------------------------------------------------------
1. Settings. Its names are in `hotline.settings.CHANNEL_SETTINGS` (all four channels are listed
   there already): the `required` ones turn the channel on (one without the others stops start-up
   with a message naming what is missing); `*_API_BASE_URL` default to the platform's host and
   point at the local fake in tests. `NAME_FILE` works for each. The adapter is built with that
   channel's mapping, `settings.channel("line")`, keyed by the environment names. A channel with
   no settings is off: no adapter is built and `/channels/<name>` answers 404.
2. One module `hotline/channels/<name>.py` with a class decorated `@register` (every module of this
   package is imported by `load_adapters`, so nothing else needs editing) that provides `ChatAdapter`:
     - `channel` (the route name and the address prefix: "line"), `provider`, `voice_format`
       (a key of `hotline.channels.media.FORMATS`: "ogg", "m4a" or "mp3");
     - `__init__(self, config: Mapping[str, str], http: requests.Session)` (`config` also holds
       PUBLIC_BASE_URL); use `hotline.channels.http`
       for every call to the platform: it maps timeouts, 429 and 5xx to transient `SendError`s (the
       job retries them) and other 4xx to permanent ones (recorded on the message);
     - `verify(body: bytes, headers) -> bool` (header names lower-case): the platform's signature
       over the RAW body, compared
       in constant time (`hmac.compare_digest`); False -> 403, nothing parsed;
     - `parse(body: bytes) -> list[InboundMessage]`: one per event worth acting on; an event to
       ignore silently (a delivery receipt, an edit, a reaction, our own echo) is left out. Never
       raises on valid JSON of any shape (a ValueError means "not JSON": 400). Set `kind`
       (`TEXT`, `BUTTON` with the button's payload as `body`, `VOICE` with `media` = what `download`
       needs, `UNSUPPORTED` for stickers, images, locations: they get a neutral reply), `event_id`
       (the platform's de-duplication id: update_id, mid, webhookEventId, the event `id`),
       `sender` = the contact address `address(channel, platform id)` ("line:U4af4…"; a class
       attribute `prefix = "sms"` makes the SMS gateway's "sms:+66812345678"), and `reply_token`
       where the platform has one (LINE), `language` where the platform reports the person's
       (Telegram's language_code: taken for a new contact when it is km or th);
     - `handshake(args) -> str | None`: the answer to a GET on the route (Messenger's hub.challenge),
       None for 403 (most platforms: `return None`);
     - `send(to: str, reply: ChatReply) -> str | None`: `to` is the platform id (the address without
       the prefix); text, `reply.buttons` as quick replies / a keyboard, `reply.voice` (a converted
       prompt: `.path` to upload, `.url` a signed HTTPS link the platform can fetch, `.duration_ms`)
       and the platform's rules (Messenger's 24-hour window: `reply.last_inbound_at`, `purpose`
       "reply" | "staff" | "alert"; `reply.ask_phone`: offer the platform's share-my-number button;
       LINE: `reply.reply_token` and `reply.received_at` to try the free reply first, then push).
       Returns the platform's message id (stored as `<channel>:<id>`) or None;
     - optional `staff_window: timedelta`: how long after the person's last message a staff reply
       from the console may still go (Messenger: 7 days); none means no limit;
     - `download(media: str) -> bytes`: a voice note's audio (stored encrypted like a voicemail).
3. The route is shared: `hotline/web/channels.py` serves `POST|GET /channels/<channel>` for every
   registered adapter (verify -> 403, parse -> `hotline.services.chat.receive` per message, always a
   200 to the platform once verified, never a 5xx) and `/channels/media/<token>` for voice files.
   A gateway whose other events matter (SMS Gateway's `sms:sent`/`sms:failed`) may define
   `status(body) -> list[tuple[str, str, str | None]]` ((message id, "sent"|"delivered"|"failed",
   error)), applied to our outbound rows.
4. The fake: `hotline/fakes/<name>.py`, a local HTTP server answering like the platform's API,
   built on `hotline.fakes.base.FakeServer` (threaded server on a free port, `requests` seen,
   `fail_next(n, status, description)`, `start()`/`stop()`, `.url` for `*_API_BASE_URL`; override
   `routes(app)` and `error(failure)` for the platform's error shape). See `hotline/fakes/telegram.py`
   and `hotline/fakes/messenger.py`. Tests (tests/test_channel_telegram.py is the pattern: a
   `settings` fixture that turns the channel on, signed posts, `run_worker_burst`) sign webhooks
   exactly as the platform does, and prove a wrong signature gets 403 and a replayed event acts once.
5. The simulator's chat pane: add a builder to `hotline.simclient.chat.BUILDERS` (the signed
   webhook for a text, a button, a voice note, a sticker) and contacts to `SIM_CONTACTS`; the pane
   then offers the channel whenever it is on.

Outbound: nothing calls an adapter's `send` but `hotline.services.sendgate.send_channel` (the opt-out
gate for every channel; its transport registry is filled by `@register`). Replies are written as
outbound `Message` rows and sent by the job `chat.send` (hotline.services.chat), which retries
transient errors and records permanent ones on the row.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

if TYPE_CHECKING:
    from hotline.services.sendgate import Cleared
    from hotline.settings import Settings

log = logging.getLogger(__name__)

# InboundMessage.kind
TEXT = "text"
BUTTON = "button"  # a quick reply / keyboard button: `body` is its payload ("1", "CALL", "SOS")
VOICE = "voice"  # a voice note or audio file: `media` says where to fetch it
UNSUPPORTED = "unsupported"  # a sticker, image, location, file...: a neutral reply, nothing else
KINDS = (TEXT, BUTTON, VOICE, UNSUPPORTED)


@dataclass(frozen=True)
class InboundMessage:
    """A message someone sent us, on any channel."""

    channel: str  # "sms", "telegram", "messenger", "line", "smsgate": stored in Message.channel
    provider: str  # "twilio", "telegram", ...: stored in Message.provider
    sid: str | None  # the provider's id for this message; a redelivery carries the same one
    sender: str  # E.164 for Twilio SMS, else the contact address "<channel>:<platform id>"
    body: str
    answered_by_provider: bool = False  # the provider already replied (e.g. Twilio Advanced Opt-Out)
    provider_opt: str | None = None  # "stop" / "start" when the provider itself read an opt-out keyword
    # Chat channels (all optional, so Twilio SMS is unchanged):
    kind: str = TEXT
    event_id: str | None = None  # the platform's de-duplication id (update_id, mid, webhookEventId)
    media: str | None = None  # VOICE: the platform's reference for `download` (file_id, message id, URL)
    duration_s: int | None = None  # VOICE: as the platform reported it
    reply_token: str | None = None  # LINE: the single-use, short-lived reply token
    language: str | None = None  # the platform's guess (Telegram's language_code): a new contact's first language
    # A phone number the person gave in the message (set by hotline.services.chat): a callback
    # request rings this number, and a bare number is read as one.
    callback_phone: str | None = None


@dataclass(frozen=True)
class OutboundMessage:
    """A reply to send back: already rendered, counted and stored."""

    body: str
    language: str
    segments: int
    reply_to: str | None  # sid of the message it answers


@dataclass(frozen=True)
class Button:
    label: str  # what the person sees (short: Messenger cuts quick-reply titles at 20 characters)
    payload: str  # what comes back when tapped: a keyword the engine reads ("1", "CALL", "SOS")


@dataclass(frozen=True)
class Voice:
    """A recorded prompt converted for one platform (hotline.channels.media)."""

    path: Path  # the converted file, for an upload
    url: str  # a signed, expiring URL of the same file, for platforms that fetch it
    mime: str
    duration_ms: int
    sha256: str


@dataclass(frozen=True)
class ChatReply:
    """What an adapter sends: text, optional buttons and voice, and what the platform's rules need."""

    text: str
    language: str
    buttons: tuple[Button, ...] = ()
    voice: Voice | None = None
    purpose: str = "reply"  # reply (to a message just received) | staff (a staff member wrote) | alert
    last_inbound_at: datetime | None = None  # the contact's last message on this channel (24-hour rules)
    reply_token: str | None = None
    received_at: datetime | None = None  # when the message with `reply_token` came in
    # Our own id of this outbound message, the same on every retry of its job: the platform's
    # idempotency key (LINE's X-Line-Retry-Key, the SMS gateway's message id), so a retry after a
    # timeout is not shown twice.
    key: str | None = None
    ask_phone: bool = False  # the text asks for a phone number: offer the platform's "share my number"


class Channel(Protocol):
    """What a webhook adapter that answers inline provides; see `hotline.channels.twilio_sms`."""

    channel: str
    provider: str

    def parse(self, form: Mapping[str, str]) -> InboundMessage: ...

    def answer(self, replies: Sequence[Cleared], *, status_callback: str | None) -> str: ...


class ChatAdapter(Protocol):
    """A chat or gateway channel: see the module docstring for each method's contract."""

    channel: ClassVar[str]
    provider: ClassVar[str]
    voice_format: ClassVar[str]

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool: ...

    def parse(self, body: bytes) -> list[InboundMessage]: ...

    def handshake(self, args: Mapping[str, str]) -> str | None: ...

    def send(self, to: str, reply: ChatReply) -> str | None: ...

    def download(self, media: str) -> bytes: ...


ADAPTERS: dict[str, type] = {}
PREFIXES: dict[str, str] = {}  # address prefix -> channel name ("sms" -> "smsgate")
_built: dict[tuple[int, str], tuple[Settings, ChatAdapter]] = {}
_lock = threading.Lock()
_loaded = False


def register(cls: type) -> type:
    """Class decorator: make a chat adapter known by its `channel` name (route, address prefix)."""
    name = cls.channel  # type: ignore[attr-defined]
    if not name.isalnum() or not name.islower():
        raise ValueError(f"channel name {name!r} must be lower-case letters and digits")
    prefix = getattr(cls, "prefix", name)
    ADAPTERS[name], PREFIXES[prefix] = cls, name
    from hotline.services import sendgate

    sendgate.register_channel(prefix, lambda settings: adapter(settings, name))
    return cls


def load_adapters() -> None:
    """Import every module of this package once, so each `@register` has run."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        for info in pkgutil.iter_modules(__path__):
            importlib.import_module(f"{__name__}.{info.name}")
        _loaded = True


def adapter(settings: Settings, name: str) -> ChatAdapter | None:
    """The adapter of a channel that is on, built once per settings; None when it is off or unknown."""
    load_adapters()
    config = settings.channel(name)
    cls = ADAPTERS.get(name)
    if config is None or cls is None:
        return None
    key = (id(settings), name)
    hit = _built.get(key)
    if hit is not None and hit[0] is settings:
        return hit[1]
    from hotline.channels.http import new_session

    # PUBLIC_BASE_URL beside the channel's own settings: our own host (the simulator serves the voice
    # notes it "sends" from there, as it serves Twilio-style recordings).
    built: ChatAdapter = cls({**config, "PUBLIC_BASE_URL": settings.public_base_url}, new_session())
    with _lock:
        if len(_built) > 64:  # tests build many settings; a process has one
            _built.clear()
        _built[key] = (settings, built)
    return built


def enabled(settings: Settings) -> list[str]:
    """Names of the chat channels that are on (settings given and an adapter registered)."""
    load_adapters()
    return [name for name in sorted(ADAPTERS) if settings.channel(name) is not None]


def address(channel: str, platform_id: str) -> str:
    """The contact address stored as Caller.phone and Message.peer: "telegram:12345"."""
    cls = ADAPTERS.get(channel)
    return f"{getattr(cls, 'prefix', channel)}:{platform_id}"


def split_address(addr: str) -> tuple[str, str]:
    """"telegram:12345" -> ("telegram", "12345"); a phone number -> ("", number)."""
    channel, sep, ident = addr.partition(":")
    return (channel, ident) if sep else ("", addr)

