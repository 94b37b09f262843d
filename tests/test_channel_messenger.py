"""Facebook Messenger end to end: webhooks signed with X-Hub-Signature-256 exactly as Meta signs them,
the real app, a real RQ worker, and the local fake of the Graph Send API (hotline.fakes.messenger)."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import secrets
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.channels import media
from hotline.db import utcnow
from hotline.fakes.messenger import FakeMessenger
from hotline.models import Case, CasePriority, ChannelEvent, Direction, Message, MessageStatus, OutboxJob, Recording
from hotline.services import recordings
from hotline.settings import Settings
from tests.conftest import requeue_scheduled, run_worker_burst

APP_SECRET = "meta-app-secret-0123456789abcdef"
VERIFY = "verify-me-please"
PAGE = "104000000000001"
PSID = "6100000000000042"
_ts = itertools.count(1764636000000)


@pytest.fixture
def fake_messenger() -> Iterator[FakeMessenger]:
    fake = FakeMessenger().start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(settings: Settings, fake_messenger: FakeMessenger) -> Settings:
    return settings.with_(channels={"messenger": {
        "MESSENGER_APP_SECRET": APP_SECRET, "MESSENGER_PAGE_TOKEN": fake_messenger.page_token,
        "MESSENGER_VERIFY_TOKEN": VERIFY, "MESSENGER_API_BASE_URL": fake_messenger.url}})


class Meta:
    """Posts to our webhook as Meta does; the fake learns that the person wrote (the window opens)."""

    def __init__(self, client: Any, fake: FakeMessenger):
        self.client, self.fake = client, fake

    @staticmethod
    def event(message: dict[str, Any] | None = None, *, psid: str = PSID, mid: str | None = None,
              **other: Any) -> dict[str, Any]:
        ev: dict[str, Any] = {"sender": {"id": psid}, "recipient": {"id": PAGE}, "timestamp": next(_ts), **other}
        if message is not None:
            ev["message"] = {"mid": mid or "m_" + secrets.token_urlsafe(16), **message}
        return ev

    def post(self, *events: dict[str, Any], signature: str | None = None, raw: bytes | None = None,
             entries: int = 1) -> Any:
        body = raw if raw is not None else json.dumps({"object": "page", "entry": [
            {"id": PAGE, "time": next(_ts), "messaging": list(events)} for _ in range(entries)]}).encode()
        for ev in events:
            if "message" in ev and "sender" in ev and not ev["message"].get("is_echo"):
                self.fake.user_wrote(ev["sender"]["id"])
        sig = signature if signature is not None else "sha256=" + hmac.new(APP_SECRET.encode(), body,
                                                                             hashlib.sha256).hexdigest()
        return self.client.post("/channels/messenger", data=body,
                                headers={"Content-Type": "application/json", "X-Hub-Signature-256": sig})

    def text(self, body: str, **kw: Any) -> Any:
        return self.post(self.event({"text": body}, **kw))


@pytest.fixture
def meta(client, fake_messenger) -> Meta:
    return Meta(client, fake_messenger)


def rows(db, model: Any, *where: Any) -> list[Any]:
    db.expire_all()
    return list(db.scalars(sa.select(model).where(*where).order_by(model.id)))


def test_the_setup_handshake_answers_the_challenge_only_with_our_verify_token(client) -> None:
    ok = client.get("/channels/messenger", query_string={"hub.mode": "subscribe", "hub.verify_token": VERIFY,
                                                         "hub.challenge": "1158201444"})
    assert ok.status_code == 200 and ok.get_data(as_text=True) == "1158201444"
    for args in ({"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
                 {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY, "hub.challenge": "1"}, {}):
        assert client.get("/channels/messenger", query_string=args).status_code == 403


def test_a_wrong_or_missing_signature_is_403_and_nothing_is_stored(meta, db) -> None:
    ev = meta.event({"text": "SOS they took my passport"})
    other = "sha256=" + hmac.new(b"other", b"{}", hashlib.sha256).hexdigest()
    for sig in ("sha256=" + "0" * 64, "", "sha1=abc", other):
        assert meta.post(ev, signature=sig).status_code == 403
    assert rows(db, Message) == [] and rows(db, Case) == []


def test_a_signature_over_other_bytes_than_the_raw_body_is_403(meta, db) -> None:
    body = json.dumps({"object": "page", "entry": [{"id": PAGE, "messaging": [meta.event({"text": "1"})]}]})
    spaced = body.replace(":", ": ").encode()  # same JSON, other bytes
    sig = "sha256=" + hmac.new(APP_SECRET.encode(), body.encode(), hashlib.sha256).hexdigest()
    assert meta.post(raw=spaced, signature=sig).status_code == 403


def test_a_topic_quick_reply_gets_the_recording_as_audio_then_the_text_with_quick_replies(
        meta, db, settings, fake_messenger, client) -> None:
    assert meta.post(meta.event({"text": "1 Before you go", "quick_reply": {"payload": "1"}})).status_code == 200
    run_worker_burst(settings)
    audio, text = fake_messenger.sent
    assert audio["messaging_type"] == "RESPONSE" and audio["message"]["attachment"]["type"] == "audio"
    url = audio["message"]["attachment"]["payload"]["url"]
    assert url.startswith(settings.public_base_url + "/channels/media/") and PSID not in url
    served = client.get(url.removeprefix(settings.public_base_url))
    assert served.status_code == 200 and served.mimetype == "audio/mpeg" and len(served.data) > 10_000
    quick = text["message"]["quick_replies"]
    assert len(quick) == 9 and quick[0]["payload"] == "1" and all(len(q["title"]) <= 20 for q in quick)
    (out,) = rows(db, Message, Message.direction == Direction.OUTBOUND)
    assert out.status == MessageStatus.SENT and out.sid == f"messenger:{text['message_id']}"
    assert out.body == text["message"]["text"] and rows(db, Message)[0].keyword == "topic_1"


def test_a_replayed_mid_acts_once_even_within_one_batch(meta, db, settings, fake_messenger) -> None:
    ev = meta.event({"text": "SOS my boss locked us in"}, mid="m_same")
    assert meta.post(ev, ev).status_code == 200
    assert meta.post(ev, entries=2).status_code == 200
    run_worker_burst(settings)
    assert len(rows(db, Case)) == 1 and len(rows(db, ChannelEvent)) == 1
    assert len(fake_messenger.texts_to(PSID)) == 1


def test_several_entries_and_events_in_one_post_are_each_answered(meta, db, settings, fake_messenger) -> None:
    assert meta.post(meta.event({"text": "HELP"}), meta.event({"text": "HELP"}, psid="6100000000000043"),
                     meta.event({"text": "3"})).status_code == 200
    run_worker_burst(settings)
    assert len(fake_messenger.texts_to(PSID)) == 2 and len(fake_messenger.texts_to("6100000000000043")) == 1


@pytest.mark.parametrize("event", [
    Meta.event({"text": "our own reply", "is_echo": True, "app_id": 1}),
    Meta.event(delivery={"mids": ["m_1"], "watermark": 1}),
    Meta.event(read={"watermark": 1}),
    Meta.event(reaction={"mid": "m_1", "action": "react", "emoji": "❤"}),
    Meta.event(message_edit={"mid": "m_1", "text": "edited", "num_edit": 1}),
    Meta.event(optin={"ref": "x"}),
    {"sender": {"id": "not-a-psid"}, "message": {"mid": "m_x", "text": "1"}},
    {"recipient": {"id": PAGE}, "message": {"mid": "m_y", "text": "1"}},
    {"sender": {"id": PSID}, "message": {"mid": "", "text": "no mid"}},
])
def test_echoes_receipts_reactions_edits_and_malformed_events_are_ignored(meta, db, event) -> None:
    assert meta.post(event).status_code == 200
    assert rows(db, Message) == [] and rows(db, OutboxJob) == []


def test_a_post_that_is_not_for_a_page_or_not_json_is_never_a_5xx(meta, db) -> None:
    assert meta.post(raw=json.dumps({"object": "instagram", "entry": []}).encode()).status_code == 200
    assert meta.post(raw=b"[]").status_code == 200
    assert meta.post(raw=b"not json").status_code == 400
    assert rows(db, Message) == []


@pytest.mark.parametrize("attachment", [
    {"type": "image", "payload": {"url": "https://scontent.xx.fbcdn.net/a.jpg", "sticker_id": 369239263222822}},
    {"type": "location", "payload": {"coordinates": {"lat": 13.7, "long": 100.5}}},
    {"type": "file", "payload": {"url": "https://cdn.fbsbx.com/contract.pdf"}},
    {"type": "fallback", "payload": None},
])
def test_stickers_images_locations_files_get_one_neutral_reply(meta, db, settings, fake_messenger,
                                                                attachment) -> None:
    ev = meta.event({"attachments": [attachment]})
    meta.post(ev)
    meta.post(ev)
    run_worker_burst(settings)
    assert fake_messenger.texts_to(PSID) == ["សូមផ្ញើលេខ ១ ដល់ ៧ ចុចប៊ូតុងមួយ ឬផ្ញើសារជាសំឡេង។"]
    assert rows(db, Case) == []


def test_a_voice_clip_is_fetched_encrypted_and_opens_a_case(meta, db, settings, fake_messenger) -> None:
    voice = media.prompt_voice(settings, "en", ["goodbye"], "m4a")
    assert voice is not None
    clip = voice.path.read_bytes()
    url = fake_messenger.add_attachment(clip)
    meta.post(meta.event({"attachments": [{"type": "audio", "payload": {"url": url}}]}))
    run_worker_burst(settings)
    (rec,) = rows(db, Recording)
    (case,) = rows(db, Case)
    assert rec.status == "stored" and rec.case_id == case.id and case.source == "messenger"
    assert case.priority == CasePriority.NORMAL and recordings.decrypt(settings, rec) == clip


def test_a_voice_clip_url_that_is_not_metas_is_never_fetched(meta, db, settings, fake_messenger) -> None:
    meta.post(meta.event({"attachments": [{"type": "audio", "payload": {"url": "http://169.254.169.254/x"}}]}))
    run_worker_burst(settings)
    (rec,) = rows(db, Recording)
    (job,) = rows(db, OutboxJob, OutboxJob.kind == "chat.voice_note")
    assert rec.status == "pending" and job.status == "failed" and "not Meta's" in (job.last_error or "")
    assert rows(db, Case)[0].id == rec.case_id  # the case is there for staff all the same


def test_outside_the_24_hour_window_a_reply_is_refused_and_recorded(meta, db, settings, fake_messenger) -> None:
    meta.text("HELP")
    db.execute(sa.update(Message).where(Message.direction == Direction.INBOUND).values(
        created_at=utcnow() - timedelta(hours=25)))
    db.commit()
    run_worker_burst(settings)
    (out,) = rows(db, Message, Message.direction == Direction.OUTBOUND)
    assert out.status == MessageStatus.FAILED and out.error_code == "window" and fake_messenger.sent == []


def test_a_graph_rate_limit_answered_with_400_is_retried_then_sent(meta, db, settings, fake_messenger, res) -> None:
    fake_messenger.fail_graph(1, 400, 613, "Calls to this api have exceeded the rate limit.")
    fake_messenger.fail_next(1, 503, "Service Unavailable")
    meta.text("HELP")
    for _ in range(3):
        run_worker_burst(settings)
        requeue_scheduled(res.redis())
    (out,) = rows(db, Message, Message.direction == Direction.OUTBOUND)
    assert out.status == MessageStatus.SENT and len(fake_messenger.texts_to(PSID)) == 1


def test_a_person_who_cannot_be_reached_is_a_permanent_failure(meta, db, settings, fake_messenger) -> None:
    fake_messenger.unreachable.add(PSID)
    meta.text("HELP")
    run_worker_burst(settings)
    (out,) = rows(db, Message, Message.direction == Direction.OUTBOUND)
    assert out.status == MessageStatus.FAILED and out.error_code == "400"
    assert "isn't available" in (out.error_message or "") and fake_messenger.page_token not in (out.error_message or "")


def _urgent_case(meta, db) -> Case:
    meta.text("SOS my boss locked us in")
    (case,) = rows(db, Case)
    return case


def test_staff_reply_from_the_case_page_on_messenger_inside_the_window_is_a_response_and_audited(
        meta, db, settings, fake_messenger, client) -> None:
    from hotline.models import AuditEvent
    from tests.test_console import login, make_staff, post

    case = _urgent_case(meta, db)
    make_staff(db)
    login(client)
    page = client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert "Reply on Messenger" in page and "(Messenger)" in page and "source_messenger" not in page
    assert post(client, f"/staff/cases/{case.id}/reply", {"body": "We read your message. Are you safe now?"}
                ).status_code == 302
    run_worker_burst(settings)
    staff_msg = [m for m in fake_messenger.sent if m["message"].get("text", "").startswith("We read")]
    assert len(staff_msg) == 1 and staff_msg[0]["messaging_type"] == "RESPONSE"
    assert "quick_replies" not in staff_msg[0]["message"]
    (row,) = rows(db, Message, Message.purpose == "staff")
    assert row.status == MessageStatus.SENT and row.case_id == case.id and row.peer == f"messenger:{PSID}"
    audit = rows(db, AuditEvent, AuditEvent.action == "case.channel_reply")
    assert len(audit) == 1 and audit[0].detail["channel"] == "messenger"
    assert "We read" not in json.dumps(audit[0].detail)


def test_staff_reply_after_24_hours_uses_the_human_agent_tag_and_after_7_days_is_refused(
        meta, db, settings, fake_messenger, client) -> None:
    from tests.test_console import login, make_staff, post

    case = _urgent_case(meta, db)
    run_worker_burst(settings)
    make_staff(db)
    login(client)
    for age, expect in ((timedelta(days=3), "HUMAN_AGENT"), (timedelta(days=8), None)):
        db.execute(sa.update(Message).where(Message.direction == Direction.INBOUND).values(created_at=utcnow() - age))
        db.commit()
        fake_messenger.user_wrote(PSID, at=(utcnow() - age).timestamp())
        before = len(fake_messenger.sent)
        resp = post(client, f"/staff/cases/{case.id}/reply", {"body": "Are you safe?"})
        assert resp.status_code == 302
        run_worker_burst(settings)
        sent = fake_messenger.sent[before:]
        if expect:
            assert len(sent) == 1 and sent[0]["messaging_type"] == "MESSAGE_TAG" and sent[0]["tag"] == expect
        else:
            assert sent == [] and len(rows(db, Message, Message.purpose == "staff")) == 1
            page = client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
            assert "allows no reply this long" in page


def test_a_reply_form_is_offered_only_for_a_chat_contact_and_an_sms_case_refuses_it(db, client, settings) -> None:
    from tests.test_console import login, make_case, make_staff, post

    case = make_case(db)  # a phone caller
    make_staff(db)
    login(client)
    assert "Reply on" not in client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    post(client, f"/staff/cases/{case.id}/reply", {"body": "hello"})
    assert rows(db, Message) == []


def test_call_me_offers_share_my_number_and_the_shared_number_is_a_callback_linked_to_the_contact(
        meta, db, settings, fake_messenger) -> None:
    from hotline.models import CallbackRequest, Caller

    meta.post(meta.event({"text": "Call me back", "quick_reply": {"payload": "CALL"}}))
    run_worker_burst(settings)
    (ask,) = fake_messenger.sent
    assert ask["message"]["quick_replies"][0] == {"content_type": "user_phone_number"}
    assert rows(db, CallbackRequest) == []
    meta.post(meta.event({"text": "+66812345678", "quick_reply": {"payload": "+66812345678"}}))
    (req,) = rows(db, CallbackRequest)
    assert req.phone == "+66812345678" and req.source == "messenger"
    contact = db.scalar(sa.select(Caller).where(Caller.phone == f"messenger:{PSID}"))
    assert contact is not None and contact.linked_caller_id is not None
