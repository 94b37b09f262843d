"""LINE (Messaging API): signed webhooks in; replies by reply token first (free, single-use,
short-lived), then by push (counted against the monthly quota); voice messages both ways.

- Verification: `X-Line-Signature` is base64(HMAC-SHA256(channel secret, raw body)). It is checked
  on the bytes as received, before any parsing (the SDK's validator takes decoded text; a body that
  is not UTF-8 must fail the check, not the decoder).
- Events: one POST may hold several; each has a `webhookEventId`, and a redelivery
  (`deliveryContext.isRedelivery`) carries the same id, so the id is what de-duplicates. Parsing
  never raises: anything we cannot use becomes an `IGNORED` or `UNSUPPORTED` event.
- Group chats and rooms are ignored without a reply: answering there would tell everyone in the
  group (an employer, say) that someone in it contacts a hotline.
- Sends: reply (`/v2/bot/message/reply`) while the token is fresh, else push, which carries an
  `X-Line-Retry-Key` derived from our own message id, so a retried job never shows the person the
  same message twice (LINE answers 409 instead). A recording goes first as an audio message (an
  HTTPS M4A URL and its duration), the text last with the buttons as quick replies.
- Errors (`hotline.channels.http`): timeouts, 429 and 5xx are retried; other 4xx are permanent, and
  so is 429 "monthly limit" (the free quota is spent: no retry this month can succeed).
- The official `line-bot-sdk` is not used: the three calls are a few lines on the shared HTTP
  helper with the same error policy as every channel, while the SDK (v3) brings nine packages
  (pydantic, aenum, future, ...), pins python-dateutil below 3, and takes 1.5-3 s to import.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from hotline.channels import BUTTON, TEXT, UNSUPPORTED, VOICE, ChatReply, InboundMessage, address, register
from hotline.channels.http import request
from hotline.db import utcnow
from hotline.telephony.transport import SendError

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://api.line.me"
DEFAULT_DATA_API_BASE_URL = "https://api-data.line.me"
ADDRESS_PREFIX = "line:"
MAX_TEXT = 5000  # characters in one text message
MAX_MESSAGES = 5  # message objects in one reply or push
MAX_QUICK_REPLIES = 13
MAX_LABEL = 20
MAX_CONTENT_BYTES = 25 * 1024 * 1024  # a voice message of several minutes is far smaller
_USER_ID = re.compile(r"U[0-9a-f]{32}")
_INVALID_REPLY_TOKEN = "invalid reply token"  # noqa: S105 - an error text, not a secret
_MONTHLY_LIMIT = "monthly limit"
# Stable across processes and releases: the retry key of a message is uuid5(namespace, our id).
_RETRY_NAMESPACE = uuid.UUID("5b0f3c1e-8c1d-4c3a-9f42-6d1e0b7a9c21")


class Kind(StrEnum):
    TEXT = "text"  # a typed text, or the text of a quick-reply button the person tapped
    POSTBACK = "postback"  # a rich-menu or postback button: its data is read like a text
    AUDIO = "audio"  # a voice message: download its content, store it like a voicemail
    FOLLOW = "follow"  # the person added the account as a friend (or unblocked it)
    UNFOLLOW = "unfollow"  # the person blocked the account: nothing reaches them any more
    UNSUPPORTED = "unsupported"  # sticker, image, video, file, location, a type LINE adds later
    IGNORED = "ignored"  # group chats, standby mode, unsend, join/leave, beacons, unknown events


@dataclass(frozen=True)
class LineEvent:
    """One webhook event, reduced to what the hotline acts on."""

    kind: Kind
    event_id: str | None  # webhookEventId: the de-duplication key
    redelivery: bool
    user_id: str | None  # U + 32 hex digits, for a one-to-one chat
    reply_token: str | None = None
    text: str = ""
    message_id: str | None = None  # the id of the content to download (audio)
    duration_ms: int | None = None
    detail: str = ""  # the LINE type behind UNSUPPORTED / IGNORED, for logs

    @property
    def address(self) -> str | None:
        return ADDRESS_PREFIX + self.user_id if self.user_id else None


def verify_signature(channel_secret: str, body: bytes, signature: str | None) -> bool:
    """True when `signature` (X-Line-Signature) is LINE's signature of these exact bytes."""
    if not channel_secret or not signature:
        return False
    expected = base64.b64encode(hmac.new(channel_secret.encode(), body, hashlib.sha256).digest())
    return hmac.compare_digest(expected, signature.strip().encode("utf-8", "replace"))


