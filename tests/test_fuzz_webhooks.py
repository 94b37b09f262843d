"""Property-based fuzzing of every /twilio/* route, correctly signed: arbitrary form fields, encodings,
content types, query strings and sizes. Whatever arrives, Twilio gets a 200 with valid TwiML, and the
database holds nothing half-written.

Routes are read from `app.url_map`, so a route added later is fuzzed without touching this file.
"""

from __future__ import annotations

import string
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from sqlalchemy.orm import Session
from werkzeug.routing import Rule
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from hotline.models import Call, CallEvent, Case, CaseStatusChange, Message, OutboxJob
from hotline.telephony.signature import sign
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC

FUZZ = settings(max_examples=40, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

# Values Twilio really sends, so the fuzzer reaches past the first `if` of each handler.
CALL_SIDS = ["CA" + c * 32 for c in "0123"]
NUMBERS = ["+85512345678", "+66812345678", "+85523000000", "+66812345001", "0812345678", "", "anonymous",
           "+1", "+999999999999999999999", "client:alice", "+85512345678\x00", "٠٨١٢٣٤٥٦٧٨"]
TWILIO_KEYS = ["CallSid", "AccountSid", "From", "To", "Caller", "Called", "Digits", "SpeechResult", "Body",
               "MessageSid", "SmsSid", "CallStatus", "MessageStatus", "ErrorCode", "AnsweredBy", "CallDuration",
               "RecordingUrl", "RecordingSid", "RecordingDuration", "RecordingStatus", "NumMedia", "Direction",
               "FinishedOnKey", "Confidence", "ParentCallSid", "DialCallStatus"]
STATUSES = ["queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled", "sent",
            "delivered", "undelivered", "received", "human", "machine_start", "fax", "unknown"]
# What breaks naive code: NUL (PostgreSQL refuses it in text), controls, bidi marks, overlong ids.
NASTY = ["\x00", "CA\x00" + "0" * 31, "SM\x00", "\r\n", "\u202e", "\ufeff", "%00", "'; DROP TABLE calls; --",
         "<Response/>", "]]>", "&amp;", "C" * 300, " "]
KEYWORDS = ["HELP", "help", "INFO", "STOP", "START", "CALL", "ជួយ", "ช่วย", "1", "9", "*", "#", "0", "99"]

any_text = st.text(st.characters(codec="utf-8"), max_size=60)
big_text = st.text(st.characters(codec="utf-8"), min_size=1000, max_size=20000)
value = st.one_of(
    any_text,
    st.sampled_from(CALL_SIDS + NUMBERS + STATUSES + KEYWORDS + NASTY),
    st.sampled_from(NASTY),
    st.text(string.digits + "*#", max_size=40),
    st.integers(-(2**63), 2**63).map(str),
    big_text,
)
realistic_form = st.fixed_dictionaries(
    {"AccountSid": st.just(ACCOUNT_SID), "CallSid": st.sampled_from(CALL_SIDS), "From": st.sampled_from(NUMBERS)},
    optional={k: value for k in TWILIO_KEYS if k not in ("AccountSid", "CallSid", "From")},
)
arbitrary_form = st.dictionaries(st.one_of(st.sampled_from(TWILIO_KEYS), any_text), value, max_size=12)
# Encodings: what a proxy or a misbehaving client might send. Invalid UTF-8 is decoded with
# replacement characters by the server; the signature covers what it decoded.
ENCODINGS = ["utf-8", "latin-1", "cp874", "utf-16"]
CONTENT_TYPES = ["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=UTF-8",
                 "application/x-www-form-urlencoded; charset=ISO-8859-1", "text/plain", "application/json", None]


@st.composite
def raw_bodies(draw: Callable[..., Any]) -> tuple[bytes, str | None]:
    form = draw(st.one_of(realistic_form, arbitrary_form))
    encoding = draw(st.sampled_from(ENCODINGS))
    pairs = [quote(k, encoding=encoding, errors="replace") + "=" + quote(v, encoding=encoding, errors="replace")
             for k, v in form.items()]
    if draw(st.booleans()):
        pairs.append(draw(st.sampled_from(["Digits=1&Digits=2", "%FF%FE=%C3%28", "=", "&&", "Body", "a=%",
                                           "From=%2B855%0012345678"])))
    draw(st.randoms()).shuffle(pairs)
    return "&".join(pairs).encode("ascii"), draw(st.sampled_from(CONTENT_TYPES))


_QUERY_KEYS = ["node", "lang", "step", "recovered", "attempt", "case", "x"]
query_strings = st.one_of(
    st.just(""),
    st.dictionaries(st.sampled_from(_QUERY_KEYS), st.text(string.ascii_letters + string.digits + "_-.", max_size=12),
                    max_size=3).map(lambda d: "&".join(f"{k}={v}" for k, v in d.items())))


def twilio_rules(app: Flask) -> list[Rule]:
    return sorted((r for r in app.url_map.iter_rules() if r.rule.startswith("/twilio")), key=lambda r: r.rule)


def sample_path(rule: Rule, draw: Callable[..., Any]) -> str:
    """A concrete path for a rule; converter values are drawn to fit their type."""
    values: dict[str, Any] = {}
    for name in rule.arguments:
        conv = type(rule._converters[name]).__name__
        if conv == "IntegerConverter":
            values[name] = draw(st.integers(0, 2**31))
        elif conv == "UUIDConverter":
            values[name] = draw(st.uuids())
        else:
            values[name] = draw(st.sampled_from(CALL_SIDS + ["x", "0", "HL-ABC123", "km", "th", "en", "menu"]))
    _, path = rule.build(values, append_unknown=False)  # type: ignore[misc]
    return str(path)


def parsed_form(path: str, body: bytes, content_type: str | None) -> Any:
    """The form exactly as the server will decode it: that is what Twilio's signature covers."""
    env = EnvironBuilder(path=path, method="POST", data=body, content_type=content_type).get_environ()
    return Request(env).form


def assert_twiml(resp: Any, where: str) -> None:
    assert resp.status_code == 200, f"{where}: {resp.status_code} {resp.data[:500]!r}"
    assert resp.mimetype in ("text/xml", "application/xml"), f"{where}: {resp.mimetype}"
    root = ET.fromstring(resp.data)
    assert root.tag == "Response", f"{where}: root is <{root.tag}>"


def assert_nothing_half_written(s: Session) -> None:
    s.expire_all()
    # A call always carries its sid; a message its direction, peer and status.
    assert s.scalar(sa.select(sa.func.count()).where(sa.or_(Call.call_sid == "", Call.call_sid.is_(None)))) == 0
    assert s.scalar(sa.select(sa.func.count()).select_from(Message).where(
        sa.or_(Message.peer.is_(None), Message.status.is_(None), Message.direction.is_(None)))) == 0
    # Every event belongs to a stored call.
    assert s.scalar(sa.select(sa.func.count()).select_from(CallEvent).outerjoin(Call, Call.id == CallEvent.call_id)
                    .where(Call.id.is_(None))) == 0
    # A case is opened with its first status change and its notification job, in one transaction.
    for case_id in s.scalars(sa.select(Case.id)):
        assert (s.scalar(sa.select(sa.func.count()).where(CaseStatusChange.case_id == case_id)) or 0) >= 1, case_id
    # No outbox row without its case: a job naming a case points at one that exists.
    for job in s.scalars(sa.select(OutboxJob)):
        ref = job.case_id or (job.payload or {}).get("case_id")
        if ref is not None:
            assert s.get(Case, ref) is not None, f"outbox job {job.id} ({job.kind}) points at missing case {ref}"


def test_every_twilio_route_answers_arbitrary_signed_forms_with_twiml(app: Flask, client, db: Session) -> None:
    rules = twilio_rules(app)
    assert {"/twilio/voice", "/twilio/sms"} <= {r.rule for r in rules}

    for rule in rules:
        @FUZZ
        @given(data=st.data(), raw=raw_bodies(), qs=query_strings)
        def fuzz(data: st.DataObject, raw: tuple[bytes, str | None], qs: str) -> None:
            path = sample_path(rule, data.draw)
            body, content_type = raw
            target = path + ("?" + qs if qs else "")
            form = parsed_form(target, body, content_type)
            sig = sign(AUTH_TOKEN, PUBLIC + target, form)
            note(f"POST {target} {content_type} {body[:300]!r}")
            headers = {"X-Twilio-Signature": sig}
            resp = client.post(target, data=body, headers=headers, content_type=content_type)
            assert_twiml(resp, f"POST {target}")
            assert_nothing_half_written(db)

        fuzz()


@pytest.mark.parametrize("size", [0, 1, 4096, 100_000])
def test_huge_and_empty_signed_bodies_still_get_twiml(app: Flask, client, db: Session, size: int) -> None:
    """Sizes hypothesis rarely reaches: an empty POST, and a Body of 100,000 Khmer letters (0.9 MB encoded)."""
    for rule in twilio_rules(app):
        if rule.arguments:
            continue
        params = {"CallSid": CALL_SIDS[0], "From": NUMBERS[0], "Body": "ជ" * size, "Digits": "1" * min(size, 64)}
        if size == 0:
            params = {}
        resp = client.post(rule.rule, data=params, headers={"X-Twilio-Signature": sign(AUTH_TOKEN, PUBLIC + rule.rule,
                                                                                        params)})
        assert_twiml(resp, f"POST {rule.rule} ({size})")
    assert_nothing_half_written(db)
