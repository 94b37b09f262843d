"""X-Twilio-Signature checking for every /twilio/* route."""

from __future__ import annotations

import functools
import hmac
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Response, current_app, request
from twilio.request_validator import RequestValidator

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def public_url() -> str:
    """The URL Twilio requested, as Twilio saw it.

    Behind a proxy the app sees http://internal:8000/...; Twilio signed https://public/... .
    With PUBLIC_BASE_URL set we rebuild from it; the raw query string is kept byte for byte.
    """
    base = current_app.config["HOTLINE"].public_base_url
    path = request.path
    qs = request.query_string.decode("latin-1")
    if base:
        url = base + request.script_root + path
    else:
        url = request.base_url
    return url + ("?" + qs if qs else "")


def is_valid_request() -> bool:
    signature = request.headers.get("X-Twilio-Signature", "")
    if not signature or not signature.isascii():
        return False  # a signature is base64; hmac.compare_digest would raise on other text
    validator: RequestValidator = current_app.extensions["hotline.validator"]
    params = request.form if request.method == "POST" else {}
    url = public_url()
    # Fast path: the URL exactly as rebuilt (one HMAC). Only on a mismatch let the library try its
    # port variants (Twilio drops or keeps :443/:80 depending on the product).
    if hmac.compare_digest(str(validator.compute_signature(url, params)), signature):
        return True
    return bool(validator.validate(url, params, signature))


def twilio_signed(view: F) -> F:
    """Answer 403 to any request Twilio did not sign with our auth token."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not is_valid_request():
            log.warning("rejected unsigned or wrongly signed request to %s", request.path)
            return Response("Forbidden: bad or missing X-Twilio-Signature\n", status=403, mimetype="text/plain")
        return view(*args, **kwargs)

    wrapper.twilio_signed = True  # type: ignore[attr-defined]  # the route inventory test reads this
    return wrapper  # type: ignore[return-value]


def sign(auth_token: str, url: str, params: dict[str, str]) -> str:
    """The signature Twilio would send for a POST of `params` to `url` (tests and the simulator use it)."""
    return str(RequestValidator(auth_token).compute_signature(url, params))
