"""Calls to a chat platform's HTTP API, with one error policy for every adapter.

A timeout, a dropped connection, 429 (rate limit) and 5xx are transient: the job retries them with
backoff. Any other 4xx is permanent (a blocked bot, a wrong token, a closed 24-hour window): the
message is marked failed with the platform's own reason, and nothing is retried. Error texts carry
the platform's description, never the token (some APIs put it in the URL path).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import requests

from hotline.telephony.transport import SendError

log = logging.getLogger(__name__)
TIMEOUT = (5, 20)  # connect, read (seconds): an upload of a voice note may take a while
MAX_ERROR = 200


def new_session() -> requests.Session:
    s = requests.Session()
    s.headers["User-Agent"] = "safe-migration-hotline/1"
    return s


def transient_status(status: int) -> bool:
    return status == 429 or status >= 500


def request(http: requests.Session, method: str, url: str, *, what: str, secret: str = "",
            transient: Callable[[requests.Response], bool] | None = None, **kwargs: Any) -> requests.Response:
    """One HTTP call; raises `SendError` (transient or permanent, `code` = the HTTP status).
    `transient` reads a platform's own error body (Graph rate limits answer 400 with a code)."""
    kwargs.setdefault("timeout", TIMEOUT)
    try:
        resp = http.request(method, url, **kwargs)
    except requests.Timeout:
        raise SendError(f"{what}: timed out", transient=True, code="timeout") from None
    except requests.RequestException as exc:
        reason = _scrub(f"{type(exc).__name__}", secret)
        raise SendError(f"{what}: no connection ({reason})", transient=True, code="connection") from None
    if resp.status_code >= 400:
        detail = _scrub(_description(resp), secret)
        retry = transient_status(resp.status_code) or (transient is not None and transient(resp))
        raise SendError(f"{what}: HTTP {resp.status_code} {detail}"[:MAX_ERROR], transient=retry,
                        code=str(resp.status_code))
    return resp


def json_of(resp: requests.Response, what: str) -> Any:
    try:
        return resp.json()
    except ValueError:
        raise SendError(f"{what}: the answer was not JSON", transient=True, code="bad_answer") from None


def _description(resp: requests.Response) -> str:
    """The platform's reason: Telegram `description`, Graph `error.message`, LINE `message`."""
    try:
        data = resp.json()
    except ValueError:
        return resp.text[:120]
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:160]
        for key in ("description", "message", "error"):
            if data.get(key):
                return str(data[key])[:160]
    return ""


def _scrub(text: str, secret: str) -> str:
    return text.replace(secret, "***") if secret else text
