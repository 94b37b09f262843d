"""A caller who asks us to call someone else is asked, by key press, whether we may contact that
person and share the details with a partner organisation. Every answer may stay unknown: the report
is never blocked. The answers are stored on a case for someone else and shown on its page."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hotline.models import CallbackRequest, Case, CasePriority
from tests.test_console import login, make_staff
from tests.test_ivr_webhooks import (  # noqa: F401  (_without_the_province_question: autouse, exact TwiML)
    KH_CALLER,
    TH_CALLER,
    Phone,
    _without_the_province_question,
    gather,
    main_menu,
    play,
    resp,
)

OTHER = "+66891234567"


@pytest.fixture
def phone(app, twilio, db):
    def make(from_: str = TH_CALLER) -> Phone:
        return Phone(app, twilio, db, from_)

    return make


def to_the_number(phone) -> Phone:  # type: ignore[no-untyped-def]
    p = phone()
    p.call()
    p.press("3")
    p.press("8")
    p.press("2")
    assert p.press("0891234567") == resp(gather(p.c, "callback", "en", "callback_consent_contact",
                                                s="consent_contact"))
    return p


def report(db, p: Phone) -> Case:  # type: ignore[no-untyped-def]
    db.expire_all()
    return db.scalar(sa.select(Case).where(Case.source_sid == p.sid + ":other"))


@pytest.mark.parametrize(("contact", "share", "expected"), [
    ("1", "1", (True, True)), ("1", "2", (True, False)), ("2", "1", (False, True)), ("2", "2", (False, False)),
    (None, "1", (None, True)), ("1", None, (True, None)), (None, None, (None, None)),
])
def test_consent_answers_by_key_are_stored_and_silence_leaves_them_unknown(phone, db, contact, share,
                                                                           expected) -> None:
    p = to_the_number(phone)
    share_prompt = resp(gather(p.c, "callback", "en", "callback_consent_share", s="consent_share"))
    assert (p.press(contact) if contact else p.silence()) == share_prompt
    assert (p.press(share) if share else p.silence()) == resp(gather(p.c, "callback", "en", "callback_when",
                                                                     s="when"))
    assert p.press("2") == resp(play("en", "callback_done") + main_menu(p.c, "en"))
    case = report(db, p)
    assert (case.reported_by_other, case.subject_phone, case.priority) == (True, OTHER, CasePriority.NORMAL)
    assert (case.consent_contact, case.consent_share) == expected
    req = db.scalars(sa.select(CallbackRequest)).one()
    assert (req.phone, req.for_someone_else, req.consent_contact, req.case_id, req.preferred_time) == (
        OTHER, True, expected[0], case.id, "evening")
    assert case.caller is not None and case.caller.phone == TH_CALLER  # who asked


def test_a_wrong_key_at_a_consent_question_says_so_and_asks_again(phone, db) -> None:
    p = to_the_number(phone)
    assert p.press("5") == resp(play("en", "key_not_used") + gather(p.c, "callback", "en", "callback_consent_contact",
                                                                     s="consent_contact", w=1))
    assert p.press("9") != ""  # the urgent key still works in the middle of the questions
    assert report(db, p).consent_contact is None


def test_redelivered_number_step_opens_one_report(phone, db) -> None:
    p = to_the_number(phone)
    p.at("callback", "en", "0891234567", s="number")
    assert db.scalar(sa.select(sa.func.count(Case.id))) == 1


def test_own_number_callback_asks_no_consent_and_opens_no_case(phone, db) -> None:
    p = phone(KH_CALLER)
    p.call()
    p.press("1")
    p.press("8")
    assert p.press("1") == resp(gather(p.c, "callback", "km", "callback_when", s="when"))
    assert db.scalar(sa.select(sa.func.count(Case.id))) == 0


def test_case_page_shows_the_consent_answers(phone, db, client) -> None:
    p = to_the_number(phone)
    p.press("1")
    p.silence()
    make_staff(db)
    login(client)
    page = client.get(f"/staff/cases/{report(db, p).id}").get_data(as_text=True)
    assert "Asked by someone else</dt><dd>yes" in page
    assert "Agreed to be contacted</dt><dd>yes" in page
    assert "Agreed to share details</dt><dd>not known" in page
    assert OTHER not in page  # masked until "Show full numbers"


# -- by SMS: a family member's urgent text ----------------------------------------------------------

FAMILY = "+85597111222"


def text(twilio, body: str, sid: str | None = None):  # type: ignore[no-untyped-def]
    r = twilio.post("/twilio/sms", twilio.sms_params(body, from_=FAMILY, sid=sid))
    assert r.status_code == 200
    return r.data.decode()


def messages(twiml: str) -> list[str]:
    import re

    return re.findall(r"<Message[^>]*>([^<]*)</Message>", twiml)


def sms_case(db) -> Case:  # type: ignore[no-untyped-def]
    db.expire_all()
    return db.scalars(sa.select(Case)).one()


@pytest.mark.parametrize(("body", "lang"), [
    ("my son is locked in at work", "km"),  # Latin text from a Cambodian number: answered in Khmer
    ("កូនប្រុសខ្ញុំ ត្រូវប៉ូលិសចាប់", "km"),
])
def test_family_members_urgent_text_opens_a_report_for_someone_else_and_asks_consent(twilio, db, body: str,
                                                                                     lang: str) -> None:
    from hotline.menus import consent

    texts = consent.load()
    first = messages(text(twilio, body))
    assert len(first) == 2 and first[1] == texts.reply("ask_contact", lang)
    case = sms_case(db)
    assert (case.reported_by_other, case.consent_contact, case.consent_share) == (True, None, None)
    assert messages(text(twilio, "៨" if lang == "km" else "8")) == [texts.reply("ask_share", lang)]
    assert messages(text(twilio, "9")) == [texts.reply("noted", lang)]
    case = sms_case(db)
    assert (case.consent_contact, case.consent_share) == (True, False)
    # Once both are answered, an 8 is an ordinary text again (not a topic, not a consent answer).
    assert messages(text(twilio, "8")) != [texts.reply("noted", lang)]
    assert sms_case(db).consent_share is False


def test_own_urgent_text_asks_no_consent_and_a_bare_8_stays_an_ordinary_text(twilio, db) -> None:
    assert len(messages(text(twilio, "passport taken"))) == 1
    assert sms_case(db).reported_by_other is False
    text(twilio, "8")
    assert (sms_case(db).consent_contact, sms_case(db).consent_share) == (None, None)


def test_redelivered_consent_answer_is_applied_once(twilio, db) -> None:
    text(twilio, "my husband was beaten")
    text(twilio, "8", sid="SM" + "c" * 32)
    text(twilio, "9", sid="SM" + "c" * 32)  # the same MessageSid again: ignored, even with another body
    case = sms_case(db)
    assert (case.consent_contact, case.consent_share) == (True, None)


def test_an_unanswered_question_never_holds_the_report_back(twilio, db) -> None:
    text(twilio, "my daughter not paid")
    assert messages(text(twilio, "help"))  # the menu still answers
    case = sms_case(db)
    assert case.status == "new" and case.consent_contact is None


def test_consent_texts_fit_two_sms_parts_in_every_language() -> None:
    from hotline.menus import consent
    from hotline.menus.textnorm import sms_segments

    texts = consent.load()
    for rid, by_lang in texts.replies.items():
        assert set(by_lang) == {"km", "th", "en"}, rid
        assert all(sms_segments(t) <= 2 for t in by_lang.values()), rid


def test_a_consent_file_without_review_or_a_language_is_refused() -> None:
    from hotline.menus import consent

    with pytest.raises(ValueError, match="review"):
        consent.parse({"someone_else": {}, "replies": {}})
    with pytest.raises(ValueError, match="ask_contact: missing the th"):
        consent.parse({"review": "native-speaker", "replies": {"ask_contact": {"km": "x", "en": "y"}}})


def test_a_family_text_that_upgrades_a_review_case_takes_the_consent_answers_too(twilio, db) -> None:
    """A possible-danger text opens a review case; a family member's urgent text then upgrades it
    and is asked the consent question: the answer must land on that case, not be lost."""
    from hotline.menus import consent

    texts = consent.load()
    text(twilio, "police came to our camp")  # possible danger: a normal-priority case for review
    first = messages(text(twilio, "my son is locked in at work"))
    assert len(first) == 2 and first[1] == texts.reply("ask_contact", "km")
    case = sms_case(db)  # the same case, upgraded
    assert (case.priority, case.reported_by_other) == ("urgent", True)
    assert messages(text(twilio, "8")) == [texts.reply("ask_share", "km")]
    assert sms_case(db).consent_contact is True
