"""The field reviewer's content rules (content review of ivr_scripts/, 2026-12-01), checked on the data.

Each test names the rule it keeps. The texts are read as shipped: voice prompts from the loaded
script, SMS replies as rendered for every country's numbers, facts from facts.yaml.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml
from click.testing import CliRunner

from hotline.cli import cli
from hotline.menus import consent, engine, facts, keywords
from hotline.menus.engine import Context, Input, Kind, OpenUrgentCase, Play, State
from hotline.menus.keywords import Intent
from hotline.menus.loader import load_script
from hotline.menus.textnorm import compact, matching_key

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = load_script(ROOT / "ivr_scripts" / "voice")
KS = keywords.load(ROOT / "ivr_scripts" / "sms")
COMMON = yaml.safe_load((ROOT / "ivr_scripts" / "sms" / "common.yaml").read_text(encoding="utf-8"))
FACTS = facts.load()
OUTBOUND = yaml.safe_load((ROOT / "ivr_scripts" / "voice" / "outbound.yaml").read_text(encoding="utf-8"))["prompts"]
TZ = ZoneInfo("Asia/Phnom_Penh")
DIGITS = {**{0x17E0 + i: str(i) for i in range(10)}, **{0x0E50 + i: str(i) for i in range(10)}}


def ascii_digits(text: str) -> str:
    """Khmer and Thai digits as ASCII, and numbers spelled for the voice artist ("1 3 0 0") joined."""
    text = text.translate(DIGITS)
    return re.sub(r"(?<=\b\d) (?=\d\b)", "", text)


def voice_texts() -> Iterator[tuple[str, str, str]]:
    """(prompt id, language, text) of every voice prompt, digits in ASCII."""
    for pid, prompt in SCRIPT.prompts.items():
        for lang, t in prompt.texts.items():
            yield pid, lang, ascii_digits(t.text)


def sms_texts() -> Iterator[tuple[str, str, str]]:
    """(reply id/country, language, text) of every SMS reply as sent, for every country's numbers."""
    for lang, rid, country, text in KS.all_replies():
        yield f"{rid}/{country}", lang, text


def every_text() -> Iterator[tuple[str, str, str]]:
    yield from voice_texts()
    yield from sms_texts()


def numbers_in(text: str) -> list[str]:
    # Short codes (1xx, 1xxx), not times (8:30), rates (337-400) or parts of longer numbers.
    return re.findall(r"(?<![\d:-])(?<!\d[.,])1\d{2,3}(?![\d:]|[.,]\d)", text)


# -- 1. Safety ---------------------------------------------------------------------------------------

URGENT = SCRIPT.nodes["urgent"]
DANGER_NOW = {"en": "danger now", "km": "គ្រោះថ្នាក់ឥឡូវ", "th": "อันตรายตอนนี้"}


@pytest.mark.parametrize(("country", "prompt", "numbers"), [
    ("TH", "urgent_numbers_th", ["1300", "191"]),
    ("KH", "urgent_numbers_kh", ["117"]),
    (None, "urgent_numbers_any", ["1300", "191", "117"]),  # a withheld number
    ("MY", "urgent_numbers_any", ["1300", "191", "117"]),
    ("KR", "urgent_numbers_any", ["1300", "191", "117"]),
])
def test_before_recording_the_caller_hears_tonights_numbers_for_their_country(
        country: str | None, prompt: str, numbers: list[str]) -> None:
    night = datetime(2026, 11, 24, 22, 0, tzinfo=TZ).astimezone(UTC)  # a person locked in at 22:00
    ctx = Context(now=night, tz=TZ, country=country, own_number=country is not None)
    step = engine.step(SCRIPT, State("main", "en"), Input(Kind.KEY, "9"), ctx)
    assert step.effects == (OpenUrgentCase(),)
    plays = [a.prompt for a in step.actions if isinstance(a, Play)]
    assert plays == [prompt, "urgent_record"] and isinstance(step.actions[-1], engine.Record)
    for lang in SCRIPT.languages:
        said = numbers_in(ascii_digits(SCRIPT.text(prompt, lang)))
        assert said == numbers, (prompt, lang, said)  # in this order: 1300 before 191