def parse_events(body: bytes) -> list[LineEvent]:
    """The events of a verified webhook body; malformed parts are skipped, never raised.

    LINE's "Verify" button in the console posts `{"events": []}`: an empty list, answered 200.
    """
    try:
        data = json.loads(body)
    except ValueError:
        return []
    events = data.get("events") if isinstance(data, dict) else None
    if not isinstance(events, list):
        return []
    return [_event(e) for e in events if isinstance(e, dict)]


def _str(value: Any, limit: int) -> str | None:
    return value.replace("\x00", "")[:limit] or None if isinstance(value, str) else None


def _event(e: dict[str, Any]) -> LineEvent:
    ctx = e.get("deliveryContext")
    source: dict[str, Any] = e["source"] if isinstance(e.get("source"), dict) else {}
    user = _str(source.get("userId"), 40)
    base: dict[str, Any] = {
        "event_id": _str(e.get("webhookEventId"), 64),
        "redelivery": bool(ctx.get("isRedelivery")) if isinstance(ctx, dict) else False,
        "user_id": user if user and _USER_ID.fullmatch(user) else None,
        "reply_token": _str(e.get("replyToken"), 256)}
    kind = str(e.get("type") or "")
    if source.get("type") != "user" or base["user_id"] is None:
        return LineEvent(Kind.IGNORED, **{**base, "reply_token": None}, detail=f"source:{source.get('type')}")
    if e.get("mode", "active") != "active":  # standby: another channel module answers this chat
        return LineEvent(Kind.IGNORED, **{**base, "reply_token": None}, detail="standby")
    if kind == "message":
        return _message(e.get("message"), base)
    if kind == "postback":
        postback = e.get("postback")
        data = _str(postback.get("data"), 300) if isinstance(postback, dict) else None
        if data:
            return LineEvent(Kind.POSTBACK, **base, text=data)
        return LineEvent(Kind.UNSUPPORTED, **base, detail="postback:empty")
    if kind == "follow":
        return LineEvent(Kind.FOLLOW, **base)
    if kind == "unfollow":
        return LineEvent(Kind.UNFOLLOW, **{**base, "reply_token": None})
    return LineEvent(Kind.IGNORED, **base, detail=kind[:40] or "untyped")


def _message(message: Any, base: dict[str, Any]) -> LineEvent:
    if not isinstance(message, dict):
        return LineEvent(Kind.UNSUPPORTED, **base, detail="message:none")
    kind = str(message.get("type") or "")[:40]
    if kind == "text" and isinstance(message.get("text"), str) and message["text"].strip():
        return LineEvent(Kind.TEXT, **base, text=message["text"].replace("\x00", "")[:MAX_TEXT],
                         message_id=_str(message.get("id"), 64))
    if kind == "audio":
        provider = message.get("contentProvider")
        on_line = not isinstance(provider, dict) or provider.get("type", "line") == "line"
        duration = message.get("duration")
        if on_line and _str(message.get("id"), 64):
            return LineEvent(Kind.AUDIO, **base, message_id=_str(message.get("id"), 64),
                             duration_ms=duration if isinstance(duration, int) and duration >= 0 else None)
        return LineEvent(Kind.UNSUPPORTED, **base, detail="audio:external")
    return LineEvent(Kind.UNSUPPORTED, **base, detail=kind or "message:untyped")


