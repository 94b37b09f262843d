"""Phone numbers: parsing what people type (any script), E.164, country, and masking for logs."""

from __future__ import annotations

import re

import phonenumbers

# Countries whose callers we serve first-class; the order is the fallback order for parsing.
HOME_REGIONS = ("KH", "TH")

# What carriers and Twilio put in `From` when the caller withholds their number: the words, and the
# same words typed on a keypad (ANONYMOUS = 266696687, RESTRICTED = 7378742833, UNKNOWN = 8656696,
# BLOCKED = 2562533), with or without "+". "+266…" even parses as a Lesotho number.
_WITHHELD = frozenset({"", "anonymous", "restricted", "unknown", "blocked", "private", "unavailable",
                       "withheld", "266696687", "7378742833", "8656696", "2562533"})


def is_withheld(from_: str | None) -> bool:
    """True when a caller ID names nobody: every such caller is a stranger (one set lookup)."""
    return (from_ or "").strip().lstrip("+").lower() in _WITHHELD


def known_country(code: str | None) -> bool:
    """An ISO 3166 two-letter code that has phone numbers ("KH", "TH"; not "XX" or "ZZ")."""
    return bool(code) and len(code or "") == 2 and (code or "").upper() in phonenumbers.SUPPORTED_REGIONS


def country_of(e164: str | None) -> str | None:
    """ISO country of an E.164 number ("KH", "TH", ...), or None if it is not a number."""
    if not e164:
        return None
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(e164, None)) or None
    except phonenumbers.NumberParseException:
        return None


def to_e164(raw: str, default_region: str | None = None) -> str | None:
    """Parse a number typed in any style or script; None when no valid number can be read.

    Tries the caller's own country first, then the other home country, because a wrong default
    region yields a wrong number that still parses. "00855…"/"0066…" are rewritten first: the
    library would otherwise read "008"/"006" as a carrier access code (see the reference notes).
    """
    digits = phonenumbers.normalize_digits_only(raw)
    if not digits:
        return None
    stripped = raw.strip()
    if stripped.startswith("+"):
        candidates = ["+" + digits]
    elif digits.startswith("00855") or digits.startswith("0066"):
        candidates = ["+" + digits[2:]]
    else:
        candidates = [digits]
    regions = [r for r in (default_region, *HOME_REGIONS) if r]
    for text in candidates:
        for region in dict.fromkeys(regions):
            try:
                num = phonenumbers.parse(text, region)
            except phonenumbers.NumberParseException:
                continue
            if phonenumbers.is_valid_number(num):
                return phonenumbers.format_number(num, phonenumbers.PhoneNumberFormat.E164)
    return None


def mask(number: str | None) -> str:
    """`+85512345678` -> `+855*****678`: the country stays readable, the person does not."""
    if not number:
        return "-"
    digits = re.sub(r"\D", "", number)
    if len(digits) < 7:
        return "*" * len(digits)
    if number.startswith("+"):
        cc = _country_code(digits)
        return "+" + cc + "*" * (len(digits) - len(cc) - 3) + digits[-3:]
    return "*" * (len(digits) - 3) + digits[-3:]


def _country_code(digits: str) -> str:
    # E.164 country codes are prefix-free, so the first 1-3 digits that name one are it. A table
    # lookup, not a full parse: this runs on every request's log line.
    for n in (1, 2, 3):
        if int(digits[:n]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            return digits[:n]
    return digits[:2]


# What a phone number looks like in free text: "+" and a country code, or a local number with its
# trunk 0 ("012 345 678", "081-234-5678"), or a bare run of 8-15 digits. Dates, times, IP addresses
# and ids stay readable: dots never join digits here, and grouped digits must start with + or 0.
_NUMBER_RE = re.compile(
    r"(?<![\w.+/-])(?:\+\d(?:[ -]?\d){6,14}|0\d{1,2}(?:[ -]?\d){6,8}|\d{8,15})(?!\w|\.\d)"
)


def mask_all(text: str) -> str:
    """Mask every phone-number-like run of digits in free text (a last line of defence in logs)."""
    return _NUMBER_RE.sub(lambda m: mask(m.group(0).replace(" ", "").replace("-", "").replace(".", "")), text)