def test_after_a_dial_nobody_took_the_numbers_still_come_before_the_recording() -> None:
    day = datetime(2026, 11, 24, 10, 0, tzinfo=TZ).astimezone(UTC)
    step = engine.step(SCRIPT, State("urgent", "th", "dial"), Input(Kind.DIAL, status="no-answer"),
                       Context(now=day, tz=TZ, country="TH"))
    assert [a.prompt for a in step.actions if isinstance(a, Play)] == ["urgent_numbers_th", "urgent_record"]


def test_every_country_list_and_the_neutral_list_are_given_before_the_recording() -> None:
    assert set(URGENT.numbers_by_country) == {"TH", "KH", "default"}
    assert URGENT.numbers_for("TH") == "urgent_numbers_th" and URGENT.numbers_for(None) == "urgent_numbers_any"


@pytest.mark.parametrize(("country", "first", "then"), [("TH", "1300", "191"), ("KH", "117", None),
                                                        ("MY", "1300", "191"), (None, "1300", "191")])
def test_the_urgent_sms_reply_gives_the_same_numbers_first(country: str | None, first: str, then: str | None) -> None:
    for lang in KS.languages:
        said = numbers_in(KS.render("urgent", lang, country))
        assert said[0] == first and (then is None or said[1] == then), (lang, said)
        assert "1288" not in said  # medium confidence, undated: not what a person in danger dials tonight


def test_1300_comes_before_191_and_117_before_1288_everywhere() -> None:
    for where, lang, text in every_text():
        said = numbers_in(text)
        for earlier, later in (("1300", "191"), ("117", "1288")):
            if earlier in said and later in said:
                assert said.index(earlier) < said.index(later), (where, lang, text)


def test_191_is_only_ever_given_for_danger_now() -> None:
    for where, lang, text in every_text():
        for m in re.finditer(r"(?<!\d)191(?!\d)", text):
            window = text[max(0, m.start() - 60):m.end() + 40]
            assert DANGER_NOW[lang] in window, (where, lang, text)


# Situations an SMS makes urgent (hotline.menus.danger): a voice message about them must name the
# urgent key, not the callback key, so the same situation gets the same priority on both channels.
SAME_PRIORITY = {
    "msg_papers_1": ("documents", {"en": "my boss took my passport", "km": "ថៅកែយកលិខិតឆ្លងដែនខ្ញុំ",
                                   "th": "นายจ้างยึดพาสปอร์ตของผม"}),
    "msg_wages_2": ("unpaid_wages", {"en": "my boss did not pay my salary", "km": "ថៅកែមិនបើកប្រាក់ខែឱ្យខ្ញុំ",
                                     "th": "นายจ้างไม่จ่ายค่าจ้าง"}),
}
PRESS = {"en": r"press (\d)", "km": r"ចុចលេខ (\d)", "th": r"กด (\d)"}


@pytest.mark.parametrize("pid", list(SAME_PRIORITY))
def test_passport_taken_or_wages_unpaid_get_the_urgent_path_on_voice_as_on_sms(pid: str) -> None:
    category, sms = SAME_PRIORITY[pid]
    urgent_key = next(k for k, target in SCRIPT.global_keys.items() if target == "urgent")
    for lang in SCRIPT.languages:
        keys = re.findall(PRESS[lang], ascii_digits(SCRIPT.text(pid, lang)))
        assert keys == [urgent_key], (pid, lang, keys)
        match = KS.match(sms[lang])
        assert (match.intent, match.category) == (Intent.URGENT, category), (lang, sms[lang])
    node = next(n for n in SCRIPT.nodes.values() if n.type == "message" and pid in n.parts_for(None))
    part = node.parts_for(None).index(pid)
    day = datetime(2026, 11, 24, 20, 0, tzinfo=TZ).astimezone(UTC)
    step = engine.step(SCRIPT, State(node.id, "km", f"p{part}"), Input(Kind.KEY, urgent_key),
                       Context(now=day, tz=TZ, country="TH"))
    assert step.effects == (OpenUrgentCase(),)
    assert category in URGENT.categories.values()  # and the caller can say which after the recording


