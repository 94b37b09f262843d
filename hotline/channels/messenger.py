"""Facebook Messenger (Graph API Send API): `/channels/messenger`.

- Setup handshake: Meta's `GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…` is answered
  with the challenge when the token is MESSENGER_VERIFY_TOKEN, else 403.
- Every POST carries `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>`, checked
  on the raw bytes before anything is parsed.
- `entry[]` and `messaging[]` may each hold several events; each message is de-duplicated by `mid`.
  Our own sends come back as echoes (`is_echo`): ignored, as are deliveries, reads, reactions and
  edits. A quick reply or a postback is a BUTTON (its payload); audio is a VOICE note (fetched from
  Meta's CDN only, or our own host: the simulator's); images, stickers, locations, files are
  UNSUPPORTED (the neutral reply).
- Send API `POST /{version}/me/messages` with `messaging_type`: RESPONSE within 24 hours of the
  person's last message; after that only a staff member's reply may go, with the HUMAN_AGENT tag,
  up to 7 days; anything else is refused before it reaches Meta (permanent, recorded). A recorded
  topic goes as an `audio` attachment by URL (our signed /channels/media link), then the text with
  quick replies (at most 13, titles cut at 20 characters); asking for a number offers Messenger's
  "share my phone number" quick reply, whose payload is the number (a callback).
- Graph answers rate limits and temporary errors with HTTP 400 and a code (1, 2, 4, 17, 32, 613):
  those are retried like a 5xx.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import requests

from hotline.channels import BUTTON, TEXT, UNSUPPORTED, VOICE, ChatReply, InboundMessage, address, register
from hotline.channels.http import json_of
from hotline.channels.http import request as call
from hotline.db import utcnow
from hotline.telephony.transport import SendError

log = logging.getLogger(__name__)
GRAPH_VERSION = "v25.0"
MAX_TEXT = 2000
MAX_QUICK_REPLIES = 13
MAX_TITLE = 20
WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)
TRANSIENT_CODES = frozenset({1, 2, 4, 17, 32, 341, 613})  # unknown, temporary, rate limits
# Where Meta serves attachments a person sent (voice clips): nothing else is fetched.
CDN_SUFFIXES = (".fbcdn.net", ".fbsbx.com", ".facebook.com")


def _graph_transient(resp: requests.Response) -> bool:
    try:
        err = resp.json().get("error") or {}
    except (ValueError, AttributeError):
        return False
    return isinstance(err, dict) and (err.get("code") in TRANSIENT_CODES or bool(err.get("is_transient")))


@register
class Messenger:
    channel = "messenger"
    provider = "meta"
    voice_format = "mp3"
    staff_window = HUMAN_AGENT_WINDOW  # the console refuses a staff reply later than this

    def __init__(self, config: Mapping[str, str], http: requests.Session):
        self.app_secret = config["MESSENGER_APP_SECRET"]
        self.page_token = config["MESSENGER_PAGE_TOKEN"]
        self.verify_token = config["MESSENGER_VERIFY_TOKEN"]
        self.base = config["MESSENGER_API_BASE_URL"]
        self.own_host = urlsplit(config.get("PUBLIC_BASE_URL", "")).netloc  # the simulator's voice notes
        self.http = http

    # -- in ---------------------------------------------------------------------------------------
    def handshake(self, args: Mapping[str, str]) -> str | None:
        token = args.get("hub.verify_token", "")
        if args.get("hub.mode") == "subscribe" and token and hmac.compare_digest(token.encode(),
                                                                                  self.verify_token.encode()):
            return args.get("hub.challenge", "")[:256]
        return None

    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        given = headers.get("x-hub-signature-256", "")
        if not given.startswith("sha256="):
            return False
        expected = hmac.new(self.app_secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given[7:].lower().encode(), expected.encode())

    def parse(self, body: bytes) -> list[InboundMessage]:
        data = json.loads(body)
        if not isinstance(data, dict) or data.get("object") != "page":
            return []
        out = []
        for entry in _dicts(data.get("entry")):
            for event in _dicts(entry.get("messaging")):
                msg = self._event(event)
                if msg is not None:
                    out.append(msg)
        return out

    def _event(self, event: dict[str, Any]) -> InboundMessage | None:
        sender = event.get("sender") if isinstance(event.get("sender"), dict) else {}
        psid = sender.get("id") if isinstance(sender, dict) else None
        if not isinstance(psid, str | int) or not str(psid).isdigit():
            return None
        common: dict[str, Any] = dict(channel=self.channel, provider=self.provider, sid=None,
                                      sender=address(self.channel, str(psid)))
        message, postback = event.get("message"), event.get("postback")
        if isinstance(message, dict):
            mid = message.get("mid")
            if message.get("is_echo") or not isinstance(mid, str) or not mid:
                return None
            common["event_id"] = mid
            quick = message.get("quick_reply")
            if isinstance(quick, dict) and isinstance(quick.get("payload"), str):
                return InboundMessage(body=quick["payload"], kind=BUTTON, **common)
            if isinstance(message.get("text"), str):
                return InboundMessage(body=message["text"], kind=TEXT, **common)
            for att in _dicts(message.get("attachments")):
                payload = att.get("payload") if isinstance(att.get("payload"), dict) else {}
                if att.get("type") == "audio" and isinstance(payload, dict) and isinstance(payload.get("url"), str):
                    return InboundMessage(body="", kind=VOICE, media=payload["url"], **common)
            return InboundMessage(body="", kind=UNSUPPORTED, **common)  # image, sticker, location, file...
        if isinstance(postback, dict) and isinstance(postback.get("payload"), str):
            mid = postback.get("mid") or f"postback-{psid}-{event.get('timestamp')}"
            return InboundMessage(body=postback["payload"], kind=BUTTON, event_id=str(mid), **common)
        return None  # delivery, read, reaction, message_edit, optin, referral...

    # -- out --------------------------------------------------------------------------------------
    def _window(self, reply: ChatReply) -> dict[str, str]:
        since = utcnow() - reply.last_inbound_at if reply.last_inbound_at is not None else None
        if since is not None and since < WINDOW:
            return {"messaging_type": "RESPONSE"}
        if reply.purpose == "staff" and since is not None and since < HUMAN_AGENT_WINDOW:
            return {"messaging_type": "MESSAGE_TAG", "tag": "HUMAN_AGENT"}
        raise SendError("outside Messenger's 24-hour window (a staff reply may go for 7 days)",
                        transient=False, code="window")

    def _post(self, payload: dict[str, Any]) -> dict[str, Any]:
        resp = call(self.http, "POST", f"{self.base}/{GRAPH_VERSION}/me/messages", what="Messenger Send API",
                    secret=self.page_token, transient=_graph_transient,
                    params={"access_token": self.page_token}, json=payload)
        data = json_of(resp, "Messenger Send API")
        return data if isinstance(data, dict) else {}

    def send(self, to: str, reply: ChatReply) -> str | None:
        rules = self._window(reply)
        recipient = {"id": to}
        if reply.voice is not None:
            self._post({"recipient": recipient, **rules, "message": {"attachment": {
                "type": "audio", "payload": {"url": reply.voice.url, "is_reusable": True}}}})
        message: dict[str, Any] = {"text": reply.text[:MAX_TEXT]}
        quick: list[dict[str, Any]] = [{"content_type": "user_phone_number"}] if reply.ask_phone else []
        quick += [{"content_type": "text", "title": b.label[:MAX_TITLE], "payload": b.payload} for b in reply.buttons]
        if quick:  # "share my number" first: the number comes back as the quick reply's payload
            message["quick_replies"] = quick[:MAX_QUICK_REPLIES]
        mid = self._post({"recipient": recipient, **rules, "message": message}).get("message_id")
        return str(mid) if mid else None

    def download(self, media: str) -> bytes:
        parts = urlsplit(media)
        own = {urlsplit(self.base).netloc, self.own_host} - {""}
        host = parts.hostname or ""
        if not ((parts.scheme == "https" and host.endswith(CDN_SUFFIXES)) or parts.netloc in own):
            raise SendError(f"attachment host {host!r} is not Meta's", transient=False, code="bad_host")
        return call(self.http, "GET", media, what="Messenger attachment download").content


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []
