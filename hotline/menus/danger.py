"""Danger in a text message: strong signs (a lawyer is paged), possible signs (the sender is asked and
staff review), weighed against question cues, negation and known look-alikes.

Pure (stdlib + `regex`; Khmer words from `textnorm.khmer_words`). Built from the `danger:` section of
each language's YAML by `compile_danger`; `DangerSet.assess` reads one message.

Rules are short patterns over the matching key (see `textnorm.matching_key`), items separated by spaces:
- `word`, `a|b` (alternatives), `@class` (a list in `danger.classes`), any of them with `?` (optional);
- `..` a gap: up to 3 words (Latin) or 15 characters (Khmer, Thai), none of them a negation.
Latin rules match whole words of the key, exactly: no typo is forgiven inside a phrase, and a single
word is forgiven one typo only if both have six letters or more (`want` is not `cant`, `best` is not
`beat`). Khmer and Thai rules match inside the key without spaces (those scripts put none between
words); a Khmer match must start and end on a word boundary (`លក់` "sell" inside `លក់ដូរ` "trade" is
not a match). A rule's match is cancelled when a negation comes right before it ("nobody took my
passport", "i am not in danger"), unless the rule itself starts with one ("not paid").

Levels: `sos` (always urgent), `urgent` (urgent even in a question: "they took my passport, what can I
do?"), `alarm` (urgent words like "emergency": urgent, but only possible in a question), `possible`
(e.g. "police came to our camp": possible, nothing in a question). Look-alikes ("police clearance",
"passport photo", "emergency number") are blanked out before the rules run, and may name the topic
that answers them.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import regex

from hotline.menus.textnorm import compact, inside_khmer_words, matching_key

CATEGORIES = ("trafficking", "violence", "locked_in", "detention", "missing", "documents", "unpaid_wages")
LEVELS = ("sos", "urgent", "alarm", "possible")
LATIN_GAP_WORDS = 3
FLAT_GAP_CHARS = 15
NEGATION_WINDOW = 2  # words before a Latin match that may negate it ("not in danger")
# A Latin gap never crosses these either: "he says he will keep my passport" is a threat, not a fact.
GAP_BLOCKERS = ("will", "would", "if", "should", "could", "can", "may", "might", "maybe")
_LATIN = regex.compile(r"\p{Latin}")
_BLANK = "\u2060"  # a character no key contains (textnorm removes it): look-alikes become this
# Placeholders in a rule's regex for the negation words, filled in once every language is read.
_LATIN_NEG = "\x00LATIN-NEGATIONS\x00"
_FLAT_NEG = "\x00FLAT-NEGATIONS\x00"


@functools.lru_cache(maxsize=4096)
def _compiled(source: str) -> regex.Pattern[str]:
    # Parsing ~200 rules takes about a second; every app (and every test's app) loads the same ones.
    return regex.compile(source)


class DangerError(ValueError):
    """Invalid danger data; the message names the file and the field."""


@dataclass(frozen=True)
class Assessment:
    level: str | None = None  # "urgent", "possible" or None
    category: str = "other"
    topic: int | None = None  # a look-alike's topic, when one was found
    question: bool = False


@dataclass
class _Group:
    latin: bool
    level: str
    category: str
    patterns: list[str] = field(default_factory=list)
    single_words: set[str] = field(default_factory=set)  # one-word Latin rules: typo forgiveness
    # What every rule of the group starts with: the first word (Latin) or text (Khmer, Thai). A message
    # without any is skipped before the regex runs (most texts meet few groups).
    anchors: set[str] = field(default_factory=set)
    # One regex per rule, each with its own anchors: one alternation of all rules is ten times slower
    # (the engine loses its literal-prefix search).
    rules: list[tuple[regex.Pattern[str], frozenset[str], bool]] = field(default_factory=list)
    rule_anchors: list[frozenset[str]] = field(default_factory=list)
    rule_single: list[bool] = field(default_factory=list)  # one plain word: the typo-forgiven text too


@dataclass
class DangerSet:
    groups: list[_Group] = field(default_factory=list)
    latin_negations: frozenset[str] = frozenset()
    flat_negations: tuple[str, ...] = ()
    latin_questions: regex.Pattern[str] | None = None
    flat_questions: tuple[str, ...] = ()
    latin_lookalikes: list[tuple[regex.Pattern[str], int | None]] = field(default_factory=list)
    flat_lookalikes: list[tuple[str, int | None]] = field(default_factory=list)
    never_typos: frozenset[str] = frozenset()
    _fuzzy: dict[int, list[str]] = field(default_factory=dict)
    _vocabulary: frozenset[str] = frozenset()
    _fuzz_cache: dict[str, str | None] = field(default_factory=dict)

    # -- reading a message ---------------------------------------------------------------------------

    def assess(self, raw: str, key: str) -> Assessment:
        """How dangerous a message reads. `raw` is the text as sent (for "?"), `key` its matching key."""
        topic = None
        blanked = key
        for pattern, t in self.latin_lookalikes:
            blanked, n = pattern.subn(f" {_BLANK} ", blanked)
            if n and t is not None:
                topic = topic or t
        flat = compact(blanked)
        for text, t in self.flat_lookalikes:
            if text in flat:
                flat = flat.replace(text, _BLANK)
                if t is not None:
                    topic = topic or t
        fuzzed = self._fuzzed(blanked)
        words = set(blanked.split(" "))
        if fuzzed is not None:
            words.update(fuzzed.split(" "))
        hits: dict[str, list[str]] = {}
        for group in self.groups:
            if group.level in hits and group.category in hits[group.level]:
                continue
            if group.latin:
                if words.isdisjoint(group.anchors):
                    continue
            elif not any(a in flat for a in group.anchors):
                continue
            if self._hit(group, blanked, fuzzed, flat, words):
                hits.setdefault(group.level, []).append(group.category)
        question = self._question(raw, key)
        level, category = _decide(hits, question)
        return Assessment(level, category, topic, question)

    def _hit(self, group: _Group, blanked: str, fuzzed: str | None, flat: str, words: set[str]) -> bool:
        if group.latin:
            for pattern, anchors, single in group.rules:
                if words.isdisjoint(anchors):
                    continue
                # Only a one-word rule reads the text with typos forgiven; a phrase never does.
                for text in (blanked, fuzzed) if single and fuzzed is not None else (blanked,):
                    for m in pattern.finditer(text, overlapped=True):
                        if not self._latin_negated(text, m.start(), m.group()):
                            return True
            return False
        for pattern, anchors, _ in group.rules:
            if any(a in flat for a in anchors) and self._flat_hit(pattern, flat):
                return True
        return False

    def _flat_hit(self, pattern: regex.Pattern[str], flat: str) -> bool:
        for m in pattern.finditer(flat, overlapped=True):
            negative = any(m.group().startswith(n) for n in self.flat_negations)
            # Only a short word at either end can be part of a longer one (លក់ in លក់ដូរ, វាយ in
            # វាយតម្លៃ); a longer one is checked nowhere, because the segmenter also glues words
            # together ("ការគំរាម", "បង្ខំឱ្យ") and would hide a real match.
            first, last = m.span("a"), m.span("z")
            if (not negative and _cuts_word(flat, first, start=True)) or _cuts_word(flat, last, start=False):
                continue
            if negative or not self._flat_negated(flat, m.start(), m.group()):
                return True
        return False

    def _latin_negated(self, text: str, start: int, matched: str) -> bool:
        if matched.split(" ", 1)[0] in self.latin_negations:
            return False  # the rule itself says "not ..."
        before = text[:start].split()[-NEGATION_WINDOW:]
        return any(w in self.latin_negations for w in before)

    def _flat_negated(self, flat: str, start: int, matched: str) -> bool:
        if any(matched.startswith(n) for n in self.flat_negations):
            return False
        head = flat[:start]
        return any(head.endswith(n) for n in self.flat_negations)

    def _question(self, raw: str, key: str) -> bool:
        if "?" in raw or "\uff1f" in raw or "\u037e" in raw:
            return True
        if self.latin_questions is not None and self.latin_questions.search(key):
            return True
        flat = compact(key)
        for cue in self.flat_questions:
            start = flat.find(cue)
            while start != -1:
                end = start + len(cue)
                if not inside_khmer_words(flat, start, end) and not self._flat_negated(flat, start, cue):
                    return True
                start = flat.find(cue, start + 1)
        return False

    def _fuzzed(self, key: str) -> str | None:
        """The key with each long unknown word replaced by the one-word rule it is one typo from, if any."""
        if not self._fuzzy:
            return None
        words = key.split(" ")
        changed = False
        cache = self._fuzz_cache
        for i, w in enumerate(words):
            if len(w) < 6 or w in self._vocabulary or w in self.never_typos or not w.isalpha():
                continue
            if w not in cache:
                if len(cache) > 20_000:  # bounded: a flood of random words cannot grow it forever
                    cache.clear()
                cache[w] = next((k for n in (len(w) - 1, len(w), len(w) + 1) for k in self._fuzzy.get(n, ())
                                 if within_one(w, k)), None)
            fixed = cache[w]
            if fixed is not None:
                words[i] = fixed
                changed = True
        return " ".join(words) if changed else None


SHORT_WORD = 4  # code points: a Khmer keyword this short must sit on word boundaries


def _cuts_word(flat: str, span: tuple[int, int], *, start: bool) -> bool:
    """Whether a match's short first item begins (or last item ends) inside a longer Khmer word.

    Only the outer ends: the inner ones are where the segmenter glues words most ("ចេញពី"); the
    compounds that begin with a danger word (វាយតម្លៃ "evaluate") are look-alikes instead.
    """
    a, b = span
    if a < 0 or b - a > SHORT_WORD:
        return False
    return inside_khmer_words(flat, a, b, check_start=start, check_end=not start)


def _decide(hits: Mapping[str, list[str]], question: bool) -> tuple[str | None, str]:
    def most_serious(levels: Iterable[str]) -> str:
        cats = {c for lv in levels for c in hits.get(lv, ())}
        return next((c for c in CATEGORIES if c in cats), "other")

    if "sos" in hits or "urgent" in hits:
        category = most_serious(("urgent",))
        return "urgent", category if category != "other" else most_serious(("possible",))
    if "alarm" in hits:
        return ("possible" if question else "urgent"), most_serious(("possible",))
    if "possible" in hits and not question:
        return "possible", most_serious(("possible",))
    return None, "other"


# -- building -----------------------------------------------------------------------------------------

def compile_danger(files: Mapping[str, Mapping[str, Any]], alarms: Mapping[str, list[str]],
                   never_typos: frozenset[str]) -> DangerSet:
    """Build the rules of every language's `danger:` section (and its alarm words, `keywords.urgent`)."""
    ds = DangerSet(never_typos=never_typos)
    groups: dict[tuple[bool, str, str], _Group] = {}
    latin_neg: set[str] = set()
    flat_neg: set[str] = set()
    latin_q: list[str] = []
    flat_q: set[str] = set()
    for lang, data in files.items():
        where = f"{lang}.yaml: danger"
        section = data.get("danger")
        if not isinstance(section, dict):
            raise DangerError(f"{where}: must have classes, urgent, possible, questions, negations")
        classes = _classes(section.get("classes", {}), f"{where}.classes")
        for w in _texts(section.get("negations", []), f"{where}.negations"):
            key = matching_key(w)
            (latin_neg if _LATIN.search(key) else flat_neg).add(key if _LATIN.search(key) else compact(key))
        for w in _texts(section.get("questions", []), f"{where}.questions"):
            key = matching_key(w)
            if _LATIN.search(key):
                latin_q.append(key)
            elif key:
                flat_q.add(compact(key))
        for i, entry in enumerate(section.get("lookalikes", []) or []):
            text, topic = _lookalike(entry, f"{where}.lookalikes[{i}]")
            key = matching_key(text)
            if _LATIN.search(key):
                ds.latin_lookalikes.append((regex.compile(rf"(?<![^ ]){regex.escape(key)}(?![^ ])"), topic))
            else:
                ds.flat_lookalikes.append((compact(key), topic))
        rules: list[tuple[str, str, str, str]] = []  # (level, category, rule, where)
        rules += [("sos", "other", r, f"{where}.sos") for r in _texts(section.get("sos", []), f"{where}.sos")]
        rules += [("alarm", "other", r, f"{lang}.yaml: keywords.urgent") for r in alarms.get(lang, [])]
        for level in ("urgent", "possible"):
            by_cat = section.get(level, {})
            if not isinstance(by_cat, dict):
                raise DangerError(f"{where}.{level}: must map categories ({', '.join(CATEGORIES)}) to rules")
            for cat, items in by_cat.items():
                cwhere = f"{where}.{level}.{cat}"
                if cat not in (*CATEGORIES, "other"):
                    raise DangerError(f"{cwhere}: unknown category (known: {', '.join(CATEGORIES)}, other)")
                rules += [(level, str(cat), r, cwhere) for r in _texts(items, cwhere)]
        for level, cat, rule, rwhere in rules:
            latin, pattern, single, first = _pattern(rule, classes, rwhere)
            group = groups.setdefault((latin, level, cat), _Group(latin, level, cat))
            group.patterns.append(pattern)
            anchors = frozenset(a.split(" ")[0] for a in first) if latin else frozenset(compact(a) for a in first)
            group.anchors |= anchors
            group.rule_anchors.append(anchors)
            group.rule_single.append(bool(single))
            group.single_words |= single
    ds.latin_negations = frozenset(latin_neg)
    ds.flat_negations = tuple(sorted(flat_neg, key=len, reverse=True))
    neg_alt = "|".join(regex.escape(n) for n in sorted(latin_neg | set(GAP_BLOCKERS), key=len, reverse=True))
    flat_neg_alt = "|".join(regex.escape(n) for n in ds.flat_negations) or "(?!)"
    for group in groups.values():
        for body, anchors, one_word in zip(group.patterns, group.rule_anchors, group.rule_single, strict=True):
            body = body.replace(_LATIN_NEG, neg_alt).replace(_FLAT_NEG, flat_neg_alt)
            compiled = _compiled(f"(?<![^ ])(?:{body})(?![^ ])" if group.latin else body)
            group.rules.append((compiled, anchors, one_word))
    ds.groups = sorted(groups.values(), key=lambda g: LEVELS.index(g.level))
    if latin_q:
        alt = "|".join(regex.escape(q) for q in sorted(set(latin_q), key=len, reverse=True))
        ds.latin_questions = regex.compile(rf"(?<![^ ])(?:{alt})(?![^ ])")
    ds.flat_questions = tuple(sorted(flat_q, key=len, reverse=True))
    singles = {w for g in groups.values() for w in g.single_words if len(w) >= 6}
    for w in singles:
        ds._fuzzy.setdefault(len(w), []).append(w)
    vocab = {w for g in groups.values() for p in g.patterns for w in regex.findall(r"[\p{Latin}]+", p)}
    ds._vocabulary = frozenset(vocab | latin_neg)
    return ds


