"""Text as people type it on a phone, made comparable: a matching key, script detection, SMS parts.

Pure (stdlib + `regex`). The stored text is never changed; only the key built here is compared.
`re` cannot be used for classes here: it treats Khmer vowel signs as non-word characters.
"""

from __future__ import annotations

import functools
import unicodedata
from collections.abc import Callable

import regex

KHMER_BLOCK = (0x1780, 0x17FF)
THAI_BLOCK = (0x0E00, 0x0E7F)

# Invisible characters that change nothing a reader sees (ZWSP between Khmer words, ZWNJ/ZWJ, BOM).
# Removing ZWNJ/ZWJ is fine for a matching key; stored text keeps them.
_INVISIBLE = {0x200B: None, 0x200C: None, 0x200D: None, 0xFEFF: None, 0x00AD: None, 0x2060: None,
              # Khmer inherent vowels AQ/AA: discouraged by Unicode and invisible.
              0x17B4: None, 0x17B5: None}


def _digit_table() -> dict[int, str]:
    # Every decimal digit of the BMP (Khmer ០-៩, Thai ๐-๙, full-width, Arabic-Indic...). NFKC does
    # not convert Khmer or Thai digits. Khmer LEK ATTAK U+17F0-U+17F9 are not decimal and stay.
    table: dict[int, str] = {}
    for cp in range(0x10000):
        d = unicodedata.decimal(chr(cp), None)
        if d is not None and cp > 0x7F:
            table[cp] = str(d)
    return table


_TRANSLATE: dict[int, str | None] = {**_INVISIBLE, **_digit_table(),
                                     0x17B2: "\u17B1"}  # ឲ្យ and ឱ្យ are one word typed two ways

_KM_FIXES = (
    # Split vowels typed as two parts; NFC does not merge them (Khmer has no decompositions).
    (regex.compile("\u17C1\u17B8"), "\u17BE"),  # E + II -> OE (បើក)
    (regex.compile("\u17C1\u17B6"), "\u17C4"),  # E + AA -> OO
    # COENG DA and COENG TA look the same; both are common (កណ្ដាល / កណ្តាល).
    (regex.compile("\u17D2\u178A"), "\u17D2\u178F"),
    # A vowel typed before a subscript consonant: the subscript belongs to the consonant first.
    (regex.compile("([\u17B6-\u17C5\u17C6-\u17D1\u17D3\u17DD]+)(\u17D2[\u1780-\u17B3])"), r"\2\1"),
    # COENG RO typed before another subscript (ស្រ្ត / ស្ត្រ): keep RO last.
    (regex.compile("(\u17D2\u179A)(\u17D2[\u1780-\u1799\u179B-\u17B3])"), r"\2\1"),
    # Key repeat: the same vowel sign or sign twice in a row is never meant (កាាាត់).
    (regex.compile("([\u17B6-\u17D1\u17D3\u17DD])\\1+"), r"\1"),
)
# "didn't", "can’t": an apostrophe inside a word joins it ("didnt", "cant"), as people also type it.
_APOSTROPHE = regex.compile(r"(?<=\p{L})['’ʼ`](?=\p{L})")
_LONG_RUN = regex.compile(r"(.)\1{2,}")  # "helppp", "ด่วนนนน": three or more of one character -> two
_SEPARATORS = regex.compile(r"[^\p{L}\p{M}\p{N}]+")  # punctuation, spaces, emoji, controls, ។ ៕
_SPACE = regex.compile(r"\s+")


def matching_key(text: str) -> str:
    """The normalised form keywords and messages are compared in; the same function for both."""
    key = unicodedata.normalize("NFC", text).translate(_TRANSLATE)
    if not key.isascii():
        # Digits beyond the BMP (e.g. Takri, Adlam) are too rare for the table; read them here.
        key = "".join(str(unicodedata.decimal(c)) if c.isdecimal() and ord(c) > 0xFFFF else c for c in key)
    for pattern, repl in _KM_FIXES[:3]:
        key = pattern.sub(repl, key)
    for pattern, repl in _KM_FIXES[3:5]:
        # Reordering can expose a second pair (two subscripts); two passes cover real syllables.
        key = pattern.sub(repl, pattern.sub(repl, key))
    key = _KM_FIXES[5][0].sub(_KM_FIXES[5][1], key)
    if not key.isascii():
        # The reordering can put two combining marks next to each other in non-canonical order (a Thai
        # tone mark before a COENG): NFC again, or the key of the key would differ.
        key = unicodedata.normalize("NFC", key)
    key = _LONG_RUN.sub(r"\1\1", _APOSTROPHE.sub("", key.casefold()))
    return _SPACE.sub(" ", _SEPARATORS.sub(" ", key)).strip()


