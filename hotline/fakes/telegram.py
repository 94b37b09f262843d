"""A local HTTP server that answers like the Telegram Bot API (sendMessage, sendVoice, getFile, file
downloads, setWebhook), for tests and the simulator. Point TELEGRAM_API_BASE_URL at `.url`.

It checks the bot token in the path like Telegram (401 otherwise), records what was sent, keeps
uploaded voice files, serves files added with `add_file` for `getFile` + `/file/bot<token>/...`,
models a user who blocked the bot (403 "Forbidden: bot was blocked by the user") and scripted
failures (`fail_next(1, 429, retry_after=3)`, `fail_next(1, 502)`), in Telegram's error shape.
Run alone: `python -m hotline.fakes.telegram --port 8098 --token 123:abc`.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request

from hotline.fakes.base import Failure, FakeServer


@dataclass
class FakeTelegram(FakeServer):
    name: str = "fake-telegram"
    token: str = "123456:fake-telegram-token"  # noqa: S105 - a fake server's own token
    sent: list[dict[str, Any]] = field(default_factory=list)  # every sendMessage / sendVoice, in order
    voices: dict[str, bytes] = field(default_factory=dict)  # file_id -> the OGG we were sent
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)  # file_id -> (file_path, bytes)
    blocked: set[str] = field(default_factory=set)  # chat ids that blocked the bot
    webhook: dict[str, Any] = field(default_factory=dict)
    _next_id: int = 100

    def add_file(self, data: bytes, *, file_path: str = "voice/file_1.oga") -> str:
        """A file a user sent (a voice note): returns its file_id, for an update's `voice.file_id`."""
        file_id = "AwACAgUAAx" + secrets.token_urlsafe(12)
        self.files[file_id] = (file_path, data)
        return file_id

    def texts_to(self, chat_id: str | int) -> list[str]:
        return [m["text"] for m in self.sent if m["method"] == "sendMessage" and str(m["chat_id"]) == str(chat_id)]

    def error(self, failure: Failure) -> Response:
        body: dict[str, Any] = {"ok": False, "error_code": failure.status, "description": failure.description}
        if failure.retry_after is not None:
            body["parameters"] = {"retry_after": failure.retry_after}
        resp = jsonify(body)
        resp.status_code = failure.status
        return resp

    def _message(self, chat_id: str, **extra: Any) -> dict[str, Any]:
        with self._lock:
            self._next_id += 1
            mid = self._next_id
        return {"message_id": mid, "date": int(time.time()), "chat": {"id": int(chat_id), "type": "private"}, **extra}

    def routes(self, app: Flask) -> None:
        def check(token: str) -> Response | None:
            if token != self.token:
                return self.error(Failure(401, "Unauthorized"))
            failure = self.failure()
            return self.error(failure) if failure else None

        def params() -> dict[str, Any]:
            if request.is_json:
                return dict(request.get_json(silent=True) or {})
            return {k: v for k, v in request.form.items()}

        def to_chat(p: dict[str, Any]) -> Response | str:
            chat_id = str(p.get("chat_id") or "")
            if not chat_id.lstrip("-").isdigit():
                return self.error(Failure(400, "Bad Request: chat not found"))
            if chat_id in self.blocked:
                return self.error(Failure(403, "Forbidden: bot was blocked by the user"))
            return chat_id

        @app.post("/bot<token>/sendMessage")
        def send_message(token: str) -> Any:
            if (refused := check(token)) is not None:
                return refused
            p = params()
            chat = to_chat(p)
            if isinstance(chat, Response):
                return chat
            text = str(p.get("text") or "")
            if not text.strip() or len(text) > 4096:
                return self.error(Failure(400, "Bad Request: message text is empty" if not text.strip()
                                          else "Bad Request: message is too long"))
            markup = p.get("reply_markup")
            if isinstance(markup, str):
                markup = json.loads(markup)
            msg = self._message(chat, text=text)
            with self._lock:
                self.sent.append({"method": "sendMessage", "chat_id": chat, "text": text, "reply_markup": markup,
                                  "message_id": msg["message_id"]})
            return jsonify(ok=True, result=msg)

        @app.post("/bot<token>/sendVoice")
        def send_voice(token: str) -> Any:
            if (refused := check(token)) is not None:
                return refused
            p = params()
            chat = to_chat(p)
            if isinstance(chat, Response):
                return chat
            upload = request.files.get("voice")
            data = upload.read() if upload is not None else b""
            if not data:
                return self.error(Failure(400, "Bad Request: there is no voice in the request"))
            file_id = "AwACAgUAAxkDAA" + secrets.token_urlsafe(10)
            msg = self._message(chat, voice={"file_id": file_id, "duration": int(p.get("duration") or 0),
                                             "mime_type": "audio/ogg"})
            with self._lock:
                self.voices[file_id] = data
                self.sent.append({"method": "sendVoice", "chat_id": chat, "file_id": file_id,
                                  "duration": p.get("duration"), "caption": p.get("caption"),
                                  "content_type": upload.mimetype if upload else None,
                                  "message_id": msg["message_id"]})
            return jsonify(ok=True, result=msg)

        @app.post("/bot<token>/getFile")
        @app.get("/bot<token>/getFile")
        def get_file(token: str) -> Any:
            if (refused := check(token)) is not None:
                return refused
            file_id = str(params().get("file_id") or request.args.get("file_id") or "")
            if file_id not in self.files:
                return self.error(Failure(400, "Bad Request: invalid file_id"))
            path, data = self.files[file_id]
            return jsonify(ok=True, result={"file_id": file_id, "file_unique_id": file_id[-8:],
                                            "file_size": len(data), "file_path": path})

        @app.get("/file/bot<token>/<path:file_path>")
        def download(token: str, file_path: str) -> Any:
            if token != self.token:
                return Response("Unauthorized", status=401)
            for path, data in self.files.values():
                if path == file_path:
                    return Response(data, mimetype="audio/ogg")
            return Response("Not Found", status=404)

        @app.post("/bot<token>/setWebhook")
        def set_webhook(token: str) -> Any:
            if (refused := check(token)) is not None:
                return refused
            self.webhook = params()
            return jsonify(ok=True, result=True, description="Webhook was set")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8098)
    parser.add_argument("--token", default="123456:fake-telegram-token")
    args = parser.parse_args()
    fake = FakeTelegram(token=args.token).start(port=args.port)
    print(f"fake Telegram Bot API at {fake.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
