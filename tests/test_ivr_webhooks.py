"""The voice menu through signed webhooks, exactly as Twilio drives it: exact TwiML at each step, and
the rows each step writes (cases, callback requests, recordings, the call's path)."""

from __future__ import annotations

import dataclasses
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from hotline.models import (
    Call,
    CallbackRequest,
    Caller,
    CallEvent,
    Case,
    CasePriority,
    OnCallEntry,
    OutboxJob,
    Recording,
)
from tests.conftest import PUBLIC, new_call_sid, run_worker_burst

A = PUBLIC + "/audio"
HEAD = '<?xml version="1.0" encoding="UTF-8"?><Response>'
LANGS = ("km", "th", "en")
# Tuesday 24 Nov 2026 in Phnom Penh: 10:00 is office hours, 20:00 is not.
OPEN = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)
CLOSED = datetime(2026, 11, 24, 13, 0, tzinfo=UTC)
KH_CALLER, TH_CALLER = "+85512345678", "+66812345678"


# -- the exact TwiML we expect, written out --------------------------------------------------------

def url(c: int, n: str, lang: str, s: str = "", k: int = 0, w: int = 0, r: str = "", e: str = "") -> str:
    parts = [f"c={c}", f"n={n}", f"l={lang}"]
    parts += [f"{name}={v}" for name, v in (("s", s), ("k", k), ("w", w), ("r", quote(r, safe=""))) if v]
    if e:
        parts.append(f"e={e}")
    return "/twilio/voice/step?" + "&amp;".join(parts)


def play(lang: str, name: str) -> str:
    return f"<Play>{A}/{lang}/{name}.mp3</Play>"


def gather(c: int, n: str, lang: str, *prompts: str, s: str = "", k: int = 0, w: int = 0, r: str = "",
           timeout: int = 5, digits: int | None = 1, finish: str = "", on: str = "t", then: str = "") -> str:
    nd = f' numDigits="{digits}"' if digits else ""
    return (f'<Gather action="{url(c, n, lang, s, k, w, r)}" finishOnKey="{finish}" method="POST"{nd} '
            f'timeout="{timeout}">' + "".join(play(lang, p) for p in prompts) + then
            + f'</Gather><Redirect method="POST">{url(c, n, lang, s, k, w, r, e=on)}</Redirect>')


def resp(*parts: str) -> str:
    return HEAD + "".join(parts) + "</Response>"


def record(c: int, lang: str) -> str:
    return (f'<Record action="{url(c, "urgent", lang, "record")}" finishOnKey="1234567890*#" maxLength="180" '
            f'method="POST" playBeep="true" recordingStatusCallback="{PUBLIC}/twilio/voice/recording" '
            f'recordingStatusCallbackEvent="completed" recordingStatusCallbackMethod="POST" timeout="8" />'
            f'<Redirect method="POST">{url(c, "urgent", lang, "record", e="d")}</Redirect>')


def whisper_url(c: int, lang: str, key: bool = False) -> str:
    return f"{PUBLIC}/twilio/voice/whisper?c={c}&amp;n=urgent&amp;l={lang}" + ("&amp;s=key" if key else "")


def dial(c: int, lang: str, *numbers: str) -> str:
    # Every leg is screened: it hears the whisper and is put through only if it presses 1.
    return (f'<Dial action="{url(c, "urgent", lang, "dial")}" callerId="+85523000000" method="POST" timeout="25">'
            + "".join(f'<Number method="POST" url="{whisper_url(c, lang)}">{n}</Number>' for n in numbers)
            + "</Dial>")


def main_menu(c: int, lang: str, **kw: int) -> str:
    # The menu in the caller's language, then "another language: press #" in every language.
    every = "".join(play(other, "change_language") for other in LANGS)
    return gather(c, "main", lang, "main_menu", then=every, **kw)  # type: ignore[arg-type]


def urgent_closed(c: int, lang: str, numbers: str = "urgent_numbers_kh") -> str:
    # Before the recording: the numbers that can act tonight where the caller is (KH_CALLER by default).
    return play(lang, numbers) + play(lang, "urgent_record") + record(c, lang)


def callback_confirm(c: int, lang: str, **kw: int) -> str:
    return gather(c, "callback", lang, "callback_confirm", s="confirm", **kw)  # type: ignore[arg-type]


def goodbye(lang: str) -> str:
    return play(lang, "goodbye") + "<Hangup />"


# -- a phone that follows our TwiML as Twilio would -------------------------------------------------

