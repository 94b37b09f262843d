"""A local HTTP server that answers like Twilio's REST API (2010-04-01 Messages, Calls, Recordings).

Point the hotline at it with TWILIO_API_BASE_URL. It checks HTTP basic auth like Twilio, records
every request, and can be told to fail the next requests (500, 429, a permanent error code) or to
answer slowly. Calls model what the field does to a caller of the API: a call Twilio accepted whose
answer never reached us (`accept_then_timeout`), the Calls list filtered by To/From/StartTime (a
queued call has no StartTime yet, as on Twilio), hanging a call up, and the requests Twilio itself
would post later (`status_callback`, `amd_callback` for asynchronous AMD, `gather_timeout` for a
person who never presses a key). Run alone: `python -m hotline.fakes.twilio_rest --port 8099`.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import make_server


@dataclass
class Failure:
    status: int
    code: int
    message: str


@dataclass
class FakeTwilio:
    account_sid: str = "AC" + "0" * 32
    auth_token: str = "fake-auth-token"  # noqa: S105 - a fake server's own token
    messages: list[dict[str, str]] = field(default_factory=list)
    calls: list[dict[str, str]] = field(default_factory=list)
    recordings: dict[str, bytes] = field(default_factory=dict)
    deleted_recordings: list[str] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    hung_up: list[str] = field(default_factory=list)
    delay: float = 0.0
    _accept_then_hang: list[float] = field(default_factory=list)
    _failures: list[Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: Any = None
    _thread: threading.Thread | None = None
    url: str = ""

    # -- scripting ----------------------------------------------------------------------------
    def fail_next(self, n: int = 1, status: int = 500, code: int | None = None,
                  message: str = "Internal Server Error") -> None:
        with self._lock:
            self._failures.extend(Failure(status, code or status, message) for _ in range(n))

    def accept_then_timeout(self, n: int = 1, hang: float = 2.0) -> None:
        """The next `n` calls are created (Twilio places them) but the answer comes `hang` s late:
        a client with a shorter timeout gives up and cannot know the call exists."""
        with self._lock:
            self._accept_then_hang.extend(hang for _ in range(n))

    def call(self, sid: str) -> dict[str, str]:
        with self._lock:
            return next(c for c in self.calls if c["sid"] == sid)

    def dial_child(self, parent_sid: str, to: str) -> str:
        """The call Twilio creates itself for a <Dial><Number> of `parent_sid` (it has a sid of its
        own and can be updated like any call). Returns its sid."""
        sid = "CA" + secrets.token_hex(16)
        with self._lock:
            self.calls.append({"sid": sid, "To": to, "ParentCallSid": parent_sid, "status": "in-progress",
                               "start_time": format_datetime(datetime.now(UTC), usegmt=True),
                               "date_created": format_datetime(datetime.now(UTC), usegmt=True)})
        return sid

    def status_callback(self, sid: str, status: str, duration: int = 0) -> tuple[str, dict[str, str]]:
        """What Twilio posts to the call's StatusCallback when it moves to `status` (and the call
        takes that status in the Calls list: a call that rang has a StartTime)."""
        call = self.call(sid)
        with self._lock:
            call["status"] = status
            if status != "queued" and not call.get("start_time"):
                call["start_time"] = format_datetime(datetime.now(UTC), usegmt=True)
        form = {"CallSid": sid, "AccountSid": self.account_sid, "From": call.get("From", ""),
                "To": call.get("To", ""), "CallStatus": status, "Direction": "outbound-api",
                "ApiVersion": "2010-04-01"}
        if status in ("completed", "busy", "no-answer", "failed", "canceled"):
            form["CallDuration"] = str(duration)
        return call.get("StatusCallback", ""), form

    def amd_callback(self, sid: str, answered_by: str) -> tuple[str, dict[str, str]]:
        """Asynchronous AMD: the verdict Twilio posts to AsyncAmdStatusCallback while the call's
        TwiML is already running."""
        call = self.call(sid)
        if call.get("AsyncAmd") != "true":
            raise AssertionError("this call was placed without asynchronous AMD")
        return call.get("AsyncAmdStatusCallback", ""), {
            "CallSid": sid, "AccountSid": self.account_sid, "AnsweredBy": answered_by,
            "MachineDetectionDuration": "2400"}

    @staticmethod
    def gather_timeout(form: dict[str, str]) -> dict[str, str]:
        """A <Gather actionOnEmptyResult> that timed out: Twilio posts its action without Digits."""
        return {k: v for k, v in form.items() if k != "Digits"}

    def sms_to(self, number: str) -> list[dict[str, str]]:
        with self._lock:
            return [m for m in self.messages if m.get("To") == number]

    def reset(self) -> None:
        with self._lock:
            self.messages.clear()
            self.calls.clear()
            self.hung_up.clear()
            self._accept_then_hang.clear()
            self.requests.clear()
            self._failures.clear()
            self.delay = 0.0

    # -- server -------------------------------------------------------------------------------
    def app(self) -> Flask:
        app = Flask("fake_twilio")
        base = "/2010-04-01/Accounts/<account>"

        @app.before_request
        def _auth() -> Response | None:
            with self._lock:
                self.requests.append((request.method, request.path))
            if self.delay:
                time.sleep(self.delay)
            expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
            if request.headers.get("Authorization") != expected:
                return _error(401, 20003, "Authenticate")
            with self._lock:
                failure = self._failures.pop(0) if self._failures and request.method == "POST" else None
            if failure:
                return _error(failure.status, failure.code, failure.message)
            return None

        @app.post(f"{base}/Messages.json")
        def create_message(account: str) -> tuple[Response, int]:
            sid = "SM" + secrets.token_hex(16)
            record = {**request.form.to_dict(), "sid": sid,
                      "date_created": format_datetime(datetime.now(UTC), usegmt=True)}
            with self._lock:
                self.messages.append(record)
            body = request.form.get("Body", "")
            return jsonify(sid=sid, account_sid=account, to=request.form.get("To"), from_=request.form.get("From"),
                           body=body, status="queued", num_segments="1", direction="outbound-api",
                           api_version="2010-04-01", error_code=None, error_message=None,
                           uri=f"/2010-04-01/Accounts/{account}/Messages/{sid}.json"), 201

        @app.get(f"{base}/Messages.json")
        def list_messages(account: str) -> Response:
            """Newest first, filtered by To, From and DateSent (DateSent>=/<= by day), like Twilio."""
            with self._lock:
                found = [m for m in reversed(self.messages) if _matches(m, request.args)]
            size = int(request.args.get("PageSize", "50"))
            page = [{"sid": m["sid"], "account_sid": account, "to": m.get("To"), "from": m.get("From"),
                     "body": m.get("Body", ""), "status": "sent", "num_segments": "1", "direction": "outbound-api",
                     "date_created": m["date_created"], "date_sent": m["date_created"], "api_version": "2010-04-01",
                     "uri": f"/2010-04-01/Accounts/{account}/Messages/{m['sid']}.json"} for m in found[:size]]
            return jsonify(messages=page, page=0, page_size=size, start=0, end=max(len(page) - 1, 0),
                           first_page_uri=request.full_path, next_page_uri=None, previous_page_uri=None,
                           uri=request.full_path)

        @app.post(f"{base}/Calls.json")
        def create_call(account: str) -> tuple[Response, int]:
            sid = "CA" + secrets.token_hex(16)
            record = {**request.form.to_dict(), "sid": sid, "status": "queued", "start_time": "",
                      "date_created": format_datetime(datetime.now(UTC), usegmt=True)}
            record["StatusCallbackEvent"] = ",".join(request.form.getlist("StatusCallbackEvent"))
            with self._lock:
                self.calls.append(record)
                hang = self._accept_then_hang.pop(0) if self._accept_then_hang else 0.0
            if hang:
                time.sleep(hang)  # the call exists at Twilio; our client has given up waiting
            return jsonify(_call_json(account, record)), 201

        @app.get(f"{base}/Calls.json")
        def list_calls(account: str) -> Response:
            """Newest first, filtered by To, From and StartTime (>=, <=, by day) like Twilio: a call
            still queued has no StartTime, so a StartTime filter never finds it."""
            with self._lock:
                found = [c for c in reversed(self.calls) if _call_matches(c, request.args)]
            size = int(request.args.get("PageSize", "50"))
            page = [_call_json(account, c) for c in found[:size]]
            return jsonify(calls=page, page=0, page_size=size, start=0, end=max(len(page) - 1, 0),
                           first_page_uri=request.full_path, next_page_uri=None, previous_page_uri=None,
                           uri=request.full_path)

        @app.post(f"{base}/Calls/<csid>.json")
        def update_call(account: str, csid: str) -> tuple[Response, int]:
            with self._lock:
                call = next((c for c in self.calls if c["sid"] == csid), None)
                if call is not None and request.form.get("Status") == "completed":
                    self.hung_up.append(csid)
                    call["status"] = "completed"
            if call is None:
                return _error(404, 20404, "The requested resource was not found"), 404
            return jsonify(_call_json(account, call)), 200

        @app.get(f"{base}/Recordings/<rsid>.<ext>")
        def get_recording(account: str, rsid: str, ext: str) -> Response:
            data = self.recordings.get(rsid)
            if data is None:
                return _error(404, 20404, "The requested resource was not found")
            mime = {"mp3": "audio/mpeg", "wav": "audio/x-wav"}.get(ext, "application/octet-stream")
            return Response(data, mimetype=mime)

        @app.delete(f"{base}/Recordings/<rsid>.json")
        def delete_recording(account: str, rsid: str) -> tuple[str, int]:
            with self._lock:
                self.deleted_recordings.append(rsid)
                self.recordings.pop(rsid, None)
            return "", 204

        return app

    def start(self, host: str = "127.0.0.1", port: int = 0) -> "FakeTwilio":
        self._server = make_server(host, port, self.app(), threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="fake-twilio")
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None


def _matches(message: dict[str, str], args: Any) -> bool:
    if "To" in args and message.get("To") != args["To"]:
        return False
    if "From" in args and message.get("From") != args["From"]:
        return False
    day = parsedate_to_datetime(message["date_created"]).date().isoformat()
    after, before, exact = args.get("DateSent>"), args.get("DateSent<"), args.get("DateSent")
    return not ((after and day < after[:10]) or (before and day > before[:10]) or (exact and day != exact[:10]))


def _call_json(account: str, c: dict[str, str]) -> dict[str, Any]:
    return {"sid": c["sid"], "account_sid": account, "to": c.get("To"), "from": c.get("From"),
            "status": c.get("status", "queued"), "direction": "outbound-api", "api_version": "2010-04-01",
            "date_created": c["date_created"], "start_time": c.get("start_time") or None,
            "uri": f"/2010-04-01/Accounts/{account}/Calls/{c['sid']}.json"}


def _call_matches(call: dict[str, str], args: Any) -> bool:
    if "To" in args and call.get("To") != args["To"]:
        return False
    if "From" in args and call.get("From") != args["From"]:
        return False
    after, before, exact = args.get("StartTime>"), args.get("StartTime<"), args.get("StartTime")
    if not (after or before or exact):
        return True
    if not call.get("start_time"):
        return False
    day = parsedate_to_datetime(call["start_time"]).date().isoformat()
    return not ((after and day < after[:10]) or (before and day > before[:10]) or (exact and day != exact[:10]))


def _error(status: int, code: int, message: str) -> Response:
    resp = jsonify(code=code, message=message, more_info=f"https://www.twilio.com/docs/errors/{code}", status=status)
    resp.status_code = status
    return resp


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--account-sid", default="AC" + "0" * 32)
    parser.add_argument("--auth-token", default="fake-auth-token")
    args = parser.parse_args()
    fake = FakeTwilio(account_sid=args.account_sid, auth_token=args.auth_token).start(port=args.port)
    print(f"fake Twilio REST API at {fake.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        fake.stop()
