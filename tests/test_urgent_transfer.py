"""The screened urgent transfer through signed webhooks, as the real network behaves: a voicemail that
picks up an on-call phone, a lawyer who presses 1, another key, two lawyers at once. Each leg's
whisper is fetched the way Twilio fetches a <Number url>: on the leg's own CallSid, with ParentCallSid."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from hotline.db import utcnow
from hotline.models import Call, Case, CaseNote, CaseStatus, OnCallEntry, Role, StaffUser
from hotline.services.legal_aid import escalate_overdue
from tests.conftest import PUBLIC, run_worker_burst
from tests.test_ivr_webhooks import (
    KH_CALLER,
    OPEN,
    TH_CALLER,
    A,
    Phone,
    _without_the_province_question,  # noqa: F401  (autouse: exact TwiML)
    dial,
    gather,
    play,
    resp,
    urgent_closed,
    whisper_url,
)

TH_FIRST, TH_SECOND = "+66812345001", "+66812345002"


@pytest.fixture
def phone(app, twilio, db):
    def make(from_: str = TH_CALLER) -> Phone:
        return Phone(app, twilio, db, from_, OPEN)

    return make


def urgent_call(phone, lang_key: str = "2") -> Phone:  # type: ignore[no-untyped-def]
    p = phone()
    p.call()
    p.press(lang_key)
    p.press("9")
    assert p.last == resp(play("th", "urgent_connecting") + dial(p.c, "th", TH_FIRST, TH_SECOND))
    return p


def whisper_twiml(c: int, lang: str = "th") -> str:
    order = [lang] + [lg for lg in ("km", "th", "en") if lg != lang]
    return resp(f'<Gather action="{whisper_url(c, lang, key=True)}" method="POST" numDigits="1" timeout="6">'
                + "".join(f"<Play>{A}/{lg}/urgent_whisper.mp3</Play>" for lg in order) + "</Gather><Hangup />")


def case_of(db, p: Phone) -> Case:  # type: ignore[no-untyped-def]
    db.expire_all()
    return db.scalar(sa.select(Case).where(Case.source_sid == p.sid))


def test_voicemail_answering_a_leg_presses_nothing_so_the_caller_reaches_the_recording_step(phone, db) -> None:
    p = urgent_call(phone)
    heard, after = p.leg_answers(TH_FIRST, None)  # the voicemail greeting plays over our whisper; no key
    assert heard == whisper_twiml(p.c) and after is None
    # Twilio may well report the voicemail leg as "completed": that is not an answer.
    assert p.dial_ends("completed") == resp(urgent_closed(p.c, "th", "urgent_numbers_th"))
    case = case_of(db, p)
    assert (case.status, case.claimed_by_id) == (CaseStatus.NEW, None)
    assert ("dial", "urgent", "completed, not accepted") in p.path()
    assert db.scalar(sa.select(sa.func.count(CaseNote.id))) == 0


def test_lawyer_pressing_1_is_connected_and_the_case_is_claimed_and_not_escalated(phone, db, res, rest_settings,
                                                                                  fake_twilio) -> None:
    staff = StaffUser(email="lawyer@example.org", name="Lawyer", password_hash="x", role=Role.LAWYER,
                      phone=TH_SECOND)
    db.add(staff)
    db.commit()
    p = urgent_call(phone)
    heard, after = p.leg_answers(TH_SECOND, "1")
    assert after == '<?xml version="1.0" encoding="UTF-8"?><Response />'  # an empty document bridges the leg
    assert p.dial_ends("completed") == resp(gather(p.c, "urgent_done", "th", "urgent_thanks"))
    case = case_of(db, p)
    assert (case.status, case.claimed_by_id) == (CaseStatus.CLAIMED, staff.id)
    assert case.history[-1].reason == "took the urgent call on the phone"
    assert ("transfer_accepted", "urgent", "+66******002") in p.path()
    # The alert job finds the case claimed and texts nobody; the escalation never comes.
    run_worker_burst(rest_settings)
    db.execute(sa.update(Case).values(created_at=utcnow() - timedelta(hours=1)))
    db.commit()
    assert escalate_overdue(res) == 0
    run_worker_burst(rest_settings)
    assert fake_twilio.messages == []


def test_lawyer_without_a_staff_account_claims_the_case_with_a_note_of_the_masked_number(phone, db) -> None:
    db.add(OnCallEntry(country="TH", phone=TH_FIRST, name="Duty lawyer", position=0))
    db.commit()
    p = phone()
    p.call()
    p.press("2")
    p.press("9")
    p.leg_answers(TH_FIRST, "1")
    case = case_of(db, p)
    assert (case.status, case.claimed_by_id) == (CaseStatus.CLAIMED, None)
    notes = [n.body for n in db.scalars(sa.select(CaseNote).where(CaseNote.case_id == case.id))]
    assert notes == ["Urgent call taken on the phone by Duty lawyer (+66******001)."]
    assert TH_FIRST not in notes[0]


@pytest.mark.parametrize("key", ["2", "9", "*", "#"])
def test_any_other_key_drops_that_leg_and_the_caller_is_asked_to_record(phone, db, key: str) -> None:
    p = urgent_call(phone)
    _, after = p.leg_answers(TH_FIRST, key)
    assert after == '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'
    assert p.dial_ends("no-answer") == resp(urgent_closed(p.c, "th", "urgent_numbers_th"))
    assert case_of(db, p).status == CaseStatus.NEW


def test_two_lawyers_pressing_1_connect_one_and_the_other_leg_is_dropped(phone, db) -> None:
    p = urgent_call(phone)
    _, first = p.leg_answers(TH_FIRST, "1")
    _, second = p.leg_answers(TH_SECOND, "1")
    assert first == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    assert second == '<?xml version="1.0" encoding="UTF-8"?><Response><Hangup /></Response>'
    assert [e for e in p.path() if e[0] == "transfer_accepted"] == [("transfer_accepted", "urgent", "+66******001")]


def test_accepted_call_redelivered_dial_action_still_goes_to_the_thank_you_menu(phone, db) -> None:
    p = urgent_call(phone)
    p.leg_answers(TH_FIRST, "1")
    action = p._find("Dial").attrib["action"]
    for _ in range(2):
        p.last = resp(play("th", "urgent_connecting") + dial(p.c, "th", TH_FIRST, TH_SECOND))
        assert p.dial_ends("completed") == resp(gather(p.c, "urgent_done", "th", "urgent_thanks"))
    assert action.startswith("/twilio/voice/step")


def test_whisper_of_a_khmer_caller_starts_in_khmer(phone) -> None:
    p = phone(KH_CALLER)
    p.call()
    p.press("1")
    p.press("9")
    heard, _ = p.leg_answers("+85512345001", None)
    assert heard == whisper_twiml(p.c, "km")


def test_whisper_routes_are_signed(client) -> None:
    r = client.post("/twilio/voice/whisper?c=1&n=urgent&l=km&s=key", data={"Digits": "1", "To": TH_FIRST})
    assert r.status_code == 403


def test_acceptance_for_a_call_that_has_no_case_still_connects(twilio, db) -> None:
    db.add(Call(call_sid="CAnocase", state={}))
    db.commit()
    call_id = db.scalar(sa.select(Call.id).where(Call.call_sid == "CAnocase"))
    path = whisper_url(call_id, "en", key=True).replace("&amp;", "&").removeprefix(PUBLIC)
    r = twilio.post(path, {"CallSid": "CAleg", "ParentCallSid": "CAnocase", "To": TH_FIRST, "Digits": "1"})
    assert r.data == b'<?xml version="1.0" encoding="UTF-8"?><Response />'


def test_a_redelivered_1_from_the_same_leg_still_connects_and_claims_once(phone, db) -> None:
    p = urgent_call(phone)
    _, first = p.leg_answers(TH_FIRST, "1", leg_sid="CA" + "e" * 32)
    _, again = p.leg_answers(TH_FIRST, "1", leg_sid="CA" + "e" * 32)  # Twilio retried the Gather action
    assert first == again == '<?xml version="1.0" encoding="UTF-8"?><Response />'
    assert [e for e in p.path() if e[0] == "transfer_accepted"] == [("transfer_accepted", "urgent", "+66******001")]
    assert len(case_of(db, p).history) == 2  # opened, then claimed once
