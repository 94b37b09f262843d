"""A local HTTP server that answers like Meta's Graph API for Messenger (Send API, attachment CDN),
for tests and the simulator. Point MESSENGER_API_BASE_URL at `.url`.

It checks the page token (`access_token`, Graph error 190 otherwise), enforces the messaging
window as Meta does (a RESPONSE more than 24 hours after the person's last message, or a
HUMAN_AGENT tag after 7 days: error 10 / 2018278), refuses a PSID that cannot be reached (551),
validates quick replies (at most 13, titles of 20 characters), records what was sent, serves the
audio a person "sent" (`add_attachment`) and answers scripted failures in Graph's error shape
(`fail_graph(1, 400, 613, "Calls to this api have exceeded the rate limit.")`, `fail_next(1, 503)`).
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request

from hotline.fakes.base import Failure, FakeServer


@dataclass
class GraphFailure(Failure):
    code: int = 1
    subcode: int | None = None


@dataclass
class FakeMessenger(FakeServer):
    name: str = "fake-messenger"
    page_token: str = "EAAB-fake-page-token"  # noqa: S105 - a fake server's own token
    sent: list[dict[str, Any]] = field(default_factory=list)
    attachments: dict[str, bytes] = field(default_factory=dict)  # path -> bytes
    last_inbound: dict[str, float] = field(default_factory=dict)  # PSID -> when they last wrote (epoch s)
    unreachable: set[str] = field(default_factory=set)
    always_open: bool = False  # every PSID counts as having just written (run alone beside the simulator)

    def user_wrote(self, psid: str, at: float | None = None) -> None:
        """What Meta knows when a person messages the page: the window opens."""
        self.last_inbound[psid] = time.time() if at is None else at

    def add_attachment(self, data: bytes, name: str = "audioclip.mp4") -> str:
        """Audio a person sent: returns the CDN URL that goes in the webhook's attachment payload."""
        path = f"/cdn/{secrets.token_hex(8)}/{name}"
        self.attachments[path] = data
        return self.url + path

    def fail_graph(self, n: int = 1, status: int = 400, code: int = 613, message: str = "rate limited",
                   subcode: int | None = None) -> None:
        with self._lock:
            self._failures.extend(GraphFailure(status, message, None, code, subcode) for _ in range(n))

    def texts_to(self, psid: str) -> list[str]:
        return [m["message"]["text"] for m in self.sent if m["recipient"]["id"] == psid and "text" in m["message"]]

    def error(self, failure: Failure) -> Response:
        code = failure.code if isinstance(failure, GraphFailure) else (2 if failure.status >= 500 else 1)
        err: dict[str, Any] = {"message": failure.description, "type": "OAuthException", "code": code,
                               "fbtrace_id": secrets.token_urlsafe(8)}
        if isinstance(failure, GraphFailure) and failure.subcode:
            err["error_subcode"] = failure.subcode
        resp = jsonify(error=err)
        resp.status_code = failure.status
        return resp

    def _refuse(self, code: int, message: str, subcode: int | None = None, status: int = 400) -> Response:
        return self.error(GraphFailure(status, message, None, code, subcode))

    def routes(self, app: Flask) -> None:
        @app.post("/<version>/me/messages")
        def send(version: str) -> Any:
            if request.args.get("access_token") != self.page_token:
                return self._refuse(190, "Invalid OAuth access token.")
            if (failure := self.failure()) is not None:
                return self.error(failure)
            p = request.get_json(silent=True) or {}
            psid = str((p.get("recipient") or {}).get("id") or "")
            message = p.get("message") or {}
            kind = p.get("messaging_type")
            if not psid or kind not in ("RESPONSE", "UPDATE", "MESSAGE_TAG"):
                return self._refuse(100, "(#100) Param recipient or messaging_type is missing or invalid")
            if psid in self.unreachable:
                return self._refuse(551, "This person isn't available right now.", 1545041)
            since = 0.0 if self.always_open else time.time() - self.last_inbound.get(psid, 0)
            if (kind == "RESPONSE" and since > 86400) or (kind == "MESSAGE_TAG" and (
                    p.get("tag") != "HUMAN_AGENT" or since > 7 * 86400)):
                return self._refuse(10, "(#10) This message is sent outside of allowed window.", 2018278)
            quick = message.get("quick_replies") or []
            if len(quick) > 13 or any(not _quick_reply_ok(q) for q in quick):
                return self._refuse(100, "(#100) Invalid quick replies")
            if not message.get("text") and not message.get("attachment"):
                return self._refuse(100, "(#100) Message cannot be empty")
            mid = "m_" + secrets.token_urlsafe(24)
            with self._lock:
                self.sent.append({**p, "message_id": mid})
            return jsonify(recipient_id=psid, message_id=mid)

        @app.get("/cdn/<token>/<name>")
        def cdn(token: str, name: str) -> Any:
            data = self.attachments.get(f"/cdn/{token}/{name}")
            if data is None:
                return Response("Not Found", status=404)
            return Response(data, mimetype="audio/mp4")


def _quick_reply_ok(q: Any) -> bool:
    kind = q.get("content_type") if isinstance(q, dict) else None
    if kind == "text":
        return bool(q.get("title")) and len(q["title"]) <= 20 and len(str(q.get("payload", ""))) <= 1000
    return kind in ("user_phone_number", "user_email")


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8097)
    parser.add_argument("--page-token", default="EAAB-fake-page-token")
    parser.add_argument("--open-window", action="store_true",
                        help="treat every PSID as having just written (the simulator posts to us, not to Meta)")
    args = parser.parse_args()
    fake = FakeMessenger(page_token=args.page_token, always_open=args.open_window).start(port=args.port)
    print(f"fake Messenger Send API at {fake.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
