"""Signed SMS webhooks: the TwiML reply and the rows written, for every keyword in every script."""

from __future__ import annotations

import threading
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
import yaml

from hotline import create_app
from hotline.db import utcnow
from hotline.menus import keywords
from hotline.menus.keywords import ScriptError
from hotline.menus.textnorm import sms_segments
from hotline.models import CallbackRequest, Caller, Case, Message, OutboxJob
from hotline.startup import StartupError
from tests.conftest import PUBLIC

SCRIPTS = Path(__file__).resolve().parent.parent / "ivr_scripts" / "sms"
KS = keywords.load(SCRIPTS)
KH_PHONE = "+85512345678"
TH_PHONE = "+66812345678"


def data(lang: str) -> dict:
    return yaml.safe_load((SCRIPTS / f"{lang}.yaml").read_text(encoding="utf-8"))


def phone(n: int, country: str = "KH") -> str:
    return f"+85512{n:06d}" if country == "KH" else f"+66812{n:06d}"


def send(twilio, body: str, from_: str = KH_PHONE, sid: str | None = None):  # type: ignore[no-untyped-def]
    params = twilio.sms_params(body, from_=from_, sid=sid)
    resp = twilio.post("/twilio/sms", params)
    assert resp.status_code == 200 and resp.mimetype == "text/xml"
    return resp, params["MessageSid"]


def reply_of(resp) -> str | None:  # type: ignore[no-untyped-def]
    root = ET.fromstring(resp.data)
    assert root.tag == "Response"
    messages = root.findall("Message")
    assert len(root) == len(messages) <= 1
    return messages[0].text if messages else None


def rows(db, model, *where):  # type: ignore[no-untyped-def]
    db.expire_all()
    return db.scalars(sa.select(model).where(*where).order_by(model.id)).all()


def test_help_is_answered_and_both_messages_are_stored(twilio, db) -> None:
    resp, sid = send(twilio, "help me pls")
    expected = KS.render("help", "km", "KH")
    assert resp.data.decode() == (
        '<?xml version="1.0" encoding="UTF-8"?><Response><Message statusCallback='
        f'"{PUBLIC}/twilio/sms/status?reply_to={sid}">{expected}</Message></Response>')
    inbound, outbound = rows(db, Message)
    assert (inbound.sid, inbound.direction, inbound.status, inbound.keyword, inbound.language, inbound.body) == (
        sid, "inbound", "received", "help", "km", "help me pls")
    assert (outbound.sid, outbound.direction, outbound.purpose, outbound.status, outbound.body, outbound.language,
            outbound.segments, outbound.idempotency_key, outbound.peer) == (
        None, "outbound", "reply", "queued", expected, "km", sms_segments(expected), f"reply:{sid}", KH_PHONE)


def test_unsigned_text_is_refused(client, db) -> None:
    resp = client.post("/twilio/sms", data={"MessageSid": "SM1", "From": KH_PHONE, "Body": "SOS"})
    assert resp.status_code == 403
    assert rows(db, Message) == [] and rows(db, Case) == []


@pytest.mark.parametrize("language", ["km", "th", "en"])
@pytest.mark.parametrize("group,reply_id", [("help", "help"), ("callback", "callback"), ("urgent", "urgent")])
def test_every_keyword_in_every_script_gets_its_reply(twilio, db, language: str, group: str, reply_id: str) -> None:
    reply_lang = "en" if language == "en" else language  # Latin text from a new number: Khmer, unless en
    for i, kw in enumerate(data(language)["keywords"][group]):
        caller_phone = phone(1000 + i)
        if language == "en":
            db.add(Caller(phone=caller_phone, country="KH", language="en"))
            db.commit()
        resp, sid = send(twilio, kw, from_=caller_phone)
        assert reply_of(resp) == KS.render(reply_id, reply_lang, "KH"), kw
        (inbound,) = rows(db, Message, Message.sid == sid)
        assert inbound.keyword == group, kw
    if group == "callback":
        assert len(rows(db, CallbackRequest)) == len(data(language)["keywords"][group])
    if group == "urgent":
        assert len(rows(db, Case)) == len(data(language)["keywords"][group])


