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
- Sends go through the official SDK (`line-bot-sdk`), pointed at LINE_API_BASE_URL and
  LINE_DATA_API_BASE_URL. A push carries an `X-Line-Retry-Key` derived from our own message id,
  so a retried job never shows the person the same message twice (LINE answers 409 instead).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://api.line.me"
DEFAULT_DATA_API_BASE_URL = "https://api-data.line.me"
ADDRESS_PREFIX = "line:"
MAX_TEXT = 5000  # characters in one text message
MAX_MESSAGES = 5  # message objects in one reply or push
MAX_QUICK_REPLIES = 13
MAX_LABEL = 20
MAX_CONTENT_BYTES = 25 * 1024 * 1024  # a voice message of several minutes is far smaller
_USER_ID = re.compile(r"^U[0-9a-f]{32}$")
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
        "user_id": user if user and _USER_ID.match(user) else None,
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


# -- outbound -----------------------------------------------------------------------------------

def retry_key(message_key: str) -> str:
    """The X-Line-Retry-Key of one outbound message: the same on every retry of its job."""
    return str(uuid.uuid5(_RETRY_NAMESPACE, message_key))