# -- the adapter ---------------------------------------------------------------------------------

_KINDS = {Kind.TEXT: TEXT, Kind.POSTBACK: BUTTON, Kind.AUDIO: VOICE, Kind.UNSUPPORTED: UNSUPPORTED,
          Kind.FOLLOW: TEXT}


def to_inbound(ev: LineEvent) -> InboundMessage | None:
    """The message the chat service acts on, or None for an event that needs nothing (ignored,
    unfollow). A new friend (follow) is read as HELP: the welcome with the topics and the buttons
    (as Telegram's /start and Messenger's Get Started)."""
    kind = _KINDS.get(ev.kind)
    if kind is None or ev.event_id is None or ev.user_id is None:
        return None
    duration = round(ev.duration_ms / 1000) if ev.duration_ms is not None else None
    return InboundMessage(channel=LineAdapter.channel, provider=LineAdapter.provider, sid=None,
                          sender=address(LineAdapter.channel, ev.user_id),
                          body="HELP" if ev.kind is Kind.FOLLOW else ev.text, kind=kind,
                          event_id=ev.event_id, media=ev.message_id if kind == VOICE else None,
                          duration_s=duration, reply_token=ev.reply_token)


@register
class LineAdapter:
    """LINE for `hotline.services.chat`: see the module docstring."""

    channel: ClassVar[str] = "line"
    provider: ClassVar[str] = "line"
    voice_format: ClassVar[str] = "m4a"
    # LINE does not publish a fixed lifetime for reply tokens; in practice they fail after about a
    # minute. An older one is not tried (it would cost a request and fail); a refused one falls
    # back to push anyway.
    reply_token_seconds: ClassVar[float] = 50.0

    def __init__(self, config: Mapping[str, str], http: requests.Session):
        self.secret = config["LINE_CHANNEL_SECRET"]
        self.token = config["LINE_CHANNEL_ACCESS_TOKEN"]
        self.api = config.get("LINE_API_BASE_URL", DEFAULT_API_BASE_URL).rstrip("/")
        self.data_api = config.get("LINE_DATA_API_BASE_URL", DEFAULT_DATA_API_BASE_URL).rstrip("/")
        self.http = http

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        return verify_signature(self.secret, body, headers.get("x-line-signature"))

    def parse(self, body: bytes) -> list[InboundMessage]:
        out: list[InboundMessage] = []
        for ev in parse_events(body):
            if ev.kind in (Kind.IGNORED, Kind.UNFOLLOW):
                log.info("LINE event %s ignored (%s)", ev.event_id, ev.detail or ev.kind)
            msg = to_inbound(ev)
            if msg is not None:
                out.append(msg)
        return out

    def handshake(self, args: Mapping[str, str]) -> str | None:
        return None  # LINE verifies a webhook URL with a signed POST of no events

    def send(self, to: str, reply: ChatReply) -> str | None:
        """Reply with the token if it is fresh, else push; returns the LINE request id."""
        messages = build_messages(reply)
        token = reply.reply_token if _fresh(reply.received_at, self.reply_token_seconds) else None
        if token:
            try:
                return self._post("/v2/bot/message/reply", {"replyToken": token, "messages": messages}, "reply")
            except SendError as exc:
                # An expired or used token, or LINE busy: push instead (a push can be retried
                # safely with its retry key; a reply that timed out but arrived is a rare duplicate).
                if not (exc.transient or _INVALID_REPLY_TOKEN in str(exc).lower()):
                    raise
                log.info("LINE reply token not usable (%s): pushing instead", exc.code)
        key = retry_key(reply.key or f"{to}:{reply.text}:{reply.received_at}")
        try:
            return self._post("/v2/bot/message/push", {"to": to, "messages": messages}, "push",
                              headers={"X-Line-Retry-Key": key})
        except SendError as exc:
            if exc.code == "409":  # this retry key was accepted before: the message went out then
                log.info("LINE push %s was accepted by an earlier attempt", key)
                return None
            raise

    def set_webhook(self, url: str) -> str:
        """Set the channel's webhook URL and have LINE test it (`hotline channels webhook line`)."""
        request(self.http, "PUT", f"{self.api}/v2/bot/channel/webhook/endpoint", what="LINE set webhook",
                secret=self.token, json={"endpoint": url}, headers=self._auth())
        test = request(self.http, "POST", f"{self.api}/v2/bot/channel/webhook/test", what="LINE test webhook",
                       secret=self.token, json={"endpoint": url}, headers=self._auth()).json()
        if not test.get("success"):
            raise SendError(f"LINE could not reach {url}: {test.get('statusCode')} {test.get('reason')} "
                            f"{test.get('detail', '')}"[:200], transient=False, code="webhook_test")
        return f"LINE now posts events to {url} (its test request was answered {test.get('statusCode')})"

    def download(self, media: str) -> bytes:
        """A voice message's audio (M4A), from the data host. 202: LINE is still preparing it."""
        if not media.isdigit():
            raise SendError("not a LINE message id", transient=False, code="bad_media")
        resp = request(self.http, "GET", f"{self.data_api}/v2/bot/message/{media}/content", what="LINE content",
                       headers=self._auth(), stream=True)
        try:
            if resp.status_code == 202:
                raise SendError("LINE content: still being prepared", transient=True, code="202")
            data = resp.raw.read(MAX_CONTENT_BYTES + 1, decode_content=True)
        finally:
            resp.close()
        if len(data) > MAX_CONTENT_BYTES:
            raise SendError("LINE content: larger than we store", transient=False, code="too_large")
        return bytes(data)

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def _post(self, path: str, payload: dict[str, Any], what: str, headers: Mapping[str, str] = {}) -> str | None:
        try:
            resp = request(self.http, "POST", self.api + path, what=f"LINE {what}", secret=self.token,
                           json=payload, headers={**self._auth(), **headers})
        except SendError as exc:
            if exc.code == "429" and _MONTHLY_LIMIT in str(exc).lower():
                # The month's message quota is spent: no retry within the job's backoff can succeed.
                raise SendError(f"LINE {what}: the monthly message limit is reached", transient=False,
                                code="monthly_limit") from None
            raise
        return resp.headers.get("x-line-request-id")