SAFETY_WORDS = ("safe", "សុវត្ថិភាព", "ปลอดภัย")
FORBIDDEN = [(w, compact(matching_key(w))) for w in COMMON["forbidden_in_replies"]]
CALLEE_PROMPTS = [pid for pid in OUTBOUND if not pid.startswith("staff_")]  # the staff whisper is staff-only


def hits(text: str, words: list[tuple[str, str]]) -> list[str]:
    flat = compact(matching_key(text))
    return [w for w, key in words if key in flat]


def test_the_forbidden_list_has_safety_and_hotline_words_in_every_language() -> None:
    listed = set(COMMON["forbidden_in_replies"])
    assert {"safe", "hotline", "សុវត្ថិភាព", "ปลอดภัย", "สายด่วน", "ខ្សែជំនួយ"} <= listed


@pytest.mark.parametrize("lang", ["km", "th", "en"])
def test_calls_we_place_and_texts_to_a_person_say_no_safety_or_hotline_word(lang: str) -> None:
    assert "outbound_safe_check" in CALLEE_PROMPTS and "staff_whisper" not in CALLEE_PROMPTS
    for pid in CALLEE_PROMPTS:
        assert hits(OUTBOUND[pid]["text"][lang], FORBIDDEN) == [], (pid, lang)
    for where, text_lang, text in sms_texts():
        if text_lang == lang:
            assert hits(text, FORBIDDEN) == [], (where, lang, text)
    for rid, texts in consent.load().replies.items():
        assert hits(texts[lang], FORBIDDEN) == [], (rid, lang)


@pytest.mark.parametrize("lang", ["km", "th", "en"])
def test_callback_and_recording_prompts_ask_for_a_good_time_to_talk_not_a_safe_one(lang: str) -> None:
    words = [(w, compact(matching_key(w))) for w in SAFETY_WORDS]
    for pid in [*(p for p in SCRIPT.prompts if p.startswith("callback_")), "urgent_record"]:
        assert hits(SCRIPT.text(pid, lang), words) == [], (pid, lang)
    good_time = {"en": "good time to talk", "km": "ស្រួលនិយាយ", "th": "สะดวกคุย"}[lang]
    assert good_time in SCRIPT.text("urgent_record", lang) and good_time in SCRIPT.text("callback_done", lang)


def test_the_sms_loader_refuses_a_reply_with_a_safety_word(tmp_path: Path) -> None:
    import shutil

    target = tmp_path / "sms"
    shutil.copytree(ROOT / "ivr_scripts" / "sms", target)
    path = target / "km.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("អរគុណ។ យើងនឹងតេទៅអ្នកវិញឆាប់ៗ",
                                                             "អរគុណ។ ពេលមានសុវត្ថិភាព យើងនឹងតេទៅអ្នកវិញឆាប់ៗ"),
                    encoding="utf-8")
    with pytest.raises(keywords.ScriptError, match="km.yaml: replies.callback: contains 'សុវត្ថិភាព'"):
        keywords.load(target)


# -- 4. Facts at risk ----------------------------------------------------------------------------------

def test_facts_keep_the_source_date_apart_from_a_phone_check() -> None:
    raw = (ROOT / "ivr_scripts" / "facts.yaml").read_text(encoding="utf-8")
    assert "last_checked" not in raw
    for fact in FACTS.items:
        assert fact.source_date is None or re.fullmatch(r"\d{4}(-\d{2}(-\d{2})?)?", fact.source_date)
        assert fact.phone_checked is None or fact.phone_checked <= date.today()
    # Nobody has called any number yet (the review found the old dates were not phone checks).
    assert [f.key for f in FACTS.never_phone_checked()] == [f.key for f in FACTS.numbers]


def test_facts_yaml_with_last_checked_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "facts.yaml"
    bad.write_text('hotline_numbers:\n  - {number: "117", country: KH, confidence: high, source: x, '
                   'last_checked: 2026-11-23}\n', encoding="utf-8")
    with pytest.raises(facts.FactsError, match=r"hotline_numbers\[0\]: last_checked is ambiguous"):
        facts.load(bad)


