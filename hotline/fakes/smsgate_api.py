"""A local HTTP server that answers like SMS Gateway for Android's REST API (an Android phone with a
Thai SIM), in local mode (`http://<phone>:8080/messages`) and cloud mode (`/3rdparty/v1/messages`).

Point the hotline at it with SMSGATE_URL (`fake.url` for local mode, `fake.cloud_url` for cloud
mode). It checks Basic auth like the app, records every message, and models what a phone does:
- a send is only accepted (202, state Pending): whether it went out comes minutes later as a signed
  `sms:sent` / `sms:delivered` / `sms:failed` webhook (`status()`), like Twilio's late failures;
- a number that is not E.164 is refused (400), a message id already used is refused (409);
- `fail_next()` answers the next sends with 5xx (the phone's server is down) or 503 (the cloud
  server's queue limit for the device);
- `delay` beyond the client's timeout is a phone that stopped answering (lost Wi-Fi, asleep).

It builds the webhook requests the app posts (`received()`, `status()`, `ping()`), signed as the
app signs them: `X-Signature` = hex HMAC-SHA256(signing key, raw body + `X-Timestamp`), the
timestamp in Unix seconds. Run alone: `python -m hotline.fakes.smsgate_api --port 8096`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server

DEVICE_TZ = timezone(timedelta(hours=7))  # the phone's own clock: the app sends local timestamps
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")


@dataclass
class Failure:
    status: int
    error: str
    message: str


@dataclass
class FakeSmsGate:
    username: str = "sms"
    password: str = "fake-smsgate-password"  # noqa: S105 - a fake server's own credentials
    signing_key: str = "fake-smsgate-signing-key"
    device_id: str = "ffffffffceb0b1db0000018e937c815b"
    webhook_id: str = "LreFUt-Z3sSq0JufY9uWB"
    device_number: str = "+66812345678"  # the Thai SIM in the phone
    messages: list[dict[str, Any]] = field(default_factory=list)  # what the API accepted
    requests: list[tuple[str, str]] = field(default_factory=list)
    webhooks: dict[str, dict[str, str]] = field(default_factory=dict)  # id -> {"id", "url", "event"}
    delay: float = 0.0
    _failures: list[Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: Any = None
    url: str = ""
    cloud_url: str = ""

    # -- scripting ----------------------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = 500, error: str = "InternalServerError",
                  message: str = "internal server error") -> None:
        with self._lock:
            self._failures.extend(Failure(status, error, message) for _ in range(n))

    def sent_to(self, number: str) -> list[dict[str, Any]]:
        with self._lock:
            return [m for m in self.messages if number in m["phoneNumbers"]]

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.requests.clear()
            self._failures.clear()
            self.webhooks.clear()
            self.delay = 0.0

    # -- webhooks the phone would post --------------------------------------------------------
    def sign(self, body: bytes, timestamp: int | None = None) -> dict[str, str]:
        ts = str(int(time.time()) if timestamp is None else timestamp)
        sig = hmac.new(self.signing_key.encode(), body + ts.encode(), hashlib.sha256).hexdigest()
        return {"X-Signature": sig, "X-Timestamp": ts, "Content-Type": "application/json"}

    def webhook(self, event: str, payload: dict[str, Any], *, event_id: str | None = None,
                timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        """(raw body, headers) of one webhook POST. The same `event_id` again is a retry."""
        body = json.dumps({"deviceId": self.device_id, "event": event, "id": event_id or _id(),
                           "payload": payload, "webhookId": self.webhook_id},
                          ensure_ascii=False, separators=(",", ":")).encode()
        return body, self.sign(body, timestamp)

    def received(self, sender: str, text: str, *, event_id: str | None = None,
                 timestamp: int | None = None) -> tuple[bytes, dict[str, str]]:
        """An SMS the phone received. `messageId` is derived from the content, as the app does, so
        two texts "1" from one person share it: only the event id tells them apart."""
        message_id = hashlib.sha256(f"{sender}|{text}".encode()).hexdigest()[:12]
        return self.webhook("sms:received", {
            "messageId": message_id, "message": text, "sender": sender, "phoneNumber": sender,
            "recipient": self.device_number, "simNumber": 1,
            "receivedAt": datetime.now(DEVICE_TZ).isoformat(timespec="milliseconds")},
            event_id=event_id, timestamp=timestamp)

    def status(self, message_id: str, event: str, *, reason: str = "RESULT_ERROR_GENERIC_FAILURE",
               event_id: str | None = None) -> tuple[bytes, dict[str, str]]:
        """What the phone posts later about a message it was given: `sms:sent`, `sms:delivered`
        or `sms:failed` (with a reason, e.g. RESULT_ERROR_NO_SERVICE)."""
        with self._lock:
            msg = next(m for m in self.messages if m["id"] == message_id)
        now = datetime.now(DEVICE_TZ).isoformat(timespec="milliseconds")
        payload: dict[str, Any] = {"messageId": message_id, "sender": self.device_number,
                                   "recipient": msg["phoneNumbers"][0], "phoneNumber": msg["phoneNumbers"][0],
                                   "simNumber": 1}
        if event == "sms:sent":
            payload.update(partsCount=1, sentAt=now)
        elif event == "sms:delivered":
            payload.update(deliveredAt=now)
        elif event == "sms:failed":
            payload.update(reason=reason, failedAt=now)
        state = {"sms:sent": "Sent", "sms:delivered": "Delivered", "sms:failed": "Failed"}.get(event)
        if state:
            with self._lock:
                msg["state"] = state
        return self.webhook(event, payload, event_id=event_id)

    def ping(self) -> tuple[bytes, dict[str, str]]:
        return self.webhook("system:ping", {"health": {"status": "pass", "version": "1.40.0", "checks": {}}})

    # -- server -------------------------------------------------------------------------------
    def app(self) -> Flask:
        app = Flask("fake_smsgate")

        @app.before_request
        def _auth() -> Response | None:
            with self._lock:
                self.requests.append((request.method, request.path))
            if self.delay:
                time.sleep(self.delay)
            expected = "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            if request.headers.get("Authorization") != expected:
                return _error(401, "Unauthorized", "invalid credentials")
            return None

        for prefix in ("", "/3rdparty/v1"):
            app.add_url_rule(f"{prefix}/webhooks", f"webhooks{prefix}", self._register, methods=["POST"])
            app.add_url_rule(f"{prefix}/messages", f"send{prefix}", self._send, methods=["POST"])
            app.add_url_rule(f"{prefix}/messages/<mid>", f"state{prefix}", self._state, methods=["GET"])
        return app

    def _register(self) -> tuple[Response, int]:
        """A webhook registration; the same id again replaces it, as in the app."""
        body = request.get_json(silent=True) or {}
        if not str(body.get("url") or "").startswith(("https://", "http://127.0.0.1")) or not body.get("event"):
            return _error(400, "BadRequest", "url (https) and event are required"), 400
        hook = {"id": str(body.get("id") or _id()), "url": body["url"], "event": body["event"]}
        with self._lock:
            self.webhooks[hook["id"]] = hook
        return jsonify(hook), 201

    def _send(self) -> tuple[Response, int]:
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
        if failure:
            return _error(failure.status, failure.error, failure.message), failure.status
        body = request.get_json(silent=True) or {}
        numbers = body.get("phoneNumbers")
        text = (body.get("textMessage") or {}).get("text") or body.get("message")
        if not isinstance(numbers, list) or not numbers or not isinstance(text, str) or not text:
            return _error(400, "BadRequest", "phoneNumbers and textMessage.text are required"), 400
        skip = request.args.get("skipPhoneValidation") == "true"
        if not skip and not all(isinstance(n, str) and _E164.match(n) for n in numbers):
            return _error(400, "BadRequest", "invalid phone number"), 400
        mid = str(body.get("id") or _id())
        with self._lock:
            if any(m["id"] == mid for m in self.messages):
                return _error(409, "Conflict", f"message with id {mid} already exists"), 409
            record = {"id": mid, "phoneNumbers": numbers, "text": text, "state": "Pending",
                      "ttl": body.get("ttl"), "withDeliveryReport": body.get("withDeliveryReport", True),
                      "at": datetime.now(UTC).isoformat()}
            self.messages.append(record)
        return jsonify(_state_json(record)), 202

    def _state(self, mid: str) -> tuple[Response, int]:
        with self._lock:
            record = next((m for m in self.messages if m["id"] == mid), None)
        if record is None:
            return _error(404, "NotFound", "message not found"), 404
        return jsonify(_state_json(record)), 200

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "FakeSmsGate":
        self._server = make_server(host, port, self.app(), threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self.cloud_url = self.url + "/3rdparty/v1"
        threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-smsgate").start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None


def _id() -> str:
    return secrets.token_urlsafe(15)[:21]


def _state_json(m: dict[str, Any]) -> dict[str, Any]:
    return {"id": m["id"], "state": m["state"], "isHashed": False, "isEncrypted": False,
            "recipients": [{"phoneNumber": n, "state": m["state"]} for n in m["phoneNumbers"]]}


def _error(status: int, error: str, message: str) -> Response:
    resp = jsonify(error=error, message=message)
    resp.status_code = status
    return resp


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8096)
    args = parser.parse_args()
    fake = FakeSmsGate().start(port=args.port)
    print(f"fake SMS gateway at {fake.url} (cloud mode: {fake.cloud_url})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
