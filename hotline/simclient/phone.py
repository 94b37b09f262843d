"""A Twilio voice call, imitated: post the webhook, then run the TwiML the app answers verb by verb.

The state between two caller inputs is plain JSON (`CallState.to_dict`), so the browser simulator
can keep it in Redis between requests and several web workers can serve one call.

What it imitates (see the reference notes on Twilio's interpreter):
- relative URLs resolve against the current document's URL; a missing `action` means that URL;
- `<Gather>` with no input falls through to the next verb (unless `actionOnEmptyResult`);
- `<Redirect>` fetches a new document; verbs after a Gather/Record/Dial/Redirect are never reached;
- `<Record>` posts RecordingUrl/RecordingSid/RecordingDuration/Digits to its action, then the
  recording status callback;
- `<Dial>` reports DialCallStatus to its action, or continues in the same document without one; a
  `<Number url>` (a whisper) is run on the answering leg with its own CallSid and ParentCallSid, and
  the leg is connected only if that document ends without `<Hangup>`. A voicemail that picks up
  presses nothing and is reported as `completed`, as the real network may;
- `<Reject>` as the first verb leaves the call unanswered (status busy/no-answer);
- `<Hangup>`, the end of the verbs, or the caller hanging up ends the call, and the status callback is
  posted with CallStatus and CallDuration.
"""

from __future__ import annotations

import secrets
import time
import xml.etree.ElementTree as ET  # noqa: S405  # parses our own app's answers, never third-party XML
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urljoin

from hotline.phones import country_of
from hotline.simclient.posters import Poster, Reply
from hotline.simclient.prompts import PromptCatalogue
from hotline.simclient.sms import SmsResult, send_sms

Event = dict[str, Any]
KEYS = "0123456789*#"
DIAL_ANSWERED_SECONDS = 30  # how long the simulated lawyer "talks" when the user answers as them
VOICEMAIL_SECONDS = 20  # how long a voicemail greeting plays on a leg that presses nothing
ACCEPT, VOICEMAIL, NO_ANSWER = "accept", "voicemail", "no-answer"  # what the dialled phone does


@dataclass(frozen=True)
class Recording:
    sid: str
    url: str
    duration: int


@dataclass
class CallState:
    call_sid: str
    from_: str
    to: str
    started: float
    doc_url: str = ""
    twiml: str = ""
    pc: int = 0  # index of the next top-level verb to run in `twiml`
    waiting: dict[str, Any] | None = None  # what the call waits for: a Gather, Record or Dial
    status: str = "ringing"  # ringing -> in-progress -> completed / busy / no-answer / failed
    answered: bool = False
    requests: int = 0
    account_sid: str = ""

    @property
    def ended(self) -> bool:
        return self.status not in ("ringing", "in-progress")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CallState:
        return cls(**data)


@dataclass
class Step:
    """What one caller action produced: events in order, and what the call now waits for."""

    state: CallState
    events: list[Event] = field(default_factory=list)

    @property
    def waiting(self) -> dict[str, Any] | None:
        return self.state.waiting

    @property
    def ended(self) -> bool:
        return self.state.ended


class CallError(Exception):
    """The caller tried something the call cannot do now (e.g. keys when nothing listens)."""


def parse_twiml(text: str) -> ET.Element:
    root = ET.fromstring(text.strip().encode("utf-8"))  # noqa: S314  # our own app's TwiML
    if root.tag != "Response":
        raise ValueError(f"root element is <{root.tag}>, not <Response>")
    return root


def _bool(value: str | None) -> bool:
    return (value or "").lower() == "true"


