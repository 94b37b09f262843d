"""SMS keywords: load and check the per-language YAML, then turn a message into an intent.

Pure (stdlib + `regex` + `yaml`): a message from any channel goes in, a `Match` comes out, and
`render` gives the reply text. No Flask, Twilio or database here.

Matching runs on `textnorm.matching_key`, applied alike to keywords and messages:
- danger first (`danger.DangerSet`): strong signs page a lawyer (URGENT), possible ones open a review
  case and ask the sender (POSSIBLE), weighed against question cues, negation and look-alikes;
- Khmer and Thai keywords match as substrings of the key without spaces (no spaces between words);
- Latin keywords match word by word; a one-word keyword of four letters or more forgives one typo
  (Damerau distance 1), a phrase none ("call me", with one extra word allowed inside: "call me back");
- STOP and START words match only as the whole message (ឈប់ also means "quit a job").
Keywords of every language are pooled: a Thai phone may type English, a Khmer speaker Latin letters.
"""

from __future__ import annotations

import enum
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import regex
import yaml

from hotline.menus.danger import CATEGORIES, DangerError, DangerSet, compile_danger, within_one
from hotline.menus.textnorm import compact, khmer_words, matching_key, script_of, sms_segments

INTENT_GROUPS = ("help", "callback", "urgent", "lang", "stop", "start")
__all__ = ["CATEGORIES", "Intent", "KeywordSet", "Match", "ScriptError", "load"]
TOPICS = range(1, 8)  # the voice menu's topics, same numbering
REPLY_IDS = ("help", "unknown", "callback", "urgent", "possible", "stop", "start", "lang_set", "lang_menu",
             *(f"topic_{n}" for n in TOPICS))
PLACEHOLDERS = ("numbers", "emergency")
CONFIDENCE = ("H", "M", "L")
MAX_MATCH_CHARS = 2000  # Twilio bodies are at most 1600; anything longer is not read further
PHRASE_GAP = 1  # extra words allowed between the words of a Latin phrase ("locked me in")
OTHER_COUNTRY = "other"

_LATIN = regex.compile(r"\p{Latin}")
_TOKENS = regex.compile(r"[\p{Latin}\p{M}]+|\d+")
_PLAIN_NUMBER = regex.compile(r"\+?[0-9][0-9 ]{1,18}")


class Intent(enum.StrEnum):
    EMPTY = "empty"
    HELP = "help"
    TOPIC = "topic"
    CALLBACK = "callback"
    URGENT = "urgent"
    POSSIBLE = "possible"  # possible danger: ask the sender, a case for staff review, no page
    LANG = "lang"
    STOP = "stop"
    START = "start"
    UNKNOWN = "unknown"


@dataclass(frozen=True)
class Match:
    intent: Intent
    topic: int | None = None  # for TOPIC
    category: str | None = None  # for URGENT and POSSIBLE: a CaseCategory value
    language: str | None = None  # for LANG: the language asked for; None when not understood

    @property
    def label(self) -> str:
        """What is stored in Message.keyword."""
        return f"topic_{self.topic}" if self.intent == Intent.TOPIC else self.intent.value


class ScriptError(ValueError):
    """Invalid keyword data; the message names the file and the field."""


@dataclass(frozen=True)
class Number:
    number: str
    labels: Mapping[str, str]
    emergency: bool
    useful: bool
    phone_checked: bool = False
    # In the urgent reply: the whole item per language, number included ("in danger now: police 191"),
    # when the label alone cannot say what the number is for; else "<number> <label>".
    urgent_labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class _Phrase:
    words: tuple[str, ...]


