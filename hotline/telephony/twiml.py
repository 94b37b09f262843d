"""TwiML responses, and what a caller hears when something inside the hotline broke."""

from __future__ import annotations

from flask import Response
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse


def xml(twiml: VoiceResponse | MessagingResponse | str) -> Response:
    body = twiml if isinstance(twiml, str) else twiml.to_xml()
    return Response(body, status=200, mimetype="text/xml")


def empty_messaging() -> Response:
    """An empty <Response/>: acknowledge an SMS without answering it."""
    return xml(MessagingResponse())


def empty_voice() -> Response:
    return xml(VoiceResponse())
