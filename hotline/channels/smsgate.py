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
phone that went to sleep would hang a worker; the two calls we need are a few lines of `requests`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from hotline.phones import mask, to_e164
from hotline.telephony.transport import SendError, Sent

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
        # "sender" since app 1.4x; "phoneNumber" before (and still sent, deprecated).
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


# -- outbound -----------------------------------------------------------------------------------

class SmsGateClient:
    """`POST {url}/messages` on the phone (local mode) or the cloud server, Basic auth.

    Transient: timeouts, connection errors, 5xx (503 is the cloud server's queue limit for the
    device, or a phone server that is restarting), 429. Permanent: 400 (a number the gateway will
    not take), 401/403 (credentials). 409 on our own message id: an earlier try was accepted.
    """

    provider = "smsgate"
    timeout = (5.0, 15.0)  # seconds: connect, read (a phone on a slow network answers slowly)

    def __init__(self, url: str, username: str, password: str):
        self.url = url.rstrip("/")
        self.auth = (username, password)

    def send(self, to: str, body: str, *, message_id: str) -> Sent:
        import requests

        payload: dict[str, Any] = {"id": message_id, "phoneNumbers": [to], "textMessage": {"text": body[:MAX_TEXT]},
                   "withDeliveryReport": True, "ttl": MESSAGE_TTL_SECONDS}
        try:
            resp = requests.post(f"{self.url}/messages", json=payload, auth=self.auth, timeout=self.timeout)
        except requests.RequestException as exc:
            raise SendError(f"SMS gateway unreachable: {type(exc).__name__}", transient=True, code="network") from None
        if resp.status_code == 409:
            log.info("SMS gateway already had message %s for %s: not sent twice", message_id, mask(to))
            return Sent(message_id, "accepted", self.provider)
        if resp.status_code >= 400:
            try:
                detail = str((resp.json() or {}).get("message") or "")[:200]
            except ValueError:
                detail = ""
            transient = resp.status_code >= 500 or resp.status_code == 429
            raise SendError(f"SMS gateway {resp.status_code}: {detail}", transient=transient,
                            code=str(resp.status_code))
        try:
            state = resp.json()
        except ValueError:
            state = {}
        sid = str(state.get("id") or message_id) if isinstance(state, dict) else message_id
        status = str(state.get("state") or "Pending").lower() if isinstance(state, dict) else "pending"
        return Sent(sid, status, self.provider)
