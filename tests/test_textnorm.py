"""The matching key, script detection and the SMS part counter (pure functions, exact tables)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hotline.menus.textnorm import compact, matching_key, script_of, sms_segments, sms_units


@pytest.mark.parametrize("raw,key", [
    ("  HeLP   me,, PLS!!! ", "help me pls"),
    ("Cafe\u0301", "café"),  # NFC
    ("ជួ\u200bយ", "ជួយ"),  # zero-width space between Khmer letters
    ("\ufeffhelp\u200d", "help"),  # BOM, ZWJ
    ("០១២ ៣៤៥", "012 345"),  # Khmer digits
    ("๐๘๑", "081"),  # Thai digits
    ("１２", "12"),  # full-width digits
    ("ប\u17C1\u17B8ក", "ប\u17BEក"),  # split vowel E + II -> OE (បើក)
    ("ក\u17C1\u17B6", "ក\u17C4"),  # E + AA -> OO
    ("កណ\u17D2\u178Aាល", "កណ\u17D2\u178Fាល"),  # COENG DA -> COENG TA
    ("ឲ្យ", "ឱ្យ"),  # the two spellings of "aoy"
    ("ក\u17B6\u17B6\u17B6ត់", "ក\u17B6ត់"),  # a vowel sign repeated by the key
    ("ក\u17BB\u17D2\u179Aង", "ក\u17D2\u179A\u17BBង"),  # vowel typed before the subscript
    ("ស\u17D2\u179A\u17D2\u178F", "ស\u17D2\u178F\u17D2\u179A"),  # COENG RO before another subscript
    ("ជួយ។ ", "ជួយ"),  # Khmer full stop is punctuation
    ("helppppp", "helpp"),  # held-down key: a run of three or more becomes two
    ("STRASSE", "strasse"),
    ("🙂 ok 🙂", "ok"),
    ("\x00\x07help\r\n", "help"),
    ("", ""),
])
def test_matching_key(raw: str, key: str) -> None:
    assert matching_key(raw) == key


def test_keyword_and_message_spelled_differently_get_one_key() -> None:
    # Keyword with COENG DA and the split vowel; message with COENG TA, merged vowel, ZWSP and ឲ្យ.
    assert matching_key("ថៅកែមិនប\u17C1\u17B8កប្រាក់ខែឲ្យខ្ញុំ") == matching_key("ថៅកែ\u200bមិនបើកប្រាក់ខែឱ្យខ្ញុំ")
    assert matching_key("កណ\u17D2\u178Aាល") == matching_key("កណ\u17D2\u178Fាល")


def test_compact_drops_the_spaces_khmer_does_not_use() -> None:
    assert compact(matching_key("ទូរស័ព្ទ មក ខ្ញុំ")) == "ទូរស័ព្ទមកខ្ញុំ"


@pytest.mark.parametrize("text,script", [
    ("ជួយខ្ញុំ", "km"), ("ช่วยด้วย", "th"), ("help", None), ("1", None), ("១", "km"), ("๑", "th"),
    ("help ជួយ", "km"), ("ok ช่วย", "th"), ("ជួយ ช่วยด้วยนะ", "th"), ("", None), ("🙂", None),
])
def test_script_of(text: str, script: str | None) -> None:
    assert script_of(text) == script


@pytest.mark.parametrize("text,encoding,units,parts", [
    ("", "gsm7", 0, 1),
    ("a" * 160, "gsm7", 160, 1),
    ("a" * 161, "gsm7", 161, 2),
    ("a" * 306, "gsm7", 306, 2),
    ("a" * 307, "gsm7", 307, 3),
    ("€" * 80, "gsm7", 160, 1),  # extension characters cost two septets
    ("€" * 81, "gsm7", 162, 2),
    ("a" * 152 + "€" + "a" * 152, "gsm7", 306, 3),  # an escape pair is never split across parts
    ("ក" * 70, "ucs2", 70, 1),
    ("ក" * 71, "ucs2", 71, 2),
    ("ក" * 134, "ucs2", 134, 2),
    ("ក" * 135, "ucs2", 135, 3),
    ("a" * 69 + "ក", "ucs2", 70, 1),  # one Khmer letter makes the whole message UCS-2
    ("😀" * 35, "ucs2", 70, 1),  # beyond the BMP: two UTF-16 units each
    ("😀" * 36, "ucs2", 72, 2),
    ("a" * 66 + "😀" + "a" * 66, "ucs2", 134, 3),  # a surrogate pair is never split either
    ("ช่วย" * 17, "ucs2", 68, 1),  # Thai tone marks are code units of their own
])
def test_sms_parts(text: str, encoding: str, units: int, parts: int) -> None:
    enc, costs = sms_units(text)
    assert (enc, sum(costs), sms_segments(text)) == (encoding, units, parts)


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_matching_key_of_any_text_is_clean(text: str) -> None:
    key = matching_key(text)
    assert key == key.strip() and "  " not in key
    assert not any(ch in key for ch in "\u200b\u200c\u200d\ufeff\x00")
    assert key == key.casefold()
    assert not any(ch.isdecimal() and not ch.isascii() for ch in key)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from("abcXYZ 12!?\u200b០១๐๑ជួយកាែ\u17B8\u17D2\u178Aช่วยด้")))
def test_matching_key_is_stable_when_applied_twice(text: str) -> None:
    assert matching_key(matching_key(text)) == matching_key(text)
