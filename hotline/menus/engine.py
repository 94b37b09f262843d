"""The menu engine: a pure function of (script, call state, input, context) -> the next step.

No Flask, Twilio or database here. A step says what the caller hears and what they may do next
(`actions`), what happened (`events`, stored for reporting) and what the hotline must do
(`effects`: open an urgent case, store a callback request, remember a language). The web layer
carries the state in the action URLs and applies the effects; `hotline.telephony.ivr` turns the
actions into TwiML. The clock is passed in (`Context.now`), so a whole tree is cheap to test.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, tzinfo
from enum import StrEnum

from hotline.menus.loader import CONTINUE
from hotline.menus.schema import REPEAT, Node, Route, Script

WHEN = {"1": "now", "2": "evening", "3": "weekend"}
# The Dial action's status when an on-call person pressed 1 on the whisper (the web layer knows it
# from its own record, never from DialCallStatus: a voicemail that picks up also says "completed").
ACCEPTED = "accepted"


@dataclass(frozen=True)
class State:
    """Where a call is: node, language, stage inside the node, silences and wrong keys so far."""

    node: str
    lang: str
    stage: str = ""  # message: p0, p1.. or after; callback: confirm, number, consent_*, when; urgent: dial, record
    tries: int = 0
    wrong: int = 0
    ref: str = ""  # resume node: "message_node:part" to continue


class Kind(StrEnum):
    ENTER = "enter"
    KEY = "key"
    SILENCE = "silence"  # the Gather timed out
    DONE = "done"  # a message part played to the end; a Record heard nothing
    DIAL = "dial"  # the <Dial> ended with `status`
    RECORDED = "recorded"


@dataclass(frozen=True)
class Input:
    kind: Kind
    digits: str = ""
    status: str = ""


@dataclass(frozen=True)
class Context:
    now: datetime
    tz: tzinfo
    country: str | None = None  # of the caller's number: picks local numbers, on-call list
    own_number: bool = True  # the caller ID is a number we can call back
    can_dial: bool = True  # someone is on call to ring (the web layer knows)
    ask_province: bool = False  # the caller was never asked their province (the web layer knows)
    parse_phone: Callable[[str], str | None] = field(default=lambda _digits: None, compare=False)


# -- actions: what the caller hears and does --------------------------------------------------------

@dataclass(frozen=True)
class Play:
    prompt: str
    lang: str
    audio: str


@dataclass(frozen=True)
class Gather:
    """Plays that keys interrupt; then wait `timeout` s. No key: go to `state` with `on_empty`."""

    plays: tuple[Play, ...]
    state: State
    timeout: int
    num_digits: int | None = 1
    finish_on_key: str = ""
    on_empty: str = "timeout"  # or "done" (a message part played to its end)


@dataclass(frozen=True)
class Dial:
    """Ring the on-call legal-aid numbers (the web layer knows them); the result comes to `state`."""

    state: State
    timeout: int


@dataclass(frozen=True)
class Record:
    state: State
    max_length: int
    timeout: int


@dataclass(frozen=True)
class Hangup:
    pass


Action = Play | Gather | Dial | Record | Hangup


# -- effects: what the hotline must do --------------------------------------------------------------

@dataclass(frozen=True)
class SetLanguage:
    lang: str
    remember: bool  # an explicit choice is remembered for the number; a default after silence is not


@dataclass(frozen=True)
class OpenUrgentCase:
    pass


@dataclass(frozen=True)
class SetCaseCategory:
    category: str  # the caller's answer to the question after the urgent recording


@dataclass(frozen=True)
class RequestCallback:
    phone: str | None  # None: the number the caller is calling from
    for_someone_else: bool


@dataclass(frozen=True)
class SetCallbackTime:
    when: str  # now | evening | weekend


@dataclass(frozen=True)
class SetConsent:
    """The caller asked for someone else: may we contact that person ("contact"), may we share the
    details with a partner organisation ("share")? Not answering leaves it unknown (no effect)."""

    question: str  # contact | share
    answer: bool


@dataclass(frozen=True)
class AskedProvince:
    """The province question is being asked: never again for this caller, answered or not."""


@dataclass(frozen=True)
class SetProvince:
    code: str  # hotline.services.places code, from the caller's key


Effect = (SetLanguage | OpenUrgentCase | RequestCallback | SetCallbackTime | SetConsent | SetCaseCategory
          | AskedProvince | SetProvince)
# Callback stages asked after another person's number, in order (each only if the node has its prompt).
CONSENT_STAGES = ("consent_contact", "consent_share")


@dataclass(frozen=True)
class Event:
    kind: str
    node: str | None
    detail: str | None = None


@dataclass(frozen=True)
class Step:
    state: State
    actions: tuple[Action, ...]
    events: tuple[Event, ...]
    effects: tuple[Effect, ...]

    @property
    def waits_for_dial(self) -> bool:
        return any(isinstance(a, Dial) for a in self.actions)


def start(script: Script, ctx: Context, *, lang: str | None = None, resume: str | None = None) -> Step:
    """The first step of a call: resume offer, main menu (language known) or the language menu."""
    if resume and script.resume_node and lang:
        return step(script, State(script.resume_node, lang, ref=resume), Input(Kind.ENTER), ctx)
    if lang in script.languages:
        return step(script, State(script.main, lang), Input(Kind.ENTER), ctx)
    return step(script, State(script.start, script.default_language), Input(Kind.ENTER), ctx)


def step(script: Script, state: State, inp: Input, ctx: Context) -> Step:
    """The next step for `inp` arriving at `state`. Any state, even a forged one, gives a valid step."""
    return _Turn(script, ctx).run(_sanitise(script, state), inp)


def _sanitise(script: Script, st: State) -> State:
    if st.node not in script.nodes:
        st = State(script.main, st.lang)
    if st.lang not in script.languages:
        st = replace(st, lang=script.default_language)
    return replace(st, tries=max(0, min(st.tries, 99)), wrong=max(0, min(st.wrong, 99)))


class _Turn:
    """One request's worth of engine work: collects plays, events and effects, then the step."""

    def __init__(self, script: Script, ctx: Context):
        self.script, self.ctx = script, ctx
        self.actions: list[Action] = []
        self.events: list[Event] = []
        self.effects: list[Effect] = []

    def done(self, state: State) -> Step:
        return Step(state, tuple(self.actions), tuple(self.events), tuple(self.effects))

    def play(self, prompt: str, lang: str) -> None:
        self.actions.append(Play(prompt, lang, self.script.audio(prompt, lang)))

    def event(self, kind: str, node: str | None, detail: str | None = None) -> None:
        self.events.append(Event(kind, node, detail))

    # -- dispatch -----------------------------------------------------------------------------------

    def run(self, st: State, inp: Input) -> Step:
        node = self.script.nodes[st.node]
        if inp.kind == Kind.ENTER or node.type == "hangup":
            return self.enter(node.id, st.lang, ref=st.ref)
        if node.type == "urgent":
            return self.urgent(node, st, inp)
        if node.type == "message" and st.stage.startswith("p"):
            if inp.kind == Kind.KEY:
                return self.key(node, replace(st, stage="after"), inp.digits, heard_part=True)
            return self.next_part(node, st)
        if node.type == "callback" and st.stage == "number":
            return self.number(node, st, inp)
        if node.type == "province":
            return self.province(node, st, inp)
        if inp.kind == Kind.KEY:
            return self.key(node, st, inp.digits)
        return self.silence(node, st)

    def enter(self, nid: str, lang: str, *, ref: str = "", part: int = 0) -> Step:
        node = self.script.nodes[nid]
        self.event("node", nid)
        if node.type == "message":
            return self.message_part(node, State(nid, lang), part)
        if node.type == "urgent":
            return self.urgent_start(node, lang)
        if node.type == "callback":
            stage = "confirm" if self.ctx.own_number else "number"
            return self.ask(node, State(nid, lang, stage))
        if node.type == "hangup":
            assert node.prompt is not None
            self.play(node.prompt, lang)
            self.actions.append(Hangup())
            return self.done(State(nid, lang))
        return self.ask(node, State(nid, lang, ref=ref))

    def follow(self, route: Route, lang: str, *, chosen: bool) -> Step:
        if route.language:
            lang = route.language
            self.effects.append(SetLanguage(lang, remember=chosen))
            self.event("language", None, lang + ("" if chosen else " (default)"))
        return self.enter(route.target, lang)

    # -- waiting for a key --------------------------------------------------------------------------

    def ask(self, node: Node, st: State) -> Step:
        """Play the prompt of where the caller is and wait for a key."""
        lang, finish, timeout = st.lang, "", node.timeout
        num_digits: int | None = 1
        if node.type == "message":
            prompts = [(node.after, lang)]
        elif node.type == "callback":
            role = {"confirm": "confirm", "number": "enter_number"}.get(st.stage, st.stage)
            prompts = [(node.prompts[role if role in node.prompts else "when"], lang)]
            if st.stage == "number":
                num_digits, finish, timeout = None, "#", node.number_timeout
        elif node.all_languages:
            prompts = [(node.prompt, other) for other in self.script.languages]
        else:
            prompts = [(node.prompt, lang)]
        if node.every_language:
            prompts += [(node.every_language, other) for other in self.script.languages]
        plays = tuple(Play(p, lg, self.script.audio(p, lg)) for p, lg in prompts if p)
        self.actions.append(Gather(plays, st, timeout, num_digits, finish))
        return self.done(st)

    def local_keys(self, node: Node, st: State) -> Mapping[str, Route]:
        if node.type == "callback":
            if st.stage == "confirm":
                return {"1": Route("$own"), "2": Route("$number")}
            if st.stage in CONSENT_STAGES:
                return {"1": Route("$yes"), "2": Route("$no")}
            return {k: Route("$when") for k in WHEN}
        return node.keys

    def key(self, node: Node, st: State, digits: str, *, heard_part: bool = False) -> Step:
        digit = digits.strip()
        self.event("key", node.id, digit[:16])
        route = self.local_keys(node, st).get(digit) if len(digit) == 1 else None
        if route is not None:
            return self.local(node, st, digit, route)
        if node.globals and digit in self.script.global_keys:
            target = self.script.global_keys[digit]
            if target == REPEAT:
                if node.type == "callback":
                    return self.ask(node, replace(st, tries=0, wrong=0))
                return self.enter(node.id, st.lang, ref=st.ref)
            return self.enter(target, st.lang)
        return self.wrong(node, st, digit)

    def local(self, node: Node, st: State, digit: str, route: Route) -> Step:
        if route.target == "$own":
            self.effects.append(RequestCallback(None, for_someone_else=False))
            self.event("callback_requested", node.id, "own number")
            return self.ask(node, State(node.id, st.lang, "when"))
        if route.target == "$number":
            return self.ask(node, State(node.id, st.lang, "number"))
        if route.target in ("$yes", "$no"):
            question = st.stage.removeprefix("consent_")
            self.effects.append(SetConsent(question, route.target == "$yes"))
            self.event("consent", node.id, f"{question} {'yes' if route.target == '$yes' else 'no'}")
            return self.after_consent(node, st)
        if route.target == "$when":
            self.effects.append(SetCallbackTime(WHEN[digit]))
            self.event("callback_time", node.id, WHEN[digit])
            return self.callback_done(node, st.lang)
        if route.target == CONTINUE:
            target, _, part = st.ref.partition(":")
            if self.script.nodes.get(target) and self.script.nodes[target].type == "message":
                self.event("resumed", target, part)
                return self.enter(target, st.lang, part=int(part) if part.isdigit() else 0)
            return self.enter(self.script.main, st.lang)
        return self.follow(route, st.lang, chosen=True)

    def wrong(self, node: Node, st: State, digit: str) -> Step:
        self.event("wrong_key", node.id, digit[:16])
        self.play(self.script.common["key_not_used"], st.lang)
        if st.wrong + 1 > node.wrong_key.retries:
            return self.follow(node.wrong_key.then, st.lang, chosen=False)
        return self.ask(node, replace(st, wrong=st.wrong + 1))

    def silence(self, node: Node, st: State) -> Step:
        self.event("silence", node.id, str(st.tries + 1))
        if node.type == "callback" and st.stage == "when":
            return self.callback_done(node, st.lang)  # the time is optional: "now" stands
        if node.type == "callback" and st.stage in CONSENT_STAGES:
            self.event("consent", node.id, st.stage.removeprefix("consent_") + " unknown")
            return self.after_consent(node, st)  # never block the report: unknown stays possible
        if st.tries + 1 > node.no_input.retries:
            return self.follow(node.no_input.then, st.lang, chosen=False)
        return self.ask(node, replace(st, tries=st.tries + 1))

    # -- messages -----------------------------------------------------------------------------------

    def message_part(self, node: Node, st: State, part: int) -> Step:
        parts = node.parts_for(self.ctx.country)
        part = part if 0 <= part < len(parts) else 0
        self.event("message_part", node.id, str(part))
        st = replace(st, stage=f"p{part}")
        # A short wait after the part: keys still work, then a Redirect says "played to the end".
        self.actions.append(Gather((Play(parts[part], st.lang, self.script.audio(parts[part], st.lang)),),
                                   st, 1, 1, "", on_empty="done"))
        return self.done(st)

    def next_part(self, node: Node, st: State) -> Step:
        part = int(st.stage[1:]) if st.stage[1:].isdigit() else 0
        if part + 1 < len(node.parts_for(self.ctx.country)):
            return self.message_part(node, State(node.id, st.lang), part + 1)
        self.event("message_completed", node.id)
        if self.ctx.ask_province and self.script.province_node:
            # Once per caller, only ever after a message has been heard: which province, if they wish.
            self.effects.append(AskedProvince())
            return self.enter(self.script.province_node, st.lang, ref=node.id)
        return self.ask(node, State(node.id, st.lang, "after"))

    def province(self, node: Node, st: State, inp: Input) -> Step:
        """The answer to the province question; silence or an unused key is no answer, and the caller
        goes on to what follows the message they heard (`st.ref`), with no retry and no dead air."""
        digit = inp.digits.strip() if inp.kind == Kind.KEY else ""
        code = node.provinces.get(digit)
        if code is None and node.globals and digit in self.script.global_keys:
            return self.key(node, st, digit)  # 9 (urgent help), 8, 0 and * work here as anywhere
        if code:
            self.effects.append(SetProvince(code))
        self.event("province", node.id, code or ("wrong_key" if digit else "skipped"))
        message = self.script.nodes.get(st.ref)
        if message is not None and message.type == "message":
            return self.ask(message, State(message.id, st.lang, "after"))
        return self.enter(self.script.main, st.lang)

    # -- urgent help --------------------------------------------------------------------------------

    def urgent_start(self, node: Node, lang: str) -> Step:
        self.effects.append(OpenUrgentCase())
        self.event("urgent", node.id)
        if self.ctx.can_dial and self.script.office_hours.contains(self.ctx.now, self.ctx.tz):
            self.play(node.prompts["connecting"], lang)
            self.actions.append(Dial(State(node.id, lang, "dial"), node.dial_timeout))
            return self.done(State(node.id, lang, "dial"))
        return self.record(node, lang)

    def record(self, node: Node, lang: str) -> Step:
        # Before anything is recorded: who can act tonight where the caller is (nobody on call may
        # hear the message before morning).
        numbers = node.numbers_for(self.ctx.country)
        if numbers:
            self.play(numbers, lang)
        self.play(node.prompts["record"], lang)
        st = State(node.id, lang, "record")
        self.actions.append(Record(st, node.record_max_seconds, node.record_timeout))
        return self.done(st)

    def urgent(self, node: Node, st: State, inp: Input) -> Step:
        assert node.next is not None
        if st.stage == "dial":
            status = (inp.status if inp.kind == Kind.DIAL else "") or "failed"
            self.event("dial", node.id, (status if status != "completed" else "completed, not accepted")[:32])
            if status == ACCEPTED:
                return self.enter(node.next, st.lang)
            # Nobody pressed 1 (no answer, a voicemail, a wrong key): the same step as nobody on call.
            return self.record(node, st.lang)
        if st.stage == "record":
            self.event("recorded" if inp.kind == Kind.RECORDED else "no_recording", node.id)
            if node.categories:  # only ever after the recording: nothing stands before it
                prompt = node.prompts["category"]
                state = State(node.id, st.lang, "category")
                play = Play(prompt, st.lang, self.script.audio(prompt, st.lang))
                self.actions.append(Gather((play,), state, node.timeout))
                return self.done(state)
            return self.enter(node.next, st.lang)
        if st.stage == "category":
            category = node.categories.get(inp.digits[:1]) if inp.kind == Kind.KEY else None
            if category:
                self.effects.append(SetCaseCategory(category))
            self.event("category", node.id, category or "none")
            return self.enter(node.next, st.lang)
        return self.enter(node.id, st.lang)

    # -- callback -----------------------------------------------------------------------------------

    def number(self, node: Node, st: State, inp: Input) -> Step:
        digits = inp.digits.strip() if inp.kind == Kind.KEY else ""
        if not digits:
            return self.silence(node, st)
        phone = self.ctx.parse_phone(digits)
        if phone:
            self.effects.append(RequestCallback(phone, for_someone_else=True))
            self.event("callback_requested", node.id, "other number")
            return self.after_consent(node, State(node.id, st.lang, "number"))
        # The digits themselves are a phone number: never stored in the call's path.
        self.event("invalid_number", node.id, f"{len(digits)} digits")
        self.play(node.prompts["invalid_number"], st.lang)
        if st.wrong + 1 > node.wrong_key.retries:
            return self.follow(node.wrong_key.then, st.lang, chosen=False)
        return self.ask(node, replace(st, wrong=st.wrong + 1))

    def after_consent(self, node: Node, st: State) -> Step:
        """The next consent question this node asks after `st.stage`, else when to call."""
        later = CONSENT_STAGES[CONSENT_STAGES.index(st.stage) + 1:] if st.stage in CONSENT_STAGES else CONSENT_STAGES
        stage = next((s for s in later if s in node.prompts), "when")
        return self.ask(node, State(node.id, st.lang, stage))

    def callback_done(self, node: Node, lang: str) -> Step:
        assert node.next is not None
        self.play(node.prompts["done"], lang)
        return self.enter(node.next, lang)
