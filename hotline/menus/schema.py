"""The voice script as typed, frozen data: what the loader builds and the engine reads. Stdlib only."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time, tzinfo

NODE_TYPES = ("menu", "message", "urgent", "callback", "resume", "hangup", "province")
REPEAT = "repeat"  # a global key action: replay the node the caller is in
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class PromptText:
    text: str
    audio: str  # file name without extension, under audio/<lang>/
    review: str  # who must check it before launch, e.g. "native-speaker"


@dataclass(frozen=True)
class Prompt:
    id: str
    texts: Mapping[str, PromptText]  # language -> text and audio


@dataclass(frozen=True)
class Route:
    """Where a key (or running out of retries) leads; optionally choosing the caller's language."""

    target: str
    language: str | None = None


@dataclass(frozen=True)
class Exhaust:
    """Allow `retries` more tries, then go to `then`."""

    retries: int
    then: Route


@dataclass(frozen=True)
class Node:
    id: str
    type: str
    prompt: str | None = None
    all_languages: bool = False  # play the prompt once in every language (the language menu)
    every_language: str | None = None  # menu: a prompt played after `prompt`, once in each language
    keys: Mapping[str, Route] = field(default_factory=dict)
    globals: bool = True  # whether the global keys (9, 8, *, 0) work here
    timeout: int = 5
    no_input: Exhaust = Exhaust(2, Route("goodbye"))
    wrong_key: Exhaust = Exhaust(4, Route("goodbye"))
    parts_by_country: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # message parts
    after: str | None = None  # message: the prompt once it has been heard in full
    next: str | None = None  # urgent / callback: where the caller goes when done
    prompts: Mapping[str, str] = field(default_factory=dict)  # urgent / callback: named prompts
    dial_timeout: int = 25
    record_max_seconds: int = 120
    record_timeout: int = 5
    number_timeout: int = 10
    # urgent: after the recording, one optional key that names the case's category (key -> category);
    # its prompt is prompts["category"]. Empty: no question.
    categories: Mapping[str, str] = field(default_factory=dict)
    # urgent: the numbers that can act tonight, by the caller's country (a prompt id each), played
    # before the recording prompt; "default" for a withheld number or a country without its own list.
    numbers_by_country: Mapping[str, str] = field(default_factory=dict)
    # province: key -> province code (hotline.services.places), asked once per caller after a message.
    provinces: Mapping[str, str] = field(default_factory=dict)

    def parts_for(self, country: str | None) -> tuple[str, ...]:
        """Message parts for the caller's country (e.g. local numbers), else the `default` ones."""
        return self.parts_by_country.get(country or "", self.parts_by_country.get("default", ()))

    def numbers_for(self, country: str | None) -> str | None:
        """urgent: the prompt with the emergency numbers for the caller's country, else the neutral one."""
        return self.numbers_by_country.get(country or "", self.numbers_by_country.get("default"))


@dataclass(frozen=True)
class OfficeHours:
    days: frozenset[int]  # 0 = Monday
    open: time
    close: time

    def contains(self, now: datetime, tz: tzinfo) -> bool:
        local = now.astimezone(tz)
        return local.weekday() in self.days and self.open <= local.time() < self.close


@dataclass(frozen=True)
class Script:
    languages: tuple[str, ...]
    default_language: str
    start: str  # first node for a caller whose language is not known yet
    main: str
    resume_node: str | None
    resume_within_hours: float
    global_keys: Mapping[str, str]  # key -> node id, or REPEAT
    office_hours: OfficeHours
    common: Mapping[str, str]  # role -> prompt id (key_not_used, ...)
    nodes: Mapping[str, Node]
    prompts: Mapping[str, Prompt]
    files: tuple[str, ...] = ()
    province_node: str | None = None  # asked once per caller after a message ends (optional)

    def audio(self, prompt_id: str, lang: str) -> str:
        return self.prompts[prompt_id].texts[lang].audio

    def text(self, prompt_id: str, lang: str) -> str:
        return self.prompts[prompt_id].texts[lang].text

    def audio_names(self) -> dict[str, set[str]]:
        """Language -> every audio file name the script may play."""
        out: dict[str, set[str]] = {lang: set() for lang in self.languages}
        for prompt in self.prompts.values():
            for lang, t in prompt.texts.items():
                out.setdefault(lang, set()).add(t.audio)
        return out

    def texts_by_audio(self) -> dict[tuple[str, str], str]:
        """(language, audio name) -> the words, for simulators and reviewers."""
        return {(lang, t.audio): t.text for p in self.prompts.values() for lang, t in p.texts.items()}