@dataclass
class KeywordSet:
    """Compiled keyword data for every language; build it with `load(directory)`."""

    languages: tuple[str, ...]
    default_language: str
    rate_limit: tuple[int, int]  # (max messages, window in seconds)
    max_reply_parts: int
    fallback_country: str
    numbers: dict[str, tuple[Number, ...]]
    replies: dict[str, dict[str, str]]
    language_names: dict[str, str]  # compact key of a name or number -> language
    never_typos: frozenset[str]
    # Matching tables, built by _compile.
    whole: dict[str, Intent] = field(default_factory=dict)  # STOP / START, compact key -> intent
    # Per intent: non-Latin keywords (compact key, tag) and Latin phrases (words, tag); tag = category.
    substrings: dict[Intent, list[tuple[str, str | None]]] = field(default_factory=dict)
    phrases: dict[Intent, list[tuple[_Phrase, str | None]]] = field(default_factory=dict)
    danger: DangerSet = field(default_factory=DangerSet)
    lang_prefixes: tuple[str, ...] = ()  # non-Latin compact keys
    lang_words: frozenset[str] = frozenset()  # Latin
    topic_re: regex.Pattern[str] | None = None
    _fuzzy_words: dict[int, list[str]] = field(default_factory=dict)  # length -> keyword words (4+)
    _exact_words: frozenset[str] = frozenset()
    # The same words come in again and again ("help", "call"): what each may stand for is kept.
    _token_cache: dict[str, frozenset[str]] = field(default_factory=dict)

    # -- matching ---------------------------------------------------------------------------------

    def match(self, text: str) -> Match:
        """The intent of a message; never raises on any text."""
        text = text[:MAX_MATCH_CHARS]
        key = matching_key(text)
        flat = compact(key)
        if not flat:
            return Match(Intent.EMPTY)
        if flat in self.whole:
            return Match(self.whole[flat])
        tokens = self._tokens(key)
        danger = self.danger.assess(text, key)
        if danger.level == "urgent":
            return Match(Intent.URGENT, category=danger.category)
        lang = self._lang(key, flat, tokens)
        if lang is not None:
            return lang
        if danger.level == "possible":
            return Match(Intent.POSSIBLE, category=danger.category)
        if self._any(Intent.CALLBACK, flat, tokens):
            return Match(Intent.CALLBACK)
        topic = self._topic(flat)
        if topic is not None:
            return topic
        if danger.topic is not None:  # a known look-alike: "what is the police number" -> useful numbers
            return Match(Intent.TOPIC, topic=danger.topic)
        if self._any(Intent.HELP, flat, tokens):
            return Match(Intent.HELP)
        return Match(Intent.UNKNOWN)

    def _tokens(self, key: str) -> list[tuple[str, frozenset[str]]]:
        """Each Latin word or number of the message, with the set of one-word keywords it may stand for."""
        cache = self._token_cache
        out = []
        for tok in _TOKENS.findall(key):
            known = cache.get(tok)
            if known is None:
                known = self._words_for(tok)
                if len(cache) > 20_000:  # bounded: a flood of random words cannot grow it forever
                    cache.clear()
                cache[tok] = known
            out.append((tok, known))
        return out

    def _words_for(self, tok: str) -> frozenset[str]:
        words = {tok} if tok in self._exact_words else set()
        if len(tok) >= 4 and tok not in self.never_typos:
            for n in (len(tok) - 1, len(tok), len(tok) + 1):
                words.update(w for w in self._fuzzy_words.get(n, ()) if within_one(tok, w))
        return frozenset(words or {tok})

    def _hits(self, intent: Intent, flat: str, tokens: list[tuple[str, frozenset[str]]]) -> Iterable[str | None]:
        for kw, tag in self.substrings.get(intent, ()):
            if kw in flat:
                yield tag
        if tokens:
            for phrase, tag in self.phrases.get(intent, ()):
                if _phrase_in(phrase.words, tokens):
                    yield tag

    def _any(self, intent: Intent, flat: str, tokens: list[tuple[str, frozenset[str]]]) -> bool:
        return next(iter(self._hits(intent, flat, tokens)), False) is not False

    def _lang(self, key: str, flat: str, tokens: list[tuple[str, frozenset[str]]]) -> Match | None:
        if flat in self.language_names and not flat.isdigit():
            return Match(Intent.LANG, language=self.language_names[flat])  # "ខ្មែរ", "english"
        rest = None
        first = _TOKENS.match(key)
        if first is not None and tokens and tokens[0][1] & self.lang_words:
            rest = compact(key[first.end():])
        else:
            rest = next((flat[len(p):] for p in self.lang_prefixes if flat.startswith(p)), None)
        if rest is None:
            return None
        for name in sorted(self.language_names, key=len, reverse=True):
            if rest.startswith(name):
                return Match(Intent.LANG, language=self.language_names[name])
        return Match(Intent.LANG, language=None)

    def _topic(self, flat: str) -> Match | None:
        m = self.topic_re.fullmatch(flat) if self.topic_re else None
        if m is None:
            return None
        n = int(m.group(1))
        return Match(Intent.TOPIC, topic=n) if n in TOPICS else None

    # -- replies ----------------------------------------------------------------------------------

    def reply_language(self, text: str, stored: str | None) -> str:
        """The script of the message, else the number's stored language, else the default (Khmer)."""
        script = script_of(text[:MAX_MATCH_CHARS])
        if script in self.languages:
            return script
        return stored if stored in self.languages else self.default_language

    def render(self, reply_id: str, language: str, country: str | None) -> str:
        """The reply text for a language and the sender's country (which numbers to give)."""
        nums = self.numbers_for(country)
        return self.replies[language][reply_id].format(
            numbers=_list(nums, language, emergency=False), emergency=_list(nums, language, emergency=True))

    def numbers_for(self, country: str | None) -> tuple[Number, ...]:
        return self.numbers.get(country or "", self.numbers[self.fallback_country])

    def all_replies(self) -> Iterable[tuple[str, str, str, str]]:
        """Every reply the scripts can produce: (language, reply id, country, text)."""
        for lang in self.languages:
            for rid in self.replies[lang]:
                for country in dict.fromkeys((*self.numbers, OTHER_COUNTRY)):
                    yield lang, rid, country, self.render(rid, lang, country)


