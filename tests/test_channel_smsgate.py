"""SMS Gateway for Android: X-Signature over raw body + X-Timestamp with a replay window, webhook
events as plain events, and the fake REST API of the phone (local and cloud mode)."""

from __future__ import annotations

import json
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


# -- end to end: signed webhooks into the real app, a real worker, the fake phone ----------------

import sqlalchemy as sa  # noqa: E402

from hotline import create_app  # noqa: E402
from hotline.models import (  # noqa: E402
    CallbackRequest,
    Caller,
    Case,
    ChannelEvent,
    Direction,
    Message,
    MessageStatus,
)
from hotline.services import chat, sendgate  # noqa: E402
from hotline.settings import Settings  # noqa: E402
from hotline.telephony.transport import TwilioTransport  # noqa: E402
from tests.conftest import requeue_scheduled, run_worker_burst  # noqa: E402


@pytest.fixture(params=["local"])
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings(settings: Settings, fake: FakeSmsGate, mode: str) -> Settings:
    return settings.with_(channels={"smsgate": {
        "SMSGATE_URL": fake.url if mode == "local" else fake.cloud_url, "SMSGATE_USERNAME": fake.username,
        "SMSGATE_PASSWORD": fake.password, "SMSGATE_SIGNING_KEY": fake.signing_key}})


def deliver(client, request: tuple[bytes, dict[str, str]]):  # type: ignore[no-untyped-def]
    body, headers = request
    return client.post("/channels/smsgate", data=body, headers=headers)


def rows(db, model, *where):  # type: ignore[no-untyped-def]
    db.expire_all()
    return list(db.scalars(sa.select(model).where(*where).order_by(model.id)))


def outbound(db) -> list[Message]:  # type: ignore[no-untyped-def]
    return rows(db, Message, Message.direction == Direction.OUTBOUND)


def test_channel_without_settings_answers_404(settings: Settings, fake: FakeSmsGate) -> None:
    app = create_app(settings.with_(channels={}), TESTING=True)
    body, headers = fake.received(TH, "1")
    assert app.test_client().post("/channels/smsgate", data=body, headers=headers).status_code == 404


def test_wrong_or_stale_signature_is_403_and_nothing_is_stored(client, db, fake: FakeSmsGate) -> None:
    body, headers = fake.received(TH, "SOS they took my passport")
    assert client.post("/channels/smsgate", data=body, headers={**headers, "X-Signature": "0" * 64}).status_code == 403
    stale = fake.received(TH, "SOS", timestamp=int(time.time()) - 3600)  # a captured request replayed
    assert deliver(client, stale).status_code == 403
    assert rows(db, Message) == [] and rows(db, ChannelEvent) == [] and rows(db, Case) == []


@pytest.mark.parametrize("mode", ["local", "cloud"], indirect=True)
def test_text_1_returns_the_recorded_message_as_text_through_the_phone(client, db, settings, fake: FakeSmsGate,
                                                                      mode: str) -> None:
    assert deliver(client, fake.received(TH, "1")).status_code == 200
    run_worker_burst(settings)
    [sent] = fake.sent_to(TH)
    inbound, out = rows(db, Message)
    assert inbound.keyword == "topic_1" and inbound.channel == "smsgate" and inbound.peer == TH
    assert out.body == sent["text"] and out.status == MessageStatus.SENT and out.sid == f"smsgate:{sent['id']}"
    assert sent["withDeliveryReport"] and sent["ttl"] > 0
    assert not (settings.instance_path / "channel_media").exists()  # no audio is made for SMS
    path = "/3rdparty/v1/messages" if mode == "cloud" else "/messages"
    assert ("POST", path) in fake.requests


def test_a_retried_webhook_acts_once_but_two_texts_1_both_count(client, db, settings, fake: FakeSmsGate) -> None:
    first = fake.received(TH, "1", event_id="evt-1")
    assert deliver(client, first).status_code == 200
    assert deliver(client, fake.received(TH, "1", event_id="evt-1")).status_code == 200  # the app retries
    assert deliver(client, fake.received(TH, "1", event_id="evt-2")).status_code == 200  # the person again
    run_worker_burst(settings)
    assert len(rows(db, Message, Message.direction == Direction.INBOUND)) == 2 and len(fake.sent_to(TH)) == 2