class Phone:
    def __init__(self, app, twilio, db, from_: str = KH_CALLER, when: datetime = CLOSED):
        self.twilio, self.db, self.from_, self.app = twilio, db, from_, app
        self.sid = new_call_sid()
        self.last = ""
        rt = app.extensions["hotline.ivr"]
        app.extensions["hotline.ivr"] = dataclasses.replace(rt, now=lambda: when)

    @property
    def c(self) -> int:
        return self.db.scalar(sa.select(Call.id).where(Call.call_sid == self.sid))

    def flush(self) -> None:
        """Menu steps write their path in batches; wait for them, as real calls are ms apart anyway."""
        self.app.extensions["hotline.ivr"].events.flush()

    def _post(self, path: str, **extra: str) -> str:
        self.flush()
        r = self.twilio.post(path, self.twilio.voice_params(self.sid, self.from_, **extra))
        assert r.status_code == 200 and r.mimetype == "text/xml", r.data
        self.last = r.data.decode()
        return self.last

    def _find(self, tag: str) -> ET.Element:
        el = ET.fromstring(self.last.split("?>", 1)[1]).find(tag)
        assert el is not None, f"no <{tag}> in {self.last}"
        return el

    def call(self, to: str = "+85523000000") -> str:
        return self._post("/twilio/voice", To=to)

    def press(self, digits: str) -> str:
        return self._post(self._find("Gather").attrib["action"], Digits=digits)

    def silence(self) -> str:
        return self._post(self._find("Redirect").text or "")

    def dial_ends(self, status: str) -> str:
        return self._post(self._find("Dial").attrib["action"], DialCallStatus=status)

    def leg_answers(self, number: str, digits: str | None, leg_sid: str | None = None) -> tuple[str, str | None]:
        """An on-call leg of the waiting <Dial> answers: Twilio fetches the Number's url on that leg
        (its own CallSid, ParentCallSid = this call); then the key pressed, if any, goes to the
        whisper's Gather. Returns (whisper TwiML, TwiML after the key or None)."""
        dial = self._find("Dial")
        num = next(n for n in dial if (n.text or "").strip() == number)
        leg = {"CallSid": leg_sid or new_call_sid(), "ParentCallSid": self.sid, "From": "+85523000000", "To": number,
               "Called": number, "Direction": "outbound-dial", "CallStatus": "in-progress",
               "AccountSid": self.twilio_params()["AccountSid"]}
        first = self.twilio.post(num.attrib["url"].removeprefix(PUBLIC), leg)
        assert first.status_code == 200, first.data
        if digits is None:
            return first.data.decode(), None
        action = ET.fromstring(first.data.decode().split("?>", 1)[1]).find("Gather").attrib["action"]  # type: ignore[union-attr]
        second = self.twilio.post(action.removeprefix(PUBLIC), {**leg, "Digits": digits})
        assert second.status_code == 200, second.data
        return first.data.decode(), second.data.decode()

    def twilio_params(self) -> dict[str, str]:
        return self.twilio.voice_params(self.sid, self.from_)

    def records(self, recording_sid: str = "RE" + "1" * 32) -> str:
        return self._post(self._find("Record").attrib["action"], RecordingUrl=f"https://api.twilio.com/{recording_sid}",
                          RecordingDuration="12", RecordingSid=recording_sid, Digits="#")

    def at(self, n: str, lang: str, digits: str | None = None, **state: str) -> str:
        """Post to a state URL we handed out earlier, as Twilio does after a Gather."""
        path = url(self.c, n, lang, **state).replace("&amp;", "&")  # type: ignore[arg-type]
        return self._post(path, Digits=digits) if digits is not None else self._post(path)

    def path(self) -> list[tuple[str, str | None, str | None]]:
        self.flush()
        rows = self.db.execute(sa.select(CallEvent.kind, CallEvent.node, CallEvent.detail)
                               .where(CallEvent.call_id == self.c)
                               .order_by(CallEvent.at, CallEvent.id)).all()
        return [tuple(r) for r in rows]


@pytest.fixture(autouse=True)
def _without_the_province_question(app):
    """These tests write out the menu's exact TwiML for callers never asked their province, whose URLs
    would carry `p=1`: they run without the question, which tests/test_province_question.py covers."""
    rt = app.extensions["hotline.ivr"]
    app.extensions["hotline.ivr"] = dataclasses.replace(rt, script=dataclasses.replace(rt.script, province_node=None))


@pytest.fixture
def phone(app, twilio, db):
    def make(from_: str = KH_CALLER, when: datetime = CLOSED) -> Phone:
        return Phone(app, twilio, db, from_, when)

    return make


# -- first contact and language -------------------------------------------------------------------

