"""LINE: X-Line-Signature on the raw body, webhook events as plain events, and the fake Messaging API
(reply tokens single-use, push retry keys, content downloads from the data host)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
import requests

from hotline.channels import line
from hotline.fakes.line_api import INVALID_REPLY_TOKEN, FakeLine

USER = "U" + "4af4980629" * 3 + "ab"


@pytest.fixture(scope="module")
def fake_line() -> Iterator[FakeLine]:
    fake = FakeLine().start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(fake_line: FakeLine) -> FakeLine:
    fake_line.reset()
    return fake_line


# -- signature -----------------------------------------------------------------------------------

def test_signature_is_base64_hmac_sha256_of_the_raw_body(fake: FakeLine) -> None:
    body, headers = fake.webhook(fake.text(USER, "1"))
    assert line.verify_signature(fake.channel_secret, body, headers["X-Line-Signature"])
    # LINE's documented example: base64(HMAC-SHA256(secret, body)) is 44 characters.
    assert len(headers["X-Line-Signature"]) == 44


@pytest.mark.parametrize("tamper", ["body", "secret", "missing", "empty-secret", "garbage"])
def test_wrong_signature_is_refused(fake: FakeLine, tamper: str) -> None:
    body, headers = fake.webhook(fake.text(USER, "1"))
    sig: str | None = headers["X-Line-Signature"]
    secret = fake.channel_secret
    if tamper == "body":
        body = body.replace(b'"1"', b'"2"')
    elif tamper == "secret":
        secret = "another-channel-secret"
    elif tamper == "missing":
        sig = None
    elif tamper == "empty-secret":
        secret = ""
    else:
        sig = "ไม่ใช่ลายเซ็น"  # not even base64
    assert not line.verify_signature(secret, body, sig)


def test_signature_is_checked_on_bytes_even_when_they_are_not_utf8(fake: FakeLine) -> None:
    body = b'{"events":[],"x":"\xff\xfe"}'
    assert line.verify_signature(fake.channel_secret, body, fake.sign(body))
    assert line.parse_events(body) == []


# -- parsing -------------------------------------------------------------------------------------

def parsed(fake: FakeLine, *events: dict) -> list[line.LineEvent]:
    body, _ = fake.webhook(*events)
    return line.parse_events(body)


def test_text_event_carries_event_id_reply_token_and_address(fake: FakeLine) -> None:
    ev = fake.text(USER, "  1 ")
    [got] = parsed(fake, ev)
    assert got.kind is line.Kind.TEXT and got.text == "  1 "
    assert got.event_id == ev["webhookEventId"] and got.reply_token == ev["replyToken"]
    assert got.address == f"line:{USER}" and not got.redelivery


def test_redelivery_keeps_the_webhook_event_id(fake: FakeLine) -> None:
    ev = fake.text(USER, "hello")
    [first] = parsed(fake, ev)
    [again] = parsed(fake, fake.redelivered(ev))
    assert again.redelivery and again.event_id == first.event_id


def test_postback_and_audio(fake: FakeLine) -> None:
    post = fake.event(USER, "postback", postback="CALL")
    voice = fake.audio(USER, b"m4a-bytes", 4200)
    got = parsed(fake, post, voice)
    assert [g.kind for g in got] == [line.Kind.POSTBACK, line.Kind.AUDIO]
    assert got[0].text == "CALL"
    assert got[1].message_id == voice["message"]["id"] and got[1].duration_ms == 4200


@pytest.mark.parametrize("kind,fields", [
    ("sticker", {"packageId": "446", "stickerId": "1988", "stickerResourceType": "STATIC"}),
    ("image", {"contentProvider": {"type": "line"}}),
    ("video", {"duration": 1000, "contentProvider": {"type": "line"}}),
    ("file", {"fileName": "a.pdf", "fileSize": 10}),
    ("location", {"title": "x", "address": "Bangkok", "latitude": 13.7, "longitude": 100.5}),
    ("hologram", {}),  # a message type LINE adds next year
])
def test_other_message_types_are_unsupported_but_answerable(fake: FakeLine, kind: str, fields: dict) -> None:
    [got] = parsed(fake, fake.message(USER, kind, **fields))
    assert got.kind is line.Kind.UNSUPPORTED and got.detail == kind
    assert got.reply_token  # a neutral answer is due, and it is free


def test_audio_from_an_external_provider_cannot_be_downloaded(fake: FakeLine) -> None:
    ev = fake.event(USER, message={"id": "1", "type": "audio", "duration": 10,
                                   "contentProvider": {"type": "external", "originalContentUrl": "https://x"}})
    [got] = parsed(fake, ev)
    assert got.kind is line.Kind.UNSUPPORTED


def test_group_chats_standby_and_unknown_events_are_ignored_without_a_reply_token(fake: FakeLine) -> None:
    got = parsed(fake, fake.text(USER, "help", source="group"), fake.text(USER, "help", source="room"),
                 fake.text(USER, "1", mode="standby"), fake.event(USER, "unsend"),
                 fake.event(USER, "videoPlayComplete"), fake.event(USER, "membership"))
    assert [g.kind for g in got] == [line.Kind.IGNORED] * 6
    assert [g.reply_token for g in got[:3]] == [None] * 3


def test_follow_and_unfollow(fake: FakeLine) -> None:
    got = parsed(fake, fake.event(USER, "follow"), fake.event(USER, "unfollow"))
    assert [g.kind for g in got] == [line.Kind.FOLLOW, line.Kind.UNFOLLOW]
    assert got[0].reply_token and got[1].reply_token is None


@pytest.mark.parametrize("body", [
    b"", b"null", b"[]", b'"events"', b'{"events": null}', b'{"events": [1, "x", null]}',
    b'{"events": [{"type": "message", "source": "U1", "message": "text"}]}',
    b'{"events": [{"type": "message", "source": {"type": "user", "userId": 7}, "message": {}}]}',
    b'{"events": [{"type": "message", "source": {"type": "user", "userId": "Uabc"}}]}',
])
def test_malformed_bodies_never_raise(body: bytes) -> None:
    for ev in line.parse_events(body):
        assert ev.kind in (line.Kind.IGNORED, line.Kind.UNSUPPORTED)


def test_console_verify_request_has_no_events(fake: FakeLine) -> None:
    body, headers = fake.webhook()
    assert line.verify_signature(fake.channel_secret, body, headers["X-Line-Signature"])
    assert line.parse_events(body) == []


def test_very_long_text_is_cut_and_nul_removed(fake: FakeLine) -> None:
    [got] = parsed(fake, fake.text(USER, "ก\x00" * 6000))
    assert len(got.text) == line.MAX_TEXT and "\x00" not in got.text


# -- the fake API itself (what the adapter is tested against) ------------------------------------

def post(fake: FakeLine, path: str, payload: dict, **headers: str) -> requests.Response:
    return requests.post(fake.url + path, json=payload, timeout=5,
                         headers={"Authorization": f"Bearer {fake.access_token}", **headers})


def test_fake_reply_token_is_single_use(fake: FakeLine) -> None:
    token = fake.reply_token(USER)
    msg = {"replyToken": token, "messages": [{"type": "text", "text": "hi"}]}
    assert post(fake, "/v2/bot/message/reply", msg).status_code == 200
    again = post(fake, "/v2/bot/message/reply", msg)
    assert again.status_code == 400 and again.json()["message"] == INVALID_REPLY_TOKEN
    assert fake.delivered_to(USER) == [{"type": "text", "text": "hi"}]


def test_fake_push_retry_key_sends_once(fake: FakeLine) -> None:
    key = line.retry_key("message-41")
    msg = {"to": USER, "messages": [{"type": "text", "text": "hi"}]}
    first = post(fake, "/v2/bot/message/push", msg, **{"X-Line-Retry-Key": key})
    second = post(fake, "/v2/bot/message/push", msg, **{"X-Line-Retry-Key": key})
    assert first.status_code == 200 and second.status_code == 409
    assert second.headers["x-line-accepted-request-id"] == first.headers["x-line-request-id"]
    assert len(fake.pushes) == 1


def test_fake_checks_message_objects_like_line(fake: FakeLine) -> None:
    bad = {"to": USER, "messages": [
        {"type": "audio", "originalContentUrl": "http://insecure/a.m4a", "duration": 0},
        {"type": "text", "text": "x", "quickReply": {"items": [
            {"type": "action", "action": {"type": "message", "label": "x" * 21, "text": "1"}}] * 14}}]}
    resp = post(fake, "/v2/bot/message/push", bad)
    props = {d["property"] for d in resp.json()["details"]}
    assert resp.status_code == 400
    assert {"messages[0].originalContentUrl", "messages[0].duration", "messages[1].quickReply.items"} <= props
    assert post(fake, "/v2/bot/message/push", {"to": USER, "messages": []}).status_code == 400


def test_fake_content_is_on_the_data_host_and_may_be_still_preparing(fake: FakeLine) -> None:
    ev = fake.audio(USER, b"voice", 1000, preparing=1)
    path = f"/v2/bot/message/{ev['message']['id']}/content"
    auth = {"Authorization": f"Bearer {fake.access_token}"}
    assert requests.get(fake.url + path, headers=auth, timeout=5).status_code == 404  # not the api host
    assert requests.get(fake.data_url + path, headers=auth, timeout=5).status_code == 202
    got = requests.get(fake.data_url + path, headers=auth, timeout=5)
    assert got.status_code == 200 and got.content == b"voice"
    assert requests.get(fake.data_url + path, timeout=5).status_code == 401


def test_fake_blocked_user_gets_200_and_nothing(fake: FakeLine) -> None:
    fake.block(USER)
    resp = post(fake, "/v2/bot/message/push", {"to": USER, "messages": [{"type": "text", "text": "hi"}]})
    assert resp.status_code == 200 and fake.delivered_to(USER) == []


def test_retry_key_is_a_stable_uuid() -> None:
    assert line.retry_key("m-1") == line.retry_key("m-1") != line.retry_key("m-2")
    assert json.dumps(line.retry_key("m-1")).count("-") == 4


# -- end to end: signed webhooks into the real app, a real worker, the fake API ------------------

from datetime import timedelta  # noqa: E402

import sqlalchemy as sa  # noqa: E402

from hotline import create_app  # noqa: E402
from hotline.db import utcnow  # noqa: E402
from hotline.models import (  # noqa: E402
    Caller,
    Case,
    ChannelEvent,
    Direction,
    Message,
    MessageStatus,
    OutboxJob,
    Recording,
)
from hotline.services import recordings  # noqa: E402
from hotline.settings import Settings  # noqa: E402
from tests.conftest import requeue_scheduled, run_worker_burst  # noqa: E402
from tests.test_console import login, make_staff  # noqa: E402

M4A = b"\x00\x00\x00\x1cftypM4A \x00\x00\x02\x00M4A isommp42" + bytes(range(256)) * 8


@pytest.fixture
def settings(settings: Settings, fake: FakeLine) -> Settings:
    return settings.with_(channels={"line": {
        "LINE_CHANNEL_SECRET": fake.channel_secret, "LINE_CHANNEL_ACCESS_TOKEN": fake.access_token,
        "LINE_API_BASE_URL": fake.url, "LINE_DATA_API_BASE_URL": fake.data_url}})


def deliver(client, fake: FakeLine, *events: dict, signature: str | None = None):  # type: ignore[no-untyped-def]
    body, headers = fake.webhook(*events)
    if signature is not None:
        headers["X-Line-Signature"] = signature
    return client.post("/channels/line", data=body, headers=headers)


def rows(db, model, *where):  # type: ignore[no-untyped-def]
    db.expire_all()
    return list(db.scalars(sa.select(model).where(*where).order_by(model.id)))


def outbound(db) -> list[Message]:  # type: ignore[no-untyped-def]
    return rows(db, Message, Message.direction == Direction.OUTBOUND)


def test_channel_without_settings_answers_404(settings: Settings, fake: FakeLine) -> None:
    app = create_app(settings.with_(channels={}), TESTING=True)
    body, headers = fake.webhook(fake.text(USER, "1"))
    assert app.test_client().post("/channels/line", data=body, headers=headers).status_code == 404


def test_wrong_signature_is_403_and_nothing_is_stored(client, db, fake: FakeLine) -> None:
    ev = fake.text(USER, "SOS they took my passport")
    assert deliver(client, fake, ev, signature=fake.sign(b"another body")).status_code == 403
    assert deliver(client, fake, ev, signature="").status_code == 403
    assert rows(db, Message) == [] and rows(db, ChannelEvent) == [] and rows(db, Case) == []


def test_text_1_gets_the_recorded_message_as_m4a_voice_then_text_with_quick_replies(
        client, db, settings, fake: FakeLine) -> None:
    assert deliver(client, fake, fake.text(USER, "1")).status_code == 200
    run_worker_burst(settings)
    [reply] = fake.replies  # by the free reply token, not a push
    audio, text = reply["messages"]
    assert audio["type"] == "audio" and audio["duration"] > 1000
    assert audio["originalContentUrl"].startswith("https://hotline.example.org/channels/media/")
    served = client.get(audio["originalContentUrl"].removeprefix("https://hotline.example.org"))
    assert served.status_code == 200 and served.data[4:8] == b"ftyp" and served.mimetype == "audio/mp4"
    labels = [i["action"]["label"] for i in text["quickReply"]["items"]]
    assert text["type"] == "text" and labels[0].startswith("1 ") and len(labels) == 9
    assert {i["action"]["text"] for i in text["quickReply"]["items"]} >= {"1", "CALL", "SOS"}
    inbound, out = rows(db, Message)
    assert inbound.peer == f"line:{USER}" and inbound.channel == "line" and inbound.keyword == "topic_1"
    assert out.status == MessageStatus.SENT and out.body == text["text"] and fake.pushes == []


def test_redelivered_event_acts_once(client, db, settings, fake: FakeLine) -> None:
    ev = fake.text(USER, "SOS my boss locked us in")
    assert deliver(client, fake, ev).status_code == 200
    assert deliver(client, fake, fake.redelivered(ev)).status_code == 200
    assert deliver(client, fake, ev, ev).status_code == 200  # twice in one batch
    run_worker_burst(settings)
    assert len(rows(db, Message, Message.direction == Direction.INBOUND)) == 1
    assert len(rows(db, Case)) == 1 and len(fake.delivered_to(USER)) == 1


def test_expired_reply_token_falls_back_to_push_with_a_retry_key(client, db, settings, fake: FakeLine) -> None:
    ev = fake.text(USER, "HELP")
    fake.expire(ev["replyToken"])
    deliver(client, fake, ev)
    run_worker_burst(settings)
    [push] = fake.pushes
    assert push["to"] == USER and len(push["retryKey"]) == 36 and outbound(db)[0].status == MessageStatus.SENT


def test_old_reply_token_is_not_tried(client, db, settings, fake: FakeLine, res) -> None:
    deliver(client, fake, fake.text(USER, "HELP"))
    job = rows(db, OutboxJob)[0]
    job.payload = {**job.payload, "received_at": (utcnow() - timedelta(minutes=5)).isoformat()}
    db.commit()
    run_worker_burst(settings)
    assert fake.replies == [] and len(fake.pushes) == 1
    assert ("POST", "/v2/bot/message/reply") not in fake.requests


def test_5xx_and_rate_limit_are_retried_and_the_person_sees_it_once(client, db, settings, fake: FakeLine, res) -> None:
    ev = fake.text(USER, "HELP")
    fake.expire(ev["replyToken"])
    fake.fail_next(1, 500)
    fake.fail_next(1, 429, "The API rate limit has been exceeded. Try again later.")
    deliver(client, fake, ev)
    for _ in range(3):
        run_worker_burst(settings)
        requeue_scheduled(res.redis())
    run_worker_burst(settings)
    assert outbound(db)[0].status == MessageStatus.SENT and len(fake.delivered_to(USER)) == 1


def test_push_accepted_before_a_timeout_is_not_sent_twice(client, db, settings, fake: FakeLine, res) -> None:
    ev = fake.text(USER, "HELP")
    fake.expire(ev["replyToken"])
    deliver(client, fake, ev)
    fake.delay = 2.0  # LINE accepts the push, but only after our read timeout gave up
    from hotline.channels import http
    old = http.TIMEOUT
    http.TIMEOUT = (1, 1)
    try:
        run_worker_burst(settings)
    finally:
        http.TIMEOUT = old
        fake.delay = 0.0
    for _ in range(50):  # the fake is still finishing the request our client gave up on
        if fake.pushes:
            break
        time.sleep(0.1)
    assert len(fake.pushes) == 1 and outbound(db)[0].status == MessageStatus.QUEUED
    requeue_scheduled(res.redis())
    run_worker_burst(settings)
    assert len(fake.pushes) == 1 and outbound(db)[0].status == MessageStatus.SENT


@pytest.mark.parametrize("status,message,code", [
    (400, "The property, 'to', in the request body is invalid (line: -, column: -)", "400"),
    (429, "You have reached your monthly limit.", "monthly_limit"),
])
def test_permanent_errors_are_recorded_and_not_retried(client, db, settings, fake: FakeLine, res,
                                                        status: int, message: str, code: str) -> None:
    ev = fake.text(USER, "HELP")
    fake.expire(ev["replyToken"])
    fake.fail_next(1, status, message)
    deliver(client, fake, ev)
    run_worker_burst(settings)
    assert requeue_scheduled(res.redis()) == 0
    [out] = outbound(db)
    assert out.status == MessageStatus.FAILED and out.error_code == code
    assert fake.access_token not in (out.error_message or "") and fake.delivered_to(USER) == []


def test_voice_message_is_downloaded_stored_encrypted_and_opens_a_case(client, db, settings, res,
                                                                       fake: FakeLine) -> None:
    ev = fake.audio(USER, M4A, 3400, preparing=1)  # LINE is still preparing it the first time
    assert deliver(client, fake, ev).status_code == 200
    for _ in range(2):
        run_worker_burst(settings)
        requeue_scheduled(res.redis())
    run_worker_burst(settings)
    [rec] = rows(db, Recording)
    [case] = rows(db, Case)
    assert rec.status == "stored" and rec.case_id == case.id and case.source == "line" and rec.duration_s == 3
    assert recordings.decrypt(settings, rec) == M4A
    assert M4A[:12] not in (settings.recordings_path / (rec.storage_path or "")).read_bytes()
    assert ("GET", f"data:/v2/bot/message/{ev['message']['id']}/content") in fake.requests
    assert fake.delivered_to(USER)[-1]["type"] == "text"  # "we have your voice message"
    make_staff(db)
    login(client)
    played = client.get(f"/staff/recordings/{rec.id}")
    assert played.status_code == 200 and played.data == M4A and played.mimetype == "audio/mp4"


@pytest.mark.parametrize("kind,fields", [
    ("sticker", {"packageId": "446", "stickerId": "1988"}),
    ("image", {"contentProvider": {"type": "line"}}),
    ("location", {"title": "x", "address": "Bangkok", "latitude": 13.7, "longitude": 100.5}),
    ("hologram", {}),
])
def test_stickers_images_locations_and_unknown_types_get_one_neutral_reply(
        client, db, settings, fake: FakeLine, kind: str, fields: dict) -> None:
    assert deliver(client, fake, fake.message(USER, kind, **fields)).status_code == 200
    run_worker_burst(settings)
    [msg] = fake.delivered_to(USER)
    assert msg["type"] == "text" and "voice" in msg["text"].lower() or "សំឡេង" in msg["text"]
    assert rows(db, Case) == [] and rows(db, Recording) == []


def test_group_chats_and_unknown_events_are_200_and_leave_no_trace(client, db, settings, fake: FakeLine) -> None:
    resp = deliver(client, fake, fake.text(USER, "SOS", source="group"), fake.event(USER, "beacon"),
                   fake.event(USER, "unfollow"), fake.text(USER, "1", mode="standby"))
    assert resp.status_code == 200
    run_worker_burst(settings)
    assert rows(db, Message) == [] and rows(db, Caller) == [] and fake.delivered_to(USER) == []


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"events": [{"type": "message"}]}', b"\xff\xfe"])
def test_signed_garbage_is_never_a_5xx(client, db, fake: FakeLine, body: bytes) -> None:
    resp = client.post("/channels/line", data=body, headers={"X-Line-Signature": fake.sign(body)})
    assert resp.status_code < 500 and rows(db, Message) == []


def test_a_new_friend_gets_the_welcome_with_buttons(client, db, settings, fake: FakeLine) -> None:
    deliver(client, fake, fake.event(USER, "follow"))
    run_worker_burst(settings)
    [msg] = fake.delivered_to(USER)
    assert msg["type"] == "text" and len(msg["quickReply"]["items"]) == 9
    [inbound] = rows(db, Message, Message.direction == Direction.INBOUND)
    assert inbound.keyword == "help"  # the welcome, not "sorry, I did not understand"


def test_stop_holds_for_pushes_of_staff_and_alerts(client, db, settings, fake: FakeLine) -> None:
    deliver(client, fake, fake.text(USER, "STOP"))
    run_worker_burst(settings)
    assert len(fake.delivered_to(USER)) == 1  # the confirmation of the STOP itself
    from hotline.services import chat
    caller = db.scalar(sa.select(Caller).where(Caller.phone == f"line:{USER}"))
    assert caller is not None and caller.opted_out_at is not None
    chat.queue_message(db, caller=caller, text="A staff reply", language="en", purpose="staff")
    db.commit()
    run_worker_burst(settings)
    assert len(fake.delivered_to(USER)) == 1 and outbound(db)[-1].status == MessageStatus.FAILED


def test_voice_needs_https_and_the_text_goes_out_without_it(tmp_path) -> None:
    from hotline.channels import Button, ChatReply, Voice

    def reply(url: str) -> ChatReply:
        return ChatReply(text="Topic one", language="en", buttons=(Button("1 Before you go", "1"),),
                         voice=Voice(path=tmp_path / "a.m4a", url=url, mime="audio/mp4", duration_ms=4100, sha256=""))

    audio, text = line.build_messages(reply("https://h.example/channels/media/t"))
    assert audio == {"type": "audio", "originalContentUrl": "https://h.example/channels/media/t", "duration": 4100}
    assert text["quickReply"]["items"][0]["action"] == {"type": "message", "label": "1 Before you go", "text": "1"}
    [only] = line.build_messages(reply("http://h.example/channels/media/t"))
    assert only["type"] == "text" and only["text"] == "Topic one"


# -- fuzz: whatever a signed body holds, LINE gets a 200 (never a 5xx) ---------------------------

from hypothesis import HealthCheck, given  # noqa: E402
from hypothesis import settings as hsettings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=30),
                     st.sampled_from([USER, "U" + "0" * 32, "text", "audio", "user", "group", "message",
                                      "postback", "follow", "sticker", "active", "standby", "1", "SOS"]))
_json = st.recursive(_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4),
    st.dictionaries(st.sampled_from(["type", "message", "source", "userId", "text", "id", "replyToken",
                                     "webhookEventId", "deliveryContext", "isRedelivery", "postback", "data",
                                     "mode", "duration", "contentProvider", "events", "destination"]),
                    inner, max_size=6)), max_leaves=20)


@hsettings(max_examples=40, deadline=None, derandomize=True,
           suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(events=st.lists(_json, max_size=3))
def test_fuzzed_signed_events_are_always_answered_200(client, fake: FakeLine, events: list) -> None:
    body = json.dumps({"destination": fake.bot_user_id, "events": events}).encode()
    resp = client.post("/channels/line", data=body, headers={"X-Line-Signature": fake.sign(body)})
    assert resp.status_code == 200


def test_simulator_chat_pane_plays_a_line_conversation(client, db, settings, fake: FakeLine) -> None:
    from tests.test_simulator import csrf

    headers = csrf(client)
    contact = "U" + "0" * 31 + "1"
    assert "line" in client.get("/simulator").get_data(as_text=True)
    resp = client.post("/simulator/api/chat/line", json={"contact": contact, "kind": "button", "body": "1 Before",
                                                         "payload": "1"}, headers=headers)
    assert resp.status_code == 200 and resp.get_json()["status"] == 200
    run_worker_burst(settings)
    thread = client.get(f"/simulator/api/chat/line/{contact}").get_json()
    inbound, out = thread["messages"]
    assert inbound["body"] == "1" and inbound["keyword"] == "topic_1" and out["status"] == "sent"
    assert out["voice"].startswith("/channels/media/") and thread["buttons"]
    assert client.get(out["voice"]).data[4:8] == b"ftyp"  # the M4A LINE was sent
    assert client.post("/simulator/api/chat/line", json={"contact": USER, "kind": "text", "body": "hi"},
                       headers=headers).status_code == 400  # only the simulator's own contacts


def test_an_on_call_lawyer_on_the_roster_by_line_gets_the_alert_by_push(client, db, settings, fake: FakeLine,
                                                                         twilio) -> None:
    from hotline.models import OnCallEntry
    from hotline.services import ivr
    from tests.test_console import post

    lawyer = "U" + "1234abcd" * 4
    make_staff(db, "admin@example.org", role="admin")
    login(client, "admin@example.org")
    assert post(client, "/staff/oncall", {"country": "TH", "phone": f"line:{lawyer}", "name": "Lawyer L",
                                          "position": "1"}).status_code == 302
    assert post(client, "/staff/oncall", {"country": "TH", "phone": "line:Unot-an-id", "name": "x",
                                          "position": "2"}).status_code == 400
    assert [e.phone for e in rows(db, OnCallEntry)] == [f"line:{lawyer}"]
    assert ivr.oncall_numbers(db, settings, "TH") == ()  # a LINE entry takes alerts, it is not rung
    twilio.post("/twilio/sms", twilio.sms_params("SOS my boss locked us in", from_="+66898765432"))
    run_worker_burst(settings)
    [case] = rows(db, Case)
    [push] = [p for p in fake.pushes if p["to"] == lawyer]
    assert case.ref in push["messages"][0]["text"] and push["retryKey"]
    [row] = rows(db, Message, Message.purpose == "oncall_alert")
    assert row.channel == "line" and row.status == MessageStatus.SENT and row.peer == f"line:{lawyer}"


def test_hotline_channels_webhook_line_sets_the_url_and_lines_test_reaches_us(client, fake: FakeLine, monkeypatch,
                                                                              tmp_path) -> None:
    from click.testing import CliRunner

    from hotline.cli import cli

    def probe(endpoint: str) -> int:  # what LINE's test does: a signed POST with no events
        body, headers = fake.webhook()
        return int(client.post(endpoint.removeprefix("https://hotline.example.org"), data=body,
                               headers=headers).status_code)

    fake.webhook_probe = probe
    env = {"HOTLINE_INSTANCE": str(tmp_path / "i"), "PUBLIC_BASE_URL": "https://hotline.example.org",
           "LINE_CHANNEL_SECRET": fake.channel_secret, "LINE_CHANNEL_ACCESS_TOKEN": fake.access_token,
           "LINE_API_BASE_URL": fake.url, "LINE_DATA_API_BASE_URL": fake.data_url}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    result = CliRunner().invoke(cli, ["channels", "webhook", "line"])
    assert result.exit_code == 0, result.output
    assert fake.webhook_endpoint == "https://hotline.example.org/channels/line" and "answered 200" in result.output
    fake.webhook_probe = lambda endpoint: 403  # e.g. a wrong channel secret on our side
    failed = CliRunner().invoke(cli, ["channels", "webhook", "line"])
    assert failed.exit_code != 0 and "could not reach" in failed.output