def test_status_events_update_the_message_and_a_late_failure_is_recorded(client, db, settings,
                                                                         fake: FakeSmsGate) -> None:
    deliver(client, fake.received(TH, "HELP"))
    run_worker_burst(settings)
    [sent] = fake.sent_to(TH)
    assert deliver(client, fake.status(sent["id"], "sms:sent")).status_code == 200
    assert outbound(db)[0].status == MessageStatus.SENT
    assert deliver(client, fake.status(sent["id"], "sms:failed", reason="RESULT_ERROR_NO_SERVICE")).status_code == 200
    [out] = outbound(db)
    assert out.status == MessageStatus.FAILED and out.error_code == "smsgate_failed"
    assert out.error_message == "RESULT_ERROR_NO_SERVICE"
    assert deliver(client, fake.status(sent["id"], "sms:sent")).status_code == 200  # late, out of order
    assert outbound(db)[0].status == MessageStatus.FAILED
    assert deliver(client, fake.webhook("sms:delivered", {"messageId": "not-ours"})).status_code == 200


def test_delivered_report_and_a_part_that_failed_after_another_was_delivered(client, db, settings,
                                                                             fake: FakeSmsGate) -> None:
    deliver(client, fake.received(TH, "HELP"))
    run_worker_burst(settings)
    mid = fake.sent_to(TH)[0]["id"]
    deliver(client, fake.status(mid, "sms:delivered"))
    deliver(client, fake.status(mid, "sms:delivered"))  # one report per part of a long text
    assert outbound(db)[0].status == MessageStatus.DELIVERED
    deliver(client, fake.status(mid, "sms:failed", reason="RESULT_ERROR_GENERIC_FAILURE"))
    assert outbound(db)[0].status == MessageStatus.FAILED  # the person did not get the whole text


def test_the_sender_is_the_phone_callers_own_row_language_and_callback(client, db, settings, twilio,
                                                                       fake: FakeSmsGate) -> None:
    twilio.post("/twilio/sms", twilio.sms_params("hello", from_=TH))  # Twilio SMS first
    deliver(client, fake.received(TH, "CALL"))
    run_worker_burst(settings)
    [caller] = rows(db, Caller)
    assert caller.phone == TH
    assert {m.caller_id for m in rows(db, Message)} == {caller.id}
    [cb] = rows(db, CallbackRequest)
    assert cb.phone == TH  # no "send us your number": we have it
    text = fake.sent_to(TH)[0]["text"]
    assert text == outbound(db)[-1].body and "0812345678" not in text


def test_stop_through_the_gateway_holds_for_twilio_sms_and_back(client, db, settings, fake: FakeSmsGate,
                                                                fake_twilio) -> None:
    deliver(client, fake.received(TH, "STOP"))
    run_worker_burst(settings)
    assert len(fake.sent_to(TH)) == 1  # the confirmation of the STOP itself
    rest = settings.with_(twilio_rest_enabled=True, twilio_api_base_url=fake_twilio.url)
    with pytest.raises(sendgate.OptedOut):
        sendgate.send_sms(db, TwilioTransport(rest), TH, "a reminder")
    [caller] = rows(db, Caller)
    chat.queue_message(db, caller=caller, text="A staff reply", language="th", purpose="staff", channel="smsgate")
    db.commit()
    run_worker_burst(settings)
    assert len(fake.sent_to(TH)) == 1 and outbound(db)[-1].error_code == "opted_out"
    assert fake_twilio.sms_to(TH) == []