def test_new_caller_hears_the_language_menu_in_every_language_with_the_urgent_key(phone) -> None:
    p = phone()
    body = p.call()
    assert body == resp(f'<Gather action="{url(p.c, "language", "km")}" finishOnKey="" method="POST" numDigits="1" '
                        f'timeout="5">' + play("km", "choose_language") + play("th", "choose_language")
                        + play("en", "choose_language") + "</Gather>"
                        f'<Redirect method="POST">{url(p.c, "language", "km", e="t")}</Redirect>')


@pytest.mark.parametrize(("key", "lang"), [("1", "km"), ("2", "th"), ("3", "en")])
def test_language_key_chooses_language_and_is_remembered_for_the_number(phone, db, key: str, lang: str) -> None:
    p = phone()
    p.call()
    assert p.press(key) == resp(main_menu(p.c, lang))
    assert db.scalar(sa.select(Caller.language).where(Caller.phone == KH_CALLER)) == lang
    again = phone()
    assert again.call() == resp(main_menu(again.c, lang))  # a returning caller goes straight to the menu


def test_silence_at_language_menu_means_khmer_but_is_not_remembered(phone, db) -> None:
    p = phone()
    p.call()
    assert p.silence() == resp(main_menu(p.c, "km"))
    assert db.scalar(sa.select(Call.language).where(Call.call_sid == p.sid)) == "km"
    assert db.scalar(sa.select(Caller.language).where(Caller.phone == KH_CALLER)) is None


# -- every menu, every language: silence, wrong key, 9, 8, *, 0 ------------------------------------

def _entry(node: str, c: int, lang: str, **kw) -> str:  # type: ignore[no-untyped-def]
    """What a caller hears on arriving at `node` (counters in kw)."""
    if node == "language":
        return (f'<Gather action="{url(c, "language", lang, **kw)}" finishOnKey="" method="POST" numDigits="1" '
                f'timeout="5">' + play("km", "choose_language") + play("th", "choose_language")
                + play("en", "choose_language") + "</Gather>"
                f'<Redirect method="POST">{url(c, "language", lang, e="t", **kw)}</Redirect>')
    prompts = {"offer_callback": "offer_callback", "urgent_done": "urgent_thanks", "resume": "resume_offer"}
    if node == "main":
        return main_menu(c, lang, **kw)
    if node in prompts:
        return gather(c, node, lang, prompts[node], **kw)
    if node == "callback":
        return callback_confirm(c, lang, **kw)
    if node == "callback/when":
        return gather(c, "callback", lang, "callback_when", s="when", **kw)
    if node == "wages/after":
        return gather(c, "wages", lang, "after_message", s="after", **kw)
    raise AssertionError(node)


# node as posted, its state, what silence gives, what "*" gives
MENUS = {
    "language": ({}, lambda c, lg: main_menu(c, "km"), lambda c, lg: _entry("language", c, lg)),
    "main": ({}, lambda c, lg: main_menu(c, lg, k=1), lambda c, lg: main_menu(c, lg)),
    "offer_callback": ({}, lambda c, lg: goodbye(lg), lambda c, lg: _entry("offer_callback", c, lg)),
    "urgent_done": ({}, lambda c, lg: goodbye(lg), lambda c, lg: _entry("urgent_done", c, lg)),
    "resume": ({"r": "wages:1"}, lambda c, lg: main_menu(c, lg), lambda c, lg: _entry("resume", c, lg, r="wages:1")),
    "callback": ({"s": "confirm"}, lambda c, lg: callback_confirm(c, lg, k=1), lambda c, lg: callback_confirm(c, lg)),
    "callback/when": ({"s": "when"}, lambda c, lg: play(lg, "callback_done") + main_menu(c, lg),
                      lambda c, lg: _entry("callback/when", c, lg)),
    "wages/after": ({"s": "after"}, lambda c, lg: _entry("wages/after", c, lg, k=1),
                    lambda c, lg: gather(c, "wages", lg, "msg_wages_1", s="p0", timeout=1, on="d")),
}


@pytest.mark.parametrize("lang", LANGS)
@pytest.mark.parametrize("menu", list(MENUS))
def test_every_menu_answers_silence_wrong_key_and_global_keys(phone, lang: str, menu: str) -> None:
    p = phone()
    p.call()
    c = p.c
    state, on_silence, on_repeat = MENUS[menu]
    node = menu.split("/")[0]
    wrong = _entry(menu, c, lang, w=1, **({"r": "wages:1"} if menu == "resume" else {}))
    expected = {
        None: on_silence(c, lang),
        # "#" at the main menu chooses the language again; everywhere else it is not used.
        "#": _entry("language", c, lang) if menu == "main" else play(lang, "key_not_used") + wrong,
        "9": urgent_closed(c, lang),
        "8": callback_confirm(c, lang),
        "*": on_repeat(c, lang),
        "0": main_menu(c, lang),
    }
    for key, twiml in expected.items():
        got = p.at(node, lang, key, **state) if key else p.at(node, lang, **state, e="t")
        assert got == resp(twiml), f"{menu} {lang} key={key}"