def compact(key: str) -> str:
    """A key without its spaces: Khmer and Thai put none between words, so keywords match inside it."""
    return key.replace(" ", "")


_KHMER_RUN = regex.compile(r"[\u1780-\u17FF]+")
# Where a Khmer syllable (consonant cluster) continues: before a dependent vowel, sign or coeng, and
# right after a coeng. Used when no word segmenter is installed: a keyword then at least starts and
# ends on a syllable.
_KM_CONTINUES = regex.compile(r"(?<=\u17D2)|(?=[\u17B6-\u17D3\u17DD])")


def _load_segmenter() -> Callable[[str], list[str]] | None:
    try:
        import khmercut  # a CRF model shipped in the wheel (Apache-2.0); needs python-crfsuite
    except ImportError:  # pragma: no cover - the fallback is tested by monkeypatching
        return None
    tokenize: Callable[[str], list[str]] = khmercut.tokenize
    return tokenize


SEGMENTER: Callable[[str], list[str]] | None = _load_segmenter()


@functools.lru_cache(maxsize=4096)
def khmer_words(run: str) -> tuple[str, ...]:
    """The words of a run of Khmer text without spaces (khmercut's CRF model; syllables without it).

    Cached: the same phrases come in again and again. The caller bounds the run's length.
    """
    if SEGMENTER is not None:
        try:
            words = tuple(w for w in SEGMENTER(run) if w)
        except Exception:  # noqa: BLE001 - a segmenter bug must not cost the message; syllables instead
            words = ()
        if "".join(words) == run:
            return words
    cuts = [0, *sorted({m.start() for m in _KM_CONTINUES.finditer(run)} ^ set(range(1, len(run)))), len(run)]
    return tuple(run[a:b] for a, b in zip(cuts, cuts[1:], strict=False) if b > a)


def inside_khmer_words(flat: str, start: int, end: int, *, check_start: bool = True,
                       check_end: bool = True) -> bool:
    """Whether `flat[start:end]` begins or ends inside a Khmer word (so it is part of another word).

    Only the Khmer run(s) around the two ends are segmented: text without a candidate costs nothing.
    """
    for pos in (start,) * check_start + (end,) * check_end:
        if not 0 < pos < len(flat) or not (_is_khmer(flat[pos - 1]) and _is_khmer(flat[pos])):
            continue
        left = pos
        while left > 0 and _is_khmer(flat[left - 1]):
            left -= 1
        right = pos
        while right < len(flat) and _is_khmer(flat[right]):
            right += 1
        offset = left
        for word in khmer_words(flat[left:right]):
            offset += len(word)
            if offset >= pos:
                if offset != pos:
                    return True
                break
    return False


def _is_khmer(ch: str) -> bool:
    return KHMER_BLOCK[0] <= ord(ch) <= KHMER_BLOCK[1]


def script_of(text: str) -> str | None:
    """"km" or "th" when the message is written in that script (the larger count wins), else None."""
    km = th = 0
    for ch in text:
        cp = ord(ch)
        if KHMER_BLOCK[0] <= cp <= KHMER_BLOCK[1]:
            km += 1
        elif THAI_BLOCK[0] <= cp <= THAI_BLOCK[1]:
            th += 1
    if not km and not th:
        return None
    return "km" if km >= th else "th"


# GSM 03.38 basic set and the extension table (each extension character costs two septets).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà")
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")


def is_gsm7(text: str) -> bool:
    return all(ch in GSM_BASIC or ch in GSM_EXTENSION for ch in text)


def sms_units(text: str) -> tuple[str, list[int]]:
    """The encoding ("gsm7" or "ucs2") and the cost of each character in that encoding's units."""
    if is_gsm7(text):
        return "gsm7", [2 if ch in GSM_EXTENSION else 1 for ch in text]
    # UCS-2 counts UTF-16 code units: a character beyond the BMP (most emoji) costs two.
    return "ucs2", [2 if ord(ch) > 0xFFFF else 1 for ch in text]


def sms_segments(text: str) -> int:
    """How many SMS parts `text` is sent as: GSM-7 160 single / 153 per part, UCS-2 70 / 67.

    Packed character by character: an escape pair or a surrogate pair is never split across parts.
    """
    encoding, costs = sms_units(text)
    single, per_part = (160, 153) if encoding == "gsm7" else (70, 67)
    if sum(costs) <= single:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > per_part:
            parts, used = parts + 1, 0
        used += cost
    return parts
