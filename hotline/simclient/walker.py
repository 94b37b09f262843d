"""Walk every path of a voice script through the real webhooks, breadth-first and bounded.

Each path is replayed as a fresh call (the app keys its state by CallSid), so what is found is what a
caller pressing those keys would hear. A path stops growing when the call ends, when it reaches
`max_depth` inputs, or when it waits in a document already explored (same URL and TwiML, CallSid blanked).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from hotline.simclient.phone import CallState, PhoneClient, Recording, Step

SILENCE = ""  # a path element meaning "pressed nothing; the Gather timed out"
RECORD = "record"  # leave the recording the recorder supplies
NO_ANSWER = "no-answer"  # nobody picks up the Dial
ANSWER = "answer"  # the dialled party answers and presses 1 on the whisper
VOICEMAIL = "voicemail"  # a voicemail picks up the dialled phone and presses nothing
GATHER_INPUTS = tuple("123456789*#0") + (SILENCE,)


@dataclass(frozen=True)
class WalkStep:
    path: tuple[str, ...]  # the inputs from the start of the call
    twiml: str  # the last TwiML document the app answered on this path
    waiting: str | None  # gather / record / dial, or None when the call ended
    status: str  # the call's status after the last input
    events: list[dict[str, Any]] = field(default_factory=list, compare=False)  # what the last input produced

    @property
    def played(self) -> list[str]:
        """Prompt names (or spoken text) heard after the last input."""
        return [e.get("name") or e.get("text") or "" for e in self.events if e["kind"] in ("play", "say")]


def apply(client: PhoneClient, state: CallState, item: str, recorder: Callable[[str], Recording]) -> Step:
    """One path element against a waiting call."""
    kind = state.waiting["kind"] if state.waiting else None
    if kind == "record":
        return client.record(state, recorder(state.call_sid))
    if kind == "dial":
        return client.dial_result(state, {ANSWER: "accept", VOICEMAIL: "voicemail"}.get(item, "no-answer"))
    return client.press(state, item or None)


def inputs_for(waiting: dict[str, Any], keys: Iterable[str]) -> list[str]:
    if waiting["kind"] == "record":
        return [RECORD]
    if waiting["kind"] == "dial":
        return [NO_ANSWER, ANSWER, VOICEMAIL]
    return list(keys)


def replay(client: PhoneClient, from_: str, path: Iterable[str], *, to: str | None = None,
           recorder: Callable[[str], Recording] | None = None) -> Step:
    """Place a call and give it `path`; returns the last step (the call is left as it is)."""
    rec = recorder or placeholder_recorder(client.poster.base_url)
    step = client.start_call(from_, to)
    for item in path:
        if step.ended or step.waiting is None:
            break
        step = apply(client, step.state, item, rec)
    return step


def _key(step: Step) -> str:
    # The document's URL matters too: its relative URLs resolve against it.
    state = step.state
    return f"{step.waiting['kind'] if step.waiting else ''} {state.doc_url} {state.twiml}".replace(state.call_sid, "CA")


def fresh_callers(prefix: str = "+85512", start: int = 100000) -> Callable[[int], str]:
    """A new caller number for each path (`+85512100000`, `+85512100001`, ...): a script that remembers
    callers (their language, a message to resume) then meets every path as a first-time caller."""
    return lambda i: f"{prefix}{start + i:06d}"


def walk(client: PhoneClient, from_: str | Callable[[int], str], *, to: str | None = None,
         keys: Iterable[str] = GATHER_INPUTS, max_depth: int = 4, max_paths: int = 400,
         recorder: Callable[[str], Recording] | None = None,
         hang_up: bool = True) -> list[WalkStep]:
    """Every (path, TwiML) the script can reach within the bounds, shortest paths first.

    `from_` is one number for every path, or a function of the path's index (see `fresh_callers`)."""
    keys = tuple(keys)
    seen: set[str] = set()
    out: list[WalkStep] = []
    queue: deque[tuple[str, ...]] = deque([()])
    while queue and len(out) < max_paths:
        path = queue.popleft()
        step = replay(client, from_ if isinstance(from_, str) else from_(len(out)), path, to=to, recorder=recorder)
        out.append(WalkStep(path, step.state.twiml, step.waiting["kind"] if step.waiting else None,
                            step.state.status, step.events))
        if step.waiting is not None:
            key = _key(step)
            if len(path) < max_depth and key not in seen:
                seen.add(key)
                queue.extend(path + (item,) for item in inputs_for(step.waiting, keys))
            if hang_up:
                client.hangup(step.state)
    return out


def placeholder_recorder(base_url: str) -> Callable[[str], Recording]:
    """A recording that was never stored (for walks that only need the webhooks' answers)."""
    import secrets

    def record(_call_sid: str) -> Recording:
        sid = "RE" + secrets.token_hex(16)
        return Recording(sid, f"{base_url}/simulator/recordings/{sid}", 3)

    return record
