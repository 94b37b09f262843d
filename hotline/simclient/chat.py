"""Chat platforms as the simulator plays them: the webhook each platform would post, signed exactly
as it signs, from the simulator's own contacts (nobody real). Replies are read back from what the
hotline stored and sent (hotline.web.simulator), so the pane shows them whichever API they went to.

A platform's builder takes (its settings, contact id, kind, text or a button's label, the button's
payload, voice URL) and returns the raw body
and headers of one webhook. Add one for a new channel in `BUILDERS`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable, Mapping
from typing import Any

# The simulator's own chat contacts, per channel: shown in the clear (they are nobody).
SIM_CONTACTS: dict[str, tuple[str, ...]] = {
    "messenger": ("6100000000000001", "6100000000000002"),
    "telegram": ("700000001", "700000002"),
    "line": ("U" + "0" * 31 + "1", "U" + "0" * 31 + "2"),
}
KINDS = ("text", "button", "voice", "sticker")
Builder = Callable[[Mapping[str, str], str, str, str, str, str | None], tuple[bytes, dict[str, str]]]


def messenger(config: Mapping[str, str], psid: str, kind: str, text: str, payload: str,
              voice_url: str | None) -> tuple[bytes, dict[str, str]]:
    now = int(time.time() * 1000)
    message: dict[str, Any] = {"mid": "m_sim_" + secrets.token_urlsafe(18)}
    if kind == "button":
        message |= {"text": text, "quick_reply": {"payload": payload}}
    elif kind == "voice":
        message["attachments"] = [{"type": "audio", "payload": {"url": voice_url}}]
    elif kind == "sticker":
        message["attachments"] = [{"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/sticker.png",
                                                                "sticker_id": 369239263222822}}]
    else:
        message["text"] = text
    body = json.dumps({"object": "page", "entry": [{"id": "sim-page", "time": now, "messaging": [
        {"sender": {"id": psid}, "recipient": {"id": "sim-page"}, "timestamp": now, "message": message}]}]}).encode()
    sig = hmac.new(config["MESSENGER_APP_SECRET"].encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-Hub-Signature-256": "sha256=" + sig}


def telegram(config: Mapping[str, str], chat_id: str, kind: str, text: str, payload: str,
             voice_url: str | None) -> tuple[bytes, dict[str, str]]:
    message: dict[str, Any] = {"message_id": secrets.randbelow(10**9), "date": int(time.time()),
                               "chat": {"id": int(chat_id), "type": "private"},
                               "from": {"id": int(chat_id), "is_bot": False, "first_name": "Sim"}}
    if kind == "sticker":
        message["sticker"] = {"file_id": "CAACAgIAAxk", "emoji": "👍"}
    else:
        message["text"] = text  # a keyboard button sends its label as text
    body = json.dumps({"update_id": secrets.randbelow(2**31), "message": message}).encode()
    return body, {"Content-Type": "application/json",
                  "X-Telegram-Bot-Api-Secret-Token": config["TELEGRAM_WEBHOOK_SECRET"]}


def line(config: Mapping[str, str], user_id: str, kind: str, text: str, payload: str,
         voice_url: str | None) -> tuple[bytes, dict[str, str]]:
    """A LINE webhook with one event, signed with the channel secret (base64 HMAC-SHA256 of the body).
    A tapped quick reply sends its text (the payload), as LINE's message action does."""
    message: dict[str, Any] = {"id": str(secrets.randbelow(10**17) + 10**17)}
    if kind == "sticker":
        message |= {"type": "sticker", "packageId": "446", "stickerId": "1988"}
    else:
        message |= {"type": "text", "text": payload if kind == "button" else text}
    event = {"type": "message", "mode": "active", "timestamp": int(time.time() * 1000),
             "source": {"type": "user", "userId": user_id}, "webhookEventId": "01SIM" + secrets.token_hex(10).upper(),
             "deliveryContext": {"isRedelivery": False}, "replyToken": secrets.token_hex(16), "message": message}
    body = json.dumps({"destination": "Usimulator", "events": [event]}).encode()
    sig = base64.b64encode(hmac.new(config["LINE_CHANNEL_SECRET"].encode(), body, hashlib.sha256).digest()).decode()
    return body, {"Content-Type": "application/json", "X-Line-Signature": sig}


BUILDERS: dict[str, Builder] = {"messenger": messenger, "telegram": telegram, "line": line}
# The SMS gateway is not played here: its contacts are phone numbers, and a reply through a real
# phone's SIM would be a real SMS to whoever holds that number.
# Voice notes: Messenger's adapter fetches the URL in the event (the simulator serves it); Telegram's
# asks its Bot API for the file, which only the platform (or its fake) can answer.
VOICE_NOTES = frozenset({"messenger"})
