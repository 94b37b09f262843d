"""The content line's webhooks (`/twilio/voice/content`): staff record prompts by phone.

Reached only through a Twilio number of its own (CONTENT_LINE_NUMBER, whose voice URL is this
route), never through a key of the public menu: a caller pressing keys at random, or trying every
key, must never land in a staff line, and a hidden key would also be one more thing for every caller
to hear past. A call whose `To` is not the content number is sent to the hotline's menu.

Every step after the PIN checks that this CallSid proved a PIN (hotline.services.content_line);
the rest of the state (language, prompt, take) travels in our own signed action URLs. Instructions
are spoken in English by <Say>: they are for staff; the prompt itself is named by its number and
its current recording is played. Any error: a short apology and a hang-up, never a 500.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, request
from twilio.twiml.voice_response import VoiceResponse

from hotline.audio_tools import MAX_SECONDS
from hotline.db import utcnow
from hotline.models import ContentCall
from hotline.services import content
from hotline.services import content_line as service
from hotline.settings import Settings
from hotline.telephony.signature import twilio_signed
from hotline.telephony.twiml import empty_voice, xml
from hotline.web import session

bp = Blueprint("content_line", __name__, url_prefix="/twilio/voice/content")
log = logging.getLogger(__name__)
F = TypeVar("F", bound=Callable[..., Any])
BASE = "/twilio/voice/content"
LANGUAGE_NAMES = {"km": "Khmer", "th": "Thai", "en": "English"}


def _safe(view: F) -> F:
    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return view(*args, **kwargs)
        except Exception:  # noqa: BLE001 - Twilio must get TwiML, never a 500
            log.exception("content line step failed at %s CallSid=%s", request.path, request.form.get("CallSid", ""))
            session().rollback()
            resp = VoiceResponse()
            resp.say("Sorry, something went wrong. Please call again.")
            resp.hangup()
            return xml(resp)

    return wrapper  # type: ignore[return-value]


def _settings() -> Settings:
    return current_app.config["HOTLINE"]  # type: ignore[no-any-return]


def _url(path: str, **q: object) -> str:
    query = urlencode([(k, str(v)) for k, v in q.items() if v not in (None, "")])
    return f"{BASE}{path}" + (f"?{query}" if query else "")


def _goodbye(text: str = "Goodbye.") -> Response:
    resp = VoiceResponse()
    resp.say(text)
    resp.hangup()
    return xml(resp)


def _call() -> ContentCall | None:
    """The authenticated content call this request belongs to (None: hang up)."""
    cid = request.args.get("c", "")
    if not cid.isdigit() or len(cid) > 9:
        return None
    return service.authenticated(session(), int(cid), request.form.get("CallSid", ""))


def _ask_pin(resp: VoiceResponse, call: ContentCall, text: str) -> None:
    gather = resp.gather(input="dtmf", finish_on_key="#", timeout=10, num_digits=service.PIN_MAX + 1,
                         action=_url("/pin", c=call.id), method="POST")
    gather.say(text)
    resp.say("Goodbye.")
    resp.hangup()


@bp.post("")
@twilio_signed
@_safe
def incoming() -> Response:
    """A call to the content number: ask for the PIN. Any other number: the hotline's menu."""
    settings, form = _settings(), request.form
    if not settings.content_line_number or form.get("To", "") != settings.content_line_number:
        resp = VoiceResponse()
        resp.redirect("/twilio/voice", method="POST")
        return xml(resp)
    s = session()
    call = service.start_call(s, form.get("CallSid", ""))
    s.commit()
    resp = VoiceResponse()
    _ask_pin(resp, call, "Staff recording line. Enter your PIN, then press hash.")
    return xml(resp)


@bp.post("/pin")
@twilio_signed
@_safe
def pin() -> Response:
    s, form = session(), request.form
    cid = request.args.get("c", "")
    call = service.get_call(s, int(cid)) if cid.isdigit() and len(cid) < 10 else None
    if call is None or call.call_sid != form.get("CallSid", "") or call.staff_id is not None:
        return _goodbye()
    if call.pin_tries >= service.TRIES_PER_CALL:
        return _goodbye()
    user = service.login(s, call, form.get("From", ""), form.get("Digits", ""), utcnow())
    s.commit()
    if user is None:
        if call.pin_tries >= service.TRIES_PER_CALL:
            return _goodbye("That PIN is not right. Goodbye.")
        resp = VoiceResponse()
        _ask_pin(resp, call, "That PIN is not right. Enter your PIN, then press hash.")
        return xml(resp)
    return _language_menu(call, "Welcome.")