def _texts(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise DangerError(f"{where}: must be a list of non-empty texts")
    return value


def _classes(raw: Any, where: str) -> dict[str, list[str]]:
    if not isinstance(raw, dict):
        raise DangerError(f"{where}: must map a class name to its words")
    out = {}
    for name, words in raw.items():
        keys = [matching_key(w) for w in _texts(words, f"{where}.{name}")]
        if not all(keys):
            raise DangerError(f"{where}.{name}: a word has no letters or digits left after normalising")
        out[str(name)] = keys
    return out


def _lookalike(entry: Any, where: str) -> tuple[str, int | None]:
    if isinstance(entry, str) and entry.strip():
        return entry, None
    if isinstance(entry, dict) and isinstance(entry.get("text"), str) and entry["text"].strip():
        topic = entry.get("topic")
        if topic is not None and (not isinstance(topic, int) or isinstance(topic, bool)):
            raise DangerError(f"{where}.topic: must be a topic number")
        return entry["text"], topic
    raise DangerError(f"{where}: must be a text, or text and topic")


def _pattern(rule: str, classes: Mapping[str, list[str]],
             where: str) -> tuple[bool, str, frozenset[str], list[str]]:
    """(is Latin, regex source, the words that forgive a typo, the first item's alternatives)."""
    items = rule.split()
    if not items:
        raise DangerError(f"{where}: {rule!r} is empty")
    alts_per_item: list[tuple[list[str] | None, bool]] = []  # (alternatives or None for a gap, optional)
    for item in items:
        if item == "..":
            alts_per_item.append((None, False))
            continue
        optional = item.endswith("?") and len(item) > 1
        body = item[:-1] if optional else item
        if body.startswith("@"):
            if body[1:] not in classes:
                raise DangerError(f"{where}: {rule!r} uses @{body[1:]}, which is not in danger.classes")
            alts = classes[body[1:]]
        else:
            alts = [matching_key(a) for a in body.split("|")]
            if not all(alts):
                raise DangerError(f"{where}: {rule!r} has an item with no letters or digits left after normalising")
        alts_per_item.append((alts, optional))
    literal = [a for alts, _ in alts_per_item if alts for a in alts]
    latin = any(_LATIN.search(a) for a in literal) and not any(
        regex.search(r"[\u1780-\u17FF\u0E00-\u0E7F]", a) for a in literal)
    if alts_per_item[0][0] is None or alts_per_item[-1][0] is None or alts_per_item[0][1]:
        raise DangerError(f"{where}: {rule!r} must not start or end with .., nor start with an optional item")
    parts = []
    for i, (item_alts, optional) in enumerate(alts_per_item):
        if item_alts is None:
            # A gap never crosses a negation nor a blanked look-alike.
            parts.append("(?: (?!(?:" + _LATIN_NEG + r")(?![^ ]))[^ " + _BLANK + "]+){0," + str(LATIN_GAP_WORDS) + "}"
                         if latin else "(?:(?!" + _FLAT_NEG + ")[^" + _BLANK + "]){0," + str(FLAT_GAP_CHARS) + "}?")
            continue
        src = "|".join(regex.escape(a if latin else compact(a)) for a in sorted(item_alts, key=len, reverse=True))
        sep = " " if latin and i > 0 else ""
        if not latin:  # the first and last item's spans, for the word-boundary check
            name = "a" if i == 0 else "z" if i == len(alts_per_item) - 1 else None
            if len(alts_per_item) == 1:
                src = f"(?P<a>(?P<z>{src}))"
            elif name:
                src = f"(?P<{name}>{src})"
        parts.append(f"(?:{sep}(?:{src}))?" if optional else f"{sep}(?:{src})")
    # A one-item Latin rule of plain words ("urgent", "trafficked|kidnapped"): its words forgive a typo.
    single = frozenset(literal) if latin and len(items) == 1 and not items[0].startswith("@") \
        and all(" " not in a for a in literal) else frozenset()
    return latin, "".join(parts), single, list(alts_per_item[0][0] or ())


def within_one(a: str, b: str) -> bool:
    """Damerau (optimal string alignment) distance at most 1, without building a matrix."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if abs(la - lb) > 1:
        return False
    i = 0
    while i < min(la, lb) and a[i] == b[i]:
        i += 1
    if la == lb:
        if a[i + 1:] == b[i + 1:]:
            return True
        return i + 1 < la and a[i] == b[i + 1] and a[i + 1] == b[i] and a[i + 2:] == b[i + 2:]
    return a[i + 1:] == b[i:] if la > lb else a[i:] == b[i + 1:]