def _list(nums: Iterable[Number], language: str, *, emergency: bool) -> str:
    chosen = [n for n in nums if (n.emergency if emergency else n.useful)]
    return ", ".join((n.urgent_labels.get(language) if emergency else None)
                     or f"{n.number} {n.labels[language]}".strip() for n in chosen)


def _phrase_in(words: tuple[str, ...], tokens: list[tuple[str, frozenset[str]]]) -> bool:
    """A one-word keyword against what each token may stand for (typos); a phrase word by word, exactly."""
    if len(words) == 1:
        return any(words[0] in known for _, known in tokens)
    for start, (tok, _) in enumerate(tokens):
        if words[0] != tok:
            continue
        pos = start
        for w in words[1:]:
            nxt = next((j for j in range(pos + 1, min(pos + 2 + PHRASE_GAP, len(tokens))) if w == tokens[j][0]), None)
            if nxt is None:
                break
            pos = nxt
        else:
            return True
    return False


# -- loading and validation -------------------------------------------------------------------------

def load(directory: str | Path) -> KeywordSet:
    """Read `common.yaml` and one `<language>.yaml` per language; raise ScriptError naming file and field."""
    directory = Path(directory)
    common = _read_yaml(directory / "common.yaml")
    langs = _languages(common)
    files = {lang: _read_yaml(directory / f"{lang}.yaml") for lang in langs}
    numbers = _numbers(common, langs)
    ks = KeywordSet(
        languages=tuple(langs), default_language=_default_language(common, langs),
        rate_limit=_rate_limit(common), max_reply_parts=_positive(common, "max_reply_parts", "common.yaml"),
        fallback_country=_fallback(common, numbers), numbers=numbers,
        replies={lang: _replies(files[lang], f"{lang}.yaml") for lang in langs},
        language_names=_language_names(common, langs),
        never_typos=frozenset(matching_key(w) for w in _str_list(common, "never_typos", "common.yaml", empty=True)),
    )
    _compile(ks, files)
    _check_replies(ks, _str_list(common, "forbidden_in_replies", "common.yaml"))
    khmer_words("ជួយខ្ញុំផង")  # loads the segmenter's model now, not on the first text that needs it
    return ks


