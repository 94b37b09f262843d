"""Voice webhooks. (Foundation stub: the IVR issue replaces the menu with the script engine.)"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, request
from twilio.twiml.voice_response import VoiceResponse

from hotline.db import utcnow
from hotline.models import Call
from hotline.services import callers
from hotline.telephony.signature import twilio_signed
from hotline.telephony.twiml import empty_voice, xml
from hotline.web import session
from hotline.web.audio import audio_url
from hotline.web.errors import voice_safe

bp = Blueprint("voice", __name__, url_prefix="/twilio/voice")


@bp.post("")
@twilio_signed
@voice_safe
def incoming():  # type: ignore[no-untyped-def]
    s = session()
    sid = request.form.get("CallSid", "")
    caller = callers.get_or_create(s, request.form.get("From", ""))
    if sid and s.scalar(sa.select(Call.id).where(Call.call_sid == sid)) is None:
        s.add(Call(call_sid=sid, caller_id=caller.id, to_number=request.form.get("To", "")[:20]))
    s.commit()
    resp = VoiceResponse()
    resp.play(audio_url("km", "welcome"))
    return xml(resp)


@bp.post("/status")
@twilio_signed
def status():  # type: ignore[no-untyped-def]
    """Call status callback: Twilio ignores the body; unknown CallSids are answered 200 too."""
    s = session()
    call = s.scalar(sa.select(Call).where(Call.call_sid == request.form.get("CallSid", "")))
    if call is not None:
        call.status = request.form.get("CallStatus", call.status)[:24]
        duration = request.form.get("CallDuration", "")
        if duration.isdigit():
            call.duration_s = int(duration)
        if call.status in ("completed", "busy", "failed", "no-answer", "canceled"):
            call.ended_at = call.ended_at or utcnow()
        s.commit()
    return empty_voice()