def test_message_keys_during_a_part_work_and_a_wrong_key_lands_on_the_after_menu(phone) -> None:
    p = phone()
    p.call()
    c = p.c
    assert p.at("wages", "th", "9", s="p0") == resp(urgent_closed(c, "th"))  # a KH_CALLER
    assert p.at("wages", "th", "0", s="p1") == resp(main_menu(c, "th"))
    assert p.at("wages", "th", "*", s="p1") == resp(gather(c, "wages", "th", "msg_wages_1", s="p0", timeout=1,
                                                           on="d"))
    assert p.at("wages", "th", "5", s="p0") == resp(play("th", "key_not_used")
                                                     + gather(c, "wages", "th", "after_message", s="after", w=1))


# -- whole paths from the first ring --------------------------------------------------------------

@pytest.mark.parametrize("lang", LANGS)
def test_topic_message_plays_part_by_part_then_offers_repeat_and_records_the_path(phone, lang: str) -> None:
    p = phone()
    p.call()
    p.press({"km": "1", "th": "2", "en": "3"}[lang])
    c = p.c
    assert p.press("1") == resp(gather(c, "before_you_go", lang, "msg_before_you_go_1", s="p0", timeout=1, on="d"))
    assert p.silence() == resp(gather(c, "before_you_go", lang, "msg_before_you_go_2", s="p1", timeout=1, on="d"))
    assert p.silence() == resp(gather(c, "before_you_go", lang, "after_message", s="after"))
    assert p.press("*") == resp(gather(c, "before_you_go", lang, "msg_before_you_go_1", s="p0", timeout=1, on="d"))
    assert p.press("0") == resp(main_menu(c, lang))
    assert p.path()[-10:] == [
        ("key", "main", "1"), ("node", "before_you_go", None), ("message_part", "before_you_go", "0"),
        ("message_part", "before_you_go", "1"), ("message_completed", "before_you_go", None),
        ("key", "before_you_go", "*"), ("node", "before_you_go", None), ("message_part", "before_you_go", "0"),
        ("key", "before_you_go", "0"), ("node", "main", None)]
    kinds = [k for k, _, _ in p.path()]
    assert kinds.count("message_completed") == 1 and kinds.count("message_part") == 3


def test_silence_replays_then_offers_callback_then_says_goodbye(phone) -> None:
    p = phone()
    p.call()
    p.press("1")
    c = p.c
    assert p.silence() == resp(main_menu(c, "km", k=1))
    assert p.silence() == resp(main_menu(c, "km", k=2))
    assert p.silence() == resp(gather(c, "offer_callback", "km", "offer_callback"))
    assert p.silence() == resp(goodbye("km"))


def test_wrong_keys_say_not_used_and_give_up_to_the_callback_offer(phone) -> None:
    # Every key of the main menu is used now ("#" chooses the language again): a message's menu has
    # free keys. A forged two-digit input at the main menu is a wrong key too.
    p = phone()
    p.call()
    p.press("3")
    c = p.c
    assert p.press("12") == resp(play("en", "key_not_used") + main_menu(c, "en", w=1))
    p.press("6")
    p.silence()
    for w in range(1, 5):
        assert p.press("#") == resp(play("en", "key_not_used") + gather(c, "coming_home", "en", "after_message",
                                                                         s="after", w=w))
    assert p.press("#") == resp(play("en", "key_not_used") + gather(c, "offer_callback", "en", "offer_callback"))


@pytest.mark.parametrize("lang", LANGS)
def test_hash_at_the_main_menu_chooses_the_language_again_and_the_new_choice_is_remembered(phone, db,
                                                                                          lang: str) -> None:
    p = phone()
    p.call()
    p.press({"km": "1", "th": "2", "en": "3"}[lang])
    again = phone()
    assert again.call() == resp(main_menu(again.c, lang))  # remembered; the menu says "#" in every language
    assert again.press("#") == resp(_entry("language", again.c, lang))
    new = {"km": "2", "th": "3", "en": "1"}[lang]
    new_lang = {"1": "km", "2": "th", "3": "en"}[new]
    assert again.press(new) == resp(main_menu(again.c, new_lang))
    assert db.scalar(sa.select(Caller.language).where(Caller.phone == KH_CALLER)) == new_lang


