"""LINE: X-Line-Signature on the raw body, webhook events as plain events, and the fake Messaging API
(reply tokens single-use, push retry keys, content downloads from the data host)."""

from __future__ import annotations

import json
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
