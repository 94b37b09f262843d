"""One way out for SMS and calls: Twilio's REST API, or a local transport when no credentials are set.

Errors are sorted the way a worker needs them: transient ones (timeouts, 429, 5xx) are retried with
backoff, permanent ones (invalid or opted-out number) fail at once with the reason shown.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from hotline.phones import mask
from hotline.settings import Settings

log = logging.getLogger(__name__)

# Twilio error codes that will never succeed on retry (see twilio.com/docs/api/errors).
PERMANENT_CODES = {
    21211: "invalid 'To' number",
    21214: "'To' number cannot be reached",
    21408: "permission to send to this region not enabled",
    21610: "recipient has opted out (STOP)",
    21612: "cannot route to this number",
    21614: "'To' number is not a mobile number",
    21217: "phone number is not valid",
    13224: "invalid phone number for calls",
}


class SendError(Exception):
    def __init__(self, message: str, *, transient: bool, code: str | None = None):
        super().__init__(message)
        self.transient = transient
        self.code = code


@dataclass(frozen=True)
class Sent:
    sid: str
    status: str
    provider: str


class Transport(Protocol):
    name: str

    def send_sms(self, to: str, body: str, *, status_callback: str | None = None) -> Sent: ...

    def place_call(self, to: str, *, url: str, status_callback: str | None = None,
                   machine_detection: bool = True, timeout: int = 30, amd_callback: str | None = None) -> Sent: ...

    def hang_up(self, call_sid: str) -> None: ...


class TwilioTransport:
    """Twilio's REST client; TWILIO_API_BASE_URL points it at a staging or test server."""

    name = "twilio"
    timeout = 10.0  # seconds for one REST request

    def __init__(self, settings: Settings, timeout: float | None = None):
        timeout = self.timeout if timeout is None else timeout
        from twilio.http.http_client import TwilioHttpClient
        from twilio.rest import Client

        self.settings = settings
        self.client = Client(settings.twilio_account_sid, settings.twilio_auth_token,
                             http_client=TwilioHttpClient(timeout=timeout))
        if settings.twilio_api_base_url:
            # Domain.base_url is read on each request; the paths (/2010-04-01/Accounts/...) stay Twilio's.
            self.client.api.base_url = settings.twilio_api_base_url

    def send_sms(self, to: str, body: str, *, status_callback: str | None = None) -> Sent:
        def create() -> Sent:
            msg = self.client.messages.create(to=to, from_=self.settings.hotline_number, body=body,
                                              status_callback=status_callback)
            return Sent(str(msg.sid), str(msg.status), self.name)

        return self._call(create, to)

    def place_call(self, to: str, *, url: str, status_callback: str | None = None,
                   machine_detection: bool = True, timeout: int = 30, amd_callback: str | None = None) -> Sent:
        """With `amd_callback`, answering-machine detection is asynchronous: the TwiML at `url` runs at
        once (nobody waits in silence) and the verdict is POSTed to `amd_callback` later."""
        def create() -> Sent:
            amd = "Enable" if machine_detection else None
            call = self.client.calls.create(
                to=to, from_=self.settings.hotline_number, url=url, status_callback=status_callback,
                status_callback_event=["initiated", "answered", "completed"] if status_callback else None,
                machine_detection=amd, timeout=timeout,
                async_amd="true" if amd and amd_callback else None,
                async_amd_status_callback=amd_callback if amd else None)
            return Sent(str(call.sid), str(call.status), self.name)

        return self._call(create, to)

    def hang_up(self, call_sid: str) -> None:
        """End a call in progress (REST update Status=completed); a call already over is left alone."""
        def update() -> Sent:
            self.client.calls(call_sid).update(status="completed")
            return Sent(call_sid, "completed", self.name)

        try:
            self._call(update, "")
        except SendError as exc:
            if exc.transient:
                raise
            log.info("hang up %s: %s", call_sid, exc)

    @staticmethod
    def _call(fn, to: str) -> Sent:  # type: ignore[no-untyped-def]
        import requests
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            return fn()  # type: ignore[no-any-return]
        except TwilioRestException as exc:
            code = int(exc.code) if exc.code else exc.status
            transient = exc.status == 429 or exc.status >= 500 or code == 20429
            reason = PERMANENT_CODES.get(code, exc.msg if isinstance(exc.msg, str) else str(exc.msg))
            log.warning("twilio refused send to %s: status=%s code=%s", mask(to), exc.status, code)
            raise SendError(f"Twilio {exc.status}/{code}: {reason}"[:250], transient=transient,
                            code=str(code)) from None
        except (requests.Timeout, requests.ConnectionError) as exc:
            raise SendError(f"Twilio unreachable: {type(exc).__name__}", transient=True) from None
        except TwilioException as exc:
            raise SendError(f"Twilio error: {exc}"[:250], transient=True) from None