@pytest.mark.parametrize(("from_", "part"), [(TH_CALLER, "msg_numbers_th"), (KH_CALLER, "msg_numbers_kh"),
                                             # Malaysia: both lists, each named by its country (never
                                             # the Cambodian list alone as if it were the caller's own)
                                             ("+60123456789", "msg_numbers_th")])
def test_useful_numbers_are_the_local_ones_for_the_callers_country(phone, from_: str, part: str) -> None:
    p = phone(from_)
    p.call()
    p.press("3")
    assert p.press("7") == resp(gather(p.c, "useful_numbers", "en", part, s="p0", timeout=1, on="d"))
    if from_.startswith("+60"):
        assert p.silence() == resp(gather(p.c, "useful_numbers", "en", "msg_numbers_kh", s="p1", timeout=1, on="d"))


@pytest.mark.parametrize(("from_", "numbers"), [(TH_CALLER, "urgent_numbers_th"), (KH_CALLER, "urgent_numbers_kh"),
                                                ("+60123456789", "urgent_numbers_any"),
                                                ("+821012345678", "urgent_numbers_any"),
                                                ("anonymous", "urgent_numbers_any")])
def test_after_hours_the_urgent_caller_hears_tonights_numbers_for_their_country_before_recording(
        phone, from_: str, numbers: str) -> None:
    p = phone(from_, when=CLOSED)
    p.call()
    assert p.press("9") == resp(urgent_closed(p.c, "km", numbers))


# -- urgent help ------------------------------------------------------------------------------------

def test_urgent_key_writes_the_case_before_answering_then_records_out_of_hours(phone, db) -> None:
    p = phone(when=CLOSED)
    p.call()
    body = p.press("9")  # 9 works at the language menu already
    assert body == resp(urgent_closed(p.c, "km"))
    case = db.scalar(sa.select(Case).where(Case.source_sid == p.sid))
    assert (case.priority, case.source, case.country, case.language) == (CasePriority.URGENT, "voice", "KH", "km")
    assert db.scalar(sa.select(OutboxJob.kind).where(OutboxJob.case_id == case.id)) == "case.notify"
    # Only after the recording: one optional key for the category (replaces: straight to urgent_done).
    assert p.records() == resp(gather(p.c, "urgent", "km", "urgent_category", s="category"))
    assert p.press("1") == resp(gather(p.c, "urgent_done", "km", "urgent_thanks"))
    assert ("recorded", "urgent", None) in p.path() and ("category", "urgent", "locked_in") in p.path()
    db.expire_all()
    assert db.scalar(sa.select(Case.category).where(Case.source_sid == p.sid)) == "locked_in"


@pytest.mark.parametrize("answer", ["silence", "7", "9"])
def test_no_answer_or_another_key_at_the_category_question_leaves_the_case_other(phone, db, answer: str) -> None:
    p = phone(when=CLOSED)
    p.call()
    p.press("9")
    p.records()
    body = p.silence() if answer == "silence" else p.press(answer)
    assert body == resp(gather(p.c, "urgent_done", "km", "urgent_thanks"))
    assert ("category", "urgent", "none") in p.path()
    assert db.scalar(sa.select(Case.category).where(Case.source_sid == p.sid)) == "other"
    assert db.scalar(sa.select(sa.func.count(Case.id))) == 1  # 9 at the question is not a second urgent call


def test_a_category_staff_already_set_is_not_overwritten_by_the_key(phone, db) -> None:
    p = phone(when=CLOSED)
    p.call()
    p.press("9")
    db.execute(sa.update(Case).where(Case.source_sid == p.sid).values(category="violence"))
    db.commit()
    p.records()
    p.press("2")
    db.expire_all()
    assert db.scalar(sa.select(Case.category).where(Case.source_sid == p.sid)) == "violence"


def test_urgent_in_office_hours_rings_the_on_call_numbers_of_the_callers_country(phone, db) -> None:
    p = phone(TH_CALLER, when=OPEN)
    p.call()
    p.press("2")
    assert p.press("9") == resp(play("th", "urgent_connecting") + dial(p.c, "th", "+66812345001", "+66812345002"))
    # Nobody took it: the same words as when nobody is on call (no "our team cannot answer" first).
    assert p.dial_ends("no-answer") == resp(urgent_closed(p.c, "th", "urgent_numbers_th"))
    # Said nothing: no recording; the category question still comes (a caller who cannot speak can press).
    assert p.silence() == resp(gather(p.c, "urgent", "th", "urgent_category", s="category"))
    assert p.silence() == resp(gather(p.c, "urgent_done", "th", "urgent_thanks"))
    assert [e for e in p.path() if e[0] in ("dial", "no_recording")] == [("dial", "urgent", "no-answer"),
                                                                          ("no_recording", "urgent", None)]
    assert db.scalar(sa.select(sa.func.count(Case.id))) == 1