def _fresh(received_at: datetime | None, seconds: float) -> bool:
    if received_at is None:
        return False
    now = datetime.now(received_at.tzinfo) if received_at.tzinfo else utcnow()
    return (now - received_at).total_seconds() < seconds


def build_messages(reply: ChatReply) -> list[dict[str, Any]]:
    """The recording first (a voice message: an HTTPS M4A and its length), then the text with the
    buttons as quick replies: LINE shows quick replies only under the last message."""
    messages: list[dict[str, Any]] = []
    voice = reply.voice
    if voice is not None:
        if voice.url.startswith("https://") and voice.duration_ms > 0:
            messages.append({"type": "audio", "originalContentUrl": voice.url, "duration": voice.duration_ms})
        else:  # LINE fetches audio over HTTPS only: PUBLIC_BASE_URL must be https for voice
            log.warning("LINE voice left out: its URL is not HTTPS (set PUBLIC_BASE_URL to an https URL)")
    text: dict[str, Any] = {"type": "text", "text": (reply.text or " ")[:MAX_TEXT]}
    items = [{"type": "action", "action": {"type": "message", "label": b.label[:MAX_LABEL], "text": b.payload[:300]}}
             for b in reply.buttons[:MAX_QUICK_REPLIES]]
    if items:
        text["quickReply"] = {"items": items}
    messages.append(text)
    return messages[:MAX_MESSAGES]


def retry_key(message_key: str) -> str:
    """The X-Line-Retry-Key of one outbound message: the same on every retry of its job."""
    return str(uuid.uuid5(_RETRY_NAMESPACE, message_key))
