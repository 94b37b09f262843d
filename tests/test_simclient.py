"""The Twilio-like client: it signs, and follows TwiML the way Twilio's interpreter does.

The protocol cases run against a scripted blueprint mounted on the real app (so the real signature
check answers), the rest against the real /twilio/* routes.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Blueprint, Flask, request
from twilio.twiml.voice_response import Dial, Gather, VoiceResponse

from hotline.models import Call, Direction, Message
from hotline.simclient import (
    CallError,
    CallState,
    HttpPoster,
    PhoneClient,
    Recording,
    WsgiPoster,
    fresh_callers,
    sms_encoding,
    sms_parts,
    walk,
)
from hotline.simclient.prompts import PromptCatalogue, load_prompts, prompt_key
from hotline.telephony.signature import twilio_signed
from hotline.telephony.twiml import xml
from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PUBLIC

BASE = PUBLIC + "/twilio/test"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def scripted_app(app: Flask) -> list[tuple[str, dict[str, str]]]:
    """Mount a small signed script under /twilio/test; returns the log of (path, params) it received."""
    log: list[tuple[str, dict[str, str]]] = []
    bp = Blueprint("scripted", __name__, url_prefix="/twilio/test")

    def menu() -> VoiceResponse:
        resp = VoiceResponse()
        gather = Gather(num_digits=1, action="choice", timeout=3)  # relative: resolves to /twilio/test/choice
        gather.play(PUBLIC + "/audio/km/menu.mp3")
        resp.append(gather)
        resp.redirect("menu?again=1")
        return resp

    @bp.post("/<name>")
    @twilio_signed
    def step(name: str):  # type: ignore[no-untyped-def]
        log.append((request.full_path.rstrip("?"), dict(request.form)))
        resp = VoiceResponse()
        if name == "menu":
            resp = menu()
        elif name == "choice":
            digit = request.form["Digits"]
            if digit == "1":
                resp.play(PUBLIC + "/audio/km/leave_message.mp3")
                resp.record(action="/twilio/test/recorded", recording_status_callback="/twilio/test/recstatus",
                            max_length=60)
                resp.say("unreachable")
            elif digit == "2":
                dial = Dial(action="dialed", timeout=20)
                dial.number("+66812345001")
                resp.append(dial)
            elif digit == "3":
                dial = Dial()
                dial.number("+66812345001")
                resp.append(dial)
                resp.say("after the dial", language="en-US")
            elif digit == "9":
                resp.say("goodbye", language="en-US")
                resp.hangup()
                resp.say("never heard")
            else:
                resp.redirect("/twilio/test/menu")
        elif name == "recorded":
            resp.play(PUBLIC + "/audio/km/thanks.mp3")
        elif name == "dialed":
            resp.say(f"dial {request.form['DialCallStatus']}")
            resp.hangup()
        elif name == "reject":
            resp.reject(reason="busy")
        elif name == "loop":
            resp.redirect("loop")
        return xml(resp)

    app.register_blueprint(bp)
    return log


@pytest.fixture
def scripted(app: Flask) -> tuple[PhoneClient, list[tuple[str, dict[str, str]]], Clock]:
    log = scripted_app(app)
    clock = Clock()
    client = PhoneClient(WsgiPoster(app.test_client(), PUBLIC, AUTH_TOKEN), account_sid=ACCOUNT_SID,
                         hotline_number="+85523000000", voice_path="/twilio/test/menu",
                         status_path="/twilio/test/status",
                         prompts=PromptCatalogue({("km", "menu"): "Press 1 to leave a message."}), clock=clock)
    return client, log, clock


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [e["kind"] for e in events]


def test_call_starts_ringing_and_waits_in_the_gather_with_its_prompt(scripted) -> None:
    client, log, _ = scripted
    step = client.start_call("+85512345678")
    assert log == [("/twilio/test/menu", log[0][1])]
    first = log[0][1]
    assert first["CallStatus"] == "ringing" and first["From"] == "+85512345678" and first["To"] == "+85523000000"
    assert first["FromCountry"] == "KH" and first["Direction"] == "inbound" and first["CallSid"].startswith("CA")
    assert kinds(step.events) == ["webhook", "play"]
    assert step.events[1]["name"] == "km/menu" and step.events[1]["text"] == "Press 1 to leave a message."
    assert step.waiting is not None and step.waiting["kind"] == "gather"
    assert step.waiting["action"] == BASE + "/choice" and step.waiting["numDigits"] == "1"


def test_silence_falls_through_to_the_redirect_after_the_gather(scripted) -> None:
    client, log, _ = scripted
    step = client.press(client.start_call("+85512345678").state, None)
    assert [p for p, _ in log] == ["/twilio/test/menu", "/twilio/test/menu?again=1"]
    assert "Digits" not in log[1][1] and log[1][1]["CallStatus"] == "in-progress"
    assert kinds(step.events) == ["keys", "webhook", "play"] and step.events[0]["silence"]
    assert step.waiting and step.waiting["kind"] == "gather"


def test_a_key_is_posted_as_digits_to_the_relative_action(scripted) -> None:
    client, log, _ = scripted
    step = client.press(client.start_call("+85512345678").state, "7")
    assert log[1] == ("/twilio/test/choice", log[1][1])
    assert log[1][1]["Digits"] == "7" and log[1][1]["FinishedOnKey"] == ""
    assert [p for p, _ in log[2:]] == ["/twilio/test/menu"]  # the script's <Redirect>
    assert step.waiting and step.waiting["kind"] == "gather"


def test_only_num_digits_keys_are_sent(scripted) -> None:
    client, log, _ = scripted
    client.press(client.start_call("+85512345678").state, "93")
    assert log[1][1]["Digits"] == "9"


def test_record_posts_the_recording_to_the_action_then_the_status_callback(scripted) -> None:
    client, log, _ = scripted
    step = client.press(client.start_call("+85512345678").state, "1")
    assert kinds(step.events)[-2:] == ["play", "beep"] and step.waiting and step.waiting["kind"] == "record"
    rec = Recording("RE" + "a" * 32, PUBLIC + "/simulator/recordings/RE" + "a" * 32, 4)
    step = client.record(step.state, rec)
    paths = [p for p, _ in log]
    assert paths[-3:] == ["/twilio/test/recorded", "/twilio/test/recstatus", "/twilio/test/status"]
    action, status = log[-3][1], log[-2][1]
    assert (action["RecordingUrl"], action["RecordingSid"], action["RecordingDuration"], action["Digits"]) == (
        rec.url, rec.sid, "4", "#")
    assert status["RecordingStatus"] == "completed" and status["RecordingSid"] == rec.sid
    assert status["RecordingSource"] == "RecordVerb"
    # The action's document plays, then runs out of verbs: the call ends and the status callback says so.
    assert [e.get("name") for e in step.events if e["kind"] == "play"] == ["km/thanks"]
    assert step.ended and step.state.status == "completed"
    assert "unreachable" not in json.dumps([e for e in step.events if e["kind"] == "say"])


def test_dial_nobody_answers_reports_no_answer_to_the_action(scripted) -> None:
    client, log, _ = scripted
    step = client.press(client.start_call("+85512345678").state, "2")
    assert step.waiting and step.waiting["kind"] == "dial" and step.waiting["numbers"] == ["+66812345001"]
    step = client.dial_result(step.state, answered=False)
    assert log[-2][0] == "/twilio/test/dialed"
    assert log[-2][1]["DialCallStatus"] == "no-answer" and log[-2][1]["DialCallDuration"] == "0"
    assert [e["text"] for e in step.events if e["kind"] == "say"] == ["dial no-answer"]
    assert step.ended


def test_dial_answered_by_the_lawyer_reports_completed(scripted) -> None:
    client, log, _ = scripted
    step = client.dial_result(client.press(client.start_call("+85512345678").state, "2").state, answered=True)
    assert log[-2][1]["DialCallStatus"] == "completed" and int(log[-2][1]["DialCallDuration"]) > 0
    assert [e["text"] for e in step.events if e["kind"] == "say"] == ["dial completed"]


def test_dial_without_action_continues_in_the_same_document(scripted) -> None:
    client, log, _ = scripted
    step = client.dial_result(client.press(client.start_call("+85512345678").state, "3").state, answered=False)
    assert [e["text"] for e in step.events if e["kind"] == "say"] == ["after the dial"]
    assert [p for p, _ in log][-1] == "/twilio/test/status"


def test_hangup_ends_the_call_and_posts_completed_with_its_duration(scripted) -> None:
    client, log, clock = scripted
    state = client.start_call("+85512345678").state
    clock.now += 42
    step = client.press(state, "9")
    assert [e["text"] for e in step.events if e["kind"] == "say"] == ["goodbye"]  # nothing after <Hangup/>
    assert log[-1][0] == "/twilio/test/status"
    assert log[-1][1]["CallStatus"] == "completed" and log[-1][1]["CallDuration"] == "42"
    assert step.ended
    with pytest.raises(CallError):
        client.press(step.state, "1")


def test_caller_hanging_up_mid_menu_posts_completed_status(scripted) -> None:
    client, log, clock = scripted
    state = client.start_call("+85512345678").state
    clock.now += 5
    step = client.hangup(state)
    assert kinds(step.events) == ["caller-hangup", "callback", "ended"]
    assert log[-1][1]["CallStatus"] == "completed" and log[-1][1]["CallDuration"] == "5"


def test_reject_as_first_verb_leaves_the_call_unanswered(app: Flask) -> None:
    log = scripted_app(app)
    client = PhoneClient(WsgiPoster(app.test_client(), PUBLIC, AUTH_TOKEN), account_sid=ACCOUNT_SID,
                         hotline_number="+85523000999", voice_path="/twilio/test/reject",
                         status_path="/twilio/test/status")
    step = client.start_call("+66812345678")
    assert kinds(step.events) == ["webhook", "reject", "callback", "ended"]
    assert step.state.status == "busy" and not step.state.answered
    assert log[-1][1]["CallStatus"] == "busy" and log[-1][1]["CallDuration"] == "0"


def test_a_redirect_loop_is_cut_off_instead_of_spinning(app: Flask) -> None:
    scripted_app(app)
    client = PhoneClient(WsgiPoster(app.test_client(), PUBLIC, AUTH_TOKEN), account_sid=ACCOUNT_SID,
                         hotline_number="+85523000000", voice_path="/twilio/test/loop",
                         status_path="/twilio/test/status", max_requests=8)
    step = client.start_call("+85512345678")
    assert step.ended and step.state.status == "completed"
    assert any(e["kind"] == "error" and "more than 8 requests" in e["message"] for e in step.events)


def test_a_wrongly_signed_client_is_refused_by_the_app(app: Flask) -> None:
    log = scripted_app(app)
    client = PhoneClient(WsgiPoster(app.test_client(), PUBLIC, "not-the-auth-token"), account_sid=ACCOUNT_SID,
                         hotline_number="+85523000000", voice_path="/twilio/test/menu",
                         status_path="/twilio/test/status")
    step = client.start_call("+85512345678")
    assert step.events[0]["status"] == 403 and log == []
    assert step.ended and step.state.status == "failed"


def test_call_state_survives_a_json_round_trip_mid_call(scripted) -> None:
    client, log, _ = scripted
    state = client.start_call("+85512345678").state
    again = CallState.from_dict(json.loads(json.dumps(state.to_dict())))
    client.press(again, "9")
    assert log[-1][1]["CallSid"] == state.call_sid and log[-1][1]["CallStatus"] == "completed"


def test_walker_explores_every_branch_of_a_script(scripted) -> None:
    client, _, _ = scripted
    steps = walk(client, "+85512345678", keys=["1", "2", "9", ""], max_depth=3)
    by_path = {s.path: s for s in steps}
    assert by_path[()].waiting == "gather"
    assert by_path[("1",)].waiting == "record" and by_path[("1",)].played == ["km/leave_message"]
    assert by_path[("1", "record")].status == "completed" and by_path[("1", "record")].played == ["km/thanks"]
    assert by_path[("2",)].waiting == "dial"
    assert by_path[("2", "no-answer")].played == ["dial no-answer"]
    assert by_path[("2", "answer")].played == ["dial completed"]
    assert by_path[("9",)].waiting is None and by_path[("9",)].played == ["goodbye"]
    # Silence lands in a new document (menu?again=1), which is explored once more; then it repeats.
    assert by_path[("",)].waiting == "gather" and ("", "9") in by_path
    assert [s.path for s in steps][:5] == [(), ("1",), ("2",), ("9",), ("",)]  # breadth-first
    assert len(steps) == len(by_path)


@pytest.mark.parametrize(("text", "parts", "encoding"), [
    ("", 0, "GSM-7"),
    ("HELP", 1, "GSM-7"),
    ("a" * 160, 1, "GSM-7"),
    ("a" * 161, 2, "GSM-7"),
    ("[" * 80, 1, "GSM-7"),  # extension characters count twice
    ("[" * 81, 2, "GSM-7"),
    ("ជំនួយ", 1, "UCS-2"),
    ("ក" * 70, 1, "UCS-2"),
    ("ក" * 71, 2, "UCS-2"),
    ("ช" * 134, 2, "UCS-2"),
    ("ช" * 135, 3, "UCS-2"),
    ("a" * 69 + "😀", 2, "UCS-2"),  # an emoji is two UTF-16 units
])
def test_sms_parts_follow_gsm7_and_ucs2_limits(text: str, parts: int, encoding: str) -> None:
    assert sms_parts(text) == parts and sms_encoding(text) == encoding


def test_prompt_names_and_texts_come_from_the_audio_url() -> None:
    assert prompt_key("https://cdn.example.org/audio/th/main_menu.mp3") == ("th", "main_menu")
    assert prompt_key("https://x.org/") is None
    catalogue = PromptCatalogue({("th", "main_menu"): "กด 1"})
    assert catalogue.text_for(PUBLIC + "/audio/th/main_menu.mp3") == "กด 1"
    assert catalogue.name_for(PUBLIC + "/audio/th/main_menu.mp3") == "th/main_menu"
    assert catalogue.text_for(PUBLIC + "/audio/km/main_menu.mp3") is None
    assert isinstance(load_prompts(), PromptCatalogue)  # the shipped scripts load


# -- against the real webhooks -------------------------------------------------------------------

def real_client(app: Flask) -> PhoneClient:
    return PhoneClient(WsgiPoster(app.test_client(), PUBLIC, AUTH_TOKEN), account_sid=ACCOUNT_SID,
                       hotline_number="+85523000000", prompts=load_prompts())


def test_a_call_to_the_real_voice_webhook_is_answered_and_its_end_is_recorded(app: Flask, db) -> None:
    client = real_client(app)
    step = client.start_call("+85512345678")
    assert step.events[0]["status"] == 200
    assert any(e["kind"] == "play" for e in step.events)
    final = step if step.ended else client.hangup(step.state)
    call = db.scalar(sa.select(Call).where(Call.call_sid == step.state.call_sid))
    assert call is not None and call.direction == Direction.INBOUND
    assert call.status == final.state.status == "completed" and call.ended_at is not None


def test_a_text_to_the_real_sms_webhook_is_stored(app: Flask, db) -> None:
    result = real_client(app).send_sms("+66812345678", "HELP")
    assert result.status == 200 and result.error is None
    msg = db.scalar(sa.select(Message).where(Message.sid == result.sid))
    assert msg is not None and msg.direction == Direction.INBOUND and msg.body == "HELP"
    assert all(r.parts == sms_parts(r.body) for r in result.replies)


@pytest.mark.slow
def test_over_real_http_the_signature_matches_the_public_url(live_server) -> None:
    s = live_server.settings
    client = PhoneClient(HttpPoster(s.public_base_url, s.twilio_auth_token), account_sid=s.twilio_account_sid,
                         hotline_number=s.hotline_number)
    step = client.start_call("+85512345678")
    assert step.events[0]["status"] == 200 and step.events[0]["url"] == live_server.url + "/twilio/voice"
    bad = PhoneClient(HttpPoster(s.public_base_url, "wrong-token"), account_sid=s.twilio_account_sid,
                      hotline_number=s.hotline_number)
    assert bad.start_call("+85512345678").events[0]["status"] == 403


def test_walker_reaches_the_real_menus_messages_and_urgent_path(app: Flask) -> None:
    steps = walk(real_client(app), fresh_callers(), keys=["1", "9", ""], max_depth=2)
    by_path = {s.path: s for s in steps}
    assert by_path[()].played == ["km/choose_language", "th/choose_language", "en/choose_language"]
    assert by_path[("1",)].played == ["km/main_menu", "km/change_language", "th/change_language",
                                      "en/change_language"] and by_path[("1",)].waiting == "gather"
    assert by_path[("1", "1")].played == ["km/msg_before_you_go_1"]
    assert by_path[("1", "9")].waiting in ("dial", "record")  # office hours ring the lawyer first
    assert all(s.status in ("in-progress", "completed") for s in steps)


def test_fresh_callers_are_distinct_valid_cambodian_numbers() -> None:
    import phonenumbers

    numbers = [fresh_callers()(i) for i in range(3)]
    assert numbers == ["+85512100000", "+85512100001", "+85512100002"]
    assert all(phonenumbers.is_valid_number(phonenumbers.parse(n)) for n in numbers)


def _in_office_hours(app: Flask) -> None:
    import dataclasses
    from datetime import UTC, datetime

    rt = app.extensions["hotline.ivr"]  # a Tuesday, 10:00 in Phnom Penh
    app.extensions["hotline.ivr"] = dataclasses.replace(rt, now=lambda: datetime(2026, 11, 24, 3, 0, tzinfo=UTC))


@pytest.mark.parametrize(("outcome", "claimed", "then"), [
    ("accept", True, "km/urgent_thanks"),   # pressed 1 on the whisper: connected, case claimed
    # a voicemail picked up and pressed nothing: tonight's numbers for Cambodia, then the recording
    ("voicemail", False, "km/urgent_numbers_kh"),
    ("no-answer", False, "km/urgent_numbers_kh"),
])
def test_simulated_lawyer_phone_runs_the_whisper_on_its_leg(app: Flask, db, outcome: str, claimed: bool,
                                                             then: str) -> None:
    from hotline.models import Case, CaseStatus

    _in_office_hours(app)
    client = real_client(app)
    step = client.press(client.press(client.start_call("+85512345678").state, "1").state, "9")
    assert step.waiting and step.waiting["kind"] == "dial"
    assert step.waiting["legs"][0]["url"].startswith(PUBLIC + "/twilio/voice/whisper?")
    step = client.dial_result(step.state, outcome)
    result = next(e for e in step.events if e["kind"] == "dial-result")
    assert result["bridged"] is claimed
    assert result["status"] == ("no-answer" if outcome == "no-answer" else "completed")
    heard_by_caller = [e["name"] for e in step.events if e["kind"] == "play" and not e.get("leg")]
    assert heard_by_caller[0] == then
    leg_heard = [e["name"] for e in step.events if e["kind"] == "play" and e.get("leg")]
    assert leg_heard == ([] if outcome == "no-answer" else ["km/urgent_whisper", "th/urgent_whisper",
                                                             "en/urgent_whisper"])
    case = db.scalar(sa.select(Case).where(Case.source_sid == step.state.call_sid))
    assert (case.status == CaseStatus.CLAIMED) is claimed