def test_accepted_urgent_dial_goes_to_the_thank_you_menu(phone) -> None:
    # Replaces the test that took DialCallStatus=completed alone as "answered" (a voicemail says it too).
    p = phone(KH_CALLER, when=OPEN)
    p.call()
    assert p.press("9") == resp(play("km", "urgent_connecting") + dial(p.c, "km", "+85512345001"))
    p.leg_answers("+85512345001", "1")
    assert p.dial_ends("completed") == resp(gather(p.c, "urgent_done", "km", "urgent_thanks"))


def test_console_roster_is_preferred_over_settings_in_position_order(phone, db) -> None:
    db.add_all([OnCallEntry(country="KH", phone="+85512000002", position=2),
                OnCallEntry(country="KH", phone="+85512000001", position=1),
                OnCallEntry(country="KH", phone="+85512000003", position=0, active=False),
                OnCallEntry(country="TH", phone="+66812000009", position=0)])
    db.commit()
    p = phone(KH_CALLER, when=OPEN)
    p.call()
    assert p.press("9") == resp(play("km", "urgent_connecting") + dial(p.c, "km", "+85512000001", "+85512000002"))


def test_pressing_urgent_twice_in_one_call_opens_one_case(phone, db) -> None:
    p = phone()
    p.call()
    p.press("9")
    p.records()
    p.press("9")
    assert db.scalar(sa.select(sa.func.count(Case.id))) == 1


def test_recording_callback_stores_the_voicemail_once_and_queues_it_for_legal_aid(phone, twilio, db) -> None:
    p = phone()
    p.call()
    p.press("9")
    params = twilio.voice_params(p.sid, KH_CALLER, RecordingSid="RE" + "a" * 32, RecordingStatus="completed",
                                 RecordingUrl="https://api.twilio.com/2010-04-01/Accounts/AC1/Recordings/REa",
                                 RecordingDuration="31", RecordingChannels="1", RecordingSource="RecordVerb")
    for _ in range(2):
        r = twilio.post("/twilio/voice/recording", params)
        assert r.status_code == 200 and r.data == b'<?xml version="1.0" encoding="UTF-8"?><Response />'
    case_id = db.scalar(sa.select(Case.id).where(Case.source_sid == p.sid))
    rec = db.scalars(sa.select(Recording)).one()
    assert (rec.recording_sid, rec.call_id, rec.case_id, rec.duration_s, rec.remote_url) == (
        "RE" + "a" * 32, p.c, case_id, 31, params["RecordingUrl"])
    jobs = db.scalars(sa.select(OutboxJob).where(OutboxJob.kind == "recording.fetch")).all()
    assert [(j.payload, j.queue, j.case_id) for j in jobs] == [({"recording_id": rec.id}, "slow", case_id)]


def test_failed_recording_status_stores_nothing(twilio, db) -> None:
    r = twilio.post("/twilio/voice/recording", {"CallSid": new_call_sid(), "RecordingSid": "RE1",
                                                "RecordingStatus": "failed"})
    assert r.status_code == 200
    assert db.scalar(sa.select(sa.func.count(Recording.id))) == 0


# -- callback -------------------------------------------------------------------------------------

def test_callback_on_own_number_then_evening(phone, db) -> None:
    p = phone(TH_CALLER)
    p.call()
    p.press("1")
    assert p.press("8") == resp(callback_confirm(p.c, "km"))
    assert p.press("1") == resp(gather(p.c, "callback", "km", "callback_when", s="when"))
    req = db.scalars(sa.select(CallbackRequest)).one()
    assert (req.phone, req.source, req.source_sid, req.preferred_time, req.for_someone_else) == (
        TH_CALLER, "ivr", p.sid, "now", False)
    assert p.press("2") == resp(play("km", "callback_done") + main_menu(p.c, "km"))
    db.expire_all()
    assert db.scalars(sa.select(CallbackRequest)).one().preferred_time == "evening"


