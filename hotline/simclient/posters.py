"""How the simulated Twilio reaches the app: over real HTTP, or through the WSGI app in-process.

Both sign every request exactly as Twilio does: X-Twilio-Signature over the absolute URL (as the
app's PUBLIC_BASE_URL spells it) and every form parameter.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlencode, urlsplit

from hotline.telephony.signature import sign

USER_AGENT = "TwilioProxy/1.1 (hotline simulator)"


@dataclass(frozen=True)
class Reply:
    status: int
    content_type: str
    text: str


class Poster(Protocol):
    base_url: str

    def request(self, method: str, url: str, params: dict[str, str]) -> Reply: ...


def _headers(auth_token: str, method: str, url: str, params: dict[str, str]) -> dict[str, str]:
    # Twilio signs the full URL; for GET the params are in that URL and the body is empty.
    signed = sign(auth_token, url, params if method == "POST" else {})
    return {"X-Twilio-Signature": signed, "User-Agent": USER_AGENT,
            "I-Twilio-Idempotency-Token": secrets.token_hex(16)}


def _with_query(url: str, params: dict[str, str]) -> str:
    if not params:
        return url
    return url + ("&" if "?" in url else "?") + urlencode(params)


class HttpPoster:
    """Real HTTP to a running app (what `hotline call` uses)."""

    def __init__(self, base_url: str, auth_token: str, timeout: float = 20.0):
        import requests

        self.base_url = base_url.rstrip("/")
        self.auth_token = auth_token
        self.timeout = timeout
        self.http = requests.Session()

    def request(self, method: str, url: str, params: dict[str, str]) -> Reply:
        if method == "GET":
            url, params = _with_query(url, params), {}
        headers = _headers(self.auth_token, method, url, params)
        # Twilio follows 3xx itself (up to 10); requests does the same for GET and, for a POST answered
        # with 302/303, switches to GET as Twilio does.
        resp = self.http.request(method, url, data=params or None, headers=headers, timeout=self.timeout)
        return Reply(resp.status_code, resp.headers.get("Content-Type", ""), resp.text)


class WsgiPoster:
    """The same requests through a Flask app's test client: identical routes, middleware and
    signature check, no network. Only URLs under `base_url` (the app's public URL) can be reached."""

    def __init__(self, client: Any, base_url: str, auth_token: str):
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.auth_token = auth_token

    def request(self, method: str, url: str, params: dict[str, str]) -> Reply:
        if method == "GET":
            url, params = _with_query(url, params), {}
        if not url.startswith(self.base_url + "/"):
            return Reply(599, "text/plain", f"the simulator can only reach {self.base_url}, not {url}")
        headers = _headers(self.auth_token, method, url, params)
        parts = urlsplit(url)
        path = parts.path[len(urlsplit(self.base_url).path):] or "/"
        resp = self.client.open(path, method=method, query_string=parts.query, data=params or None,
                                headers=headers, follow_redirects=True)
        return Reply(resp.status_code, resp.content_type or "", resp.get_data(as_text=True))
