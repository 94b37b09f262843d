"""Text as people type it on a phone, made comparable: a matching key, script detection, SMS parts.

Pure (stdlib + `regex`). The stored text is never changed; only the key built here is compared.
`re` cannot be used for classes here: it treats Khmer vowel signs as non-word characters.
"""

from __future__ import annotations

import unicodedata

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
    key = _LONG_RUN.sub(r"\1\1", key.casefold())
    return _SPACE.sub(" ", _SEPARATORS.sub(" ", key)).strip()


def compact(key: str) -> str:
    """A key without its spaces: Khmer and Thai put none between words, so keywords match inside it."""
    return key.replace(" ", "")


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