def test_callback_for_another_number_is_parsed_in_the_callers_country(phone, db) -> None:
    p = phone(TH_CALLER)
    p.call()
    p.press("3")
    p.press("8")
    assert p.press("2") == resp(gather(p.c, "callback", "en", "callback_enter_number", s="number", timeout=10,
                                       digits=None, finish="#"))
    assert p.press("123") == resp(play("en", "callback_invalid_number")
                                  + gather(p.c, "callback", "en", "callback_enter_number", s="number", w=1,
                                           timeout=10, digits=None, finish="#"))
    assert p.press("0891234567") == resp(gather(p.c, "callback", "en", "callback_consent_contact",
                                                s="consent_contact"))
    assert p.silence() == resp(gather(p.c, "callback", "en", "callback_consent_share", s="consent_share"))
    assert p.silence() == resp(gather(p.c, "callback", "en", "callback_when", s="when"))
    assert p.silence() == resp(play("en", "callback_done") + main_menu(p.c, "en"))
    req = db.scalars(sa.select(CallbackRequest)).one()
    assert (req.phone, req.for_someone_else, req.preferred_time) == ("+66891234567", True, "now")
    assert not any("0891234567" in (d or "") for _, _, d in p.path())  # the number is not in the path


def test_second_callback_request_in_one_call_keeps_one_open_request(phone, db) -> None:
    p = phone()
    p.call()
    for _ in range(2):
        p.press("8")
        p.press("1")
        p.press("3")
    assert db.scalar(sa.select(sa.func.count(CallbackRequest.id))) == 1


def test_a_missed_call_then_a_menu_choice_keeps_the_choice(phone, db, settings) -> None:
    """The missed call opened a request for "now"; calling in later and choosing the evening moves it."""
    phone(when=datetime.now(UTC)).call(to="+85523000999")
    missed = db.scalars(sa.select(CallbackRequest)).one()
    assert (missed.source, missed.preferred_time) == ("missed_call", "now")
    p = phone()
    p.call()
    p.press("1")
    p.press("8")
    p.press("1")
    p.press("2")  # this evening
    db.expire_all()
    req = db.scalars(sa.select(CallbackRequest)).one()
    assert (req.id, req.preferred_time, req.next_attempt_at) == (missed.id, "evening", None)
    jobs = db.scalars(sa.select(OutboxJob.payload).where(OutboxJob.kind == "callback.schedule")).all()
    assert jobs.count({"callback_id": req.id}) == 2  # the missed call's, and the new choice's
    run_worker_burst(settings)
    db.expire_all()
    when = db.get(CallbackRequest, req.id).next_attempt_at.astimezone(ZoneInfo("Asia/Phnom_Penh"))
    assert 18 <= when.hour < 20  # the evening, in the caller's own time zone


def test_withheld_number_goes_straight_to_keying_in_a_number(phone) -> None:
    p = phone("anonymous")
    p.call()
    p.press("1")
    assert p.press("8") == resp(gather(p.c, "callback", "km", "callback_enter_number", s="number", timeout=10,
                                       digits=None, finish="#"))


# -- missed-call line -------------------------------------------------------------------------------

def test_missed_call_line_rejects_busy_and_stores_one_callback_per_number_per_day(phone, db) -> None:
    first = phone(when=datetime.now(UTC))  # "today" is compared with the rows' own timestamps
    assert first.call(to="+85523000999") == resp('<Reject reason="busy" />')
    req = db.scalars(sa.select(CallbackRequest)).one()
    assert (req.phone, req.source, req.source_sid) == (KH_CALLER, "missed_call", first.sid)
    req.status = "done"  # even after it was handled, a second ring the same day adds nothing
    db.commit()
    assert phone(when=datetime.now(UTC)).call(to="+85523000999") == resp('<Reject reason="busy" />')
    assert db.scalar(sa.select(sa.func.count(CallbackRequest.id))) == 1
    assert db.scalar(sa.select(Call.line).where(Call.call_sid == first.sid)) == "missed"


def test_missed_call_from_a_withheld_number_is_still_rejected(phone, db) -> None:
    assert phone("anonymous").call(to="+85523000999") == resp('<Reject reason="busy" />')
    assert db.scalar(sa.select(sa.func.count(CallbackRequest.id))) == 0


# -- resume and status ------------------------------------------------------------------------------

def test_call_dropped_mid_message_is_offered_to_continue_at_that_part(phone, twilio, db) -> None:
    p = phone()
    p.call()
    p.press("2")
    p.press("3")
    p.silence()  # part 2 of the wages message starts; then the line drops
    p.flush()
    twilio.post("/twilio/voice/status", twilio.voice_params(p.sid, KH_CALLER, CallStatus="completed",
                                                            CallDuration="95"))
    again = phone()
    assert again.call() == resp(gather(again.c, "resume", "th", "resume_offer", r="wages:1"))
    assert again.press("1") == resp(gather(again.c, "wages", "th", "msg_wages_2", s="p1", timeout=1, on="d"))