@pytest.mark.parametrize("language", ["km", "th", "en"])
def test_every_stop_and_start_word_sets_and_clears_opt_out(twilio, db, language: str) -> None:
    words = data(language)["keywords"]
    for i, (stop, start) in enumerate(zip(words["stop"], words["start"] * 9, strict=False)):
        number = phone(2000 + i)
        resp, _ = send(twilio, stop, from_=number)
        (caller,) = rows(db, Caller, Caller.phone == number)
        assert caller.opted_out_at is not None, stop
        assert reply_of(resp) == KS.render("stop", KS.reply_language(stop, None), "KH")
        resp, _ = send(twilio, start, from_=number)
        (caller,) = rows(db, Caller, Caller.phone == number)
        assert caller.opted_out_at is None, start
        assert reply_of(resp) == KS.render("start", KS.reply_language(start, None), "KH")


def test_stop_then_start_and_stop_inside_a_sentence(twilio, db) -> None:
    send(twilio, "STOP")
    (caller,) = rows(db, Caller)
    stopped_at = caller.opted_out_at
    assert stopped_at is not None
    send(twilio, "stop")  # a second STOP keeps the first time
    assert rows(db, Caller)[0].opted_out_at == stopped_at
    resp, _ = send(twilio, "START")
    assert rows(db, Caller)[0].opted_out_at is None
    assert reply_of(resp) == KS.render("start", "km", "KH")
    resp, _ = send(twilio, "ខ្ញុំចង់ឈប់ធ្វើការ")  # "I want to quit my job": not an opt-out
    assert rows(db, Caller)[0].opted_out_at is None
    assert reply_of(resp) == KS.render("unknown", "km", "KH")


@pytest.mark.parametrize("body,topic", [("1", 1), ("២", 2), ("๓", 3), ("4", 4), ("លេខ៥", 5), ("ข้อ ๖", 6), ("7", 7)])
def test_topic_digits_in_three_scripts(twilio, db, body: str, topic: int) -> None:
    resp, sid = send(twilio, body, from_=TH_PHONE)
    language = KS.reply_language(body, None)
    assert reply_of(resp) == KS.render(f"topic_{topic}", language, "TH")
    assert rows(db, Message, Message.sid == sid)[0].keyword == f"topic_{topic}"


def test_typos_are_forgiven(twilio, db) -> None:
    resp, _ = send(twilio, "hlep", from_=phone(1))
    assert reply_of(resp) == KS.render("help", "km", "KH")
    resp, _ = send(twilio, "calback pls", from_=phone(2))
    assert reply_of(resp) == KS.render("callback", "km", "KH")
    resp, _ = send(twilio, "pasport taken", from_=phone(3))
    assert reply_of(resp) == KS.render("urgent", "km", "KH")


def test_urgent_reply_gives_the_emergency_numbers_of_the_senders_country(twilio, db) -> None:
    resp, _ = send(twilio, "SOS", from_=KH_PHONE)
    # 1288 (medium confidence, undated) stays out of the urgent reply until someone has called it.
    assert "117" in reply_of(resp) and "1288" not in reply_of(resp)
    resp, _ = send(twilio, "SOS", from_=TH_PHONE)
    assert reply_of(resp).index("1300") < reply_of(resp).index("191") and "117" not in reply_of(resp)


def test_same_message_sid_twice_is_stored_and_acted_on_once(twilio, db) -> None:
    first, sid = send(twilio, "passport taken")
    again, _ = send(twilio, "passport taken", sid=sid)
    assert reply_of(first) == KS.render("urgent", "km", "KH")
    assert reply_of(again) is None
    assert len(rows(db, Message, Message.direction == "inbound")) == 1
    assert len(rows(db, Message, Message.direction == "outbound")) == 1
    assert len(rows(db, Case)) == 1 and len(rows(db, OutboxJob)) == 1