def _language_menu(call: ContentCall, intro: str = "") -> Response:
    langs = service.languages(session())
    session().commit()  # the draft, if this started it
    resp = VoiceResponse()
    gather = resp.gather(input="dtmf", num_digits=1, timeout=8, action=_url("/language", c=call.id), method="POST")
    if intro:
        gather.say(intro)
    gather.say(" ".join(f"To record in {LANGUAGE_NAMES.get(lang, lang)}, press {i}."
                        for i, lang in enumerate(langs, start=1)))
    resp.say("Goodbye.")
    resp.hangup()
    return xml(resp)


@bp.post("/language")
@twilio_signed
@_safe
def language() -> Response:
    call = _call()
    if call is None:
        return _goodbye()
    langs = service.languages(session())
    digits = request.form.get("Digits", "")
    if not (digits.isdigit() and 1 <= int(digits) <= len(langs)):
        return _language_menu(call, "That key is not a language.")
    return _prompt(call, langs[int(digits) - 1], after=None, at=None, reported=0)


@bp.post("/prompt")
@twilio_signed
@_safe
def prompt() -> Response:
    call = _call()
    if call is None:
        return _goodbye()
    args = request.args
    lang = args.get("l", "")
    if lang not in service.languages(session()):
        return _language_menu(call)
    reported = int(args["r"]) if args.get("r", "").isdigit() and len(args["r"]) < 10 else 0
    return _prompt(call, lang, after=args.get("after") or None, at=args.get("at") or None, reported=reported)


def _prompt(call: ContentCall, lang: str, *, after: str | None, at: str | None, reported: int) -> Response:
    """Say what happened to earlier takes, then name the next prompt, play its current recording, ask."""
    s = session()
    if lang not in service.languages(s):
        return _language_menu(call)
    resp = VoiceResponse()
    for take in service.unreported_refusals(s, call, reported):
        number = _number(take.prompt_id)
        resp.say(f"Prompt {number} was not kept: {take.reason}.")
        reported = max(reported, take.id)
    try:
        cell = content.cell(s, at, lang) if at else service.next_prompt(s, lang, after)
    except content.ContentError:  # a prompt removed from the draft meanwhile: the next one
        cell = service.next_prompt(s, lang, None)
    if cell is None:
        resp.say(f"Every prompt in {LANGUAGE_NAMES.get(lang, lang)} has a recording in the draft. Thank you.")
        resp.redirect(_url("/language-menu", c=call.id), method="POST")
        return xml(resp)
    ids = service.numbered(s)
    s.commit()  # the draft, if this started it
    q = {"c": call.id, "l": lang, "p": cell.prompt_id, "r": reported}
    gather = resp.gather(input="dtmf", num_digits=1, timeout=8, action=_url("/choose", **q), method="POST")
    gather.say(f"Prompt {ids.index(cell.prompt_id) + 1} of {len(ids)}, in {LANGUAGE_NAMES.get(lang, lang)}.")
    url = _current_audio(cell)
    if url:
        gather.say("It sounds like this now.")
        gather.play(url)
    gather.say("To record it, press 1. To hear it again, press 2. To skip it, press 9.")
    resp.say("Goodbye.")
    resp.hangup()
    return xml(resp)


def _number(prompt_id: str) -> int:
    ids = service.numbered(session())
    return ids.index(prompt_id) + 1 if prompt_id in ids else 0


def _current_audio(cell: content.Cell) -> str | None:
    """What plays for this cell in the draft now: the draft's take, or the starter (placeholder) file."""
    settings = _settings()
    base = settings.audio_base_url or (settings.public_base_url + "/audio")
    if cell.take is not None:
        return f"{base}/{cell.language}/{cell.audio_name}.{cell.take.sha256}.mp3"
    if (content.repo_root() / "audio" / cell.language / f"{cell.audio_name}.mp3").is_file():
        return f"{base}/{cell.language}/{cell.audio_name}.mp3"
    return None


@bp.post("/language-menu")
@twilio_signed
@_safe
def language_menu() -> Response:
    call = _call()
    return _language_menu(call) if call is not None else _goodbye()


@bp.post("/choose")
@twilio_signed
@_safe
def choose() -> Response:
    call = _call()
    if call is None:
        return _goodbye()
    args, digits = request.args, request.form.get("Digits", "")
    lang, pid, reported = args.get("l", ""), args.get("p", ""), args.get("r", "0")
    if digits == "1":
        return _record(call, lang, pid, reported)
    if digits == "9":
        return _prompt(call, lang, after=pid, at=None, reported=int(reported) if reported.isdigit() else 0)
    return _prompt(call, lang, after=None, at=pid, reported=int(reported) if reported.isdigit() else 0)


