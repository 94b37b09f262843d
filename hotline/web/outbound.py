"""TwiML and callbacks for the calls the hotline places (callbacks): a thin adapter over
hotline.services.callbacks, which owns the attempt's state machine. Every route is signed.

  Twilio rings the staff phone (REST, asynchronous AMD) ──> /staff: the whisper, "press 1 to call"
  /staff/accept  1: <Dial callerId=hotline action=/dial><Number url=/callee amdStatusCallback=/amd>
                 anything else or nothing: not accepted, hang up (the callee was never rung)
  /callee        played to the PERSON before the bridge: a neutral greeting, "if it is a good time
                 to talk, press 1" (recorded prompts in their language)
  /callee/answer 1: the whisper ends and Twilio bridges (or, when the staff leg is gone, an apology);
                 anything else: a polite goodbye, logged unsafe, never bridged
  /dial          the <Dial> ended: reached only when Twilio says it bridged
  /status        the staff leg's status callbacks;  /amd  asynchronous AMD verdicts (a machine is
                 hung up on with no message)
The attempt id travels in the query string; Twilio's signature covers it, so it cannot be forged.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

import yaml
from flask import Blueprint, Response, current_app, g, request
from twilio.twiml.voice_response import Gather, VoiceResponse

from hotline.models import CallbackAttempt
from hotline.services import callbacks as service
from hotline.settings import Settings
from hotline.telephony.signature import twilio_signed
from hotline.telephony.twiml import empty_voice, xml
from hotline.web import session
from hotline.web.audio import audio_available, audio_url

log = logging.getLogger(__name__)
bp = Blueprint("outbound", __name__, url_prefix="/twilio/outbound")
SCRIPT = Path(__file__).resolve().parent.parent.parent / "ivr_scripts" / "outbound.yaml"
STAFF_SAYS = {"unsafe": "staff_unsafe", "machine": "staff_machine", "no_answer": "staff_no_answer",
              "busy": "staff_busy", "failed": "staff_failed", "bridge_failed": "staff_failed"}
F = TypeVar("F", bound=Callable[..., Any])


@lru_cache(maxsize=1)
def staff_texts() -> dict[str, str]:
    return yaml.safe_load(SCRIPT.read_text(encoding="utf-8"))["staff"]  # type: ignore[no-any-return]


def prompt(verb: VoiceResponse | Gather, lang: str, pid: str) -> None:
    """A recorded prompt from the voice script (ivr_scripts/voice/outbound.yaml) in `lang`: always
    <Play> of audio/<lang>/<audio>.mp3 (a placeholder until recorded). Only if that file is missing
    is Thai or English spoken; Twilio has no Khmer voice."""
    from hotline.web.voice import runtime

    texts = runtime().script.prompts[pid].texts
    lang = lang if lang in texts else "km"
    text = texts[lang]
    if audio_available(lang, text.audio):
        verb.play(audio_url(lang, text.audio))
    elif lang == "th":
        verb.say(text.text, voice="Google.th-TH-Standard-A", language="th-TH")
    else:
        log.error("outbound prompt %s/%s has no audio file", lang, text.audio)
        verb.say(texts["en"].text, language="en-US")


def staff_says(resp: VoiceResponse, name: str) -> None:
    resp.say(staff_texts()[name], language="en-US")


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
            return _hangup()

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    return current_app.config["HOTLINE"]  # type: ignore[no-any-return]


def _base() -> str:
    return f"{_settings().public_base_url}/twilio/outbound"


def _attempt() -> CallbackAttempt | None:
    return service.attempt_by_id(session(), request.args.get("attempt", ""))


def _machine() -> bool:
    answered = request.form.get("AnsweredBy", "")
    return answered.startswith("machine") or answered == "fax"


def _hangup() -> Response:
    resp = VoiceResponse()
    resp.hangup()
    return xml(resp)


def _commit() -> None:
    session().commit()


@bp.post("/staff")
@twilio_signed
@outbound_safe
def staff_leg() -> Response:
    """The staff phone answered: the whisper. Only a key press of 1 rings the person."""
    attempt = _attempt()
    if attempt is None or attempt.outcome is not None:
        return _hangup()
    if _machine():  # only if Twilio ran AMD synchronously; normally the verdict comes to /amd
        service.staff_missed(session(), _settings(), attempt, "a voicemail answered the staff phone")
        _commit()
        return _hangup()
    resp = VoiceResponse()
    accept = f"{_base()}/staff/accept?attempt={attempt.id}"
    gather = resp.gather(num_digits=1, timeout=10, action=accept, action_on_empty_result=True)
    prompt(gather, service.staff_language(session(), attempt), "staff_whisper")
    resp.redirect(accept)
    return xml(resp)


@bp.post("/staff/accept")
@twilio_signed
@outbound_safe
def staff_accept() -> Response:
    """1: ring the person from the hotline's number. Anything else: the callee is never rung."""
    attempt = _attempt()
    if attempt is None:
        return _hangup()
    s = session()
    if request.form.get("Digits", "") != "1" or not service.staff_accepted(s, attempt):
        service.staff_missed(s, _settings(), attempt, "the staff member did not press 1")
        _commit()
        resp = VoiceResponse()
        staff_says(resp, "staff_not_accepted")
        resp.hangup()
        return xml(resp)
    _commit()
    resp = VoiceResponse()
    staff_says(resp, "staff_connecting")
    dial = resp.dial(caller_id=_settings().hotline_number, action=f"{_base()}/dial?attempt={attempt.id}",
                     timeout=service.DIAL_TIMEOUT)
    # amdStatusCallback makes <Number>'s AMD asynchronous: the greeting is not held in silence.
    dial.number(attempt.request.phone, url=f"{_base()}/callee?attempt={attempt.id}", machine_detection="Enable",
                amd_status_callback=f"{_base()}/amd?attempt={attempt.id}&leg=callee")
    return xml(resp)


