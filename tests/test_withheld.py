"""Withheld caller IDs are strangers: Twilio sends them as words or as those words typed on a keypad
(+266696687 even parses as a Lesotho number). Two people who hide their number share nothing: no
Caller row, no remembered language, no resume offer, no "call back this number", no history."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hotline.models import Call, CallbackRequest, Caller, Case
from hotline.phones import is_withheld
from hotline.services import cases
from tests.test_ivr_webhooks import (
    OPEN,
    Phone,
    _without_the_province_question,  # noqa: F401  (autouse: exact TwiML)
    callback_confirm,
    gather,
    main_menu,
    resp,
    url,
)

WORDS = ["anonymous", "Anonymous", "RESTRICTED", "UNKNOWN", "BLOCKED", ""]
DIGITS = ["+266696687", "+7378742833", "+8656696", "+2562533", "266696687", "7378742833", "8656696", "2562533"]
WITHHELD = WORDS + DIGITS


def language_menu(c: int) -> str:
    return resp(f'<Gather action="{url(c, "language", "km")}" finishOnKey="" method="POST" numDigits="1" '
                f'timeout="5">' + "".join(f"<Play>https://hotline.example.org/audio/{lg}/choose_language.mp3</Play>"
                                          for lg in ("km", "th", "en")) + "</Gather>"
                f'<Redirect method="POST">{url(c, "language", "km", e="t")}</Redirect>')


@pytest.fixture
def phone(app, twilio, db):
    def make(from_: str) -> Phone:
        return Phone(app, twilio, db, from_, OPEN)

    return make


@pytest.mark.parametrize("from_", WITHHELD)
def test_every_withheld_form_is_recognised(from_: str) -> None:
    assert is_withheld(from_)


@pytest.mark.parametrize("from_", ["+85512345678", "+66812345678", "+26657123456", "+12025550123", "tg:12345"])
def test_real_numbers_are_not_withheld(from_: str) -> None:
    assert not is_withheld(from_)


@pytest.mark.parametrize("from_", WITHHELD)
def test_two_withheld_callers_share_no_language_resume_or_row(phone, twilio, db, from_: str) -> None:
    first = phone(from_)
    first.call()
    assert first.press("2") == resp(main_menu(first.c, "th"))  # an explicit choice, for this call only
    first.press("3")
    first.silence()  # in the middle of the wages message; then the line drops
    first.flush()
    twilio.post("/twilio/voice/status", twilio.voice_params(first.sid, from_, CallStatus="completed"))
    second = phone(from_)
    assert second.call() == language_menu(second.c)  # neither Thai nor "continue where you stopped"
    assert db.scalar(sa.select(sa.func.count(Caller.id))) == 0
    assert db.scalars(sa.select(Call.caller_id)).all() == [None, None]


@pytest.mark.parametrize("from_", WITHHELD)
def test_withheld_caller_is_asked_for_a_number_to_call_back(phone, db, from_: str) -> None:
    p = phone(from_)
    p.call()
    p.press("3")
    assert p.press("8") == resp(gather(p.c, "callback", "en", "callback_enter_number", s="number", timeout=10,
                                       digits=None, finish="#"))
    p.press("0891234567#")
    req = db.scalars(sa.select(CallbackRequest)).one()
    assert (req.phone, req.caller_id) == ("+66891234567", None)  # the number keyed in, never the placeholder


@pytest.mark.parametrize("from_", WITHHELD)
def test_urgent_cases_of_two_withheld_callers_show_no_one_elses_history(phone, db, from_: str) -> None:
    a, b = phone(from_), phone(from_)
    for p in (a, b):
        p.call()
        p.press("9")
    case_a, case_b = (db.scalar(sa.select(Case).where(Case.source_sid == p.sid)) for p in (a, b))
    assert case_a.caller_id is None and case_b.caller_id is None
    for case, own in ((case_a, a), (case_b, b)):
        h = cases.history(db, case)
        assert [c.call_sid for c in h.calls] == [own.sid]  # the case's own call, nobody else's
        assert h.messages == [] and h.other_cases == []


@pytest.mark.parametrize("from_", WITHHELD)
def test_missed_call_from_a_withheld_form_stores_no_callback_and_no_caller(phone, db, from_: str) -> None:
    assert phone(from_).call(to="+85523000999") == resp('<Reject reason="busy" />')
    assert db.scalar(sa.select(sa.func.count(CallbackRequest.id))) == 0
    assert db.scalar(sa.select(sa.func.count(Caller.id))) == 0


def test_a_real_number_still_gets_the_confirm_prompt(phone) -> None:
    p = phone("+85512345678")
    p.call()
    p.press("1")
    assert p.press("8") == resp(callback_confirm(p.c, "km"))
