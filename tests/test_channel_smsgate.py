"""SMS Gateway for Android: X-Signature over raw body + X-Timestamp with a replay window, webhook
events as plain events, and the fake REST API of the phone (local and cloud mode)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from hotline.channels import smsgate
from hotline.fakes.smsgate_api import FakeSmsGate

TH = "+66812000001"


@pytest.fixture(scope="module")
def fake_gate() -> Iterator[FakeSmsGate]:
    fake = FakeSmsGate().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_gate: FakeSmsGate) -> FakeSmsGate:
    fake_gate.reset()
    return fake_gate


# -- signature -----------------------------------------------------------------------------------

def headers_ok(fake: FakeSmsGate, body: bytes, headers: dict[str, str], **kw: float) -> bool:
    return smsgate.verify_signature(fake.signing_key, body, headers.get("X-Timestamp"),
                                    headers.get("X-Signature"), **kw)  # type: ignore[arg-type]


def test_signature_is_hex_hmac_of_body_then_timestamp(fake: FakeSmsGate) -> None:
    body, headers = fake.received(TH, "1")
    assert headers_ok(fake, body, headers)
    assert len(headers["X-Signature"]) == 64 and headers["X-Signature"] == headers["X-Signature"].lower()
    # The documented order is body + timestamp, not timestamp + body.
    import hashlib
    import hmac
    wrong_order = hmac.new(fake.signing_key.encode(), headers["X-Timestamp"].encode() + body,
                           hashlib.sha256).hexdigest()
    assert not smsgate.verify_signature(fake.signing_key, body, headers["X-Timestamp"], wrong_order)


@pytest.mark.parametrize("tamper", ["body", "key", "timestamp", "no-signature", "no-timestamp", "letters"])
def test_wrong_signature_is_refused(fake: FakeSmsGate, tamper: str) -> None:
    body, headers = fake.received(TH, "1")
    key = fake.signing_key
    if tamper == "body":
        body = body.replace(b'"1"', b'"2"')
    elif tamper == "key":
        key = "another-key"
    elif tamper == "timestamp":
        headers["X-Timestamp"] = str(int(headers["X-Timestamp"]) + 1)
    elif tamper == "no-signature":
        headers.pop("X-Signature")
    elif tamper == "no-timestamp":
        headers.pop("X-Timestamp")
    else:
        headers["X-Timestamp"] = "1e9"
    assert not smsgate.verify_signature(key, body, headers.get("X-Timestamp"), headers.get("X-Signature"))


def test_stale_or_future_timestamp_is_refused_even_when_signed(fake: FakeSmsGate) -> None:
    now = time.time()
    old_body, old = fake.received(TH, "1", timestamp=int(now) - smsgate.REPLAY_WINDOW_SECONDS - 5)
    new_body, new = fake.received(TH, "1", timestamp=int(now) + smsgate.REPLAY_WINDOW_SECONDS + 5)
    ok_body, ok = fake.received(TH, "1", timestamp=int(now) - 60)  # a phone clock a minute off
    assert not headers_ok(fake, old_body, old, now=now)
    assert not headers_ok(fake, new_body, new, now=now)
    assert headers_ok(fake, ok_body, ok, now=now)


# -- parsing -------------------------------------------------------------------------------------

def test_received_sms_is_read_with_the_event_id_as_key(fake: FakeSmsGate) -> None:
    a_body, _ = fake.received(TH, "1")
    b_body, _ = fake.received(TH, "1")
    a, b = smsgate.parse_event(a_body), smsgate.parse_event(b_body)
    assert a.kind is smsgate.Kind.RECEIVED and a.text == "1" and a.phone == TH
    assert a.address == f"sms:{TH}" and a.device_id == fake.device_id
    # Two texts "1" share the content-derived messageId; only the event ids differ.
    assert a.message_id == b.message_id and a.event_id != b.event_id


@pytest.mark.parametrize("raw", ["0812000001", "66812000001", "+66812000001", "081-200-0001"])
def test_thai_senders_in_any_format_become_e164(fake: FakeSmsGate, raw: str) -> None:
    body, _ = fake.webhook("sms:received", {"messageId": "x", "message": "hi", "sender": raw,
                                            "receivedAt": "2026-12-02T08:00:00.000+07:00"})
    assert smsgate.parse_event(body).phone == TH


def test_legacy_phone_number_field_is_read(fake: FakeSmsGate) -> None:
    body, _ = fake.webhook("sms:received", {"messageId": "x", "message": "hi", "phoneNumber": TH})
    assert smsgate.parse_event(body).phone == TH


@pytest.mark.parametrize("sender", ["AIS", "TrueMove H", "dtac", "1677", ""])
def test_carrier_and_short_code_senders_are_ignored(fake: FakeSmsGate, sender: str) -> None:
    body, _ = fake.webhook("sms:received", {"messageId": "x", "message": "โปรโมชั่น", "sender": sender})
    assert smsgate.parse_event(body).kind is smsgate.Kind.IGNORED


def test_status_events_name_our_message_and_the_reason(fake: FakeSmsGate) -> None:
    requests.post(fake.url + "/messages", auth=(fake.username, fake.password), timeout=5,
                  json={"id": "hl-7", "phoneNumbers": [TH], "textMessage": {"text": "hi"}})
    sent = smsgate.parse_event(fake.status("hl-7", "sms:sent")[0])
    failed = smsgate.parse_event(fake.status("hl-7", "sms:failed", reason="RESULT_ERROR_NO_SERVICE")[0])
    assert (sent.kind, sent.message_id, sent.phone) == (smsgate.Kind.SENT, "hl-7", TH)
    assert (failed.kind, failed.reason) == (smsgate.Kind.FAILED, "RESULT_ERROR_NO_SERVICE")
    assert smsgate.parse_event(fake.ping()[0]).kind is smsgate.Kind.PING


@pytest.mark.parametrize("body", [
    b"", b"[]", b"null", b'{"event": "sms:received"}', b'{"event": "sms:received", "payload": []}',
    b'{"event": "sms:received", "payload": {"sender": 66812000001, "message": 5}}',
    b'{"event": "mms:received", "id": "x", "payload": {}}', b'{"event": "app:started", "payload": {}}',
])
def test_malformed_or_other_events_never_raise(body: bytes) -> None:
    assert smsgate.parse_event(body).kind is smsgate.Kind.IGNORED


# -- the fake REST API ---------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["local", "cloud"])
def test_fake_accepts_a_send_as_pending_in_both_modes(fake: FakeSmsGate, mode: str) -> None:
    base = fake.url if mode == "local" else fake.cloud_url
    resp = requests.post(base + "/messages", auth=(fake.username, fake.password), timeout=5,
                         json={"phoneNumbers": [TH], "textMessage": {"text": "สวัสดี"}})
    assert resp.status_code == 202 and resp.json()["state"] == "Pending"
    assert fake.sent_to(TH)[0]["text"] == "สวัสดี"


def test_fake_refuses_bad_auth_numbers_and_duplicate_ids(fake: FakeSmsGate) -> None:
    msg = {"id": "hl-1", "phoneNumbers": [TH], "textMessage": {"text": "x"}}
    assert requests.post(fake.url + "/messages", auth=("sms", "wrong"), json=msg, timeout=5).status_code == 401
    bad = {**msg, "phoneNumbers": ["0812000001"]}
    assert requests.post(fake.url + "/messages", auth=(fake.username, fake.password), json=bad,
                         timeout=5).status_code == 400
    assert requests.post(fake.url + "/messages", auth=(fake.username, fake.password), json=msg,
                         timeout=5).status_code == 202
    assert requests.post(fake.url + "/messages", auth=(fake.username, fake.password), json=msg,
                         timeout=5).status_code == 409