@bp.post("/callee")
@twilio_signed
@outbound_safe
def callee_leg() -> Response:
    """What the person hears first: a neutral greeting and "if it is a good time to talk, press 1"."""
    attempt = _attempt()
    if attempt is None or attempt.outcome is not None:
        return _hangup()  # e.g. the AMD verdict "machine" came first
    if _machine():
        service.machine(session(), _settings(), attempt, leg="callee", call_sid="")
        _commit()
        return _hangup()  # no message on a machine, ever
    lang = service.callee_language(session(), attempt)
    resp = VoiceResponse()
    answer = f"{_base()}/callee/answer?attempt={attempt.id}"
    # actionOnEmptyResult: silence also goes to the answer step, where it counts as "not a good time".
    gather = resp.gather(num_digits=1, timeout=8, action=answer, action_on_empty_result=True)
    prompt(gather, lang, "outbound_greeting")
    prompt(gather, lang, "outbound_safe_check")
    resp.redirect(answer)
    return xml(resp)


@bp.post("/callee/answer")
@twilio_signed
@outbound_safe
def callee_answer() -> Response:
    """1: end the whisper so Twilio bridges (or apologise if the staff leg is gone). Else: goodbye."""
    attempt = _attempt()
    if attempt is None:
        return _hangup()
    s = session()
    lang = service.callee_language(s, attempt)
    resp = VoiceResponse()
    if attempt.outcome is not None:
        # Over already (the staff member hung up meanwhile): whoever said yes hears the apology.
        prompt(resp, lang, "outbound_sorry" if request.form.get("Digits", "") == "1" else "outbound_goodbye")
        resp.hangup()
        return xml(resp)
    if request.form.get("Digits", "") != "1":
        service.callee_declined(s, _settings(), attempt)
        _commit()
        prompt(resp, lang, "outbound_goodbye")
        resp.hangup()
        return xml(resp)
    if not service.callee_safe(s, _settings(), attempt):
        _commit()
        prompt(resp, lang, "outbound_sorry")
        resp.hangup()
        return xml(resp)
    _commit()
    prompt(resp, lang, "outbound_connecting")  # the whisper's TwiML ends here: Twilio bridges
    return xml(resp)


@bp.post("/dial")
@twilio_signed
@outbound_safe
def dial_done() -> Response:
    """The staff leg's <Dial> ended: record what happened and tell the staff member."""
    attempt = _attempt()
    if attempt is None:
        return _hangup()
    outcome = service.dial_ended(session(), _settings(), attempt, request.form.get("DialCallStatus", ""),
                                 request.form.get("DialBridged", "").lower())
    _commit()
    log.info("callback attempt %s: dial ended %s", attempt.id, outcome)
    resp = VoiceResponse()
    staff_says(resp, STAFF_SAYS.get(outcome or "", "staff_ended"))
    resp.hangup()
    return xml(resp)


@bp.post("/status")
@twilio_signed
def status() -> Response:
    """Status callbacks of the staff leg we placed; Twilio ignores the body, unknown ids get 200."""
    try:
        service.call_status(session(), _settings(), _attempt(), request.form.to_dict())
        _commit()
    except Exception:  # a status callback must never fail loudly; the periodic sweep closes stale attempts
        log.exception("outbound status callback failed CallSid=%s", request.form.get("CallSid", ""))
        _rollback()
    return empty_voice()


@bp.post("/amd")
@twilio_signed
def amd() -> Response:
    """Asynchronous AMD verdict for a leg: a machine is hung up on (no message); a human goes on."""
    try:
        attempt = _attempt()
        if attempt is not None and _machine():
            leg = "staff" if request.args.get("leg") == "staff" else "callee"
            service.machine(session(), _settings(), attempt, leg=leg, call_sid=request.form.get("CallSid", ""))
            _commit()
    except Exception:
        log.exception("AMD callback failed CallSid=%s", request.form.get("CallSid", ""))
        _rollback()
    return empty_voice()


def _rollback() -> None:
    s = g.get("db_session")
    if s is not None:
        s.rollback()