def test_every_number_said_or_texted_is_in_facts_and_the_sms_list_agrees_with_it() -> None:
    known = {f.key for f in FACTS.numbers}
    for where, lang, text in every_text():
        for number in numbers_in(text):
            assert number in known, (where, lang, number)
    for country, entries in COMMON["numbers"].items():
        for entry in entries:
            fact = FACTS.number(entry["number"])
            assert fact is not None and (country == "other" or fact.country == country), entry["number"]
            assert entry["phone_checked"] == (fact.phone_checked is not None), entry["number"]


def test_every_fact_names_where_it_is_used_and_the_text_there_says_it() -> None:
    for fact in FACTS.items:
        for use in fact.used_in:
            if use.startswith("sms:"):
                rid = use.removeprefix("sms:")
                assert rid in keywords.REPLY_IDS, use
                texts = [KS.render(rid, lang, country) for lang in KS.languages for country in ("TH", "KH")]
            else:
                assert use in SCRIPT.prompts, use
                texts = [ascii_digits(SCRIPT.text(use, lang)) for lang in SCRIPT.languages]
            if fact.section == "hotline_numbers":
                assert any(fact.key in numbers_in(t) for t in texts), (fact.key, use)


def test_1288_is_marked_for_a_phone_check_and_1694_is_the_department_with_its_hours() -> None:
    assert FACTS.number("1288").due_for_check and FACTS.number("1288").confidence == "medium"
    assert FACTS.number("1694").due_for_check
    for pid, lang, text in voice_texts():
        if lang == "en" and "1694" in text:
            assert "Department of Employment" in text and "Ministry hotline" not in text, pid
    for pid in ("msg_wages_2", "msg_numbers_th", "msg_numbers_kh"):
        assert "8:30" in SCRIPT.text(pid, "en") and "4:30" in SCRIPT.text(pid, "en"), pid
        assert "8.30" in SCRIPT.text(pid, "th") and "16.30" in SCRIPT.text(pid, "th"), pid
    assert "Mon-Fri 8:30-16:30" in KS.render("topic_7", "en", "TH")


# "បាត" not followed by a sign: ២ បាត់ដំបង (key 2, Battambang, in the province question) is no wage.
BAHT = {"en": r"(\d+)(?:-(\d+))? baht", "km": r"(\d+)(?: ដល់ (\d+)|-(\d+))? បាត(?![\u17b6-\u17d3])",
        "th": r"(\d+)(?: ถึง (\d+)|-(\d+))? บาท"}


def test_a_wage_said_is_a_dated_rate_in_facts_with_ask_1694_and_due_for_a_check() -> None:
    wages = [f for f in FACTS.items if f.section == "wages"]
    assert wages and all(f.effective_from is not None and f.due_for_check for f in wages)
    raw = yaml.safe_load((ROOT / "ivr_scripts" / "facts.yaml").read_text(encoding="utf-8"))["wages"]
    amounts = {str(v) for w in raw for k, v in w.items() if k in ("min", "max", "rate")}
    for where, lang, text in every_text():
        found = [n for m in re.finditer(BAHT[lang], text) for n in m.groups() if n]
        if found:
            assert set(found) <= amounts, (where, lang, found)
            assert "1694" in text, (where, lang)  # "ask 1694 for your province's rate"
            # and no general rule stated for work that has its own rules
            assert {"en": "fishing", "km": "នេសាទ", "th": "ประมง"}[lang] in text, (where, lang)


def test_unsourced_day_off_and_overtime_rights_are_gone() -> None:
    for where, lang, text in every_text():
        if lang == "en":
            assert "at least one day off" not in text and "right to" not in text.lower(), where
            assert "no days off" not in text, where


def test_scripts_check_lists_every_number_never_phone_checked(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["scripts", "check"])
    assert result.exit_code == 0, result.output
    for fact in FACTS.numbers:
        assert f"never phone-checked: {fact.key} ({fact.country}" in result.output
    # Once a person has called one, it leaves the list.
    copy = tmp_path / "facts.yaml"
    before = 'source_date: "2022-08-31",\n     phone_checked: null'
    shipped = (ROOT / "ivr_scripts" / "facts.yaml").read_text(encoding="utf-8")
    assert before in shipped
    copy.write_text(shipped.replace(before, before.replace("null", "2026-12-05")), encoding="utf-8")
    lines = facts.coverage_lines(facts.load(copy))
    assert not any(line.startswith("  never phone-checked: 117 ") for line in lines)
    assert any(line.startswith("  never phone-checked: 1288 ") for line in lines)