def test_concurrent_redelivery_of_one_sid_acts_once(app, twilio, db) -> None:
    params = twilio.sms_params("SOS", from_=KH_PHONE)
    barrier = threading.Barrier(4)
    results: list[tuple[int, bytes]] = []

    def post() -> None:
        from tests.conftest import SignedTwilio

        signed = SignedTwilio(app.test_client(), twilio.auth_token, twilio.public)
        barrier.wait()
        resp = signed.post("/twilio/sms", params)
        results.append((resp.status_code, resp.data))

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [code for code, _ in results] == [200] * 4
    answered = [body for _, body in results if b"<Message" in body]
    assert len(answered) <= 1
    assert len(rows(db, Message, Message.direction == "inbound")) == 1
    assert len(rows(db, Case)) == 1


def test_callback_request_is_stored_once_per_number_while_open(twilio, db) -> None:
    for body in ("CALL ME", "callback", "តេមកខ្ញុំវិញ"):
        resp, _ = send(twilio, body)
        assert reply_of(resp) == KS.render("callback", KS.reply_language(body, None), "KH")
    (req,) = rows(db, CallbackRequest)
    assert (req.phone, req.source, req.status, req.language) == (KH_PHONE, "sms", "open", "km")
    assert len(rows(db, OutboxJob, OutboxJob.kind == "callback.schedule")) == 1


def test_lang_switches_and_is_remembered(twilio, db) -> None:
    resp, _ = send(twilio, "LANG TH")
    assert reply_of(resp) == KS.render("lang_set", "th", "KH")
    assert rows(db, Caller)[0].language == "th"
    resp, _ = send(twilio, "help")  # Latin letters: the stored choice
    assert reply_of(resp) == KS.render("help", "th", "KH")
    resp, _ = send(twilio, "ជួយ")  # Khmer script wins over the stored choice
    assert reply_of(resp) == KS.render("help", "km", "KH")
    for body, code in (("lang 3", "en"), ("ភាសា ខ្មែរ", "km"), ("ภาษา อังกฤษ", "en")):
        resp, _ = send(twilio, body)
        assert reply_of(resp) == KS.render("lang_set", code, "KH"), body
        assert rows(db, Caller)[0].language == code
    resp, _ = send(twilio, "LANG ?")
    assert reply_of(resp) == KS.render("lang_menu", "en", "KH")


def test_first_text_in_thai_script_sets_the_language(twilio, db) -> None:
    send(twilio, "สวัสดี", from_=TH_PHONE)
    resp, _ = send(twilio, "help", from_=TH_PHONE)
    assert reply_of(resp) == KS.render("help", "th", "TH")


@pytest.mark.parametrize("body", ["", "   ", "🙂🙂🙂", "\x00\x01\x02\x1b", "x" * 5000, "ជួយ" * 2000, "<Response>&amp;"])
def test_odd_bodies_get_a_calm_answer(twilio, db, body: str) -> None:
    resp, sid = send(twilio, body)
    assert reply_of(resp) in (KS.render("unknown", "km", "KH"), KS.render("help", "km", "KH"))
    (inbound,) = rows(db, Message, Message.sid == sid)
    assert inbound.status == "received" and len(inbound.body) <= 2000 and "\x00" not in inbound.body


def test_reply_never_echoes_the_senders_words(twilio) -> None:
    for body in ("zqxwv help", "zqxwv passport taken", "zqxwv", "LANG zqxwv", "call zqxwv"):
        resp, _ = send(twilio, body)
        assert "zqxwv" not in resp.data.decode()


def test_over_the_rate_limit_texts_are_stored_but_not_answered(twilio, db) -> None:
    limit, _ = KS.rate_limit
    for i in range(limit):
        resp, _ = send(twilio, "help")
        assert reply_of(resp) is not None, i
    resp, sid = send(twilio, "help")
    assert resp.data.decode() == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    (inbound,) = rows(db, Message, Message.sid == sid)
    assert inbound.status == "ignored"
    assert len(rows(db, Message, Message.direction == "outbound")) == limit
    resp, _ = send(twilio, "help", from_=TH_PHONE)  # another number is not affected
    assert reply_of(resp) is not None