def _record(call: ContentCall, lang: str, pid: str, reported: str, intro: str = "") -> Response:
    q = {"c": call.id, "l": lang, "p": pid, "r": reported}
    resp = VoiceResponse()
    resp.say((intro + " " if intro else "") + "Record after the beep. Press hash when you have finished.")
    resp.record(action=_url("/recorded", **q), method="POST", max_length=MAX_SECONDS, timeout=10,
                finish_on_key="#", play_beep=True, trim="trim-silence",
                recording_status_callback=_settings().public_base_url + _url("/recording"),
                recording_status_callback_method="POST")
    resp.say("Nothing was recorded.")
    resp.redirect(_url("/prompt", c=call.id, l=lang, at=pid, r=reported), method="POST")
    return xml(resp)


@bp.post("/recorded")
@twilio_signed
@_safe
def recorded() -> Response:
    """<Record>'s action: the take exists; play it back and ask keep (1) or redo (2)."""
    call = _call()
    if call is None:
        return _goodbye()
    s, form, args = session(), request.form, request.args
    rsid = form.get("RecordingSid", "")
    if not (rsid.startswith("RE") and rsid.isalnum() and len(rsid) <= 64):
        resp = VoiceResponse()
        resp.say("Nothing was recorded.")
        resp.redirect(_url("/prompt", c=call.id, l=args.get("l", ""), at=args.get("p", ""), r=args.get("r", "0")),
                      method="POST")
        return xml(resp)
    take = service.record_take(s, call, lang=args.get("l", ""), prompt_id=args.get("p", ""),
                               recording_sid=form.get("RecordingSid", ""), url=form.get("RecordingUrl", ""),
                               duration=form.get("RecordingDuration", ""))
    s.commit()
    if form.get("Digits") == "hangup":
        return empty_voice()
    return _listen(call, take.id, form.get("RecordingUrl", ""), tries=0)


def _listen(call: ContentCall, take_id: int, recording_url: str, *, tries: int) -> Response:
    args = request.args
    q = {"c": call.id, "l": args.get("l", ""), "p": args.get("p", ""), "r": args.get("r", "0"), "t": take_id}
    resp = VoiceResponse()
    gather = resp.gather(input="dtmf", num_digits=1, timeout=8, action=_url("/take", **q), method="POST")
    gather.say("Here is your recording.")
    gather.play(recording_url)
    gather.say("To keep it, press 1. To record it again, press 2.")
    if tries >= 1:
        resp.say("Goodbye.")
        resp.hangup()
    else:
        resp.redirect(_url("/take", **q, k=tries + 1), method="POST")
    return xml(resp)


@bp.post("/take")
@twilio_signed
@_safe
def take() -> Response:
    """1: keep (fetched and processed in the background, into the draft); 2: record again."""
    call = _call()
    if call is None:
        return _goodbye()
    s, args = session(), request.args
    tid = args.get("t", "")
    take = service.take_of(s, call, int(tid)) if tid.isdigit() and len(tid) < 10 else None
    if take is None:
        return _goodbye()
    digits, reported = request.form.get("Digits", ""), args.get("r", "0")
    if digits == "1":
        service.keep(s, take)
        s.commit()
        resp = VoiceResponse()
        resp.say("Kept. It goes into the draft, for review.")
        resp.redirect(_url("/prompt", c=call.id, l=take.lang, after=take.prompt_id, r=reported), method="POST")
        return xml(resp)
    if digits == "2":
        service.discard(take)
        s.commit()
        return _record(call, take.lang, take.prompt_id, reported)
    tries = int(args["k"]) if args.get("k", "").isdigit() and len(args["k"]) < 3 else 0
    return _listen(call, take.id, take.remote_url or "", tries=tries)


@bp.post("/recording")
@twilio_signed
def recording() -> Response:
    """recordingStatusCallback (Twilio ignores the reply): a failed recording is marked so."""
    s, form = session(), request.form
    try:
        service.recording_status(s, form.get("RecordingSid", ""), form.get("RecordingStatus", ""))
        s.commit()
    except Exception:  # noqa: BLE001
        log.exception("content line recording status not stored RecordingSid=%s", form.get("RecordingSid", ""))
        s.rollback()
    return empty_voice()
