"""Telegram Bot API: `/channels/telegram`.

- Verification: `setWebhook(secret_token=TELEGRAM_WEBHOOK_SECRET)` makes Telegram send that secret in
  `X-Telegram-Bot-Api-Secret-Token` with every update; compared in constant time.
- De-duplication: `update_id` (Telegram redelivers an update until it gets a 2xx).
- Private chats only: a group, supergroup or channel post is left alone (the hotline never answers
  where others read). Edits, reactions, callback queries, membership changes: ignored, no reply.
- Text -> TEXT; a shared contact -> TEXT with its number (a callback: the "Call me back" button asks
  Telegram to share the person's number in one tap); voice or audio -> VOICE
  (`file_id`, fetched with getFile); sticker, photo, location, document, video... -> UNSUPPORTED.
- Out: `sendVoice` (OGG/Opus upload: shown as a voice note) first when there is a recording, then
  `sendMessage` with a persistent reply keyboard (three buttons a row). A tapped keyboard button
  sends its label as text; hotline.services.chat reads a label back as the button's payload.
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import Mapping
from typing import Any

import requests

from hotline.channels import (
    TEXT,
    UNSUPPORTED,
    VOICE,
    ChatReply,
    InboundMessage,
    address,
    register,
)
from hotline.channels.http import json_of
from hotline.channels.http import request as call

log = logging.getLogger(__name__)
MAX_TEXT = 4096
ROW = 3
CALLBACK_PAYLOAD = "CALL"
# Message fields that are media we do not take, so the person gets the neutral reply.
_UNSUPPORTED = ("sticker", "photo", "location", "venue", "document", "video", "video_note", "animation",
                "poll", "dice", "game", "story")


@register
class Telegram:
    channel = "telegram"
    provider = "telegram"
    voice_format = "ogg"

    def __init__(self, config: Mapping[str, str], http: requests.Session):
        self.token = config["TELEGRAM_BOT_TOKEN"]
        self.secret = config["TELEGRAM_WEBHOOK_SECRET"]
        self.base = config["TELEGRAM_API_BASE_URL"]
        self.http = http

    # -- in ---------------------------------------------------------------------------------------
    def verify(self, body: bytes, headers: Mapping[str, str]) -> bool:
        given = headers.get("x-telegram-bot-api-secret-token", "")
        return bool(given) and hmac.compare_digest(given.encode(), self.secret.encode())

    def handshake(self, args: Mapping[str, str]) -> str | None:
        return None

    def parse(self, body: bytes) -> list[InboundMessage]:
        update = json.loads(body)
        if not isinstance(update, dict):
            return []
        msg = update.get("message")
        update_id = update.get("update_id")
        if not isinstance(msg, dict) or not isinstance(update_id, int):
            return []  # edited_message, callback_query, my_chat_member, message_reaction, ...
        chat: dict[str, Any] = msg["chat"] if isinstance(msg.get("chat"), dict) else {}
        if chat.get("type") != "private" or not isinstance(chat.get("id"), int):
            return []
        sender = address(self.channel, str(chat["id"]))
        common: dict[str, Any] = dict(channel=self.channel, provider=self.provider, sid=None, sender=sender,
                                      event_id=str(update_id))
        caption: str = msg["caption"] if isinstance(msg.get("caption"), str) else ""
        if isinstance(msg.get("text"), str):
            text = msg["text"]
            if text.split("@")[0].strip().lower() in ("/start", "/help"):
                text = "HELP"  # Telegram's Start button opens every chat: the welcome and the buttons, not opt-in
            return [InboundMessage(body=text, kind=TEXT, language=_language(msg), **common)]
        contact = msg.get("contact")
        if isinstance(contact, dict) and isinstance(contact.get("phone_number"), str):
            number = contact["phone_number"].strip()
            return [InboundMessage(body=number if number.startswith("+") else "+" + number, kind=TEXT, **common)]
        for key in ("voice", "audio"):
            media = msg.get(key)
            if isinstance(media, dict) and isinstance(media.get("file_id"), str):
                duration = media.get("duration")
                return [InboundMessage(body=caption, kind=VOICE, media=media["file_id"],
                                       duration_s=duration if isinstance(duration, int) else None, **common)]
        if any(key in msg for key in _UNSUPPORTED):
            return [InboundMessage(body="", kind=UNSUPPORTED, **common)]
        return []  # a service message (pinned, joined, ...): nothing to answer

    # -- out --------------------------------------------------------------------------------------
    def _url(self, method: str) -> str:
        return f"{self.base}/bot{self.token}/{method}"

    def send(self, to: str, reply: ChatReply) -> str | None:
        if reply.voice is not None:
            with reply.voice.path.open("rb") as f:
                call(self.http, "POST", self._url("sendVoice"), what="Telegram sendVoice", secret=self.token,
                     data={"chat_id": to, "duration": str(round(reply.voice.duration_ms / 1000))},
                     files={"voice": ("message.ogg", f, reply.voice.mime)})
        payload: dict[str, Any] = {"chat_id": to, "text": reply.text[:MAX_TEXT]}
        if reply.buttons:
            # "Call me back" shares the person's own number in one tap (a contact message: a callback).
            rows = [[{"text": b.label, **({"request_contact": True} if b.payload == CALLBACK_PAYLOAD else {})}
                     for b in reply.buttons[i:i + ROW]] for i in range(0, len(reply.buttons), ROW)]
            payload["reply_markup"] = {"keyboard": rows, "resize_keyboard": True, "is_persistent": True}
        resp = call(self.http, "POST", self._url("sendMessage"), what="Telegram sendMessage", secret=self.token,
                    json=payload)
        result = json_of(resp, "Telegram sendMessage").get("result") or {}
        message_id = result.get("message_id")
        return f"{to}:{message_id}" if message_id is not None else None

    def download(self, media: str) -> bytes:
        resp = call(self.http, "POST", self._url("getFile"), what="Telegram getFile", secret=self.token,
                    json={"file_id": media})
        path = (json_of(resp, "Telegram getFile").get("result") or {}).get("file_path")
        if not isinstance(path, str) or ".." in path:
            from hotline.telephony.transport import SendError

            raise SendError("Telegram getFile gave no file path", transient=False, code="no_file")
        return call(self.http, "GET", f"{self.base}/file/bot{self.token}/{path}", what="Telegram file download",
                    secret=self.token).content

    def set_webhook(self, url: str) -> None:
        """Register our route with Telegram, with the secret it must send back (`hotline channels setup`)."""
        call(self.http, "POST", self._url("setWebhook"), what="Telegram setWebhook", secret=self.token,
             json={"url": url, "secret_token": self.secret,
                   "allowed_updates": ["message"], "drop_pending_updates": False})


def _language(msg: dict[str, Any]) -> str | None:
    """The app's language (`from.language_code`) when it is Khmer or Thai: a first guess for a new
    contact. English is not taken: many Khmer speakers' phones are set to English."""
    sender = msg.get("from")
    code = sender.get("language_code") if isinstance(sender, dict) else None
    return code[:2] if isinstance(code, str) and code[:2] in ("km", "th") else None