class LocalTransport:
    """No credentials: nothing leaves the machine. The caller already stored the message or call
    row, so the simulator and console show it; this only hands back a sid like Twilio's."""

    name = "local"

    def send_sms(self, to: str, body: str, *, status_callback: str | None = None) -> Sent:
        log.info("local transport: SMS to %s (%d chars)", mask(to), len(body))
        return Sent("SM" + secrets.token_hex(16), "delivered", self.name)

    def place_call(self, to: str, *, url: str, status_callback: str | None = None,
                   machine_detection: bool = True, timeout: int = 30, amd_callback: str | None = None) -> Sent:
        log.info("local transport: call to %s", mask(to))
        return Sent("CA" + secrets.token_hex(16), "queued", self.name)

    def hang_up(self, call_sid: str) -> None:
        log.info("local transport: hang up %s", call_sid)


def make_transport(settings: Settings) -> Transport:
    return TwilioTransport(settings) if settings.twilio_rest_enabled else LocalTransport()


def find_sms(transport: Transport, *, to: str, body: str, created_after: datetime) -> Sent | None:
    """A message Twilio already holds for `to` with this exact body, created after `created_after`.

    Used to reconcile after a crash between "Twilio accepted it" and "we stored its sid". We filter on
    To and From and match the body ourselves, and deliberately not on DateSent: Twilio leaves DateSent
    empty while a message is still queued, which is exactly the message we look for. Newest first, so
    one page of 50 reaches back far enough. LocalTransport sends nothing, so there is nothing to find.
    """
    if not isinstance(transport, TwilioTransport):
        return None

    def lookup() -> Sent | None:
        for msg in transport.client.messages.list(to=to, from_=transport.settings.hotline_number, limit=50):
            created = msg.date_created
            if msg.body == body and (created is None or created >= created_after):
                return Sent(str(msg.sid), str(msg.status), transport.name)
        return None

    return TwilioTransport._call(lookup, to)  # type: ignore[no-any-return]


def find_call(transport: Transport, *, to: str, created_after: datetime) -> Sent | None:
    """A call Twilio already holds to `to`, created at or after `created_after` (newest first).

    Used before placing a callback again when the last request to Twilio timed out: Twilio may have
    accepted it, and the person must not be rung twice. Filters on To and From and checks DateCreated
    ourselves, deliberately not StartTime>: Twilio leaves StartTime empty while a call is still
    queued, which is exactly the call we look for (as find_sms does with DateSent). Newest first.
    LocalTransport places nothing, so there is nothing to find.
    """
    if not isinstance(transport, TwilioTransport):
        return None

    def lookup() -> Sent | None:
        for call in transport.client.calls.list(to=to, from_=transport.settings.hotline_number, limit=20):
            created = call.date_created
            if created is None or created >= created_after.replace(microsecond=0):
                return Sent(str(call.sid), str(call.status), transport.name)
        return None

    return TwilioTransport._call(lookup, to)  # type: ignore[no-any-return]


def fetch_recording(settings: Settings, url: str, *, timeout: float = 30.0) -> bytes:
    """GET a recording's audio with the account's credentials (basic auth), as Twilio requires.

    404 is transient: Twilio announces a recording a moment before the file can be fetched.
    """
    import requests

    try:
        resp = requests.get(url, auth=(settings.twilio_account_sid, settings.twilio_auth_token), timeout=timeout)
    except (requests.Timeout, requests.ConnectionError) as exc:
        raise SendError(f"recording unreachable: {type(exc).__name__}", transient=True) from None
    if resp.status_code == 200 and resp.content:
        return resp.content
    transient = resp.status_code in (404, 429) or resp.status_code >= 500 or resp.status_code == 200
    raise SendError(f"recording fetch answered HTTP {resp.status_code}", transient=transient,
                    code=str(resp.status_code))


def delete_recording(settings: Settings, recording_sid: str) -> None:
    """Delete Twilio's copy of a recording (REST DELETE); a recording already gone counts as deleted."""
    transport = TwilioTransport(settings)

    def delete() -> Sent:
        transport.client.recordings(recording_sid).delete()
        return Sent(recording_sid, "deleted", transport.name)

    try:
        transport._call(delete, "")
    except SendError as exc:
        if exc.code != "20404":
            raise
