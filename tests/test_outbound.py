"""Calls we place, driven by signed webhooks as Twilio sends them: the staff leg's whisper and key
press, the person's good-time-to-talk question, the bridge, async AMD verdicts and status callbacks.
The end-to-end tests follow the URLs the worker handed to (fake) Twilio."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa

from hotline.models import Call, CallbackAttempt, CallbackRequest, CallbackStatus, Language, OutboxJob, StaffUser
from hotline.resources import Resources
from hotline.services import callbacks
from tests.conftest import PUBLIC, new_call_sid, run_worker_burst
from tests.test_callbacks import ALL_DAY, CALLEE, STAFF_PHONE, new_request, new_staff

HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
HOTLINE = "+85523000000"
ROUTES = ["/twilio/outbound/staff", "/twilio/outbound/staff/accept", "/twilio/outbound/callee",
          "/twilio/outbound/callee/answer", "/twilio/outbound/dial", "/twilio/outbound/status",
          "/twilio/outbound/amd"]
HANG_UP = HEAD + "<Response><Hangup /></Response>"
BASE = f"{PUBLIC}/twilio/outbound"


def play(lang: str, name: str) -> str:
    return f"<Play>{PUBLIC}/audio/{lang}/{name}.mp3</Play>"


def new_attempt(db, cb_id: int, staff_id: int | None = None, stage: str = "staff",
                call_sid: str | None = None) -> int:
    db.execute(sa.update(CallbackRequest).where(CallbackRequest.id == cb_id)
               .values(status=CallbackStatus.IN_PROGRESS))
    attempt = CallbackAttempt(request_id=cb_id, staff_id=staff_id, stage=stage, dialled=STAFF_PHONE,
                              call_sid=call_sid)
    db.add(attempt)
    db.commit()
    return attempt.id


def state(db, attempt_id: int) -> tuple[str | None, str, int]:
    db.expire_all()
    attempt = db.get(CallbackAttempt, attempt_id)
    return attempt.outcome, attempt.request.status, attempt.request.attempts


def params(twilio, to: str = CALLEE, **extra: str) -> dict[str, str]:
    return twilio.voice_params(new_call_sid(), from_=HOTLINE, to=to, Direction="outbound-api", **extra)


@pytest.mark.parametrize("path", ROUTES)
def test_unsigned_requests_are_refused(client, path: str) -> None:
    assert client.post(f"{path}?attempt=1", data={"CallSid": new_call_sid(), "Digits": "1"}).status_code == 403


def test_every_outbound_route_checks_the_signature(app) -> None:
    rules = [r for r in app.url_map.iter_rules() if r.rule.startswith("/twilio/outbound")]
    assert sorted(r.rule for r in rules) == sorted(ROUTES)
    assert all(getattr(app.view_functions[r.endpoint], "twilio_signed", False) for r in rules)


# -- the staff leg ------------------------------------------------------------------------------

def test_staff_hears_a_whisper_and_must_press_1(res, db, twilio) -> None:
    attempt_id = new_attempt(db, new_request(res), new_staff(db))
    resp = twilio.post(f"/twilio/outbound/staff?attempt={attempt_id}", params(twilio, to=STAFF_PHONE))
    accept = f"{BASE}/staff/accept?attempt={attempt_id}"
    assert resp.data.decode() == (
        HEAD + f'<Response><Gather action="{accept}" actionOnEmptyResult="true" numDigits="1" timeout="10">'
        + play("en", "staff_whisper") + f"</Gather><Redirect>{accept}</Redirect></Response>")
    assert state(db, attempt_id) == (None, "in_progress", 0)


def test_staff_pressing_1_rings_the_person_from_the_hotline_number_with_async_amd(res, db, twilio) -> None:
    attempt_id = new_attempt(db, new_request(res), new_staff(db))
    resp = twilio.post(f"/twilio/outbound/staff/accept?attempt={attempt_id}",
                       params(twilio, to=STAFF_PHONE, Digits="1"))
    assert resp.data.decode() == (
        HEAD + '<Response><Say language="en-US">Calling the person now. They first hear a question whether it '
        'is a good time to talk.</Say>'
        f'<Dial action="{BASE}/dial?attempt={attempt_id}" callerId="{HOTLINE}" timeout="30">'
        f'<Number amdStatusCallback="{BASE}/amd?attempt={attempt_id}&amp;leg=callee" machineDetection="Enable" '
        f'url="{BASE}/callee?attempt={attempt_id}">{CALLEE}</Number></Dial></Response>')
    db.expire_all()
    assert db.get(CallbackAttempt, attempt_id).stage == "callee"


@pytest.mark.parametrize("digits", ["", "2", "*"])
def test_a_staff_leg_that_does_not_press_1_never_rings_the_person(res, db, twilio, fake_twilio, digits) -> None:
    """A voicemail, a pocket or a wrong key: the request stays open and costs the person nothing."""
    cb_id = new_request(res)
    attempt_id = new_attempt(db, cb_id, new_staff(db))
    form = params(twilio, to=STAFF_PHONE, Digits=digits)
    if not digits:
        form = fake_twilio.gather_timeout(form)  # Twilio posts no Digits at all after the timeout
    resp = twilio.post(f"/twilio/outbound/staff/accept?attempt={attempt_id}", form)
    assert resp.data.decode() == (HEAD + '<Response><Say language="en-US">No key was pressed. The call is not '
                                  'placed. Goodbye.</Say><Hangup /></Response>')
    assert "<Dial" not in resp.data.decode()
    assert state(db, attempt_id) == ("staff_missed", "open", 0)
    cb = db.get(CallbackRequest, cb_id)
    assert cb.next_attempt_at is not None and "did not press 1" in cb.next_reason


def test_staff_voicemail_by_async_amd_is_hung_up_and_costs_the_person_nothing(res, db, twilio, rest_settings,
                                                                             fake_twilio) -> None:
    cb_id = new_request(res)
    staff_sid = new_call_sid()
    attempt_id = new_attempt(db, cb_id, new_staff(db), call_sid=staff_sid)
    form = {"CallSid": staff_sid, "AccountSid": rest_settings.twilio_account_sid, "AnsweredBy": "machine_start"}
    assert twilio.post(f"/twilio/outbound/amd?attempt={attempt_id}&leg=staff", form).status_code == 200
    assert state(db, attempt_id) == ("staff_missed", "open", 0)
    job = db.scalar(sa.select(OutboxJob).where(OutboxJob.kind == "callback.hangup"))
    assert job.payload == {"call_sid": staff_sid}


# -- the person's leg ---------------------------------------------------------------------------

def test_a_khmer_callee_hears_the_khmer_recordings_never_english_speech(res, db, twilio) -> None:
    attempt_id = new_attempt(db, new_request(res), stage="callee")
    resp = twilio.post(f"/twilio/outbound/callee?attempt={attempt_id}", params(twilio))
    answer = f"{BASE}/callee/answer?attempt={attempt_id}"
    assert resp.data.decode() == (
        HEAD + f'<Response><Gather action="{answer}" actionOnEmptyResult="true" numDigits="1" timeout="8">'
        + play("km", "outbound_greeting") + play("km", "outbound_safe_check")
        + f"</Gather><Redirect>{answer}</Redirect></Response>")
    assert "<Say" not in resp.data.decode()
    assert state(db, attempt_id) == (None, "in_progress", 0)


def test_thai_and_english_callees_hear_their_language(res, db, twilio) -> None:
    cb_id = new_request(res, phone="+66891234567")
    db.execute(sa.update(CallbackRequest).values(language=Language.TH))
    attempt_id = new_attempt(db, cb_id, stage="callee")
    body = twilio.post(f"/twilio/outbound/callee?attempt={attempt_id}", params(twilio)).data.decode()
    assert play("th", "outbound_safe_check") in body and "/km/" not in body


def test_the_question_is_neutral_in_every_language(app) -> None:
    from hotline.web.voice import runtime

    with app.app_context():
        texts = runtime().script.prompts["outbound_safe_check"].texts
    assert texts["en"].text == "If it is a good time to talk, press 1."
    for lang, word in (("en", "safe"), ("km", "សុវត្ថិភាព"), ("th", "ปลอดภัย")):
        assert word not in texts[lang].text.lower()


def test_pressing_1_is_not_yet_reached_the_bridge_is(res, db, twilio) -> None:
    staff_sid = new_call_sid()
    attempt_id = new_attempt(db, new_request(res), new_staff(db), stage="callee", call_sid=staff_sid)
    resp = twilio.post(f"/twilio/outbound/callee/answer?attempt={attempt_id}", params(twilio, Digits="1"))
    # The whisper's TwiML ends here, so Twilio bridges the two legs.
    assert resp.data.decode() == HEAD + "<Response>" + play("km", "outbound_connecting") + "</Response>"
    assert state(db, attempt_id) == (None, "in_progress", 0)
    staff = twilio.post(f"/twilio/outbound/dial?attempt={attempt_id}",
                        params(twilio, to=STAFF_PHONE, DialCallStatus="completed", DialBridged="true",
                               DialCallDuration="240"))
    assert staff.data.decode() == (HEAD + '<Response><Say language="en-US">The call has ended. Goodbye.</Say>'
                                   '<Hangup /></Response>')
    assert state(db, attempt_id) == ("reached", "done", 1)


def test_the_person_pressed_1_but_the_staff_leg_is_gone_hears_an_apology(res, db, twilio) -> None:
    staff_sid = new_call_sid()
    cb_id = new_request(res)
    attempt_id = new_attempt(db, cb_id, new_staff(db), stage="callee", call_sid=staff_sid)
    db.add(Call(call_sid=staff_sid, direction="outbound", line="outbound", purpose="callback", status="completed"))
    db.commit()
    resp = twilio.post(f"/twilio/outbound/callee/answer?attempt={attempt_id}", params(twilio, Digits="1"))
    assert resp.data.decode() == HEAD + "<Response>" + play("km", "outbound_sorry") + "<Hangup /></Response>"
    assert state(db, attempt_id) == ("bridge_failed", "open", 0)
    db.expire_all()
    assert db.get(CallbackRequest, cb_id).next_attempt_at is not None


def test_pressed_1_yet_twilio_did_not_bridge_is_not_reached(res, db, twilio) -> None:
    attempt_id = new_attempt(db, new_request(res), new_staff(db), stage="callee", call_sid=new_call_sid())
    twilio.post(f"/twilio/outbound/callee/answer?attempt={attempt_id}", params(twilio, Digits="1"))
    twilio.post(f"/twilio/outbound/dial?attempt={attempt_id}",
                params(twilio, to=STAFF_PHONE, DialCallStatus="failed", DialBridged="false"))
    assert state(db, attempt_id) == ("bridge_failed", "open", 0)


@pytest.mark.parametrize("digits", ["2", "9", "*", ""])
def test_anything_but_1_is_a_polite_goodbye_and_logged_unsafe(res, db, twilio, digits) -> None:
    attempt_id = new_attempt(db, new_request(res), new_staff(db), stage="callee")
    resp = twilio.post(f"/twilio/outbound/callee/answer?attempt={attempt_id}", params(twilio, Digits=digits))
    assert resp.data.decode() == HEAD + "<Response>" + play("km", "outbound_goodbye") + "<Hangup /></Response>"
    assert state(db, attempt_id) == ("unsafe", "open", 1)
    # The staff member is told, and the attempt is not counted twice when the <Dial> ends.
    staff = twilio.post(f"/twilio/outbound/dial?attempt={attempt_id}",
                        params(twilio, to=STAFF_PHONE, DialCallStatus="completed", DialBridged="false"))
    assert staff.data.decode() == (HEAD + '<Response><Say language="en-US">The person could not talk now. '
                                   'Nothing was said. The attempt is logged.</Say><Hangup /></Response>')
    assert state(db, attempt_id) == ("unsafe", "open", 1)


@pytest.mark.parametrize("answered_by", ["machine_start", "machine_end_beep", "machine_end_silence", "fax"])
def test_async_amd_machine_on_the_persons_leg_ends_it_with_no_message(res, db, twilio, answered_by) -> None:
    attempt_id = new_attempt(db, new_request(res), stage="callee")
    child = new_call_sid()
    resp = twilio.post(f"/twilio/outbound/amd?attempt={attempt_id}&leg=callee",
                       {"CallSid": child, "AccountSid": "AC" + "0" * 32, "AnsweredBy": answered_by})
    assert resp.status_code == 200 and b"<Say" not in resp.data and b"<Play" not in resp.data
    assert state(db, attempt_id) == ("machine", "open", 1)
    assert db.scalar(sa.select(OutboxJob.payload).where(OutboxJob.kind == "callback.hangup")) == {"call_sid": child}
    # The whisper URL requested after the verdict plays nothing either.
    assert twilio.post(f"/twilio/outbound/callee?attempt={attempt_id}", params(twilio)).data.decode() == HANG_UP


def test_a_late_machine_verdict_after_the_person_pressed_1_is_ignored(res, db, twilio) -> None:
    attempt_id = new_attempt(db, new_request(res), stage="callee", call_sid=new_call_sid())
    twilio.post(f"/twilio/outbound/callee/answer?attempt={attempt_id}", params(twilio, Digits="1"))
    twilio.post(f"/twilio/outbound/amd?attempt={attempt_id}&leg=callee",
                {"CallSid": new_call_sid(), "AccountSid": "AC" + "0" * 32, "AnsweredBy": "machine_start"})
    assert state(db, attempt_id) == (None, "in_progress", 0)
    assert db.scalar(sa.select(OutboxJob.id).where(OutboxJob.kind == "callback.hangup")) is None


@pytest.mark.parametrize("dial_status,expected", [
    ("no-answer", ("no_answer", "open", 1)),
    ("busy", ("busy", "open", 1)),
    ("completed", ("unsafe", "open", 1)),  # answered, hung up during the question
    ("failed", ("failed", "open", 1)),
])
def test_dial_action_records_the_persons_leg(res, db, twilio, dial_status, expected) -> None:
    attempt_id = new_attempt(db, new_request(res), stage="callee")
    twilio.post(f"/twilio/outbound/dial?attempt={attempt_id}",
                params(twilio, to=STAFF_PHONE, DialCallStatus=dial_status, DialBridged="false"))
    assert state(db, attempt_id) == expected


@pytest.mark.parametrize("stage,expected", [
    ("staff", ("staff_missed", "open", 0)),  # the staff phone never took it
    ("callee", ("failed", "open", 0)),  # the staff member hung up while the person was rung
    ("bridging", ("reached", "done", 1)),  # both were connected; the call is over
])
def test_status_callback_of_the_staff_leg(res, db, twilio, stage, expected) -> None:
    attempt_id = new_attempt(db, new_request(res), stage=stage)
    resp = twilio.post(f"/twilio/outbound/status?attempt={attempt_id}&leg=staff",
                       params(twilio, to=STAFF_PHONE, CallStatus="completed", CallDuration="0"))
    assert resp.status_code == 200
    assert state(db, attempt_id) == expected


def test_status_callback_for_an_unknown_attempt_is_answered(twilio) -> None:
    resp = twilio.post("/twilio/outbound/status?attempt=999", params(twilio, CallStatus="completed"))
    assert resp.status_code == 200


# -- end to end through the worker --------------------------------------------------------------

def _path(url: str) -> str:
    parts = urlsplit(url.replace("&amp;", "&"))
    return f"{parts.path}?{parts.query}"


def test_whole_callback_from_call_now_to_bridge(res, db, twilio, rest_settings, fake_twilio) -> None:
    """Follow the URLs the worker gave Twilio: staff presses 1, the person presses 1, Twilio bridges."""
    cb_id, staff_id = new_request(res), new_staff(db)
    callbacks_res = Resources(rest_settings.with_(calling_hours=ALL_DAY))
    try:
        with callbacks_res.db.Session() as s:
            callbacks.bring_forward(s, callbacks_res.settings, s.get(CallbackRequest, cb_id),
                                    s.get(StaffUser, staff_id), "test")
            s.commit()
    finally:
        callbacks_res.close()
    run_worker_burst(rest_settings.with_(calling_hours=ALL_DAY))
    [call] = fake_twilio.calls
    assert (call["To"], call["AsyncAmd"]) == (STAFF_PHONE, "true")
    sid = call["sid"]
    base = twilio.voice_params(sid, from_=HOTLINE, to=STAFF_PHONE, Direction="outbound-api")
    amd_url, amd_form = fake_twilio.amd_callback(sid, "human")  # async AMD: the whisper was not held
    assert twilio.post(_path(amd_url), amd_form).status_code == 200
    whisper = twilio.post(_path(call["Url"]), base).data.decode()
    accept = whisper.split('action="')[1].split('"')[0]
    dial = twilio.post(_path(accept), {**base, "Digits": "1"}).data.decode()
    callee_url, dial_action = dial.split('url="')[1].split('"')[0], dial.split('action="')[1].split('"')[0]
    callee = twilio.voice_params(new_call_sid(), from_=HOTLINE, to=CALLEE, Direction="outbound-dial",
                                 ParentCallSid=sid)
    check = twilio.post(_path(callee_url), callee).data.decode()
    answer = check.split('action="')[1].split('"')[0]
    twilio.post(_path(answer), {**callee, "Digits": "1"})
    db.expire_all()
    assert db.get(CallbackRequest, cb_id).status == CallbackStatus.IN_PROGRESS  # not reached until bridged
    twilio.post(_path(dial_action), {**base, "DialCallStatus": "completed", "DialBridged": "true",
                                     "DialCallDuration": "300"})
    url, form = fake_twilio.status_callback(sid, "completed", duration=312)
    twilio.post(_path(url), form)

    db.expire_all()
    cb = db.get(CallbackRequest, cb_id)
    assert (cb.status, cb.attempts, cb.outcome) == (CallbackStatus.DONE, 1, "reached")
    row = db.scalar(sa.select(Call).where(Call.call_sid == sid))
    assert (row.status, row.duration_s, row.outcome) == ("completed", 312, "reached")


def test_a_voicemail_on_the_persons_leg_is_hung_up_through_twilio(res, db, twilio, rest_settings,
                                                                 fake_twilio) -> None:
    """Asynchronous AMD: the verdict arrives while the greeting plays; the worker ends that leg."""
    staff_sid = new_call_sid()
    attempt_id = new_attempt(db, new_request(res), new_staff(db), stage="callee", call_sid=staff_sid)
    child = fake_twilio.dial_child(staff_sid, CALLEE)
    twilio.post(f"/twilio/outbound/amd?attempt={attempt_id}&leg=callee",
                {"CallSid": child, "AccountSid": rest_settings.twilio_account_sid, "AnsweredBy": "machine_end_beep"})
    run_worker_burst(rest_settings)
    assert fake_twilio.hung_up == [child]
    assert fake_twilio.call(child)["status"] == "completed"
    assert state(db, attempt_id) == ("machine", "open", 1)


def test_the_staff_member_hung_up_while_the_person_was_rung_they_hear_an_apology(res, db, twilio) -> None:
    staff_sid = new_call_sid()
    cb_id = new_request(res)
    attempt_id = new_attempt(db, cb_id, new_staff(db), stage="callee", call_sid=staff_sid)
    twilio.post(f"/twilio/outbound/status?attempt={attempt_id}&leg=staff",
                {**params(twilio, to=STAFF_PHONE), "CallSid": staff_sid, "CallStatus": "completed"})
    resp = twilio.post(f"/twilio/outbound/callee/answer?attempt={attempt_id}", params(twilio, Digits="1"))
    assert resp.data.decode() == HEAD + "<Response>" + play("km", "outbound_sorry") + "<Hangup /></Response>"
    assert state(db, attempt_id) == ("failed", "open", 0)


def test_redelivered_key_presses_give_the_same_answer(res, db, twilio) -> None:
    attempt_id = new_attempt(db, new_request(res), new_staff(db), call_sid=new_call_sid())
    first = twilio.post(f"/twilio/outbound/staff/accept?attempt={attempt_id}",
                        params(twilio, to=STAFF_PHONE, Digits="1")).data
    again = twilio.post(f"/twilio/outbound/staff/accept?attempt={attempt_id}",
                        params(twilio, to=STAFF_PHONE, Digits="1")).data
    assert first == again and b"<Dial" in first
    for _ in range(2):
        body = twilio.post(f"/twilio/outbound/callee/answer?attempt={attempt_id}", params(twilio, Digits="1")).data
        assert body.decode() == HEAD + "<Response>" + play("km", "outbound_connecting") + "</Response>"
    assert state(db, attempt_id) == (None, "in_progress", 0)
