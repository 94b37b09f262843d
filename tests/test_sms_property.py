"""Arbitrary bodies thrown at the signed SMS webhook: always 200 and valid TwiML, never an echo."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.menus import keywords
from hotline.menus.keywords import Intent
from hotline.menus.textnorm import sms_segments
from hotline.models import Caller, Case
from tests.test_sms_webhook import SCRIPTS

KS = keywords.load(SCRIPTS)

CANNED = " ".join(text for *_, text in KS.all_replies())

_numbers = itertools.count(1)
# Any text Twilio could deliver (surrogates cannot be form-encoded), weighted towards the scripts we serve.
bodies = st.one_of(
    st.text(st.characters(exclude_categories=("Cs",)), max_size=400),
    st.text(st.sampled_from("ជួយខ្ញុំផងលេខ០១២៣៤៥៦៧៨៩ ្ាិីឹឺុូួើឿៀេែៃោៅំះ\u200b។"), max_size=80),
    st.text(st.sampled_from("ช่วยด้วยโทรกลับ๐๑๒๓ หยุด"), max_size=80),
    st.lists(st.sampled_from(["help", "call", "me", "SOS", "stop", "LANG", "2", "passport", "taken", "១", "๒",
                              "ឈប់", "หยุด", "!!", "🙂", "\x00", "\u200b"]), max_size=8).map(" ".join),
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_any_body_gets_200_and_valid_twiml(twilio, body: str) -> None:
    # A new number per example: the rate limit would otherwise silence the later ones.
    sender = f"+85510{next(_numbers):06d}"
    resp = twilio.post("/twilio/sms", twilio.sms_params(body, from_=sender))
    assert resp.status_code == 200 and resp.mimetype == "text/xml"
    root = ET.fromstring(resp.data)
    assert root.tag == "Response"
    assert [child.tag for child in root] == ["Message"]  # a new number always gets one answer
    for message in root:
        assert message.text and sms_segments(message.text) <= 2
        assert message.get("statusCallback", "").startswith("https://hotline.example.org/twilio/sms/status?")
        words = [w for w in body.split() if len(w) >= 6 and w not in CANNED]
        assert not any(w in message.text for w in words)  # the sender's words are never echoed


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(params=st.dictionaries(st.sampled_from(["MessageSid", "From", "Body", "To", "OptOutType", "NumSegments"]),
                              st.text(st.characters(exclude_categories=("Cs",)), max_size=40)))
def test_any_form_gets_200_and_valid_twiml(twilio, caplog, params: dict[str, str]) -> None:
    caplog.clear()
    resp = twilio.post("/twilio/sms", params)
    assert resp.status_code == 200
    assert ET.fromstring(resp.data).tag == "Response"
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # handled, not caught by sms_safe


# Text that carries no words at all: emoji, control characters, digits, punctuation, stray letters and
# marks of three scripts, up to and beyond Twilio's 1600 characters (the matcher reads 2000).
noise = st.one_of(
    st.text(st.characters(categories=("So", "Sk", "Cc", "Cf", "Zs", "Po", "Sm", "Nd")), max_size=2500),
    st.text(st.sampled_from("🙂🆘🙏❤️\u200b\u200d\ufeff\x00\x1b\t\n។៕?!.,-0123456789០១២๑๒ qxzjk"), max_size=1700),
    st.text(st.sampled_from("ាិីឹឺុូួ្ំះ่้๊๋ัิีึื"), max_size=400),  # marks with no letter to sit on
    st.just(""), st.just(" " * 1600), st.just("x" * 1600), st.just("🆘" * 800),
)


@settings(max_examples=300, deadline=None)
@given(body=noise)
def test_text_without_words_never_reads_as_danger(body: str) -> None:
    # No timing assertion: the time per message over such input is printed by bench/urgent_eval.py.
    assert KS.match(body).intent not in (Intent.URGENT, Intent.POSSIBLE)


@settings(max_examples=200, deadline=None)
@given(body=st.text(st.characters(exclude_categories=("Cs",)), max_size=2500), pad=st.integers(0, 3000))
def test_any_text_gives_one_match_and_only_its_first_2000_characters_count(body: str, pad: int) -> None:
    match = KS.match(body)
    assert match.intent in Intent
    padded = body[:keywords.MAX_MATCH_CHARS] + "they locked us inside the factory " * (pad // 30)
    if len(body) >= keywords.MAX_MATCH_CHARS:
        assert KS.match(padded) == match  # nothing beyond the cut is read


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(noise, bodies))
def test_the_webhook_pages_only_what_the_matcher_calls_urgent(twilio, db, body: str) -> None:
    sender = f"+85511{next(_numbers):06d}"
    resp = twilio.post("/twilio/sms", twilio.sms_params(body, from_=sender))
    assert resp.status_code == 200
    intent = KS.match(body.replace("\x00", "")).intent  # the webhook drops NUL (PostgreSQL text)
    expected = {Intent.URGENT: ["urgent"], Intent.POSSIBLE: ["normal"]}.get(intent, [])
    db.expire_all()
    got = db.scalars(sa.select(Case.priority).join(Caller, Case.caller_id == Caller.id)
                     .where(Caller.phone == sender)).all()
    assert got == expected
