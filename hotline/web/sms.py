"""SMS webhooks. (Foundation stub: the SMS issue replaces the reply with the keyword engine.)"""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, request

from hotline.models import Direction, Message, MessageStatus
from hotline.services import callers
from hotline.telephony.signature import twilio_signed
from hotline.telephony.twiml import empty_messaging
from hotline.web import session
from hotline.web.errors import sms_safe

bp = Blueprint("sms", __name__, url_prefix="/twilio/sms")


@bp.post("")
@twilio_signed
@sms_safe
def incoming():  # type: ignore[no-untyped-def]
    s = session()
    sid = request.form.get("MessageSid", "")[:64] or None
    if sid and s.scalar(sa.select(Message.id).where(Message.sid == sid)) is not None:
        return empty_messaging()  # Twilio retried a message we already have
    caller = callers.get_or_create(s, request.form.get("From", ""))
    s.add(Message(sid=sid, direction=Direction.INBOUND, caller_id=caller.id, peer=caller.phone,
                  body=request.form.get("Body", ""), status=MessageStatus.RECEIVED))
    s.commit()
    return empty_messaging()


@bp.post("/status")
@twilio_signed
def status():  # type: ignore[no-untyped-def]
    """Delivery status of a message we sent; unknown MessageSids are answered 200 too."""
    s = session()
    msg = s.scalar(sa.select(Message).where(Message.sid == request.form.get("MessageSid", "")))
    new = request.form.get("MessageStatus", "")
    if msg is not None and new in MessageStatus.__members__.values():
        msg.status = MessageStatus(new)
        msg.error_code = request.form.get("ErrorCode") or msg.error_code
        s.commit()
    return empty_messaging()
