"""Never hand Twilio a 500: a broken voice step plays an apology and returns the caller to the start;
a broken SMS step answers an empty <Response/>. Both are logged with the traceback."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from flask import g, request
from twilio.twiml.voice_response import VoiceResponse

from hotline.telephony.twiml import empty_messaging, xml

log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])


def _rollback() -> None:
    s = g.get("db_session")
    if s is not None:
        s.rollback()


def voice_fallback() -> VoiceResponse:
    """Apology, then back to the start of the menu; after a second failure in a row, a calm goodbye."""
    from hotline.web.audio import audio_url

    lang = g.get("call_language") or "km"
    resp = VoiceResponse()
    resp.play(audio_url(lang, "system_error"))
    if request.args.get("recovered"):
        resp.play(audio_url(lang, "goodbye"))
        resp.hangup()
    else:
        resp.redirect("/twilio/voice?recovered=1", method="POST")
    return resp


def voice_safe(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except Exception:
            log.exception("voice step failed at %s; caller sent to safety", request.path)
            _rollback()
            return xml(voice_fallback())

    return wrapper  # type: ignore[return-value]


def sms_safe(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except Exception:
            log.exception("SMS step failed at %s; answered with an empty response", request.path)
            _rollback()
            return empty_messaging()

    return wrapper  # type: ignore[return-value]
