"""TwiML and status callbacks for the calls the hotline places (callbacks). Every route is signed.

Staff first:  Twilio rings the staff member (`/staff`); when they answer, `<Dial callerId=hotline>`
              rings the caller with `<Number url=/callee>`: that TwiML is played to the CALLER before
              the two are bridged (a "whisper"). It is the safety check: press 1 and the TwiML ends,
              so Twilio bridges; anything else hears a polite goodbye and is hung up, never bridged.
Direct:       without a staff phone, Twilio calls the caller straight to `/callee?leg=direct`; after
              the same check the caller is bridged to the on-call lawyers.
Answering machines (Twilio's AnsweredBy) are hung up on at once: no message is ever left.
The attempt id travels in the query string; Twilio's signature covers it, so it cannot be forged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
import yaml
from flask import Blueprint, Response, current_app, g, request
from twilio.twiml.voice_response import Gather, VoiceResponse

from hotline.db import utcnow
from hotline.models import Call, CallbackAttempt
from hotline.services.callbacks import finish_attempt
from hotline.services.legal_aid import oncall_numbers
from hotline.settings import Settings
from hotline.telephony.signature import twilio_signed
from hotline.telephony.twiml import empty_voice, xml
from hotline.web import session
from hotline.web.audio import AUDIO_DIR, audio_url

log = logging.getLogger(__name__)
bp = Blueprint("outbound", __name__, url_prefix="/twilio/outbound")
SCRIPT = Path(__file__).resolve().parent.parent.parent / "ivr_scripts" / "outbound.yaml"
FINAL = {"completed", "busy", "no-answer", "failed", "canceled"}
STATUS_OUTCOME = {"busy": "busy", "no-answer": "no_answer", "failed": "failed", "canceled": "no_answer",
                  "completed": "unsafe"}  # answered, then hung up before pressing 1
STAFF_SAYS = {"unsafe": "staff_unsafe", "machine": "staff_machine", "no_answer": "staff_no_answer",
              "busy": "staff_busy"}
F = TypeVar("F", bound=Callable[..., Any])


@lru_cache(maxsize=1)
def texts() -> dict[str, Any]:
    data = yaml.safe_load(SCRIPT.read_text(encoding="utf-8"))
    for name in ("outbound_greeting", "outbound_safe_check", "outbound_connecting", "outbound_goodbye"):
        missing = {"km", "th", "en"} - set(data["callee"][name])
        if missing:
            raise ValueError(f"{SCRIPT}: callee.{name} has no text for {', '.join(sorted(missing))}")
    return data  # type: ignore[no-any-return]


def prompt(verb: VoiceResponse | Gather, lang: str, name: str) -> None:
    """A recording when there is one; else Thai or English speech (Twilio has no Khmer voice)."""
    if lang in ("km", "th", "en") and (AUDIO_DIR / lang / f"{name}.mp3").is_file():
        verb.play(audio_url(lang, name))
    elif lang == "th":
        verb.say(texts()["callee"][name]["th"], voice="Google.th-TH-Standard-A", language="th-TH")
    else:
        verb.say(texts()["callee"][name]["en"], language="en-US")


def staff_says(resp: VoiceResponse, name: str) -> None:
    resp.say(texts()["staff"][name], language="en-US")


def outbound_safe(view: F) -> F:
    """A broken step never hands Twilio a 500 (the callee would hear Twilio's error): hang up calmly."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except Exception:
            log.exception("outbound call step failed at %s", request.path)
            s = g.get("db_session")
            if s is not None:
                s.rollback()
            resp = VoiceResponse()
            resp.hangup()
            return xml(resp)

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    return current_app.config["HOTLINE"]  # type: ignore[no-any-return]


def _base() -> str:
    return f"{_settings().public_base_url}/twilio/outbound"


def _attempt() -> CallbackAttempt | None:
    raw = request.args.get("attempt", "")
    return session().get(CallbackAttempt, int(raw)) if raw.isdigit() else None


def _machine() -> bool:
    answered = request.form.get("AnsweredBy", "")
    return answered.startswith("machine") or answered == "fax"


def _lang(attempt: CallbackAttempt) -> str:
    cb = attempt.request
    lang = cb.language or (_caller_language(cb.caller_id) if cb.caller_id else None)
    return str(lang) if lang else "km"


def _caller_language(caller_id: int) -> str | None:
    from hotline.models import Caller

    caller = session().get(Caller, caller_id)
    return str(caller.language) if caller and caller.language else None


def _finish(attempt: CallbackAttempt, outcome: str, *, counts: bool = True) -> None:
    s = session()
    if finish_attempt(s, _settings(), attempt.id, outcome, counts=counts):
        log.info("callback attempt %s: %s CallSid=%s", attempt.id, outcome, request.form.get("CallSid", ""))
    s.commit()
    s.refresh(attempt)


def _hangup() -> Response:
    resp = VoiceResponse()
    resp.hangup()
    return xml(resp)


@bp.post("/staff")
@twilio_signed
@outbound_safe
def staff_leg() -> Response:
    """The staff member answered: brief them, then ring the caller (who hears the safety check first)."""
    attempt = _attempt()
    if attempt is None or attempt.outcome is not None:
        return _hangup()
    if _machine():  # the staff member's voicemail: never bridge a caller into it
        _finish(attempt, "failed", counts=False)
        return _hangup()
    resp = VoiceResponse()
    staff_says(resp, "staff_connecting")
    dial = resp.dial(caller_id=_settings().hotline_number, action=f"{_base()}/dial?attempt={attempt.id}",
                     timeout=30)
    dial.number(attempt.request.phone, url=f"{_base()}/callee?attempt={attempt.id}&leg=whisper",
                machine_detection="Enable")
    return xml(resp)


@bp.post("/callee")
@twilio_signed
@outbound_safe
def callee_leg() -> Response:
    """What the caller hears first: a neutral greeting and "if it is safe to talk, press 1"."""
    attempt = _attempt()
    leg = "whisper" if request.args.get("leg") == "whisper" else "direct"
    if attempt is None or attempt.outcome is not None:
        return _hangup()
    _note_call(attempt)
    if _machine():
        _finish(attempt, "machine")
        return _hangup()  # no message on a machine, ever
    lang = _lang(attempt)
    resp = VoiceResponse()
    answer = f"{_base()}/callee/answer?attempt={attempt.id}&leg={leg}"
    # actionOnEmptyResult: silence also goes to the answer step, where it counts as "not safe".
    gather = resp.gather(num_digits=1, timeout=8, action=answer, action_on_empty_result=True)
    prompt(gather, lang, "outbound_greeting")
    prompt(gather, lang, "outbound_safe_check")
    resp.redirect(answer)
    return xml(resp)


@bp.post("/callee/answer")
@twilio_signed
@outbound_safe
def callee_answer() -> Response:
    """1: bridge (whisper: end the TwiML; direct: dial the on-call lawyers). Else: goodbye, unsafe."""
    attempt = _attempt()
    if attempt is None:
        return _hangup()
    lang = _lang(attempt)
    resp = VoiceResponse()
    if request.form.get("Digits", "") != "1":
        _finish(attempt, "unsafe")
        prompt(resp, lang, "outbound_goodbye")
        resp.hangup()
        return xml(resp)
    _finish(attempt, "reached")
    prompt(resp, lang, "outbound_connecting")
    if request.args.get("leg") != "whisper":
        numbers = oncall_numbers(session(), _settings(), attempt.request.country)[:10]  # <Dial> rings ≤ 10
        dial = resp.dial(caller_id=_settings().hotline_number, timeout=30)
        for number in numbers:
            dial.number(number)
    return xml(resp)


@bp.post("/dial")
@twilio_signed
@outbound_safe
def dial_done() -> Response:
    """The staff leg's <Dial> ended: record what happened to the caller's leg and tell the staff member."""
    attempt = _attempt()
    if attempt is None:
        return _hangup()
    status = request.form.get("DialCallStatus", "")
    if attempt.outcome is None and status in STATUS_OUTCOME:
        _finish(attempt, STATUS_OUTCOME[status])
    resp = VoiceResponse()
    staff_says(resp, STAFF_SAYS.get(attempt.outcome or "", "staff_ended"))
    resp.hangup()
    return xml(resp)


@bp.post("/status")
@twilio_signed
def status() -> Response:
    """Status callbacks of calls we placed; Twilio ignores the body, unknown ids are answered 200."""
    try:
        _status()
    except Exception:  # a status callback must never fail loudly; the periodic sweep closes stale attempts
        log.exception("outbound status callback failed CallSid=%s", request.form.get("CallSid", ""))
        s = g.get("db_session")
        if s is not None:
            s.rollback()
    return empty_voice()


def _status() -> None:
    attempt = _attempt()
    call_status = request.form.get("CallStatus", "")
    _note_call(attempt)
    if attempt is None or call_status not in FINAL or attempt.outcome is not None:
        session().commit()
        return
    if request.args.get("leg") == "staff":
        _finish(attempt, "failed", counts=False)  # the staff phone never took the call
    else:
        _finish(attempt, "machine" if _machine() else STATUS_OUTCOME[call_status])


def _note_call(attempt: CallbackAttempt | None) -> None:
    """Keep the Call row of a call we placed up to date (status, AMD answer, duration)."""
    sid = request.form.get("CallSid", "")
    call = session().scalar(sa.select(Call).where(Call.call_sid == sid)) if sid else None
    if call is None:
        return
    call.status = (request.form.get("CallStatus") or call.status)[:24]
    call.answered_by = (request.form.get("AnsweredBy") or call.answered_by or "")[:32] or None
    duration = request.form.get("CallDuration", "")
    if duration.isdigit():
        call.duration_s = int(duration)
    if call.status in FINAL:
        call.ended_at = call.ended_at or utcnow()
        call.outcome = call.outcome or (attempt.outcome if attempt else None)