def test_rate_limit_window_passes(twilio, db) -> None:
    limit, window = KS.rate_limit
    caller = Caller(phone=KH_PHONE, country="KH")
    db.add(caller)
    db.flush()
    old = utcnow() - timedelta(seconds=window + 1)
    db.add_all([Message(direction="inbound", caller_id=caller.id, peer=KH_PHONE, status="received", created_at=old)
                for _ in range(limit)])
    db.commit()
    resp, _ = send(twilio, "help")
    assert reply_of(resp) is not None


def test_over_the_limit_an_urgent_text_still_opens_one_case_and_stop_still_counts(twilio, db) -> None:
    limit, _ = KS.rate_limit
    for _ in range(limit):
        send(twilio, "hello")
    resp, _ = send(twilio, "boss took my passport")
    assert reply_of(resp) is None
    (case,) = rows(db, Case)
    assert case.category == "documents"
    send(twilio, "SOS")  # a flood of alerts does not page the lawyer again and again
    assert len(rows(db, Case)) == 1
    resp, _ = send(twilio, "STOP")
    assert reply_of(resp) is None and rows(db, Caller)[0].opted_out_at is not None


def test_delivery_status_fills_in_the_reply_and_never_goes_backwards(twilio, db) -> None:
    resp, _ = send(twilio, "help")
    url = ET.fromstring(resp.data).find("Message").get("statusCallback")
    path = urlsplit(url).path + "?" + urlsplit(url).query
    assert url.startswith(PUBLIC)
    for status in ("sent", "delivered", "sent"):
        r = twilio.post(path, {"MessageSid": "SMreply1", "MessageStatus": status, "AccountSid": "AC1"})
        assert r.status_code == 200
    (out,) = rows(db, Message, Message.direction == "outbound")
    assert (out.sid, out.status) == ("SMreply1", "delivered")


def test_failed_delivery_keeps_the_error_code_and_reason(twilio, db) -> None:
    resp, _ = send(twilio, "STOP")
    url = urlsplit(ET.fromstring(resp.data).find("Message").get("statusCallback"))
    twilio.post(f"{url.path}?{url.query}", {"MessageSid": "SMreply2", "MessageStatus": "failed", "ErrorCode": "21610"})
    (out,) = rows(db, Message, Message.direction == "outbound")
    assert (out.sid, out.status, out.error_code, out.error_message) == (
        "SMreply2", "failed", "21610", "recipient has opted out (STOP)")


@pytest.mark.parametrize("status", ["queued", "sending", "sent", "delivered", "undelivered", "failed"])
def test_status_callback_for_each_status(twilio, db, status: str) -> None:
    db.add(Message(sid="SMout", direction="outbound", peer=KH_PHONE, body="x", status="queued"))
    db.commit()
    assert twilio.post("/twilio/sms/status", {"MessageSid": "SMout", "MessageStatus": status}).status_code == 200
    assert rows(db, Message)[0].status == status


def test_status_callback_with_odd_values_is_answered_200(twilio, db) -> None:
    for params in ({}, {"MessageSid": "SMx", "MessageStatus": "read"}, {"MessageSid": "", "MessageStatus": "sent"},
                   {"MessageSid": "SMx", "MessageStatus": "failed", "ErrorCode": "abc"}):
        assert twilio.post("/twilio/sms/status?reply_to=SMnothing", params).status_code == 200


def test_twilio_advanced_opt_out_is_recorded_without_a_second_reply(twilio, db) -> None:
    resp = twilio.post("/twilio/sms", twilio.sms_params("STOP", OptOutType="STOP"))
    assert reply_of(resp) is None
    assert rows(db, Caller)[0].opted_out_at is not None


def test_app_refuses_to_start_on_invalid_keyword_data(settings, tmp_path: Path) -> None:
    import shutil

    target = tmp_path / "sms"
    shutil.copytree(SCRIPTS, target)
    doc = yaml.safe_load((target / "km.yaml").read_text(encoding="utf-8"))
    doc["replies"]["urgent"] = "ជួយ" * 60
    (target / "km.yaml").write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    with pytest.raises(StartupError, match=r"km\.yaml: replies\.urgent: 3 SMS parts") as err:
        create_app(settings, SMS_SCRIPTS_DIR=str(target))
    assert isinstance(err.value.original, ScriptError)
