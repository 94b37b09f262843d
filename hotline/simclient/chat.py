"""Chat platforms as the simulator plays them: the webhook each platform would post, signed exactly
as it signs, from the simulator's own contacts (nobody real). Replies are read back from what the
hotline stored and sent (hotline.web.simulator), so the pane shows them whichever API they went to.

A platform's builder takes (its settings, contact id, kind, text or a button's label, the button's
payload, voice URL) and returns the raw body
and headers of one webhook. Add one for a new channel in `BUILDERS` (LINE: X-Line-Signature).
"""

from __future__ import annotations

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


BUILDERS: dict[str, Builder] = {"messenger": messenger, "telegram": telegram}
# Voice notes: Messenger's adapter fetches the URL in the event (the simulator serves it); Telegram's
# asks its Bot API for the file, which only the platform (or its fake) can answer.
VOICE_NOTES = frozenset({"messenger"})
