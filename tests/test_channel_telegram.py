"""Telegram end to end: updates signed with the webhook secret as Telegram sends them, the real
app, a real RQ worker, and the local fake of the Bot API (hotline.fakes.telegram)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.fakes.telegram import FakeTelegram
from hotline.models import (
    CallbackRequest,
    Caller,
    Case,
    CasePriority,
    ChannelEvent,
    Direction,
    Message,
    MessageStatus,
    OutboxJob,
    OutboxStatus,
    Recording,
)
from hotline.services import recordings
from hotline.settings import Settings
from tests.conftest import requeue_scheduled, run_worker_burst
from tests.test_console import login, make_staff

SECRET = "tg-webhook-secret-0123456789"
CHAT = 777000111
AUDIO = Path(__file__).resolve().parent.parent / "audio"
_ids = itertools.count(500_000)


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    fake = FakeTelegram().start()
    yield fake
    fake.stop()


@pytest.fixture
def settings(settings: Settings, fake_telegram: FakeTelegram) -> Settings:
    return settings.with_(channels={"telegram": {
        "TELEGRAM_BOT_TOKEN": fake_telegram.token, "TELEGRAM_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE_URL": fake_telegram.url}})


def update(message: dict[str, Any] | None = None, *, update_id: int | None = None, chat: int = CHAT,
           kind: str = "message", chat_type: str = "private") -> dict[str, Any]:
    body = {"message_id": next(_ids), "date": 1764636000, "chat": {"id": chat, "type": chat_type},
            "from": {"id": chat, "is_bot": False, "first_name": "S", "language_code": "km"}, **(message or {})}
    return {"update_id": update_id or next(_ids), kind: body}


def post(client, payload: Any, *, secret: str | None = SECRET, raw: bytes | None = None):
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Telegram-Bot-Api-Secret-Token"] = secret
    return client.post("/channels/telegram", data=raw if raw is not None else json.dumps(payload), headers=headers)


def text(client, body: str, **kw: Any):
    return post(client, update({"text": body}, **kw))


def rows(db, model: Any, *where: Any) -> list[Any]:
    db.expire_all()
    return list(db.scalars(sa.select(model).where(*where).order_by(model.id)))


def test_a_wrong_or_missing_secret_is_403_and_nothing_is_stored(client, db) -> None:
    for secret in ("wrong", "", None):
        assert post(client, update({"text": "SOS help"}), secret=secret).status_code == 403
    assert rows(db, Message) == [] and rows(db, ChannelEvent) == [] and rows(db, Case) == []


def test_topic_one_gets_the_phone_menus_recording_as_a_voice_note_and_its_text_with_buttons(
        client, db, settings, fake_telegram) -> None:
    assert text(client, "1").status_code == 200
    run_worker_burst(settings)
    voice, msg = fake_telegram.sent
    assert voice["method"] == "sendVoice" and msg["method"] == "sendMessage"
    ogg = fake_telegram.voices[voice["file_id"]]
    assert ogg[:4] == b"OggS" and b"OpusHead" in ogg[:200] and voice["content_type"] == "audio/ogg"
    assert int(voice["duration"]) >= 1
    labels = [b["text"] for row in msg["reply_markup"]["keyboard"] for b in row]
    assert labels[0].startswith("1 ") and len(labels) == 9 and msg["reply_markup"]["is_persistent"]
    inbound, outbound = rows(db, Message)
    assert inbound.keyword == "topic_1" and inbound.peer == f"telegram:{CHAT}" and inbound.channel == "telegram"
    assert outbound.status == MessageStatus.SENT and outbound.body == msg["text"]
    assert outbound.sid == f"telegram:{CHAT}:{msg['message_id']}"


def test_a_replayed_update_acts_once(client, db, settings, fake_telegram) -> None:
    u = update({"text": "SOS they took my passport"})
    for _ in range(3):
        assert post(client, u).status_code == 200
    run_worker_burst(settings)
    assert len(rows(db, Case)) == 1 and len(rows(db, Message, Message.direction == Direction.INBOUND)) == 1
    assert len(rows(db, ChannelEvent)) == 1
    assert len(fake_telegram.texts_to(CHAT)) == 1


def test_a_tapped_button_label_is_read_as_its_payload(client, db, settings, fake_telegram) -> None:
    assert text(client, "2 លិខិតឆ្លងដែន").status_code == 200
    run_worker_burst(settings)
    inbound = rows(db, Message, Message.direction == Direction.INBOUND)[0]
    assert inbound.keyword == "topic_2"
    assert [m["method"] for m in fake_telegram.sent] == ["sendVoice", "sendMessage"]


@pytest.mark.parametrize("message", [
    {"sticker": {"file_id": "CAACAgI", "emoji": "👍", "width": 512, "height": 512, "is_animated": False}},
    {"photo": [{"file_id": "AgACAgI", "width": 90, "height": 90}]},
    {"location": {"latitude": 13.75, "longitude": 100.5}},
    {"document": {"file_id": "BQACAgI", "file_name": "contract.pdf"}},
])
def test_stickers_images_locations_files_get_one_neutral_reply(client, db, settings, fake_telegram,
                                                                message) -> None:
    u = update(message)
    assert post(client, u).status_code == 200 and post(client, u).status_code == 200
    run_worker_burst(settings)
    assert fake_telegram.texts_to(CHAT) == ["សូមផ្ញើលេខ ១ ដល់ ៧ ចុចប៊ូតុងមួយ ឬផ្ញើសារជាសំឡេង។"]
    assert len(rows(db, Message, Message.direction == Direction.INBOUND)) == 1 and rows(db, Case) == []


@pytest.mark.parametrize("payload", [
    update({"text": "edited"}, kind="edited_message"),
    update({"text": "SOS"}, chat=-100123, chat_type="supergroup"),
    update({"text": "1"}, chat=-4001, chat_type="group"),
    {"update_id": 9, "message_reaction": {"chat": {"id": CHAT, "type": "private"}, "new_reaction": []}},
    {"update_id": 10, "callback_query": {"id": "1", "data": "x"}},
    {"update_id": 11, "my_chat_member": {"chat": {"id": CHAT, "type": "private"}}},
    {"update_id": 12, "something_new": {}},
    {"update_id": "13", "message": {"text": "1"}},
    {"message": {"text": "no update id"}},
    [1, 2, 3],
    {"update_id": 14, "message": {"chat": "not an object", "text": "1"}},
    {"update_id": 15, "message": {"chat": {"id": CHAT, "type": "private"}, "pinned_message": {}}},
])
def test_edits_reactions_groups_and_unknown_updates_are_answered_200_and_ignored(client, db, payload) -> None:
    assert post(client, payload).status_code == 200
    assert rows(db, Message) == [] and rows(db, OutboxJob) == []


def test_a_body_that_is_not_json_is_400_never_500(client, db) -> None:
    assert post(client, None, raw=b"\xff\xfe not json").status_code == 400
    assert post(client, None, raw=b"").status_code == 400


def test_a_very_long_text_is_stored_clipped_and_answered(client, db, settings, fake_telegram) -> None:
    assert text(client, "hello " * 3000).status_code == 200
    run_worker_burst(settings)
    inbound = rows(db, Message, Message.direction == Direction.INBOUND)[0]
    assert len(inbound.body or "") <= 2000 and len(fake_telegram.texts_to(CHAT)) == 1


def test_a_voice_note_is_stored_encrypted_opens_a_case_and_staff_can_play_it(client, db, settings, res,
                                                                             fake_telegram) -> None:
    ogg = _ogg(settings)
    file_id = fake_telegram.add_file(ogg)
    assert post(client, update({"voice": {"file_id": file_id, "file_unique_id": "u1", "duration": 3,
                                          "mime_type": "audio/ogg"}})).status_code == 200
    run_worker_burst(settings)
    (rec,) = rows(db, Recording)
    (case,) = rows(db, Case)
    assert rec.status == "stored" and rec.case_id == case.id and case.priority == CasePriority.NORMAL
    assert case.source == "telegram" and rec.duration_s == 3
    stored = (settings.recordings_path / (rec.storage_path or "")).read_bytes()
    assert b"OggS" not in stored and recordings.decrypt(settings, rec) == ogg
    assert "voice message" in fake_telegram.texts_to(CHAT)[0] or fake_telegram.texts_to(CHAT)[0].startswith("សូមអរគុណ")
    make_staff(db)
    login(client)
    played = client.get(f"/staff/recordings/{rec.id}")
    assert played.status_code == 200 and played.data == ogg and played.mimetype == "audio/ogg"


def test_a_voice_note_with_an_urgent_caption_opens_an_urgent_case(client, db, settings, fake_telegram) -> None:
    file_id = fake_telegram.add_file(_ogg(settings))
    post(client, update({"voice": {"file_id": file_id, "duration": 2}, "caption": "SOS they took my passport"}))
    run_worker_burst(settings)
    (case,) = rows(db, Case)
    assert case.priority == CasePriority.URGENT and rows(db, Recording)[0].case_id == case.id


def test_a_text_after_a_voice_note_that_is_urgent_raises_its_case(client, db, settings, fake_telegram) -> None:
    file_id = fake_telegram.add_file(_ogg(settings))
    post(client, update({"voice": {"file_id": file_id, "duration": 2}}))
    text(client, "SOS my boss locked us in")
    (case,) = rows(db, Case)
    assert case.priority == CasePriority.URGENT


def test_a_phone_number_in_a_chat_is_a_callback_to_it_and_links_the_contact(client, db, settings,
                                                                           fake_telegram) -> None:
    text(client, "please call me 081 234 5678")
    run_worker_burst(settings)
    (req,) = rows(db, CallbackRequest)
    assert req.phone == "+66812345678" and req.source == "telegram"
    contact = db.scalar(sa.select(Caller).where(Caller.phone == f"telegram:{CHAT}"))
    phone = db.scalar(sa.select(Caller).where(Caller.phone == "+66812345678"))
    assert contact is not None and phone is not None and contact.linked_caller_id == phone.id
    assert "number you sent" in fake_telegram.texts_to(CHAT)[0] or "លេខដែលអ្នកបានផ្ញើ" in fake_telegram.texts_to(CHAT)[0]


def test_a_shared_contact_is_a_callback_to_its_number(client, db, settings) -> None:
    post(client, update({"contact": {"phone_number": "66812345678", "first_name": "S"}}))
    assert rows(db, CallbackRequest)[0].phone == "+66812345678"


def test_call_me_without_a_number_asks_for_one_and_opens_nothing(client, db, settings, fake_telegram) -> None:
    text(client, "LANG 3")
    text(client, "CALL")
    run_worker_burst(settings)
    assert rows(db, CallbackRequest) == []
    assert fake_telegram.texts_to(CHAT)[-1].startswith("So that we can call you back, please send your phone number")


def test_language_is_remembered_per_contact(client, db, settings, fake_telegram) -> None:
    text(client, "LANG 3")
    text(client, "1")
    text(client, "1", chat=CHAT + 1)
    run_worker_burst(settings)
    assert fake_telegram.texts_to(CHAT)[-1].startswith("Before you go")
    assert not fake_telegram.texts_to(CHAT + 1)[-1].startswith("Before you go")


def test_after_stop_only_the_confirmation_is_sent_until_start(client, db, settings, fake_telegram) -> None:
    text(client, "LANG 3")
    text(client, "STOP")
    text(client, "1")
    run_worker_burst(settings)
    assert fake_telegram.texts_to(CHAT)[-1].startswith("OK, we will send you no more messages")
    text(client, "START")
    text(client, "2")
    run_worker_burst(settings)
    assert fake_telegram.texts_to(CHAT)[-1].startswith("Passport and papers")


def test_a_rate_limit_or_5xx_is_retried_and_then_sent(client, db, settings, fake_telegram, res) -> None:
    fake_telegram.fail_next(1, 429, "Too Many Requests: retry after 1", retry_after=1)
    fake_telegram.fail_next(1, 502, "Bad Gateway")
    text(client, "HELP")
    for _ in range(3):
        run_worker_burst(settings)
        requeue_scheduled(res.redis())
    run_worker_burst(settings)
    (out,) = rows(db, Message, Message.direction == Direction.OUTBOUND)
    assert out.status == MessageStatus.SENT and len(fake_telegram.texts_to(CHAT)) == 1


def test_a_blocked_bot_is_a_permanent_failure_recorded_on_the_message(client, db, settings, fake_telegram) -> None:
    fake_telegram.blocked.add(str(CHAT))
    text(client, "HELP")
    run_worker_burst(settings)
    (out,) = rows(db, Message, Message.direction == Direction.OUTBOUND)
    assert out.status == MessageStatus.FAILED and out.error_code == "403"
    assert "blocked by the user" in (out.error_message or "") and fake_telegram.token not in (out.error_message or "")
    (job,) = rows(db, OutboxJob, OutboxJob.kind == "chat.send")
    assert job.status == OutboxStatus.FAILED and job.attempts == 1


def _ogg(settings: Settings) -> bytes:
    from hotline.channels import media

    voice = media.prompt_voice(settings, "en", ["goodbye"], "ogg")
    assert voice is not None
    return voice.path.read_bytes()


def test_an_on_call_lawyer_on_the_roster_by_telegram_gets_the_alert_there_and_is_never_dialled(
        client, db, settings, fake_telegram, twilio) -> None:
    from hotline.models import OnCallEntry
    from hotline.services import ivr
    from tests.test_console import post

    make_staff(db, "admin@example.org", role="admin")
    login(client, "admin@example.org")
    assert post(client, "/staff/oncall", {"country": "TH", "phone": "telegram:5550001", "name": "Lawyer A",
                                          "position": "1"}).status_code == 302
    assert post(client, "/staff/oncall", {"country": "TH", "phone": "telegram:notanid", "name": "x",
                                          "position": "2"}).status_code == 400
    assert [e.phone for e in rows(db, OnCallEntry)] == ["telegram:5550001"]
    assert ivr.oncall_numbers(db, settings, "TH") == ()  # a Telegram entry takes alerts, it is not rung
    twilio.post("/twilio/sms", twilio.sms_params("SOS my boss locked us in", from_="+66898765432"))
    run_worker_burst(settings)
    (alert,) = fake_telegram.texts_to(5550001)
    (case,) = rows(db, Case)
    assert case.ref in alert
    (row,) = rows(db, Message, Message.purpose == "oncall_alert")
    assert row.channel == "telegram" and row.status == MessageStatus.SENT and row.peer == "telegram:5550001"


def test_hotline_channels_webhook_registers_our_route_with_the_secret(settings, fake_telegram, monkeypatch,
                                                                      tmp_path) -> None:
    from click.testing import CliRunner

    from hotline.cli import cli

    env = {"HOTLINE_INSTANCE": str(tmp_path / "i"), "PUBLIC_BASE_URL": "https://hotline.example.org",
           "TELEGRAM_BOT_TOKEN": fake_telegram.token, "TELEGRAM_WEBHOOK_SECRET": SECRET,
           "TELEGRAM_API_BASE_URL": fake_telegram.url}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    result = CliRunner().invoke(cli, ["channels", "webhook", "telegram"])
    assert result.exit_code == 0, result.output
    assert fake_telegram.webhook["url"] == "https://hotline.example.org/channels/telegram"
    assert fake_telegram.webhook["secret_token"] == SECRET
    listed = CliRunner().invoke(cli, ["channels", "list"])
    assert listed.exit_code == 0 and "telegram   on  https://hotline.example.org/channels/telegram" in listed.output
    assert "messenger  off set MESSENGER_APP_SECRET" in listed.output


def test_a_new_contact_whose_telegram_is_in_thai_is_answered_in_thai_and_the_call_button_shares_the_number(
        client, db, settings, fake_telegram) -> None:
    u = update({"text": "HELP"}, chat=CHAT + 5)
    u["message"]["from"]["language_code"] = "th"
    post(client, u)
    run_worker_burst(settings)
    (sent,) = [m for m in fake_telegram.sent if m["chat_id"] == str(CHAT + 5)]
    assert any("\u0e00" <= ch <= "\u0e7f" for ch in sent["text"])  # Thai script
    buttons = [b for row in sent["reply_markup"]["keyboard"] for b in row]
    assert [b for b in buttons if b.get("request_contact")] == [b for b in buttons if b["text"] == "โทรกลับหาฉัน"]
    u = update({"text": "HELP"}, chat=CHAT + 6)
    u["message"]["from"]["language_code"] = "en"  # not taken: Khmer speakers' phones are often in English
    post(client, u)
    assert db.scalar(sa.select(Caller.language).where(Caller.phone == f"telegram:{CHAT + 6}")) is None


def test_telegrams_start_button_gets_the_welcome_with_the_buttons(client, db, settings, fake_telegram) -> None:
    text(client, "/start")
    run_worker_burst(settings)
    (sent,) = fake_telegram.sent
    inbound = rows(db, Message, Message.direction == Direction.INBOUND)[0]
    assert inbound.keyword == "help" and sent["reply_markup"]["keyboard"]