def test_call_that_ended_after_a_message_is_not_offered_to_continue(phone) -> None:
    p = phone()
    p.call()
    p.press("1")
    p.press("6")
    p.silence()
    assert p.last == resp(gather(p.c, "coming_home", "km", "after_message", s="after"))
    again = phone()
    assert again.call() == resp(main_menu(again.c, "km"))


def test_status_callback_stores_duration_outcome_and_hang_up_point_once(phone, twilio, db) -> None:
    p = phone()
    p.call()
    p.press("1")
    p.press("4")
    params = twilio.voice_params(p.sid, KH_CALLER, CallStatus="completed", CallDuration="42")
    p.flush()
    for _ in range(2):
        assert twilio.post("/twilio/voice/status", params).status_code == 200
    call = db.scalars(sa.select(Call).where(Call.call_sid == p.sid)).one()
    assert (call.status, call.duration_s, call.outcome, call.last_node) == ("completed", 42, "listened_partly",
                                                                             "warning_signs")
    assert [e for e in p.path() if e[0] == "hangup"] == [("hangup", "warning_signs", "completed")]


def test_step_without_a_known_call_still_answers_the_menu(twilio) -> None:
    r = twilio.post("/twilio/voice/step?n=main&l=en", twilio.voice_params(new_call_sid(), Digits="0"))
    assert r.status_code == 200
    assert r.data.decode() == resp(main_menu(0, "en")).replace("c=0", "c=")


@pytest.mark.parametrize("path", ["/twilio/voice/step?n=main&l=km", "/twilio/voice/recording"])
def test_unsigned_requests_to_ivr_routes_are_refused(client, path: str) -> None:
    assert client.post(path, data={"CallSid": new_call_sid(), "Digits": "9"}).status_code == 403


def test_every_voice_route_is_signed(app) -> None:
    voice = [r for r in app.url_map.iter_rules() if r.rule.startswith("/twilio/voice")]
    assert {r.rule for r in voice} >= {"/twilio/voice", "/twilio/voice/status", "/twilio/voice/step",
                                       "/twilio/voice/recording"}
    assert all(getattr(app.view_functions[r.endpoint], "twilio_signed", False) for r in voice)


def test_a_broken_step_plays_the_apology_and_returns_to_the_menu(phone, app, db) -> None:
    p = phone()
    p.call()
    rt = app.extensions["hotline.ivr"]

    def broken():  # type: ignore[no-untyped-def]
        raise RuntimeError("clock broke")

    app.extensions["hotline.ivr"] = dataclasses.replace(rt, now=broken)
    assert p.press("1") == resp(play("km", "system_error")
                                + '<Redirect method="POST">/twilio/voice?recovered=1</Redirect>')
    app.extensions["hotline.ivr"] = rt
    assert p.silence() == resp(main_menu(p.c, "km"))


def test_resume_window_is_respected(phone, twilio, db) -> None:
    p = phone()
    p.call()
    p.press("1")
    p.press("3")
    db.execute(sa.update(Call).where(Call.call_sid == p.sid).values(
        started_at=CLOSED - timedelta(hours=5)))
    db.commit()
    again = phone()
    assert again.call() == resp(main_menu(again.c, "km"))


def test_path_events_of_ordinary_steps_are_written_in_batches_and_a_bad_row_loses_no_others(app, db) -> None:
    from hotline.menus.engine import Event
    from hotline.services.ivr import EventWriter, event_rows

    db.add(Call(call_sid="CAbatch", state={}))
    db.commit()
    call_id = db.scalar(sa.select(Call.id).where(Call.call_sid == "CAbatch"))
    writer = EventWriter(app.extensions["hotline"].db, background=True, idle_exit=0.2)
    writer.put(event_rows(call_id, [Event("node", "main"), Event("key", "main", "3")]))
    writer.put(event_rows(call_id + 1000, [Event("node", "main")]))  # a call that does not exist
    writer.put(event_rows(call_id, [Event("node", "wages")]))
    writer.flush()
    rows = db.execute(sa.select(CallEvent.kind, CallEvent.node).order_by(CallEvent.id)).all()
    assert [tuple(r) for r in rows] == [("node", "main"), ("key", "main"), ("node", "wages")]
    deadline = time.monotonic() + 10
    while writer._thread is not None and time.monotonic() < deadline:  # an idle writer thread ends
        time.sleep(0.05)
    assert writer._thread is None
