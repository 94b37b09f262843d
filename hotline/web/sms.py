"""SMS webhooks: keywords in, advice / callback / urgent case out, as a TwiML reply.

The keyword data is loaded and checked once, when the app starts (`init_app`): a mistake in
`ivr_scripts/sms/*.yaml` stops start-up with the file and field named, and no request pays for it.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from flask import Blueprint, Flask, current_app, request

from hotline.channels.twilio_sms import TwilioSms
from hotline.menus import consent, keywords
from hotline.services import legal_aid
from hotline.services import sms as sms_service
from hotline.telephony.signature import twilio_signed
from hotline.telephony.twiml import empty_messaging, xml
from hotline.web import session
from hotline.web.errors import sms_safe

bp = Blueprint("sms", __name__, url_prefix="/twilio/sms")
DEFAULT_SCRIPTS = Path(__file__).resolve().parent.parent.parent / "ivr_scripts" / "sms"
_EXT = "hotline.sms_keywords"
_twilio = TwilioSms()


def init_app(app: Flask) -> None:
    """Load and check the keyword data; `SMS_SCRIPTS_DIR` in the app config points elsewhere."""
    directory = Path(app.config.get("SMS_SCRIPTS_DIR") or DEFAULT_SCRIPTS)
    try:
        app.extensions[_EXT] = keywords.load(directory)
    except keywords.ScriptError as exc:
        raise keywords.ScriptError(f"SMS keywords in {directory} are not valid: {exc}") from None
    try:
        consent.load()  # the consent questions' texts: checked at start, not by the first family text
    except ValueError as exc:
        raise keywords.ScriptError(f"SMS consent questions are not valid: {exc}") from None


def starter_keywords(app: Flask) -> keywords.KeywordSet:
    """The keywords and replies loaded from ivr_scripts/sms/ at start (content version 0)."""
    return app.extensions[_EXT]  # type: ignore[no-any-return]


def keyword_set() -> keywords.KeywordSet:
    """The keywords and replies of the published content version (cached per process)."""
    from hotline.web.content_live import snapshot

    return snapshot().keywords


@bp.post("")
@twilio_signed
@sms_safe
def incoming():  # type: ignore[no-untyped-def]
    """An incoming text: stored and acted on once per MessageSid, answered with at most one reply."""
    msg = _twilio.parse(request.form)
    s = session()
    outcome = sms_service.handle_inbound(s, keyword_set(), msg)
    s.commit()  # the case / callback request is stored before the sender is told about it
    if not outcome.replies:
        return empty_messaging()
    callback = _status_url(msg.sid)
    return xml(_twilio.answer(outcome.replies, status_callback=callback))


@bp.post("/status")
@twilio_signed
@sms_safe
def status():  # type: ignore[no-untyped-def]
    """Delivery status of a message we sent; unknown MessageSids are answered 200 too."""
    s = session()
    msg = sms_service.record_status(s, sid=request.form.get("MessageSid", "")[:64],
                                    status=request.form.get("MessageStatus", ""),
                                    error_code=request.form.get("ErrorCode") or None,
                                    reply_to=request.args.get("reply_to"))
    if msg is not None:  # an on-call alert that never arrived goes to the next person now
        legal_aid.alert_not_delivered(s, current_app.config["HOTLINE"], msg)
    s.commit()
    return empty_messaging()


def _status_url(inbound_sid: str | None) -> str:
    # The reply's own sid is unknown until Twilio sends it; the inbound sid finds its row.
    # Twilio signs this full URL, query included, so reply_to cannot be forged.
    root = current_app.config["HOTLINE"].public_base_url or request.host_url.rstrip("/")
    base = root + request.script_root + str(bp.url_prefix) + "/status"
    return base + ("?" + urlencode({"reply_to": inbound_sid}) if inbound_sid else "")
