"""Calls we place: exact TwiML for the staff leg and the safety check, outcomes written by the signed
webhooks Twilio sends back. The end-to-end test follows the URLs the worker handed to (fake) Twilio."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from hotline.background.outbox import add_job
from hotline.models import Call, CallbackAttempt, CallbackRequest, CallbackStatus, Language
from tests.conftest import PUBLIC, new_call_sid, run_worker_burst
from tests.test_callbacks import ALL_DAY, CALLEE, STAFF_PHONE, new_request, new_staff

HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
HOTLINE = "+85523000000"
ROUTES = ["/twilio/outbound/staff", "/twilio/outbound/callee", "/twilio/outbound/callee/answer",
          "/twilio/outbound/dial", "/twilio/outbound/status"]
GOODBYE = HEAD + '<Response><Say language="en-US">Thank you. Goodbye.</Say><Hangup /></Response>'
HANG_UP = HEAD + "<Response><Hangup /></Response>"


def new_attempt(db, cb_id: int, staff_id: int | None = None) -> int:
    db.execute(sa.update(CallbackRequest).where(CallbackRequest.id == cb_id)
               .values(status=CallbackStatus.IN_PROGRESS))
    attempt = CallbackAttempt(request_id=cb_id, staff_id=staff_id)
    db.add(attempt)
    db.commit()
    return attempt.id


def state(db, attempt_id: int) -> tuple[str | None, str, int]:
    db.expire_all()
    attempt = db.get(CallbackAttempt, attempt_id)
    return attempt.outcome, attempt.request.status, attempt.request.attempts


def params(twilio, **extra: str) -> dict[str, str]:
    return twilio.voice_params(new_call_sid(), from_=HOTLINE, to=CALLEE, Direction="outbound-api", **extra)


@pytest.mark.parametrize("path", ROUTES)
def test_unsigned_requests_are_refused(client, path: str) -> None:
    assert client.post(f"{path}?attempt=1", data={"CallSid": new_call_sid(), "Digits": "1"}).status_code == 403


def test_every_outbound_route_checks_the_signature(app) -> None:
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/twilio/outbound")]
    assert sorted(r.rule for r in rules) == sorted(ROUTES)
    assert all(getattr(app.view_functions[r.endpoint], "twilio_signed", False) for r in rules)


def test_staff_hears_a_brief_then_the_caller_is_rung_from_the_hotline_number(res, db, twilio) -> None:
    attempt_id = new_attempt(db, new_request(res), new_staff(db))
    resp = twilio.post(f"/twilio/outbound/staff?attempt={attempt_id}", params(twilio, AnsweredBy="human"))
    assert resp.data.decode() == (
        HEAD + '<Response><Say language="en-US">Hotline callback. Connecting you now. The other person first hears '
        'a safety question.</Say>'
        f'<Dial action="{PUBLIC}/twilio/outbound/dial?attempt={attempt_id}" callerId="{HOTLINE}" timeout="30">'
        f'<Number machineDetection="Enable" url="{PUBLIC}/twilio/outbound/callee?attempt={attempt_id}&amp;'
        f'leg=whisper">{CALLEE}</Number></Dial></Response>')


def test_staff_voicemail_is_never_bridged_and_costs_the_caller_no_attempt(res, db, twilio) -> None:
    attempt_id = new_attempt(db, new_request(res), new_staff(db))
    resp = twilio.post(f"/twilio/outbound/staff?attempt={attempt_id}", params(twilio, AnsweredBy="machine_start"))
    assert resp.data.decode() == HANG_UP
    assert state(db, attempt_id) == ("failed", "open", 0)


def test_caller_first_hears_a_neutral_greeting_and_the_safety_check(res, db, twilio) -> None:
    attempt_id = new_attempt(db, new_request(res))
    resp = twilio.post(f"/twilio/outbound/callee?attempt={attempt_id}&leg=whisper", params(twilio,
                                                                                          AnsweredBy="human"))
    answer = f"{PUBLIC}/twilio/outbound/callee/answer?attempt={attempt_id}&amp;leg=whisper"
    # Khmer has no recording yet and Twilio no Khmer voice: English until audio/km/outbound_*.mp3 exist.
    assert resp.data.decode() == (
        HEAD + f'<Response><Gather action="{answer}" actionOnEmptyResult="true" numDigits="1" timeout="8">'
        '<Say language="en-US">Hello. This is the call back you asked for.</Say>'
        '<Say language="en-US">If it is safe to talk now, press 1.</Say></Gather>'
        f'<Redirect>{answer}</Redirect></Response>')
    assert state(db, attempt_id) == (None, "in_progress", 0)


def test_thai_speakers_hear_thai(res, db, twilio) -> None:
    cb_id = new_request(res, phone="+66891234567")
    db.execute(sa.update(CallbackRequest).values(language=Language.TH))
    attempt_id = new_attempt(db, cb_id)
    body = twilio.post(f"/twilio/outbound/callee?attempt={attempt_id}&leg=direct", params(twilio)).data.decode()
    assert '<Say language="th-TH" voice="Google.th-TH-Standard-A">ถ้าตอนนี้คุณคุยได้อย่างปลอดภัย กรุณากดหนึ่งค่ะ</Say>' in body


def test_pressing_1_bridges_the_caller_to_the_staff_member(res, db, twilio) -> None:
    attempt_id = new_attempt(db, new_request(res), new_staff(db))
    resp = twilio.post(f"/twilio/outbound/callee/answer?attempt={attempt_id}&leg=whisper",
                       params(twilio, Digits="1"))
    # The whisper's TwiML ends here, so Twilio bridges the two legs.
    assert resp.data.decode() == HEAD + '<Response><Say language="en-US">Please hold for a moment.</Say></Response>'
    assert state(db, attempt_id) == ("reached", "done", 1)


@pytest.mark.parametrize("digits", ["2", "9", "*", ""])
def test_anything_but_1_is_a_polite_goodbye_and_logged_unsafe(res, db, twilio, settings, digits) -> None:
    attempt_id = new_attempt(db, new_request(res), new_staff(db))
    resp = twilio.post(f"/twilio/outbound/callee/answer?attempt={attempt_id}&leg=whisper",
                       params(twilio, Digits=digits))
    assert resp.data.decode() == GOODBYE
    assert state(db, attempt_id) == ("unsafe", "open", 1)
    # The staff member is told, and the attempt is not counted twice when the <Dial> ends.
    staff = twilio.post(f"/twilio/outbound/dial?attempt={attempt_id}", params(twilio, DialCallStatus="completed"))
    assert staff.data.decode() == (HEAD + '<Response><Say language="en-US">The person could not talk safely. '
                                   'Nothing was said. The attempt is logged.</Say><Hangup /></Response>')
    assert state(db, attempt_id) == ("unsafe", "open", 1)


@pytest.mark.parametrize("answered_by", ["machine_start", "machine_end_beep", "machine_end_silence", "fax"])
def test_answering_machine_gets_no_message(res, db, twilio, answered_by) -> None:
    attempt_id = new_attempt(db, new_request(res))
    resp = twilio.post(f"/twilio/outbound/callee?attempt={attempt_id}&leg=direct",
                       params(twilio, AnsweredBy=answered_by))
    assert resp.data.decode() == HANG_UP
    assert state(db, attempt_id) == ("machine", "open", 1)


def test_direct_call_bridges_a_safe_caller_to_the_oncall_lawyer(res, db, twilio) -> None:
    attempt_id = new_attempt(db, new_request(res))
    resp = twilio.post(f"/twilio/outbound/callee/answer?attempt={attempt_id}&leg=direct", params(twilio, Digits="1"))
    assert resp.data.decode() == (HEAD + '<Response><Say language="en-US">Please hold for a moment.</Say>'
                                  f'<Dial callerId="{HOTLINE}" timeout="30"><Number>+85512345001</Number></Dial>'
                                  '</Response>')


@pytest.mark.parametrize("leg,call_status,expected", [
    ("direct", "no-answer", ("no_answer", "open", 1)),
    ("direct", "busy", ("busy", "open", 1)),
    ("direct", "completed", ("unsafe", "open", 1)),  # answered, hung up during the safety check
    ("staff", "no-answer", ("failed", "open", 0)),  # the staff phone never answered
])
def test_status_callback_records_the_outcome(res, db, twilio, leg, call_status, expected) -> None:
    attempt_id = new_attempt(db, new_request(res))
    resp = twilio.post(f"/twilio/outbound/status?attempt={attempt_id}&leg={leg}",
                       params(twilio, CallStatus=call_status, CallDuration="0"))
    assert resp.status_code == 200
    assert state(db, attempt_id) == expected


def test_status_callback_for_an_unknown_attempt_is_answered(twilio) -> None:
    resp = twilio.post("/twilio/outbound/status?attempt=999", params(twilio, CallStatus="completed"))
    assert resp.status_code == 200


def test_whole_callback_from_call_now_to_bridge(res, db, twilio, rest_settings, fake_twilio) -> None:
    """Follow the URLs the worker gave Twilio: staff answers, caller presses 1, the call ends."""
    cb_id, staff_id = new_request(res), new_staff(db)
    with res.db.Session() as s:
        add_job(s, "callback.place", {"callback_id": cb_id, "staff_id": staff_id}, queue="urgent")
        s.commit()
    run_worker_burst(rest_settings.with_(calling_hours=ALL_DAY))
    [call] = fake_twilio.calls

    def path(url: str) -> str:
        parts = urlsplit(url.replace("&amp;", "&"))
        return f"{parts.path}?{parts.query}"

    sid = call["sid"]
    base = twilio.voice_params(sid, from_=HOTLINE, to=STAFF_PHONE, Direction="outbound-api")
    staff_twiml = twilio.post(path(call["Url"]), {**base, "AnsweredBy": "human"}).data.decode()
    whisper = staff_twiml.split('url="')[1].split('"')[0]
    callee = twilio.voice_params(new_call_sid(), from_=HOTLINE, to=CALLEE, Direction="outbound-dial",
                                 ParentCallSid=sid, AnsweredBy="human")
    check = twilio.post(path(whisper), callee).data.decode()
    answer = check.split('action="')[1].split('"')[0]
    twilio.post(path(answer), {**callee, "Digits": "1"})
    twilio.post(path(call["StatusCallback"]), {**base, "CallStatus": "completed", "CallDuration": "312"})

    db.expire_all()
    cb = db.get(CallbackRequest, cb_id)
    assert (cb.status, cb.attempts, cb.outcome) == (CallbackStatus.DONE, 1, "reached")
    row = db.scalar(sa.select(Call).where(Call.call_sid == sid))
    assert (row.status, row.duration_s, row.outcome) == ("completed", 312, "reached")
