"""The channel core (hotline.channels, hotline.services.chat, the send gate's channel registry,
media conversion): settings, routes that are off, de-duplication under a race, signed media URLs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from hotline import channels, create_app
from hotline.channels import TEXT, ChatReply, InboundMessage, media
from hotline.fakes.telegram import FakeTelegram
from hotline.menus import keywords as kw
from hotline.menus.textnorm import compact, matching_key
from hotline.models import ChannelEvent, Direction, Message
from hotline.resources import resources_of
from hotline.services import chat, sendgate
from hotline.settings import CHANNEL_SETTINGS, Settings, SettingsError, load_settings, parse_channels
from hotline.telephony.transport import SendError
from hotline.web.sms import DEFAULT_SCRIPTS

AUDIO = Path(__file__).resolve().parent.parent / "audio"


# -- settings -------------------------------------------------------------------------------------

def test_a_channel_with_no_settings_is_off_and_the_issues_names_are_used() -> None:
    on, errors = parse_channels({})
    assert on == {} and errors == []
    names = {n for spec in CHANNEL_SETTINGS.values() for n in (*spec.required, *spec.defaults)}
    assert names == {
        "MESSENGER_APP_SECRET", "MESSENGER_PAGE_TOKEN", "MESSENGER_VERIFY_TOKEN", "MESSENGER_API_BASE_URL",
        "LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN", "LINE_API_BASE_URL", "LINE_DATA_API_BASE_URL",
        "TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET", "TELEGRAM_API_BASE_URL",
        "SMSGATE_URL", "SMSGATE_USERNAME", "SMSGATE_PASSWORD", "SMSGATE_SIGNING_KEY"}


def test_a_missing_companion_setting_stops_start_up_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings({"HOTLINE_INSTANCE": str(tmp_path), "TELEGRAM_BOT_TOKEN": "1:x"})
    assert "TELEGRAM_WEBHOOK_SECRET is required when TELEGRAM_BOT_TOKEN is set (the telegram channel)" in str(err.value)


def test_channel_secrets_come_from_files_and_api_urls_default_to_the_platform(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    s = load_settings({"HOTLINE_INSTANCE": str(tmp_path), "TELEGRAM_BOT_TOKEN": "1:x",
                       "TELEGRAM_WEBHOOK_SECRET_FILE": str(secret)})
    assert s.channel("telegram") == {"TELEGRAM_BOT_TOKEN": "1:x", "TELEGRAM_WEBHOOK_SECRET": "s3cret",
                                     "TELEGRAM_API_BASE_URL": "https://api.telegram.org"}
    assert s.channel("messenger") is None


def test_a_bad_api_base_url_is_named() -> None:
    _, errors = parse_channels({"TELEGRAM_BOT_TOKEN": "1:x", "TELEGRAM_WEBHOOK_SECRET": "y",
                                "TELEGRAM_API_BASE_URL": "ftp://x"})
    assert any(e.startswith("TELEGRAM_API_BASE_URL='ftp://x' must be a URL") for e in errors)


# -- routes ---------------------------------------------------------------------------------------

def test_routes_of_channels_that_are_off_or_unknown_answer_404(client) -> None:
    for path in ("/channels/telegram", "/channels/messenger", "/channels/line", "/channels/smsgate",
                 "/channels/nothing"):
        assert client.post(path, data=b"{}").status_code == 404, path
        assert client.get(path).status_code == 404, path
    assert client.get("/channels/media/forged-token").status_code == 404


# -- the chat texts ---------------------------------------------------------------------------------

def test_every_button_is_a_keyword_and_no_chat_text_says_anything_unsafe() -> None:
    keywords = kw.load(DEFAULT_SCRIPTS)
    texts = chat.load_texts()
    chat.check_texts(keywords, texts)
    common = yaml.safe_load((DEFAULT_SCRIPTS / "common.yaml").read_text(encoding="utf-8"))
    banned = [compact(matching_key(w)) for w in common["forbidden_in_replies"]]
    for by_lang in texts.texts.values():
        for text in by_lang.values():
            assert not any(b in compact(matching_key(text)) for b in banned), text
    for lang, buttons in texts.buttons.items():
        assert 0 < len(buttons) <= 13 and all(len(b.label) <= 20 for b in buttons), lang
        assert keywords.match(texts.payload_for(buttons[0].label) or "").topic == 1


def test_a_phone_number_is_read_from_a_chat_text_in_any_style() -> None:
    assert chat.phone_in("call me 081 234 5678 please") == "+66812345678"
    assert chat.phone_in("+855 12 345 678") == "+85512345678"
    assert chat.phone_in("topic 1") is None and chat.phone_in("on 2025-11-30 at 10:30") is None


# -- de-duplication -----------------------------------------------------------------------------------

def _inbound(event_id: str, body: str = "HELP") -> InboundMessage:
    return InboundMessage(channel="telegram", provider="telegram", sid=None, sender="telegram:4242", body=body,
                          kind=TEXT, event_id=event_id)


def test_two_deliveries_of_one_event_racing_are_acted_on_once(res, db) -> None:
    keywords, texts = kw.load(DEFAULT_SCRIPTS), chat.load_texts()
    barrier = threading.Barrier(2)
    results: list[chat.Received] = []
    errors: list[BaseException] = []

    def deliver() -> None:
        try:
            with res.db.Session() as s:
                barrier.wait()
                results.append(chat.receive(s, keywords, texts, _inbound("race-1", "SOS they took my passport")))
                time.sleep(0.2)  # hold the transaction open: the other delivery must wait for it
                s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.duplicate for r in results) == [False, True]
    assert db.scalar(sa.select(sa.func.count()).select_from(ChannelEvent)) == 1
    assert db.scalar(sa.select(sa.func.count()).select_from(Message).where(
        Message.direction == Direction.INBOUND)) == 1


def test_the_same_event_id_on_two_channels_is_two_events(res, db) -> None:
    keywords, texts = kw.load(DEFAULT_SCRIPTS), chat.load_texts()
    a = chat.receive(db, keywords, texts, _inbound("7"))
    db.commit()
    other = InboundMessage(channel="line", provider="line", sid=None, sender="line:U42", body="HELP", kind=TEXT,
                           event_id="7")
    b = chat.receive(db, keywords, texts, other)
    db.commit()
    assert not a.duplicate and not b.duplicate


# -- the send gate ----------------------------------------------------------------------------------

def test_the_gate_refuses_a_channel_that_is_off_or_unknown(db, settings: Settings) -> None:
    reply = ChatReply(text="x", language="en")
    for address in ("telegram:1", "nothing:1", "tg:12345"):
        with pytest.raises(SendError) as err:
            sendgate.send_channel(db, settings, address, reply)
        assert err.value.code == "no_channel" and not err.value.transient


def test_the_gate_refuses_an_opted_out_chat_contact_before_the_platform_is_called(db, settings: Settings) -> None:
    fake = FakeTelegram().start()
    try:
        on = settings.with_(channels={"telegram": {"TELEGRAM_BOT_TOKEN": fake.token, "TELEGRAM_WEBHOOK_SECRET": "s",
                                                   "TELEGRAM_API_BASE_URL": fake.url}})
        app = create_app(on, TESTING=True)
        with resources_of(app).db.Session() as s:
            sendgate.record_opt_out(s, "telegram:99")
            s.commit()
            with pytest.raises(sendgate.OptedOut):
                sendgate.send_channel(s, on, "telegram:99", ChatReply(text="x", language="en"))
            assert sendgate.send_channel(s, on, "telegram:99", ChatReply(text="bye", language="en"),
                                         confirms_stop=True)
        assert [m["text"] for m in fake.sent] == ["bye"]
        resources_of(app).close()
    finally:
        fake.stop()


def test_adapters_are_registered_by_channel_and_address_prefix() -> None:
    channels.load_adapters()
    assert "telegram" in channels.ADAPTERS and channels.PREFIXES["telegram"] == "telegram"
    assert channels.address("telegram", "5") == "telegram:5"
    assert channels.split_address("telegram:5") == ("telegram", "5") and channels.split_address("+66") == ("", "+66")


# -- media ----------------------------------------------------------------------------------------

def test_prompts_are_converted_per_platform_once_and_served_by_a_signed_url(client, settings: Settings) -> None:
    ogg = media.prompt_voice(settings, "km", ["msg_papers_1", "msg_papers_2"], "ogg")
    m4a = media.prompt_voice(settings, "km", ["msg_papers_1", "msg_papers_2"], "m4a")
    mp3 = media.prompt_voice(settings, "km", ["msg_papers_1"], "mp3")
    assert ogg and m4a and mp3
    assert ogg.path.read_bytes()[:4] == b"OggS" and m4a.path.read_bytes()[4:8] == b"ftyp"
    assert m4a.mime == "audio/mp4" and abs(ogg.duration_ms - m4a.duration_ms) < 200
    assert mp3.duration_ms < m4a.duration_ms
    mtime = ogg.path.stat().st_mtime_ns
    again = media.prompt_voice(settings, "km", ["msg_papers_1", "msg_papers_2"], "ogg")
    assert again is not None and again.path == ogg.path and ogg.path.stat().st_mtime_ns == mtime
    token = m4a.url.rsplit("/", 1)[1]
    assert m4a.url.startswith(settings.public_base_url + "/channels/media/")
    served = client.get(f"/channels/media/{token}")
    assert served.status_code == 200 and served.mimetype == "audio/mp4" and served.data == m4a.path.read_bytes()
    assert client.get(f"/channels/media/{token[:-2]}xx").status_code == 404
    assert media.resolve(settings, token, max_age=-1) is None  # expired


def test_a_re_recorded_prompt_gets_a_new_file(tmp_path: Path, settings: Settings) -> None:
    audio = tmp_path / "audio"
    (audio / "en").mkdir(parents=True)
    src = AUDIO / "en" / "goodbye.mp3"
    (audio / "en" / "goodbye.mp3").write_bytes(src.read_bytes())
    first = media.prompt_voice(settings, "en", ["goodbye"], "ogg", audio_dir=audio)
    (audio / "en" / "goodbye.mp3").write_bytes((AUDIO / "en" / "system_error.mp3").read_bytes())
    second = media.prompt_voice(settings, "en", ["goodbye"], "ogg", audio_dir=audio)
    assert first and second and first.path != second.path
    assert media.prompt_voice(settings, "en", ["no_such_prompt"], "ogg", audio_dir=audio) is None
