"""Engine steps -> TwiML, with the `twilio` library.

The state a caller is in travels in the action URLs (`/twilio/voice/step?n=main&l=km...`): Twilio's
signature covers the URL, so it cannot be forged, and a step needs no read of the call's state.
A step's TwiML depends only on the step and a few settings, so it is rendered once and cached; the
call's row id is put in afterwards (the `__CALL__` placeholder).
"""

from __future__ import annotations

from functools import lru_cache
from urllib.parse import urlencode

from twilio.twiml.voice_response import VoiceResponse

from hotline.menus.engine import Action, Dial, Gather, Hangup, Play, Record, State

STEP_PATH = "/twilio/voice/step"
RECORDING_PATH = "/twilio/voice/recording"
WHISPER_PATH = "/twilio/voice/whisper"  # what an on-call leg hears before it is connected
WHISPER_TIMEOUT = 6  # seconds the on-call person has to press 1 once the whisper has played
CALL_PLACEHOLDER = "__CALL__"
MARKERS = {"timeout": "t", "done": "d"}  # what the Redirect after a Gather/Record says happened


def step_url(st: State, on: str | None = None) -> str:
    """Root-relative URL of the next step, carrying the state (and `e=` when nothing was pressed)."""
    q = [("c", CALL_PLACEHOLDER), ("n", st.node), ("l", st.lang)]
    for key, value in (("s", st.stage), ("k", st.tries), ("w", st.wrong), ("r", st.ref)):
        if value:
            q.append((key, str(value)))
    if on:
        q.append(("e", MARKERS[on]))
    return f"{STEP_PATH}?{urlencode(q)}"


def play_url(audio_base: str, play: Play) -> str:
    return f"{audio_base}/{play.lang}/{play.audio}.mp3"


def whisper_url(public_base: str, st: State, *, key: bool = False) -> str:
    """Absolute URL of the whisper for the call's on-call legs (the call id is filled in later)."""
    q = [("c", CALL_PLACEHOLDER), ("n", st.node), ("l", st.lang)] + ([("s", "key")] if key else [])
    return f"{public_base}{WHISPER_PATH}?{urlencode(q)}"


@lru_cache(maxsize=4096)
def render(actions: tuple[Action, ...], *, audio_base: str, public_base: str, caller_id: str,
           numbers: tuple[str, ...] = ()) -> str:
    """TwiML for a step's actions (with the call-id placeholder). Pure and cached."""
    resp = VoiceResponse()
    for action in actions:
        if isinstance(action, Play):
            resp.play(play_url(audio_base, action))
        elif isinstance(action, Gather):
            gather = resp.gather(action=step_url(action.state), method="POST", timeout=action.timeout,
                                 num_digits=action.num_digits, finish_on_key=action.finish_on_key)
            for play in action.plays:
                gather.play(play_url(audio_base, play))
            # Nothing pressed: Twilio falls through to here, so silence is counted, never dead air.
            resp.redirect(step_url(action.state, action.on_empty), method="POST")
        elif isinstance(action, Dial):
            dial = resp.dial(action=step_url(action.state), method="POST", timeout=action.timeout,
                             caller_id=caller_id)
            # Screened: each leg hears the whisper first and is connected only if it presses 1, so a
            # voicemail that picks up is never put through to the caller (hotline.web.voice.whisper).
            for number in numbers:
                dial.number(number, url=whisper_url(public_base, action.state), method="POST")
        elif isinstance(action, Record):
            resp.record(action=step_url(action.state), method="POST", max_length=action.max_length,
                        timeout=action.timeout, finish_on_key="1234567890*#", play_beep=True,
                        recording_status_callback=public_base + RECORDING_PATH,
                        recording_status_callback_method="POST", recording_status_callback_event="completed")
            # A caller who says nothing: Twilio skips the action and goes on here.
            resp.redirect(step_url(action.state, "done"), method="POST")
        elif isinstance(action, Hangup):
            resp.hangup()
    return str(resp.to_xml())


@lru_cache(maxsize=64)
def whisper(st: State, plays: tuple[Play, ...], *, audio_base: str, public_base: str) -> str:
    """The on-call leg's screen: the prompt (keys interrupt it), then a short wait for "1". No key
    (a voicemail greeting, nobody there): <Hangup/>, which Twilio counts as this leg not answering."""
    resp = VoiceResponse()
    gather = resp.gather(action=whisper_url(public_base, st, key=True), method="POST", num_digits=1,
                         timeout=WHISPER_TIMEOUT)
    for play in plays:
        gather.play(play_url(audio_base, play))
    resp.hangup()
    return str(resp.to_xml())


def connect_leg() -> str:
    """The on-call person accepted: an empty document ends the whisper and bridges the call."""
    return str(VoiceResponse().to_xml())


def drop_leg() -> str:
    """Not accepted (another key, or someone else took the call first): this leg only is hung up."""
    resp = VoiceResponse()
    resp.hangup()
    return str(resp.to_xml())


def with_call(twiml: str, call_id: int | None, *, ask_province: bool = False) -> str:
    """The call's row id into the cached TwiML's URLs; and `p=1` while the caller has a province
    question to come (hotline.web.voice), which keeps the cache to one entry per step."""
    return twiml.replace(CALL_PLACEHOLDER, str(call_id or "") + ("&amp;p=1" if ask_province else ""))


def reject_busy() -> str:
    """The missed-call line: never answered, so the caller pays nothing."""
    resp = VoiceResponse()
    resp.reject(reason="busy")
    return str(resp.to_xml())