# -- 5. Language ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("lang", ["km", "th", "en"])
def test_help_lists_the_topics_a_person_can_text_in_every_language(lang: str) -> None:
    text = KS.render("help", lang, "KH")
    for n in range(1, 8):
        assert re.search(rf"(?<![\d:]){n}(?![\d:])", text), (lang, n)
        assert KS.match(str(n)).topic == n
    assert "CALL" in text and "SOS" in text


def test_every_topic_reply_ends_with_a_next_step() -> None:
    for lang in KS.languages:
        for n in range(1, 8):
            for country in ("TH", "KH", "other"):
                text = KS.render(f"topic_{n}", lang, country)
                # The last sentence (Thai writes no full stops: its last words).
                tail = re.split(r"[.។](?=\s)", text.rstrip(".។"))[-1] if lang != "th" else text[-40:]
                assert "CALL" in tail or "SOS" in tail or numbers_in(tail), (lang, n, country, text)


EVERYDAY_KHMER = {"ទិដ្ឋាការ": "វីសា", "និយោជក": "ថៅកែ", "ភ្នាក់ងារ": "ក្រុមហ៊ុន"}


def test_khmer_texts_use_the_everyday_words() -> None:
    khmer = [(pid, t) for pid, lang, t in voice_texts() if lang == "km"]
    khmer += [(where, t) for where, lang, t in sms_texts() if lang == "km"]
    for formal, everyday in EVERYDAY_KHMER.items():
        for where, text in khmer:
            assert formal not in text, f"{where}: say {everyday} rather than {formal}"
    assert any("ក្រុមហ៊ុន" in t for _, t in khmer) and any("វីសា" in t for _, t in khmer)


def test_new_khmer_and_thai_texts_are_marked_for_native_review() -> None:
    for pid in ("urgent_numbers_th", "urgent_numbers_kh", "urgent_numbers_any", "urgent_record"):
        assert all(t.review == "native-speaker" for t in SCRIPT.prompts[pid].texts.values()), pid
    for name in ("km.yaml", "th.yaml", "common.yaml"):
        assert "REVIEW" in (ROOT / "ivr_scripts" / "sms" / name).read_text(encoding="utf-8"), name


# -- the data checks an NGO editor meets ---------------------------------------------------------------

def test_an_urgent_node_without_a_neutral_list_or_with_an_unknown_prompt_is_named(tmp_path: Path) -> None:
    import shutil

    from hotline.menus.loader import ScriptError

    def problems(old: str, new: str) -> list[str]:
        target = tmp_path / f"voice-{len(list(tmp_path.iterdir()))}"
        shutil.copytree(ROOT / "ivr_scripts" / "voice", target)
        menu = target / "menu.yaml"
        menu.write_text(menu.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
        with pytest.raises(ScriptError) as err:
            load_script(target)
        return [str(p) for p in err.value.problems]

    assert problems("      default: urgent_numbers_any\n", "") == [
        "menu.yaml, node 'urgent', field 'numbers_by_country': needs a `default` prompt "
        "(a withheld number, another country)"]
    assert problems("KH: urgent_numbers_kh", "KH: urgent_numbers_khh") == [
        "menu.yaml, node 'urgent', field 'numbers_by_country.KH': unknown prompt 'urgent_numbers_khh' "
        "(not in any prompt file)"]


def test_an_urgent_label_that_does_not_say_its_number_is_refused(tmp_path: Path) -> None:
    import shutil

    target = tmp_path / "sms"
    shutil.copytree(ROOT / "ivr_scripts" / "sms", target)
    common = target / "common.yaml"
    common.write_text(common.read_text(encoding="utf-8").replace(
        'en: "if you are in danger now: police 191"', 'en: "if you are in danger now: police"'), encoding="utf-8")
    with pytest.raises(keywords.ScriptError, match=r"numbers.TH\[1\].urgent_labels: .* with the number 191"):
        keywords.load(target)
