"""Consent questions over SMS, pure: does a text speak of someone else, and is a reply a yes or a no.

The data is `ivr_scripts/sms_consent.yaml`, loaded and checked once. Both checks are a normalisation
and a few set lookups, so every inbound text can afford them.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from hotline.menus.textnorm import compact, matching_key

CONSENT_FILE = Path(__file__).resolve().parent.parent.parent / "ivr_scripts" / "sms_consent.yaml"
REPLY_IDS = ("ask_contact", "ask_share", "noted")
ANSWER_MAX_CHARS = 12  # "8", "៨", "បាទ", "ไม่ได้" with a little punctuation or spacing


@dataclass(frozen=True)
class ConsentTexts:
    latin: tuple[str, ...]  # " my son " (whole words, padded)
    other: tuple[str, ...]  # Khmer / Thai, compact keys found anywhere
    answers: dict[str, bool]  # compact key of a whole reply -> yes / no
    replies: dict[str, dict[str, str]]  # reply id -> language -> text
    answer_chars: frozenset[str] = frozenset()  # every character a yes/no reply may hold

    def about_someone_else(self, text: str) -> bool:
        key = matching_key(text)
        padded, flat = f" {key} ", compact(key)
        return any(p in padded for p in self.latin) or any(p in flat for p in self.other)

    def answer(self, text: str) -> bool | None:
        """True / False for a whole reply that is a yes or a no; None for anything else. Every
        inbound text asks, so a longer one is turned away before any normalisation."""
        text = text.strip()
        if not text or len(text) > ANSWER_MAX_CHARS or not set(text) <= self.answer_chars:
            return None
        return self.answers.get(compact(matching_key(text)))

    def reply(self, reply_id: str, language: str) -> str:
        texts = self.replies[reply_id]
        return texts.get(language) or texts["en"]


def parse(data: dict[str, Any], languages: tuple[str, ...] = ("km", "th", "en")) -> ConsentTexts:
    """Check and build; a ValueError names the field at fault."""
    if not str(data.get("review") or "").strip():
        raise ValueError("review: say who must review these texts (e.g. native-speaker)")
    phrases = data.get("someone_else") or {}
    latin: list[str] = []
    other: list[str] = []
    for lang in languages:
        for phrase in phrases.get(lang) or ():
            key = matching_key(str(phrase))
            (latin if key.isascii() else other).append(f" {key} " if key.isascii() else compact(key))
    answers: dict[str, bool] = {}
    raw_answers: list[str] = []
    for word, value in (("yes", True), ("no", False)):
        for item in (data.get("answers") or {}).get(word) or ():
            answers[compact(matching_key(str(item)))] = value
            raw_answers.append(str(item))
    replies: dict[str, dict[str, str]] = {}
    for rid in REPLY_IDS:
        texts = (data.get("replies") or {}).get(rid) or {}
        missing = [lang for lang in languages if not str(texts.get(lang) or "").strip()]
        if missing:
            raise ValueError(f"replies.{rid}: missing the {', '.join(missing)} text")
        replies[rid] = {lang: " ".join(str(texts[lang]).split()) for lang in languages}
    if not latin or not other or set(answers.values()) != {True, False}:
        raise ValueError("someone_else and answers need phrases in every script and both a yes and a no")
    # The digits as Khmer, Thai and Arabic-Indic phones type them, and the punctuation around a reply.
    chars = set(" .,!?។\n\t") | {c for word in raw_answers for c in word + word.upper()}
    chars |= {chr(base + d) for base in (0x17E0, 0x0E50, 0x0660, 0xFF10) for d in (8, 9)}
    return ConsentTexts(tuple(latin), tuple(other), answers, replies, frozenset(chars))


@lru_cache(maxsize=1)
def load(path: Path = CONSENT_FILE) -> ConsentTexts:
    try:
        return parse(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except (OSError, yaml.YAMLError, ValueError, AttributeError) as exc:
        raise ValueError(f"{path.name}: {exc}") from None
