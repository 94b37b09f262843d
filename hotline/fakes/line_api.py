"""A local HTTP server that answers like the LINE Messaging API: `api.line.me` (reply, push) and
`api-data.line.me` (the content of a message a user sent), on two ports as on two hosts.

Point the hotline at it with LINE_API_BASE_URL (`fake.url`) and LINE_DATA_API_BASE_URL
(`fake.data_url`). It checks the channel access token like LINE (Bearer, 401 otherwise) and models
what the platform does to a caller of the API:
- reply tokens it issued (`reply_token()`) are single-use and expire (`reply_token_ttl`): a second
  or late use is "400 Invalid reply token", so a sender must fall back to push;
- push honours `X-Line-Retry-Key`: a key already accepted answers 409 with
  `x-line-accepted-request-id` and sends nothing twice;
- a user who blocked the account (`block()`) still gets 200 on push, and nothing arrives;
- message objects are checked as LINE checks them (1-5 messages, text length, HTTPS audio URL with
  a duration, at most 13 quick-reply items with labels of at most 20 characters): 400 with details;
- `fail_next()` answers the next sends with 429 (rate or monthly limit) or 5xx;
- audio content can be "still being prepared" (`preparing`): 202 until it is ready.

It also builds the webhook requests LINE would post (`webhook()`, signed with the channel secret
exactly as LINE signs them: base64 HMAC-SHA256 of the raw body), including redeliveries.
Run alone: `python -m hotline.fakes.line_api --port 8098`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

MAX_MESSAGES = 5
MAX_TEXT = 5000
MAX_QUICK_REPLY_ITEMS = 13
MAX_LABEL = 20
INVALID_REPLY_TOKEN = "Invalid reply token"  # noqa: S105 - an error text
MONTHLY_LIMIT = "You have reached your monthly limit."
RATE_LIMIT = "The API rate limit has been exceeded. Try again later."


@dataclass
class Failure:
    status: int
    message: str


@dataclass
class Content:
    data: bytes
    mime: str
    ready_after: int = 0  # GETs answered 202 ("being prepared") before the content is served


@dataclass
class FakeLine:
    channel_secret: str = "fake-line-channel-secret"  # noqa: S105 - a fake server's own secret
    access_token: str = "fake-line-access-token"  # noqa: S105
    bot_user_id: str = "U" + "f" * 32
    reply_token_ttl: float = 60.0
    replies: list[dict[str, Any]] = field(default_factory=list)  # {"to", "replyToken", "messages"}
    pushes: list[dict[str, Any]] = field(default_factory=list)  # {"to", "messages", "retryKey"}
    requests: list[tuple[str, str]] = field(default_factory=list)
    contents: dict[str, Content] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)
    delay: float = 0.0
    webhook_endpoint: str = ""
    webhook_probe: Any = None  # endpoint -> HTTP status of LINE's test request (None: 200)
    _tokens: dict[str, tuple[str, float]] = field(default_factory=dict)  # token -> (user, expires)
    _retry_keys: dict[str, str] = field(default_factory=dict)  # key -> accepted request id
    _failures: list[Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _servers: list[Any] = field(default_factory=list)
    url: str = ""
    data_url: str = ""

    # -- scripting ----------------------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = 500, message: str = "Internal Server Error") -> None:
        """The next `n` reply or push requests fail with `status` (429: MONTHLY_LIMIT or RATE_LIMIT)."""
        with self._lock:
            self._failures.extend(Failure(status, message) for _ in range(n))

    def block(self, user_id: str) -> None:
        with self._lock:
            self.blocked.add(user_id)

    def reply_token(self, user_id: str) -> str:
        token = secrets.token_hex(16)
        with self._lock:
            self._tokens[token] = (user_id, time.monotonic() + self.reply_token_ttl)
        return token

    def expire(self, token: str) -> None:
        with self._lock:
            self._tokens.pop(token, None)

    def add_content(self, message_id: str, data: bytes, mime: str = "audio/x-m4a", preparing: int = 0) -> None:
        with self._lock:
            self.contents[message_id] = Content(data, mime, preparing)

    def delivered_to(self, user_id: str) -> list[dict[str, Any]]:
        """Every message object that reached `user_id`, by reply or push, in order."""
        with self._lock:
            sent = [r for r in self.replies if r["to"] == user_id] + [p for p in self.pushes if p["to"] == user_id]
            sent.sort(key=lambda s: s["at"])
            return [m for s in sent for m in s["messages"]]

    def reset(self) -> None:
        with self._lock:
            self.replies.clear()
            self.pushes.clear()
            self.requests.clear()
            self.contents.clear()
            self.blocked.clear()
            self._tokens.clear()
            self._retry_keys.clear()
            self._failures.clear()
            self.delay = 0.0
            self.webhook_endpoint, self.webhook_probe = "", None

    # -- webhooks LINE would post ---------------------------------------------------------------
    def sign(self, body: bytes) -> str:
        digest = hmac.new(self.channel_secret.encode(), body, hashlib.sha256).digest()
        return base64.b64encode(digest).decode()

    def event(self, user_id: str, kind: str = "message", *, message: dict[str, Any] | None = None,
              postback: str | None = None, source: str = "user", reply: bool = True,
              mode: str = "active", redelivery: bool = False) -> dict[str, Any]:
        """One webhook event from `user_id` (`source` "group"/"room" for a group chat)."""
        src: dict[str, Any] = {"type": source, "userId": user_id}
        if source == "group":
            src["groupId"] = "C" + secrets.token_hex(16)
        elif source == "room":
            src["roomId"] = "R" + secrets.token_hex(16)
        event: dict[str, Any] = {"type": kind, "mode": mode, "timestamp": int(time.time() * 1000), "source": src,
                                 "webhookEventId": "01" + secrets.token_hex(12).upper(),
                                 "deliveryContext": {"isRedelivery": redelivery}}
        if reply and kind in ("message", "postback", "follow", "join", "memberJoined", "beacon"):
            event["replyToken"] = self.reply_token(user_id)
        if message is not None:
            event["message"] = message
        if postback is not None:
            event["postback"] = {"data": postback}
        return event

    def text(self, user_id: str, text: str, **kw: Any) -> dict[str, Any]:
        return self.event(user_id, message={"id": _message_id(), "type": "text", "text": text,
                                            "quoteToken": secrets.token_urlsafe(16)}, **kw)

    def audio(self, user_id: str, data: bytes, duration_ms: int, *, preparing: int = 0, **kw: Any) -> dict[str, Any]:
        """A voice message: its content is downloadable from the data host under its id."""
        mid = _message_id()
        self.add_content(mid, data, "audio/x-m4a", preparing)
        return self.event(user_id, message={"id": mid, "type": "audio", "duration": duration_ms,
                                            "contentProvider": {"type": "line"}}, **kw)

    def message(self, user_id: str, kind: str, **fields: Any) -> dict[str, Any]:
        """Any other message type: sticker, image, video, file, location, or one LINE adds later."""
        return self.event(user_id, message={"id": _message_id(), "type": kind, **fields})

    @staticmethod
    def redelivered(event: dict[str, Any]) -> dict[str, Any]:
        """The same event as LINE redelivers it: same webhookEventId, isRedelivery true."""
        return {**event, "deliveryContext": {"isRedelivery": True}}

    def webhook(self, *events: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        """(raw body, headers) of the POST LINE makes to the webhook URL."""
        body = json.dumps({"destination": self.bot_user_id, "events": list(events)},
                          ensure_ascii=False, separators=(",", ":")).encode()
        return body, {"X-Line-Signature": self.sign(body), "Content-Type": "application/json; charset=utf-8"}

    # -- server -------------------------------------------------------------------------------
    def app(self) -> Flask:
        app = Flask("fake_line")

        @app.before_request
        def _auth() -> Response | None:
            with self._lock:
                self.requests.append((request.method, request.path))
            if self.delay:
                time.sleep(self.delay)
            if request.headers.get("Authorization") != f"Bearer {self.access_token}":
                return _error(401, "Authentication failed. Confirm that the access token in the "
                                   "authorization header is valid.")
            return None

        @app.post("/v2/bot/message/reply")
        def reply() -> Response:
            if request.headers.get("X-Line-Retry-Key"):
                return _error(400, "The retry key is not supported by this endpoint")
            failure = self._next_failure()
            if failure:
                return _error(failure.status, failure.message)
            body = request.get_json(silent=True) or {}
            problem = _check_messages(body.get("messages"))
            if problem:
                return problem
            with self._lock:
                user, expires = self._tokens.pop(str(body.get("replyToken")), ("", 0.0))
            if not user or expires < time.monotonic():
                return _error(400, INVALID_REPLY_TOKEN)
            return self._deliver(self.replies, {"to": user, "replyToken": body["replyToken"],
                                                "messages": body["messages"]})

        @app.post("/v2/bot/message/push")
        def push() -> Response:
            key = request.headers.get("X-Line-Retry-Key")
            if key is not None:
                try:
                    uuid.UUID(key)
                except ValueError:
                    return _error(400, "The value for the 'X-Line-Retry-Key' header is invalid")
                with self._lock:
                    accepted = self._retry_keys.get(key)
                if accepted:
                    resp = _error(409, "The retry key is already accepted")
                    resp.headers["x-line-accepted-request-id"] = accepted
                    return resp
            failure = self._next_failure()
            if failure:
                return _error(failure.status, failure.message)
            body = request.get_json(silent=True) or {}
            to = str(body.get("to") or "")
            if not (len(to) == 33 and to[0] in "UCR"):
                return _error(400, "The property, 'to', in the request body is invalid (line: -, column: -)")
            problem = _check_messages(body.get("messages"))
            if problem:
                return problem
            resp = self._deliver(self.pushes, {"to": to, "messages": body["messages"], "retryKey": key})
            if key is not None:
                with self._lock:
                    self._retry_keys[key] = resp.headers["x-line-request-id"]
            return resp

        @app.put("/v2/bot/channel/webhook/endpoint")
        def set_endpoint() -> Response:
            endpoint = str((request.get_json(silent=True) or {}).get("endpoint") or "")
            if not endpoint.startswith("https://") or len(endpoint) > 500:
                return _error(400, "Invalid webhook endpoint URL")
            self.webhook_endpoint = endpoint
            return jsonify()

        @app.post("/v2/bot/channel/webhook/test")
        def test_endpoint() -> Response:
            """LINE posts a signed request with no events to the endpoint and reports the answer;
            `webhook_probe` stands in for that request (tests make it post to their app)."""
            endpoint = str((request.get_json(silent=True) or {}).get("endpoint") or self.webhook_endpoint or "")
            status = self.webhook_probe(endpoint) if self.webhook_probe else 200
            return jsonify(success=status == 200, timestamp="2026-12-02T00:00:00Z", statusCode=status,
                           reason="OK" if status == 200 else "ERROR", detail=str(status))

        return app

    def data_app(self) -> Flask:
        app = Flask("fake_line_data")

        @app.before_request
        def _auth() -> Response | None:
            with self._lock:
                self.requests.append((request.method, "data:" + request.path))
            if request.headers.get("Authorization") != f"Bearer {self.access_token}":
                return _error(401, "Authentication failed.")
            return None

        @app.get("/v2/bot/message/<mid>/content")
        def content(mid: str) -> Response:
            with self._lock:
                item = self.contents.get(mid)
                if item is not None and item.ready_after > 0:
                    item.ready_after -= 1
                    return Response(status=202)
            if item is None:
                return _error(404, "Not found")
            return Response(item.data, mimetype=item.mime)

        @app.get("/v2/bot/message/<mid>/content/transcoding")
        def transcoding(mid: str) -> Response:
            with self._lock:
                item = self.contents.get(mid)
            if item is None:
                return _error(404, "Not found")
            return jsonify(status="processing" if item.ready_after > 0 else "succeeded")

        return app

    def _next_failure(self) -> Failure | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _deliver(self, log: list[dict[str, Any]], record: dict[str, Any]) -> Response:
        request_id = secrets.token_hex(16)
        if record["to"] not in self.blocked:  # a block is silent: 200, and nothing arrives
            with self._lock:
                log.append({**record, "at": time.monotonic()})
        resp = jsonify(sentMessages=[{"id": _message_id(), "quoteToken": secrets.token_urlsafe(16)}
                                     for _ in record["messages"]])
        resp.headers["x-line-request-id"] = request_id
        return resp

    def start(self, host: str = "127.0.0.1", port: int = 0, data_port: int = 0) -> "FakeLine":
        for app, p in ((self.app(), port), (self.data_app(), data_port)):
            server = make_server(host, p, app, threaded=True)
            self._servers.append(server)
            threading.Thread(target=server.serve_forever, daemon=True, name="fake-line").start()
        self.url = f"http://{host}:{self._servers[0].server_port}"
        self.data_url = f"http://{host}:{self._servers[1].server_port}"
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
        self._servers.clear()


def _message_id() -> str:
    return str(secrets.randbelow(10**17) + 10**17)


def _check_messages(messages: Any) -> Response | None:
    """LINE's own checks of message objects, as a 400 with `details`."""
    if not isinstance(messages, list) or not 1 <= len(messages) <= MAX_MESSAGES:
        return _error(400, "The request body has 1 error(s)",
                      [{"message": f"Size must be between 1 and {MAX_MESSAGES}", "property": "messages"}])
    details = []
    for i, m in enumerate(messages):
        kind = m.get("type") if isinstance(m, dict) else None
        if kind == "text":
            if not 1 <= len(str(m.get("text") or "")) <= MAX_TEXT:
                details.append({"message": f"Length must be between 1 and {MAX_TEXT}",
                                "property": f"messages[{i}].text"})
        elif kind == "audio":
            if not str(m.get("originalContentUrl") or "").startswith("https://"):
                details.append({"message": "must be HTTPS", "property": f"messages[{i}].originalContentUrl"})
            if not isinstance(m.get("duration"), int) or m["duration"] <= 0:
                details.append({"message": "must be a positive number", "property": f"messages[{i}].duration"})
        elif kind not in ("image", "video", "sticker", "location", "template", "flex", "imagemap"):
            details.append({"message": "invalid message type", "property": f"messages[{i}].type"})
        items = ((m.get("quickReply") or {}).get("items") or []) if isinstance(m, dict) else []
        if len(items) > MAX_QUICK_REPLY_ITEMS:
            details.append({"message": f"Size must be between 1 and {MAX_QUICK_REPLY_ITEMS}",
                            "property": f"messages[{i}].quickReply.items"})
        for j, item in enumerate(items):
            label = str((item.get("action") or {}).get("label") or "")
            if not 1 <= len(label) <= MAX_LABEL:
                details.append({"message": f"Length must be between 1 and {MAX_LABEL}",
                                "property": f"messages[{i}].quickReply.items[{j}].action.label"})
    if details:
        return _error(400, f"The request body has {len(details)} error(s)", details)
    return None


def _error(status: int, message: str, details: list[dict[str, str]] | None = None) -> Response:
    resp = jsonify(message=message, **({"details": details} if details else {}))
    resp.status_code = status
    return resp


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8098)
    parser.add_argument("--data-port", type=int, default=8097)
    args = parser.parse_args()
    fake = FakeLine().start(port=args.port, data_port=args.data_port)
    print(f"fake LINE API at {fake.url} (data: {fake.data_url}); secret {fake.channel_secret!r}, "
          f"token {fake.access_token!r}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
