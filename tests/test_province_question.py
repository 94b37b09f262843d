"""The province question through signed webhooks: asked once per caller, only after a message has been
heard to the end, skippable (silence or another key goes straight on), never of a withheld caller ID."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hotline.models import Caller
from tests.test_ivr_webhooks import KH_CALLER, LANGS, Phone, gather, main_menu, play, resp


@pytest.fixture
def phone(app, twilio, db):
    def make(from_: str = KH_CALLER) -> Phone:
        return Phone(app, twilio, db, from_)

    return make


def asking(twiml: str, c: int) -> str:
    """The same TwiML as the caller would get once asked: every action URL carries `p=1` until then."""
    return twiml.replace(f"c={c}&amp;", f"c={c}&amp;p=1&amp;")


def question(c: int, lang: str, after: str) -> str:
    return resp(gather(c, "province", lang, "ask_province", r=after))


def after_message(c: int, lang: str, node: str) -> str:
    return resp(gather(c, node, lang, "after_message", s="after"))


def caller(db, phone_number: str = KH_CALLER) -> Caller:
    db.expire_all()
    found = db.scalar(sa.select(Caller).where(Caller.phone == phone_number))
    assert found is not None
    return found


def hear_coming_home(p: Phone, *, new: bool = True) -> str:
    """Call, choose Khmer (a new caller), open the one-part message "coming home", hear it to the end."""
    p.call()
    if new:
        p.press("1")
    c = p.c
    first = p.press("6")
    part = resp(gather(c, "coming_home", "km", "msg_coming_home_1", s="p0", timeout=1, on="d"))
    assert first == (asking(part, c) if new else part)
    return p.silence()


def test_asked_after_the_message_and_the_answer_is_stored_then_what_followed(phone, db) -> None:
    p = phone()
    language_menu = p.call()
    c = p.c
    assert "p=1" in language_menu  # carried from the first answer: the caller row says never asked
    assert p.press("1") == asking(resp(main_menu(c, "km")), c)
    assert p.press("6") == asking(resp(gather(c, "coming_home", "km", "msg_coming_home_1", s="p0", timeout=1,
                                              on="d")), c)
    assert p.silence() == question(c, "km", "coming_home")  # no p=1 any more: it is being asked
    assert caller(db).province_asked_at is not None and caller(db).province is None
    assert p.press("3") == after_message(c, "km", "coming_home")  # 3: Siem Reap
    assert caller(db).province == "17"
    path = p.path()
    at = path.index(("message_completed", "coming_home", None))
    assert path[at:] == [("message_completed", "coming_home", None), ("node", "province", None),
                         ("province", "province", "17")]


@pytest.mark.parametrize("lang", LANGS)
def test_the_question_is_in_the_callers_language(phone, db, lang: str) -> None:
    p = phone()
    p.call()
    p.press({"km": "1", "th": "2", "en": "3"}[lang])
    p.press("5")  # money: one part
    assert p.silence() == question(p.c, lang, "money")
    assert p.press("1") == after_message(p.c, lang, "money")
    assert caller(db).province == "01"


@pytest.mark.parametrize("answer", ["silence", "#", "12"])
def test_silence_or_a_key_that_names_no_province_goes_straight_on_and_is_not_asked_again(
        phone, db, answer: str) -> None:
    p = phone()
    assert hear_coming_home(p) == question(p.c, "km", "coming_home")
    got = p.silence() if answer == "silence" else p.press(answer)
    assert got == after_message(p.c, "km", "coming_home")  # what would have followed: no dead air
    row = caller(db)
    assert row.province is None and row.province_asked_at is not None
    assert p.path()[-1][:2] == ("province", "province")
    assert p.path()[-1][2] == ("skipped" if answer == "silence" else "wrong_key")
    # The next message in the same call goes straight to its own "after" prompt.
    p.press("0")
    p.press("5")
    assert p.silence() == after_message(p.c, "km", "money")


def test_asked_once_only_across_calls(phone, db) -> None:
    first = phone()
    assert hear_coming_home(first) == question(first.c, "km", "coming_home")
    first.press("2")
    again = phone()
    language_known = again.call()
    assert "p=1" not in language_known and language_known == resp(main_menu(again.c, "km"))
    assert hear_coming_home(again, new=False) == after_message(again.c, "km", "coming_home")
    assert caller(db).province == "02"


def test_a_caller_who_hangs_up_at_the_question_is_not_asked_again(phone, db) -> None:
    first = phone()
    assert hear_coming_home(first) == question(first.c, "km", "coming_home")
    # ... and hangs up: no answer ever comes. The next call asks nothing.
    again = phone()
    assert hear_coming_home(again, new=False) == after_message(again.c, "km", "coming_home")
    assert caller(db).province is None


def test_urgent_help_and_the_menu_keys_still_work_at_the_question(phone, db) -> None:
    p = phone()
    hear_coming_home(p)
    assert p.press("0") == resp(main_menu(p.c, "km"))  # 0: the main menu, as anywhere
    assert caller(db).province is None
    r = phone("+85512000999")  # a new number: the one above was asked already
    assert hear_coming_home(r) == question(r.c, "km", "coming_home")
    assert play("km", "urgent_record") in r.press("9")  # out of hours: straight to the voice message


def test_never_asked_before_help(phone) -> None:
    p = phone()
    p.call()
    p.press("1")
    got = p.press("9")  # urgent at once: the recording, no question before it
    assert "ask_province" not in got and play("km", "urgent_record") in got


def test_a_withheld_caller_id_is_never_asked_and_nothing_is_stored(phone, db) -> None:
    p = phone("anonymous")
    assert "p=1" not in p.call()
    p.press("1")
    assert "p=1" not in p.press("6")
    assert p.silence() == after_message(p.c, "km", "coming_home")
    assert db.scalar(sa.select(sa.func.count()).select_from(Caller)) == 0


def test_a_forged_flag_for_a_withheld_caller_stores_nothing(phone, db) -> None:
    # Our URLs are signed, but even one carrying p=1 for a withheld number has no caller row to write.
    p = phone("anonymous")
    p.call()
    p.press("1")
    p.press("6")
    got = p._post(f"/twilio/voice/step?c={p.c}&p=1&n=coming_home&l=km&s=p0&e=d")
    assert got == question(p.c, "km", "coming_home")
    p.press("4")
    assert db.scalar(sa.select(sa.func.count()).select_from(Caller)) == 0


def test_reports_count_the_answers_by_province_and_period(phone, db) -> None:
    from datetime import date
    from zoneinfo import ZoneInfo

    from hotline.services import reports

    for number, key in (("+85512000001", "3"), ("+85512000002", "3"), ("+85512000003", "5"),
                        ("+85512000004", None)):
        p = phone(number)
        hear_coming_home(p)
        p.press(key) if key else p.silence()
        p.flush()
    # The phone's clock is 24 November 2026 (tests.test_ivr_webhooks.CLOSED).
    period = reports.Period(date(2026, 10, 1), date(2026, 11, 30), "month", ZoneInfo("Asia/Phnom_Penh"))
    table = reports.build(db, period).table("callers_province")
    assert {r.key: r.cells for r in table.rows} == {"province_17": [0, 2], "province_14": [0, 1]}
    assert table.rows[0].label == {"en": "Prey Veng", "km": "ព្រៃវែង"}


def test_a_province_key_that_is_global_or_a_code_out_of_range_is_named(tmp_path) -> None:
    import shutil

    from tests.test_menus import VOICE, edit, problems

    voice = tmp_path / "voice"
    shutil.copytree(VOICE, voice)
    edit(voice, "menu.yaml", '      "1": "01"               # Banteay Meanchey\n',
         '      "9": "01"\n      "1": "26"\n')
    assert problems(voice) == [
        "menu.yaml, node 'province', field 'provinces.9': must be a key that is not a global key, naming a "
        "province code from '01' to '25' (ISO 3166-2:KH)",
        "menu.yaml, node 'province', field 'provinces.1': must be a key that is not a global key, naming a "
        "province code from '01' to '25' (ISO 3166-2:KH)"]
    edit(voice, "menu.yaml", "province_question: province", "province_question: main")
    assert "menu.yaml, field 'province_question': 'main' is not a node of type province" in problems(voice)
