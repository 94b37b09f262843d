"""Arbitrary bodies thrown at the signed SMS webhook: always 200 and valid TwiML, never an echo."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hotline.menus import keywords
from hotline.menus.textnorm import sms_segments
from tests.test_sms_webhook import SCRIPTS

CANNED = " ".join(text for *_, text in keywords.load(SCRIPTS).all_replies())

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