class PhoneClient:
    """Places simulated calls and sends simulated texts against one app, as Twilio would."""

    def __init__(self, poster: Poster, *, account_sid: str, hotline_number: str,
                 prompts: PromptCatalogue | None = None, voice_path: str = "/twilio/voice",
                 status_path: str = "/twilio/voice/status", sms_path: str = "/twilio/sms",
                 max_requests: int = 60, clock: Callable[[], float] = time.time):
        self.poster = poster
        self.account_sid = account_sid
        self.hotline_number = hotline_number
        self.prompts = prompts or PromptCatalogue()
        self.voice_url = poster.base_url + voice_path
        self.status_url = poster.base_url + status_path
        self.sms_url = poster.base_url + sms_path
        self.max_requests = max_requests  # a redirect loop in a script ends the call instead of spinning
        self.clock = clock

    # -- the caller's actions --------------------------------------------------------------------

    def start_call(self, from_: str, to: str | None = None, *, call_sid: str | None = None) -> Step:
        state = CallState(call_sid or "CA" + secrets.token_hex(16), from_, to or self.hotline_number,
                          self.clock(), account_sid=self.account_sid)
        step = Step(state)
        self._fetch(step, "POST", self.voice_url, {})
        self._run(step)
        return step

    def press(self, state: CallState, digits: str | None) -> Step:
        """Keys for the waiting Gather; None or "" is silence (the Gather times out)."""
        if digits and not set(digits) <= set(KEYS):
            raise CallError(f"{digits!r}: a phone has only the keys {KEYS}")
        step = Step(state)
        gather = self._take_wait(state, "gather")
        finish = gather.get("finishOnKey", "#")
        keys = digits or ""
        finished_on = ""
        if finish and finish in keys:
            keys, finished_on = keys[:keys.index(finish)], finish
        if gather.get("numDigits"):
            keys = keys[:int(gather["numDigits"])]
        step.events.append({"kind": "keys", "digits": digits or "", "silence": not keys})
        if keys or _bool(gather.get("actionOnEmptyResult")):
            self._fetch(step, gather["method"], gather["action"], {"Digits": keys, "FinishedOnKey": finished_on})
        self._run(step)
        return step

    def record(self, state: CallState, recording: Recording, digits: str = "#") -> Step:
        """Finish the waiting Record with `recording`, ended by key `digits` (or "hangup")."""
        step = Step(state)
        rec = self._take_wait(state, "record")
        params = {"RecordingUrl": recording.url, "RecordingSid": recording.sid,
                  "RecordingDuration": str(recording.duration), "Digits": digits}
        step.events.append({"kind": "recorded", "sid": recording.sid, "url": recording.url,
                            "duration": recording.duration})
        reply = self._fetch(step, rec["method"], rec["action"], params, run=digits != "hangup")
        if rec.get("recordingStatusCallback"):
            self._post_async(step, rec["recordingStatusCallback"], {
                "RecordingSid": recording.sid, "RecordingUrl": recording.url, "RecordingStatus": "completed",
                "RecordingDuration": str(recording.duration), "RecordingChannels": "1",
                "RecordingSource": "RecordVerb"}, method=rec.get("recordingStatusCallbackMethod", "POST"))
        if digits == "hangup" or reply is None:
            self._end(step, "completed")
        else:
            self._run(step)
        return step

    def dial_result(self, state: CallState, answered: bool | str) -> Step:
        """What happens at the dialled phone: "accept" (the lawyer answers and presses 1 on the
        whisper; True means the same), "voicemail" (a voicemail picks up and presses nothing) or
        "no-answer" (False). A <Number url> is run on that leg as Twilio runs it: the leg is
        connected only if its document ends without <Hangup>."""
        outcome = {True: ACCEPT, False: NO_ANSWER}.get(answered, answered) if isinstance(answered, bool) else answered
        if outcome not in (ACCEPT, VOICEMAIL, NO_ANSWER):
            raise CallError(f"{outcome!r}: the dialled phone can {ACCEPT}, {VOICEMAIL} or {NO_ANSWER}")
        step = Step(state)
        dial = self._take_wait(state, "dial")
        bridged = False
        if outcome != NO_ANSWER and dial["numbers"]:
            legs = dial.get("legs") or [{"number": dial["numbers"][0], "url": None, "method": "POST"}]
            bridged = self._leg(step, legs[0], dial, press="1" if outcome == ACCEPT else None)
        # A voicemail "answered" too: Twilio may report completed although nobody was connected.
        status = "no-answer" if outcome == NO_ANSWER else "completed"
        duration = DIAL_ANSWERED_SECONDS if bridged else (VOICEMAIL_SECONDS if outcome == VOICEMAIL else 0)
        step.events.append({"kind": "dial-result", "status": status, "numbers": dial["numbers"],
                            "outcome": outcome, "bridged": bridged})
        if dial.get("action"):
            self._fetch(step, dial["method"], dial["action"], {
                "DialCallStatus": status, "DialCallSid": "CA" + secrets.token_hex(16),
                "DialCallDuration": str(duration), "DialBridged": "true" if bridged else "false"})
        self._run(step)
        return step

    def _leg(self, step: Step, leg: dict[str, Any], dial: dict[str, Any], *, press: str | None) -> bool:
        """Run a <Number url> document on the answering leg; True if the leg ends up connected."""
        if not leg.get("url"):
            return press is not None  # unscreened: whoever picks up is connected (a voicemail too)
        state = step.state
        params = {"AccountSid": state.account_sid, "ApiVersion": "2010-04-01", "CallSid": "CA" + secrets.token_hex(16),
                  "ParentCallSid": state.call_sid, "CallStatus": "in-progress", "Direction": "outbound-dial",
                  "From": dial.get("caller_id") or self.hotline_number, "To": leg["number"], "Called": leg["number"],
                  "Caller": dial.get("caller_id") or self.hotline_number}
        url, method = urljoin(state.doc_url, leg["url"]), leg.get("method", "POST")
        extra: dict[str, str] = {}
        for _ in range(5):  # a whisper is short; a loop in it ends as not connected
            reply = self.poster.request(method, url, {**params, **extra})
            step.events.append({"kind": "leg-webhook", "number": leg["number"], "method": method, "url": url,
                                "status": reply.status, "twiml": reply.text})
            if reply.status != 200:
                return False
            try:
                verbs = list(parse_twiml(reply.text))
            except (ET.ParseError, ValueError):
                return False
            nxt: tuple[str, str, dict[str, str]] | None = None
            for verb in verbs:
                if verb.tag == "Gather":
                    step.events.extend({**self._media_event(c), "leg": leg["number"]} for c in verb)
                    if press is not None:
                        step.events.append({"kind": "leg-keys", "number": leg["number"], "digits": press})
                        nxt = (urljoin(url, verb.get("action") or url), verb.get("method", "POST").upper(),
                               {"Digits": press})
                        press = None
                        break
                elif verb.tag in ("Play", "Say", "Pause"):
                    step.events.append({**self._media_event(verb), "leg": leg["number"]})
                elif verb.tag in ("Hangup", "Reject"):
                    step.events.append({"kind": "leg-hangup", "number": leg["number"]})
                    return False
                elif verb.tag == "Redirect":
                    nxt = (urljoin(url, (verb.text or "").strip()), verb.get("method", "POST").upper(), {})
                    break
            if nxt is None:
                return True  # the document ended without hanging up: the leg is bridged
            url, method, extra = nxt
        return False

    def hangup(self, state: CallState) -> Step:
        step = Step(state)
        if not state.ended:
            step.events.append({"kind": "caller-hangup"})
            state.waiting = None
            self._end(step, "completed")
        return step

    def send_sms(self, from_: str, body: str, to: str | None = None) -> SmsResult:
        return send_sms(self.poster, self.sms_url, account_sid=self.account_sid, from_=from_,
                        to=to or self.hotline_number, body=body)

    # -- the interpreter ------------------------------------------------------------------------

    def _take_wait(self, state: CallState, kind: str) -> dict[str, Any]:
        if state.ended:
            raise CallError("the call has ended")
        if not state.waiting or state.waiting["kind"] != kind:
            raise CallError(f"the call is not waiting for {kind} (it waits for "
                            f"{state.waiting['kind'] if state.waiting else 'nothing'})")
        wait, state.waiting = state.waiting, None
        return wait

    def _params(self, state: CallState) -> dict[str, str]:
        return {"AccountSid": state.account_sid, "ApiVersion": "2010-04-01", "CallSid": state.call_sid,
                "CallStatus": state.status, "Called": state.to, "Caller": state.from_, "Direction": "inbound",
                "From": state.from_, "FromCountry": country_of(state.from_) or "", "FromCity": "",
                "To": state.to, "ToCountry": country_of(state.to) or ""}

    def _fetch(self, step: Step, method: str, url: str, extra: dict[str, str], *, run: bool = True) -> Reply | None:
        """Request a new TwiML document; it replaces the current one (unless `run` is False)."""
        state = step.state
        state.requests += 1
        if state.requests > self.max_requests:
            step.events.append({"kind": "error", "message": f"more than {self.max_requests} requests in one call"})
            self._end(step, "completed" if state.answered else "failed")
            return None
        params = {**self._params(state), **extra}
        reply = self.poster.request(method, url, params)
        step.events.append({"kind": "webhook", "method": method, "url": url, "params": params,
                            "status": reply.status, "twiml": reply.text})
        if not run:
            return reply
        if reply.status != 200:
            # Twilio says "an application error has occurred" and hangs up.
            step.events.append({"kind": "error", "message": f"HTTP {reply.status} from {url}"})
            self._end(step, "failed" if not state.answered else "completed")
            return None
        try:
            parse_twiml(reply.text)
        except (ET.ParseError, ValueError) as exc:
            step.events.append({"kind": "error", "message": f"not valid TwiML from {url}: {exc}"})
            self._end(step, "failed" if not state.answered else "completed")
            return None
        state.doc_url, state.twiml, state.pc = url, reply.text, 0
        return reply

    def _post_async(self, step: Step, url: str, extra: dict[str, str], method: str = "POST") -> None:
        """A callback whose answer Twilio ignores (status callbacks)."""
        params = {**self._params(step.state), **extra}
        url = urljoin(step.state.doc_url or self.voice_url, url)
        reply = self.poster.request(method, url, params)
        step.events.append({"kind": "callback", "method": method, "url": url, "params": params,
                            "status": reply.status, "twiml": reply.text})

    def _end(self, step: Step, status: str) -> None:
        state = step.state
        if state.ended:
            return
        state.status, state.waiting = status, None
        duration = int(self.clock() - state.started) if state.answered else 0
        self._post_async(step, self.status_url, {"CallDuration": str(duration), "Duration": str((duration + 59) // 60),
                                                 "CallbackSource": "call-progress-events", "SequenceNumber": "0"})
        step.events.append({"kind": "ended", "status": status, "duration": duration})

    def _answer(self, state: CallState) -> None:
        if not state.answered:
            state.answered, state.status = True, "in-progress"

    def _run(self, step: Step) -> None:
        """Run verbs from the current position until the call waits for the caller or ends."""
        state = step.state
        while not state.ended and state.waiting is None:
            verbs = list(parse_twiml(state.twiml))
            if state.pc >= len(verbs):
                self._answer(state)
                self._end(step, "completed")  # no more verbs: Twilio hangs up
                return
            verb = verbs[state.pc]
            state.pc += 1
            first = state.pc == 1 and not state.answered
            if verb.tag == "Reject" and first:
                step.events.append({"kind": "reject", "reason": verb.get("reason", "rejected")})
                self._end(step, "busy" if verb.get("reason") == "busy" else "no-answer")
                return
            self._answer(state)
            self._verb(step, verb)

    def _resolve(self, state: CallState, url: str | None) -> str:
        return urljoin(state.doc_url, url) if url else state.doc_url

    def _verb(self, step: Step, verb: ET.Element) -> None:
        state = step.state
        tag = verb.tag
        if tag in ("Play", "Say", "Pause"):
            step.events.append(self._media_event(verb))
        elif tag == "Gather":
            step.events.extend(self._media_event(child) for child in verb)
            state.waiting = {"kind": "gather", "action": self._resolve(state, verb.get("action")),
                             "method": verb.get("method", "POST").upper(), "numDigits": verb.get("numDigits"),
                             "finishOnKey": verb.get("finishOnKey", "#"), "timeout": verb.get("timeout", "5"),
                             "actionOnEmptyResult": verb.get("actionOnEmptyResult", "false")}
        elif tag == "Record":
            if verb.get("playBeep", "true") != "false":
                step.events.append({"kind": "beep"})
            state.waiting = {"kind": "record", "action": self._resolve(state, verb.get("action")),
                             "method": verb.get("method", "POST").upper(), "maxLength": verb.get("maxLength", "3600"),
                             "finishOnKey": verb.get("finishOnKey", "1234567890*#"),
                             "recordingStatusCallback": verb.get("recordingStatusCallback"),
                             "recordingStatusCallbackMethod": verb.get("recordingStatusCallbackMethod", "POST")}
        elif tag == "Dial":
            numbers = [(n.text or "").strip() for n in verb if n.tag in ("Number", "Client", "Sip")]
            if (verb.text or "").strip():
                numbers.append((verb.text or "").strip())
            legs = [{"number": (n.text or "").strip(), "url": n.get("url"), "method": n.get("method", "POST").upper()}
                    for n in verb if n.tag in ("Number", "Client", "Sip")]
            step.events.append({"kind": "dial", "numbers": numbers})
            state.waiting = {"kind": "dial", "numbers": numbers, "legs": legs, "caller_id": verb.get("callerId"),
                             "method": verb.get("method", "POST").upper(),
                             "action": self._resolve(state, verb.get("action")) if verb.get("action") else None,
                             "timeout": verb.get("timeout", "30")}
        elif tag == "Redirect":
            self._fetch(step, verb.get("method", "POST").upper(), self._resolve(state, (verb.text or "").strip()), {})
        elif tag in ("Hangup", "Reject"):
            step.events.append({"kind": tag.lower()})
            self._end(step, "completed")
        else:
            step.events.append({"kind": "unsupported", "verb": tag})

    def _media_event(self, verb: ET.Element) -> Event:
        if verb.tag == "Play":
            url = (verb.text or "").strip()
            return {"kind": "play", "url": url, "loop": verb.get("loop", "1"), "text": self.prompts.text_for(url),
                    "name": self.prompts.name_for(url), "texts": self.prompts.texts_for(url)}
        if verb.tag == "Say":
            return {"kind": "say", "text": (verb.text or "").strip(), "language": verb.get("language", ""),
                    "voice": verb.get("voice", "")}
        if verb.tag == "Pause":
            return {"kind": "pause", "length": verb.get("length", "1")}
        return {"kind": "unsupported", "verb": verb.tag}