def test_stop_by_twilio_sms_holds_for_the_gateway(client, db, settings, twilio, fake: FakeSmsGate) -> None:
    twilio.post("/twilio/sms", twilio.sms_params("STOP", from_=TH))
    [caller] = rows(db, Caller)
    chat.queue_message(db, caller=caller, text="A staff reply", language="th", purpose="staff", channel="smsgate")
    db.commit()
    run_worker_burst(settings)
    assert fake.sent_to(TH) == [] and outbound(db)[-1].status == MessageStatus.FAILED


def test_phone_busy_is_retried_and_a_send_accepted_before_a_timeout_is_not_sent_twice(
        client, db, settings, fake: FakeSmsGate, res) -> None:
    fake.fail_next(1, 503, "QueueLimitExceeded", "queue limits exceeded: too many pending messages: 10 / 10")
    deliver(client, fake.received(TH, "HELP"))
    run_worker_burst(settings)
    assert fake.sent_to(TH) == [] and outbound(db)[0].status == MessageStatus.QUEUED
    fake.delay = 2.0  # the phone takes the message but answers after our timeout
    gate = __import__("hotline.channels.smsgate", fromlist=["SmsGateAdapter"]).SmsGateAdapter
    old, gate.timeout = gate.timeout, (1.0, 1.0)
    try:
        requeue_scheduled(res.redis())
        run_worker_burst(settings)
    finally:
        gate.timeout, fake.delay = old, 0.0
    for _ in range(50):
        if fake.sent_to(TH):
            break
        time.sleep(0.1)
    requeue_scheduled(res.redis())
    run_worker_burst(settings)
    [sent] = fake.sent_to(TH)  # once: the retry under the same id got 409
    assert outbound(db)[0].status == MessageStatus.SENT and outbound(db)[0].sid == f"smsgate:{sent['id']}"


def test_a_number_the_gateway_refuses_is_a_permanent_failure(client, db, settings, fake: FakeSmsGate, res) -> None:
    fake.fail_next(1, 400, "BadRequest", "invalid phone number")
    deliver(client, fake.received(TH, "HELP"))
    run_worker_burst(settings)
    assert requeue_scheduled(res.redis()) == 0
    [out] = outbound(db)
    assert out.status == MessageStatus.FAILED and out.error_code == "400"
    assert fake.password not in (out.error_message or "")


@pytest.mark.parametrize("request_", ["ping", "carrier", "mms", "garbage"])
def test_pings_carrier_notices_and_other_events_are_200_and_leave_no_trace(client, db, fake: FakeSmsGate,
                                                                           request_: str) -> None:
    if request_ == "ping":
        req = fake.ping()
    elif request_ == "carrier":
        req = fake.webhook("sms:received", {"messageId": "x", "message": "โปรโมชั่นพิเศษ", "sender": "AIS"})
    elif request_ == "mms":
        req = fake.webhook("mms:received", {"messageId": "x", "sender": TH, "size": 1})
    else:
        body = b"\xff not json"
        req = (body, fake.sign(body))
    assert deliver(client, req).status_code == 200
    assert rows(db, Message) == [] and rows(db, Caller) == []


def test_start_by_twilio_sms_lifts_a_stop_sent_through_the_gateway(client, db, settings, twilio,
                                                                  fake: FakeSmsGate) -> None:
    deliver(client, fake.received(TH, "STOP"))
    twilio.post("/twilio/sms", twilio.sms_params("START", from_=TH))
    deliver(client, fake.received(TH, "1"))
    run_worker_burst(settings)
    assert rows(db, Caller)[0].opted_out_at is None
    assert len(fake.sent_to(TH)) == 2 and outbound(db)[-1].status == MessageStatus.SENT  # STOP's confirmation, topic 1


def test_readiness_shows_when_the_phone_was_last_heard_from(client, fake: FakeSmsGate) -> None:
    assert client.get("/healthz/ready").get_json()["devices"] == {"smsgate": None}
    assert deliver(client, fake.ping()).status_code == 200
    body = client.get("/healthz/ready").get_json()
    assert body["devices"]["smsgate"] is not None and body["devices"]["smsgate"] <= 5
    stale = fake.webhook("system:ping", {}, timestamp=int(time.time()) - 3600)
    assert deliver(client, stale).status_code == 403