# libyaml's safe loader when PyYAML was built with it: the keyword files are read by every app start.
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)  # noqa: S506 - a safe loader
    except FileNotFoundError:
        raise ScriptError(f"{path}: file not found") from None
    except yaml.YAMLError as exc:
        raise ScriptError(f"{path.name}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ScriptError(f"{path.name}: must be a mapping of fields")
    return data


def _fail(where: str, problem: str) -> ScriptError:
    return ScriptError(f"{where}: {problem}")


def _str_list(data: Mapping[str, Any], name: str, where: str, *, empty: bool = False) -> list[str]:
    value = data.get(name)
    if value is None and empty:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _fail(f"{where}: {name}", "must be a list of non-empty texts")
    if not value and not empty:
        raise _fail(f"{where}: {name}", "must not be empty")
    return value


def _positive(data: Mapping[str, Any], name: str, where: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise _fail(f"{where}: {name}", f"must be a whole number of 1 or more, not {value!r}")
    return value


def _languages(common: Mapping[str, Any]) -> list[str]:
    langs = common.get("languages")
    if not isinstance(langs, dict) or not langs:
        raise _fail("common.yaml: languages", "must map each language code (km, th, en) to its names")
    return [str(k) for k in langs]


def _default_language(common: Mapping[str, Any], langs: list[str]) -> str:
    value = common.get("default_language")
    if value not in langs:
        raise _fail("common.yaml: default_language", f"{value!r} is not one of {', '.join(langs)}")
    return str(value)


def _rate_limit(common: Mapping[str, Any]) -> tuple[int, int]:
    rl = common.get("rate_limit")
    if not isinstance(rl, dict):
        raise _fail("common.yaml: rate_limit", "must have max_messages and window_minutes")
    where = "common.yaml: rate_limit"
    return _positive(rl, "max_messages", where), 60 * _positive(rl, "window_minutes", where)


def _language_names(common: Mapping[str, Any], langs: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for lang in langs:
        where = f"common.yaml: languages.{lang}"
        entry = common["languages"][lang]
        if not isinstance(entry, dict):
            raise _fail(where, "must have number and names")
        number = _positive(entry, "number", where)
        for name in [str(number), *_str_list(entry, "names", where)]:
            key = compact(matching_key(name))
            if out.get(key, lang) != lang:
                raise _fail(f"{where}.names", f"{name!r} already names {out[key]}")
            out[key] = lang
    return out


def _numbers(common: Mapping[str, Any], langs: list[str]) -> dict[str, tuple[Number, ...]]:
    raw = common.get("numbers")
    if not isinstance(raw, dict) or not raw:
        raise _fail("common.yaml: numbers", "must map a country code (TH, KH) to a list of numbers")
    out: dict[str, tuple[Number, ...]] = {}
    for country, entries in raw.items():
        where = f"common.yaml: numbers.{country}"
        if not isinstance(entries, list) or not entries:
            raise _fail(where, "must be a non-empty list")
        out[str(country)] = tuple(_number(e, langs, f"{where}[{i}]") for i, e in enumerate(entries))
        if not any(n.emergency for n in out[str(country)]):
            raise _fail(where, "needs at least one number with emergency: true")
    return out


def _number(entry: Any, langs: list[str], where: str) -> Number:
    if not isinstance(entry, dict):
        raise _fail(where, "must be a mapping")
    num = entry.get("number")
    if not isinstance(num, str) or not _PLAIN_NUMBER.fullmatch(num):
        raise _fail(f"{where}.number", f"{num!r} must be digits in quotes, like \"1694\"")
    if entry.get("confidence") not in CONFIDENCE:
        raise _fail(f"{where}.confidence", f"must be one of {', '.join(CONFIDENCE)}")
    for flag in ("emergency", "useful", "phone_checked"):
        if not isinstance(entry.get(flag), bool):
            raise _fail(f"{where}.{flag}", "must be true or false")
    if not isinstance(entry.get("source"), str) or not entry["source"].strip():
        raise _fail(f"{where}.source", "must say where the number comes from")
    labels = entry.get("labels")
    if not isinstance(labels, dict) or set(labels) != set(langs) or not all(isinstance(v, str)
                                                                           for v in labels.values()):
        raise _fail(f"{where}.labels", f"must give a text for each of {', '.join(langs)}")
    urgent = entry.get("urgent_labels", {})
    if not isinstance(urgent, dict) or (urgent and set(urgent) != set(langs)) or not all(
            isinstance(v, str) and num in v for v in urgent.values()):
        raise _fail(f"{where}.urgent_labels", f"must give a text for each of {', '.join(langs)}, "
                                              f"each with the number {num} in it")
    return Number(num, dict(labels), entry["emergency"], entry["useful"], entry["phone_checked"], dict(urgent))


def _fallback(common: Mapping[str, Any], numbers: Mapping[str, Any]) -> str:
    value = common.get("fallback_country")
    if value not in numbers:
        raise _fail("common.yaml: fallback_country", f"{value!r} has no numbers listed")
    return str(value)


def _replies(data: Mapping[str, Any], where: str) -> dict[str, str]:
    replies = data.get("replies")
    if not isinstance(replies, dict):
        raise _fail(f"{where}: replies", "must map each reply id to its text")
    missing = [r for r in REPLY_IDS if r not in replies]
    if missing:
        raise _fail(f"{where}: replies", f"missing {', '.join(missing)}")
    out = {}
    for rid, text in replies.items():
        if rid not in REPLY_IDS:
            raise _fail(f"{where}: replies.{rid}", f"unknown reply id (known: {', '.join(REPLY_IDS)})")
        if not isinstance(text, str) or not text.strip():
            raise _fail(f"{where}: replies.{rid}", "must be a non-empty text")
        for _, name, _, _ in string.Formatter().parse(text):
            if name is not None and name not in PLACEHOLDERS:
                raise _fail(f"{where}: replies.{rid}", f"unknown placeholder {{{name}}} (known: {PLACEHOLDERS})")
        out[str(rid)] = " ".join(text.split())  # YAML folded lines: one space, no trailing newline
    return out


def _compile(ks: KeywordSet, files: Mapping[str, Mapping[str, Any]]) -> None:
    seen: dict[str, str] = {}  # normalised keyword -> where it was first given
    lang_words: set[str] = set()
    lang_prefixes: list[str] = []
    topic_prefixes: list[str] = []
    alarms: dict[str, list[str]] = {}
    for lang, data in files.items():
        where = f"{lang}.yaml"
        if data.get("language") != lang:
            raise _fail(f"{where}: language", f"must be {lang!r}")
        groups = data.get("keywords")
        if not isinstance(groups, dict):
            raise _fail(f"{where}: keywords", f"must have {', '.join(INTENT_GROUPS)}")
        for group in INTENT_GROUPS:
            for kw in _str_list(groups, group, f"{where}: keywords"):
                key = _keyword_key(kw, f"{where}: keywords.{group}", seen, group)
                intent = Intent(group)
                if group in ("stop", "start"):
                    ks.whole[compact(key)] = intent
                elif group == "lang":
                    if _LATIN.search(key):
                        lang_words.add(key)
                    else:
                        lang_prefixes.append(compact(key))
                elif group == "urgent":
                    alarms.setdefault(lang, []).append(kw)  # alarm words: danger rules (hotline.menus.danger)
                else:
                    _add(ks, key, intent, None)
                if group == "help":
                    topic_prefixes.append(compact(key))
        for kw in _str_list(groups, "topic_prefix", f"{where}: keywords", empty=True):
            topic_prefixes.append(compact(matching_key(kw)))
        for i, entry in enumerate((data.get("danger") or {}).get("lookalikes", []) or []):
            topic = entry.get("topic") if isinstance(entry, dict) else None
            if topic is not None and topic not in TOPICS:
                raise _fail(f"{where}: danger.lookalikes[{i}].topic", f"{topic!r} is not a topic (1-7)")
    try:
        ks.danger = compile_danger(files, alarms, ks.never_typos)
    except DangerError as exc:
        raise ScriptError(str(exc)) from None
    ks.lang_words = frozenset(lang_words)
    ks.lang_prefixes = tuple(sorted(lang_prefixes, key=len, reverse=True))
    alternatives = "|".join(regex.escape(p) for p in sorted(set(topic_prefixes), key=len, reverse=True))
    ks.topic_re = regex.compile(rf"(?:{alternatives})*0*(\d{{1,2}})")
    words = {w for items in ks.phrases.values() for phrase, _ in items for w in phrase.words} | lang_words
    ks._exact_words = frozenset(words)
    for w in words:
        if len(w) >= 4:
            ks._fuzzy_words.setdefault(len(w), []).append(w)


def _keyword_key(kw: str, where: str, seen: dict[str, str], group: str) -> str:
    key = matching_key(kw)
    if not key:
        raise _fail(where, f"{kw!r} has no letters or digits left after normalising")
    if _LATIN.search(key) and regex.search(r"[^\p{Latin}\p{M}\d ]", key):
        raise _fail(where, f"{kw!r} mixes Latin letters with another script; give them as two keywords")
    previous = seen.setdefault(compact(key), f"{where} ({group})")
    if not previous.endswith(f"({group})"):
        raise _fail(where, f"{kw!r} is already a keyword in {previous}")
    return key


def _add(ks: KeywordSet, key: str, intent: Intent, tag: str | None) -> None:
    if _LATIN.search(key):
        ks.phrases.setdefault(intent, []).append((_Phrase(tuple(key.split())), tag))
    else:
        ks.substrings.setdefault(intent, []).append((compact(key), tag))


def _check_replies(ks: KeywordSet, forbidden: list[str]) -> None:
    """Every reply, for every country's numbers, fits the part limit and says nothing unsafe."""
    banned = [(w, compact(matching_key(w))) for w in forbidden]
    for lang, rid, country, text in ks.all_replies():
        where = f"{lang}.yaml: replies.{rid}"
        parts = sms_segments(text)
        if parts > ks.max_reply_parts:
            raise _fail(where, f"{parts} SMS parts with the numbers for {country} (at most {ks.max_reply_parts})")
        flat = compact(matching_key(text))
        for word, key in banned:
            if key in flat:
                raise _fail(where, f"contains {word!r}: replies must be safe if someone else reads the phone")
