"""SMS Gateway for Android: a Thai SIM in an Android phone as a two-way SMS line (Twilio has no
two-way SMS in Thailand, and many Thai SIMs block foreign senders).

- Webhooks come from the phone itself (in local and in cloud mode), signed: `X-Signature` is hex
  HMAC-SHA256(signing key, raw body + `X-Timestamp`), the timestamp in Unix seconds. We check it on
  the raw bytes and refuse a timestamp outside a five-minute window, so a captured request cannot
  be replayed later; inside the window the event id de-duplicates (the app retries with the same
  id; `payload.messageId` is derived from the content and is NOT unique: two texts "1" share it).
- Sends: `POST {SMSGATE_URL}/messages` with Basic auth, in local mode (`http://<phone>:8080`) and
  cloud mode (`https://api.sms-gate.app/3rdparty/v1`) alike. The answer only means "queued on the
  phone": `sms:sent` / `sms:delivered` / `sms:failed` webhooks report the outcome minutes later,
  like Twilio's status callbacks. We give each message our own id, so a send retried after a
  timeout is refused as a duplicate (409) instead of reaching the person twice, and the status
  events name our id.
- Numbers: the phone reports senders as the network gives them ("0812345678", "66812345678",
  "+66812345678"); we read them as E.164 with Thailand as the default region. Alphanumeric senders
  (the carrier's own "AIS" or "TrueMove H" notices, promotions) are not people and get no answer.

The official client (`android-sms-gateway`) is not used: its requests session has no timeout, and a
phone that went to sleep would hang a worker; the one call we need is a few lines on the shared
HTTP helper (`hotline.channels.http`: timeouts, 429 and 5xx retried, other 4xx permanent).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

from hotline.channels import TEXT, ChatReply, InboundMessage, register
from hotline.channels.http import request
from hotline.phones import mask, to_e164
from hotline.telephony.transport import SendError

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

ADDRESS_PREFIX = "sms:"
REPLAY_WINDOW_SECONDS = 300
MESSAGE_TTL_SECONDS = 6 * 3600  # a reply still queued on a phone that was off this long is dropped
MAX_TEXT = 1600  # the phone splits long texts itself; ten UCS-2 parts is plenty for a reply


class Kind(StrEnum):
    RECEIVED = "received"  # sms:received: a person texted the SIM
    SENT = "sent"  # sms:sent: the phone handed our message to the network
    DELIVERED = "delivered"  # sms:delivered: the network reported it delivered (once per part)
    FAILED = "failed"  # sms:failed: it will not arrive (reason given)
    PING = "ping"  # system:ping: the phone is alive
    IGNORED = "ignored"  # data SMS, MMS, app:started, unknown events, non-person senders


@dataclass(frozen=True)
class GateEvent:
    kind: Kind
    event_id: str | None  # the webhook event's own id: the de-duplication key
    device_id: str | None
    message_id: str | None = None  # ours for sent/delivered/failed; content-derived for received
    phone: str | None = None  # E.164 of the person (sender of a received SMS, recipient otherwise)
    text: str = ""
    reason: str = ""  # sms:failed's reason, e.g. RESULT_ERROR_NO_SERVICE
    detail: str = ""

    @property
    def address(self) -> str | None:
        return ADDRESS_PREFIX + self.phone if self.phone else None


def verify_signature(signing_key: str, body: bytes, timestamp: str | None, signature: str | None, *,
                     now: float | None = None, window: int = REPLAY_WINDOW_SECONDS) -> bool:
    """True when the request is signed with `signing_key` and its timestamp is fresh."""
    if not signing_key or not signature or not timestamp or not timestamp.isdigit() or len(timestamp) > 12:
        return False
    if abs((time.time() if now is None else now) - int(timestamp)) > window:
        return False
    expected = hmac.new(signing_key.encode(), body + timestamp.encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature.strip().lower().encode("utf-8", "replace"))


_KINDS = {"sms:received": Kind.RECEIVED, "sms:sent": Kind.SENT, "sms:delivered": Kind.DELIVERED,
          "sms:failed": Kind.FAILED, "system:ping": Kind.PING}


def parse_event(body: bytes) -> GateEvent:
    """One webhook body as a plain event; anything malformed is IGNORED, never raised."""
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return GateEvent(Kind.IGNORED, None, None, detail="malformed")
    payload: dict[str, Any] = data["payload"] if isinstance(data.get("payload"), dict) else {}
    base: dict[str, Any] = {"event_id": _str(data.get("id"), 64), "device_id": _str(data.get("deviceId"), 64),
                            "message_id": _str(payload.get("messageId"), 64)}
    kind = _KINDS.get(str(data.get("event")))
    if kind is None:
        return GateEvent(Kind.IGNORED, **base, detail=str(data.get("event"))[:40])
    if kind is Kind.PING:
        return GateEvent(kind, **base)
    if kind is Kind.RECEIVED:
        # "sender" in current versions of the app; "phoneNumber" in older ones (still sent, deprecated).
        raw = _str(payload.get("sender"), 40) or _str(payload.get("phoneNumber"), 40) or ""
        phone = to_e164(raw, "TH") if any(c.isdigit() for c in raw) and not _has_letters(raw) else None
        text = payload.get("message")
        if phone is None:
            return GateEvent(Kind.IGNORED, **base, detail="sender:not-a-number")
        if not isinstance(text, str):
            return GateEvent(Kind.IGNORED, **base, phone=phone, detail="no-text")
        return GateEvent(kind, **base, phone=phone, text=text.replace("\x00", "")[:MAX_TEXT])
    raw = _str(payload.get("recipient"), 40) or _str(payload.get("phoneNumber"), 40) or ""
    return GateEvent(kind, **base, phone=to_e164(raw, "TH") if raw else None,
                     reason=(_str(payload.get("reason"), 200) or "") if kind is Kind.FAILED else "")


def _str(value: Any, limit: int) -> str | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    return value.replace("\x00", "").strip()[:limit] or None if isinstance(value, str) else None


def _has_letters(raw: str) -> bool:
    return any(c.isalpha() for c in raw)


# -- the adapter ---------------------------------------------------------------------------------

_STATUSES = {Kind.SENT: "sent", Kind.DELIVERED: "delivered", Kind.FAILED: "failed"}


@register
class SmsGateAdapter:
    """The SMS gateway for `hotline.services.chat`.

    The person is their phone number: an inbound text's sender is "+66..." (E.164), the same
    Caller as their calls and their Twilio texts, so one STOP, one language and one callback number
    hold across all of them. "sms:+66..." is only the routing address of our replies (this
    channel's prefix), and the send gate reads its opt-out from the number itself.
    """

    channel: ClassVar[str] = "smsgate"
    provider: ClassVar[str] = "smsgate"
    prefix: ClassVar[str] = "sms"
    voice_format: ClassVar[str] = ""  # SMS carries no audio: a topic's reply is its text
    heartbeat: ClassVar[bool] = True  # a phone: /healthz/ready shows when it was last heard from
    timeout: ClassVar[tuple[float, float]] = (5.0, 15.0)  # a phone on a slow network answers slowly

    def __init__(self, config: Mapping[str, str], http: requests.Session):
        self.url = config["SMSGATE_URL"].rstrip("/")
        self.auth = (config["SMSGATE_USERNAME"], config["SMSGATE_PASSWORD"])
        self.signing_key = config["SMSGATE_SIGNING_KEY"]
        self.http = http

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        return verify_signature(self.signing_key, body, headers.get("x-timestamp"), headers.get("x-signature"))

    def parse(self, body: bytes) -> list[InboundMessage]:
        ev = parse_event(body)
        if ev.kind is Kind.PING:
            log.info("SMS gateway %s is alive (system:ping)", ev.device_id)
        if ev.kind is not Kind.RECEIVED or not ev.event_id or not ev.phone:
            if ev.kind is Kind.IGNORED:
                log.info("SMS gateway event %s ignored (%s)", ev.event_id, ev.detail)
            return []
        return [InboundMessage(channel=self.channel, provider=self.provider, sid=None, sender=ev.phone,
                               body=ev.text, kind=TEXT, event_id=ev.event_id)]

    def status(self, body: bytes) -> list[tuple[str, str, str | None]]:
        """(our message id, sent | delivered | failed, the phone's reason) of a status event."""
        ev = parse_event(body)
        status = _STATUSES.get(ev.kind)
        if status is None or not ev.message_id:
            return []
        return [(ev.message_id, status, ev.reason or None)]

    def handshake(self, args: Mapping[str, str]) -> str | None:
        return None

    def send(self, to: str, reply: ChatReply) -> str | None:
        """Queue the text on the phone under our own id; the outcome comes later by webhook."""
        mid = message_id(reply.key or f"{to}:{reply.text}:{reply.received_at}")
        payload: dict[str, Any] = {"id": mid, "phoneNumbers": [to], "textMessage": {"text": reply.text[:MAX_TEXT]},
                                   "withDeliveryReport": True, "ttl": MESSAGE_TTL_SECONDS}
        try:
            request(self.http, "POST", f"{self.url}/messages", what="SMS gateway", secret=self.auth[1],
                    json=payload, auth=self.auth, timeout=self.timeout)
        except SendError as exc:
            if exc.code != "409":  # 409: an earlier try was accepted under this id: not sent twice
                raise
            log.info("SMS gateway already had message %s for %s", mid, mask(to))
        return mid

    def download(self, media: str) -> bytes:
        raise SendError("the SMS gateway carries no voice notes", transient=False, code="no_media")

    def set_webhook(self, url: str) -> str:
        """Register our route for every event we read (`hotline channels webhook smsgate`). Each has a
        fixed id, so running it again replaces the registrations instead of adding more."""
        for event in WEBHOOK_EVENTS:
            request(self.http, "POST", f"{self.url}/webhooks", what=f"SMS gateway webhook {event}",
                    secret=self.auth[1], auth=self.auth, timeout=self.timeout,
                    json={"id": "hotline-" + event.replace(":", "-"), "url": url, "event": event})
        return f"the SMS gateway now posts {', '.join(WEBHOOK_EVENTS)} to {url}"


WEBHOOK_EVENTS = ("sms:received", "sms:sent", "sms:delivered", "sms:failed", "system:ping")


def message_id(key: str) -> str:
    """Our id of one outbound SMS on the gateway: stable across retries, unique per message."""
    return "hl-" + hashlib.sha256(key.encode()).hexdigest()[:29]