def test_staff_reply_from_the_case_page_goes_back_through_the_gateway(client, db, settings, fake: FakeSmsGate) -> None:
    from tests.test_console import login, make_staff, post

    deliver(client, fake.received(TH, "SOS my boss locked us in"))
    run_worker_burst(settings)
    [case] = rows(db, Case)
    assert case.source == "smsgate"
    make_staff(db)
    login(client)
    assert "Reply on text (Thai SIM)" in client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert post(client, f"/staff/cases/{case.id}/reply", {"body": "We read your message. Are you safe now?"}
                ).status_code == 302
    run_worker_burst(settings)
    assert fake.sent_to(TH)[-1]["text"] == "We read your message. Are you safe now?"
    [row] = rows(db, Message, Message.purpose == "staff")
    assert row.status == MessageStatus.SENT and row.channel == "smsgate" and row.peer == TH


def test_a_twilio_sms_case_of_the_same_number_offers_no_gateway_reply(client, db, settings, twilio,
                                                                     fake: FakeSmsGate) -> None:
    from tests.test_console import login, make_staff

    twilio.post("/twilio/sms", twilio.sms_params("SOS my boss locked us in", from_=TH))
    [case] = rows(db, Case)
    make_staff(db)
    login(client)
    assert "Reply on" not in client.get(f"/staff/cases/{case.id}").get_data(as_text=True)


# -- fuzz: whatever a signed body holds, the phone gets a 200 (never a 5xx) ----------------------

from hypothesis import HealthCheck, given  # noqa: E402
from hypothesis import settings as hsettings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30),
                     st.sampled_from([TH, "0812000001", "AIS", "sms:received", "sms:failed", "sms:sent",
                                      "system:ping", "1", "SOS", "STOP", "hl-1"]))
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(["event", "id", "deviceId", "payload", "messageId", "message", "sender",
                                     "phoneNumber", "recipient", "reason", "simNumber", "receivedAt"]),
                    inner, max_size=6)), max_leaves=20)


@hsettings(max_examples=40, deadline=None, derandomize=True,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(event=st.sampled_from(["sms:received", "sms:failed", "sms:sent", "system:ping", "x"]), payload=_json,
       event_id=st.one_of(st.none(), st.text(max_size=70), st.integers()))
def test_fuzzed_signed_events_are_always_answered_200(client, fake: FakeSmsGate, event: str, payload: object,
                                                      event_id: object) -> None:
    body = json.dumps({"deviceId": fake.device_id, "event": event, "id": event_id, "payload": payload}).encode()
    assert client.post("/channels/smsgate", data=body, headers=fake.sign(body)).status_code == 200


def test_hotline_channels_webhook_smsgate_registers_every_event_once(fake: FakeSmsGate, monkeypatch,
                                                                     tmp_path) -> None:
    from click.testing import CliRunner

    from hotline.cli import cli

    env = {"HOTLINE_INSTANCE": str(tmp_path / "i"), "PUBLIC_BASE_URL": "https://hotline.example.org",
           "SMSGATE_URL": fake.cloud_url, "SMSGATE_USERNAME": fake.username, "SMSGATE_PASSWORD": fake.password,
           "SMSGATE_SIGNING_KEY": fake.signing_key}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    for _ in range(2):  # again: the registrations are replaced, not doubled
        result = CliRunner().invoke(cli, ["channels", "webhook", "smsgate"])
        assert result.exit_code == 0, result.output
    assert sorted(h["event"] for h in fake.webhooks.values()) == sorted(smsgate.WEBHOOK_EVENTS)
    assert {h["url"] for h in fake.webhooks.values()} == {"https://hotline.example.org/channels/smsgate"}
    monkeypatch.setenv("SMSGATE_PASSWORD", "wrong")
    refused = CliRunner().invoke(cli, ["channels", "webhook", "smsgate"])
    assert refused.exit_code != 0 and "401" in refused.output and "wrong" not in refused.output
