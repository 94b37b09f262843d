"""Voice webhooks: the IVR driven by ivr_scripts/voice/, the status callback and the voicemail callback.

Per step: parse the state from the (signed) URL, run the pure engine, apply its effects, store the
path's events, commit once, answer cached TwiML. The script is loaded and checked once, at start.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.datastructures import MultiDict

from hotline.db import utcnow
from hotline.menus import engine
from hotline.menus.engine import Context, Input, Kind, State
from hotline.menus.loader import load_script
from hotline.menus.schema import Node, Script
from hotline.phones import to_e164
from hotline.resources import resources_of
from hotline.services import ivr as service
from hotline.settings import Settings
from hotline.telephony import ivr as twiml
from hotline.telephony.signature import twilio_signed
from hotline.telephony.twiml import empty_voice, xml
from hotline.web import session
from hotline.web.errors import voice_safe

bp = Blueprint("voice", __name__, url_prefix="/twilio/voice")
SCRIPT_DIR = Path(__file__).resolve().parent.parent.parent / "ivr_scripts" / "voice"
MARKERS = {v: k for k, v in twiml.MARKERS.items()}


@dataclass(frozen=True)
class Runtime:
    script: Script
    settings: Settings
    audio_base: str
    now: Callable[[], datetime]
    events: service.EventWriter

    def context(self, from_: str, now: datetime) -> Context:
        country = service.country_for(from_)
        return Context(now=now, tz=self.settings.tz, country=country, own_number=country is not None,
                       parse_phone=lambda digits: to_e164(digits, default_region=country or "KH"))

    def render(self, step: engine.Step, call_id: int | None, numbers: tuple[str, ...] = (), *,
               ask_province: bool = False) -> Response:
        body = twiml.render(step.actions, audio_base=self.audio_base, public_base=self.settings.public_base_url,
                            caller_id=self.settings.hotline_number, numbers=numbers)
        return Response(twiml.with_call(body, call_id, ask_province=ask_province), status=200, mimetype="text/xml")


def init_app(app: Flask) -> None:
    """Load and check the voice script once; an invalid script stops the app from starting."""
    settings: Settings = app.config["HOTLINE"]
    script = load_script(app.config.get("IVR_SCRIPT_DIR") or SCRIPT_DIR)
    audio_base = settings.audio_base_url or (settings.public_base_url + "/audio")
    writer = service.EventWriter(resources_of(app).db,
                                 background=app.config.get("IVR_EVENTS_BACKGROUND", not app.testing))
    app.extensions["hotline.ivr"] = Runtime(script, settings, audio_base, app.config.get("IVR_CLOCK") or utcnow, writer)


def starter_script(app: Flask) -> Script:
    """The script loaded from ivr_scripts/voice/ at start (content version 0)."""
    return app.extensions["hotline.ivr"].script  # type: ignore[no-any-return]


def runtime() -> Runtime:
    """The runtime with the script of the content version this request serves (published, cached
    by version number: no database read per step; see hotline.web.content_live)."""
    from hotline.web.content_live import snapshot

    rt: Runtime = current_app.extensions["hotline.ivr"]
    script = snapshot().script
    return rt if script is rt.script else replace(rt, script=script)


def _int(value: str | None) -> int:
    return int(value) if value and value.isdigit() and len(value) < 10 else 0


def _input(st: State, marker: str, form: MultiDict[str, str], call_id: int | None) -> Input:
    if st.stage == "dial":
        # Only our own record of a "1" on the whisper counts as answered (see whisper() below).
        accepted = service.transfer_accepted(session(), call_id)
        return Input(Kind.DIAL, status=engine.ACCEPTED if accepted else form.get("DialCallStatus", ""))
    if st.stage == "record":
        return Input(Kind.DONE if marker == "done" else Kind.RECORDED)
    if marker in ("done", "timeout"):
        return Input(Kind.DONE if marker == "done" else Kind.SILENCE)
    digits = form.get("Digits", "")
    return Input(Kind.KEY, digits[:32]) if digits else Input(Kind.SILENCE)


def _run(rt: Runtime, call_id: int | None, st: State, inp: Input, form: MultiDict[str, str], *,
         ask_province: bool = False) -> Response:
    """Engine step, effects, events, one commit, TwiML. An ordinary step opens no session at all.

    `ask_province`: the caller was never asked their province; known when the call starts (from the
    caller's row, read anyway) and carried in the action URLs (`p=1`) until the question is asked."""
    from_, call_sid = form.get("From", ""), form.get("CallSid", "")
    ctx = replace(rt.context(from_, rt.now()), ask_province=ask_province)
    step = engine.step(rt.script, st, inp, ctx) if inp.kind != Kind.ENTER else engine.start(
        rt.script, ctx, lang=st.lang or None, resume=st.ref or None)
    numbers: tuple[str, ...] = ()
    if step.waits_for_dial:
        numbers = service.oncall_numbers(session(), rt.settings, ctx.country)
        if not numbers:  # nobody to ring: straight to the voice message
            ctx = replace(ctx, can_dial=False)
            step = engine.step(rt.script, st, inp, ctx) if inp.kind != Kind.ENTER else engine.start(
                rt.script, ctx, lang=st.lang or None, resume=st.ref or None)
    g.call_language = step.state.lang
    g.log_node = step.state.node
    if step.effects or inp.kind == Kind.ENTER:
        s = session()
        service.apply_effects(s, step.effects, call_id=call_id, call_sid=call_sid, from_=from_,
                              lang=step.state.lang, country=ctx.country)
        service.record_events(s, call_id, step.events, at=ctx.now)
        s.commit()  # the urgent case and the callback request exist before the caller hears anything
    else:
        # An ordinary step touches no database: its path events are written in batches.
        rt.events.put(service.event_rows(call_id, step.events, ctx.now))
    still = ask_province and not any(isinstance(e, engine.AskedProvince) for e in step.effects)
    return rt.render(step, call_id, numbers, ask_province=still)


@bp.post("")
@twilio_signed
@voice_safe
def incoming() -> Response:
    """A call arrives: the missed-call line rejects (free for the caller); the main line starts the menu."""
    rt, form, s = runtime(), request.form, session()
    call_sid, from_, to = form.get("CallSid", ""), form.get("From", ""), form.get("To", "")
    now = rt.now()
    if to in rt.settings.missed_call_numbers:
        # The reply is the same whatever happens below: <Reject> must be the first verb, always.
        try:
            service.missed_call(s, call_sid=call_sid, from_=from_, to=to, tz=rt.settings.tz, now=now)
            s.commit()
        except Exception:  # noqa: BLE001 - never answer a missed call, even when storing it failed
            current_app.logger.exception("missed call not stored CallSid=%s", call_sid)
            s.rollback()
        return xml(twiml.reject_busy())
    start = service.begin_call(s, rt.script, call_sid=call_sid, from_=from_, to=to, now=now)
    if request.args.get("recovered"):  # back from an error: to the main menu, never the resume offer
        st = State(rt.script.main, start.language or rt.script.default_language)
        return _run(rt, start.call_id, st, Input(Kind.ENTER), form, ask_province=start.ask_province)
    st = State("", start.language or "", ref=start.resume or "")
    return _run(rt, start.call_id, st, Input(Kind.ENTER), form, ask_province=start.ask_province)


@bp.post("/step")
@twilio_signed
@voice_safe
def step() -> Response:
    """Every menu step: the state comes from our own (signed) action URL, the key from Twilio."""
    rt, args, form = runtime(), request.args, request.form
    st = State(node=args.get("n", "")[:64], lang=args.get("l", "")[:8], stage=args.get("s", "")[:16],
               tries=_int(args.get("k")), wrong=_int(args.get("w")), ref=args.get("r", "")[:80])
    g.call_language = st.lang if st.lang in rt.script.languages else None
    call_id = _int(args.get("c")) or service.call_id_for(session(), form.get("CallSid", ""))
    return _run(rt, call_id, st, _input(st, MARKERS.get(args.get("e", ""), ""), form, call_id), form,
                ask_province=args.get("p") == "1")


@bp.post("/whisper")
@twilio_signed
def whisper() -> Response:
    try:
        return _whisper()
    except Exception:  # noqa: BLE001 - never a 500 on a leg; a person in danger is better put through
        current_app.logger.exception("whisper failed ParentCallSid=%s", request.form.get("ParentCallSid", ""))
        return xml(twiml.connect_leg())


def _whisper() -> Response:
    """What an on-call leg of the urgent <Dial> hears when it answers: "press 1 to take it".

    Only a 1 connects (an empty document bridges the call); no key (a voicemail greeting), another
    key, or a second lawyer after the first: <Hangup/> on that leg, which Twilio counts as not
    answered. The acceptance is written before the leg is bridged, so the Dial action can read it.
    """
    rt, args, form = runtime(), request.args, request.form
    lang = args.get("l", "")[:8]
    lang = lang if lang in rt.script.languages else rt.script.default_language
    node = rt.script.nodes.get(args.get("n", ""))
    if node is None or node.type != "urgent":
        node = next(n for n in rt.script.nodes.values() if n.type == "urgent")
    if args.get("s") != "key":
        body = twiml.whisper(State(node.id, lang), _whisper_plays(rt, node, lang), audio_base=rt.audio_base,
                             public_base=rt.settings.public_base_url)
        return xml(twiml.with_call(body, _int(args.get("c")) or None))
    if form.get("Digits", "") != "1":
        return xml(twiml.drop_leg())
    s = session()
    try:
        accepted = service.accept_transfer(s, call_id=_int(args.get("c")) or None,
                                           parent_sid=form.get("ParentCallSid", ""), leg_sid=form.get("CallSid", ""),
                                           phone=form.get("To", "") or form.get("Called", ""), now=rt.now())
        s.commit()
    except Exception:  # noqa: BLE001 - a person in danger is better put through than dropped
        current_app.logger.exception("transfer acceptance not stored ParentCallSid=%s", form.get("ParentCallSid"))
        s.rollback()
        accepted = True  # the Dial action then offers the recording too: nothing is lost
    return xml(twiml.connect_leg() if accepted else twiml.drop_leg())


def _whisper_plays(rt: Runtime, node: Node, lang: str) -> tuple[engine.Play, ...]:
    """The whisper in the caller's language first (it tells the lawyer which one), then the others."""
    pid = node.prompts["whisper"]
    order = [lang, *(other for other in rt.script.languages if other != lang)]
    return tuple(engine.Play(pid, lg, rt.script.audio(pid, lg)) for lg in order)


@bp.post("/status")
@twilio_signed
def status() -> Response:
    """Call status callback: duration, outcome, hang-up point. Unknown CallSids are answered 200 too."""
    s = session()
    form = request.form
    try:
        service.finish_call(s, call_sid=form.get("CallSid", ""), status=form.get("CallStatus", ""),
                            duration=form.get("CallDuration", ""), now=utcnow())
        s.commit()
    except Exception:  # noqa: BLE001 - Twilio ignores the reply; log and answer 200
        current_app.logger.exception("status callback failed CallSid=%s", form.get("CallSid", ""))
        s.rollback()
    return empty_voice()


@bp.post("/recording")
@twilio_signed
def recording() -> Response:
    """<Record>'s recordingStatusCallback: store the voicemail once and queue it for legal aid."""
    s = session()
    form: Any = request.form
    if form.get("RecordingStatus", "completed") == "completed":
        try:
            service.store_recording(s, call_sid=form.get("CallSid", ""), recording_sid=form.get("RecordingSid", ""),
                                    url=form.get("RecordingUrl", ""), duration=form.get("RecordingDuration", ""))
            s.commit()
        except Exception:  # noqa: BLE001
            current_app.logger.exception("recording not stored RecordingSid=%s", form.get("RecordingSid", ""))
            s.rollback()
    return empty_voice()
