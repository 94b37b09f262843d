"""The keyword engine: matching tables, every keyword of the shipped data, and load-time checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from hotline.menus import keywords
from hotline.menus.keywords import Intent, Match, ScriptError
from hotline.menus.textnorm import sms_segments

SCRIPTS = Path(__file__).resolve().parent.parent / "ivr_scripts" / "sms"
LANGS = ("km", "th", "en")


@pytest.fixture(scope="module")
def ks() -> keywords.KeywordSet:
    return keywords.load(SCRIPTS)


def data(lang: str) -> dict:
    return yaml.safe_load((SCRIPTS / f"{lang}.yaml").read_text(encoding="utf-8"))


HELP, CALLBACK, UNKNOWN, EMPTY = Match(Intent.HELP), Match(Intent.CALLBACK), Match(Intent.UNKNOWN), Match(Intent.EMPTY)


def urgent(category: str) -> Match:
    return Match(Intent.URGENT, category=category)


def possible(category: str) -> Match:
    return Match(Intent.POSSIBLE, category=category)


def topic(n: int) -> Match:
    return Match(Intent.TOPIC, topic=n)


def lang(code: str | None) -> Match:
    return Match(Intent.LANG, language=code)


@pytest.mark.parametrize("text,expected", [
    # case, punctuation and extra words are ignored
    ("help me pls", HELP), ("HELP!!!", HELP), ("  Info?  ", HELP), ("ជួយខ្ញុំផង", HELP), ("ขอข้อมูลหน่อย", HELP),
    # one typo in a word of four letters or more
    ("hlep", HELP), ("halp me", HELP), ("calback", CALLBACK), ("cal me", UNKNOWN), ("call mee", CALLBACK),
    ("urgnet", urgent("other")), ("pasport taken", urgent("documents")), ("polise", possible("detention")),
    ("traffiked", urgent("trafficking")), ("detaned", urgent("detention")),
    # ...but never inside a phrase, nor in a short danger word
    ("i want to leave", UNKNOWN), ("i cant leave", urgent("locked_in")), ("what is best for me", UNKNOWN),
    ("he beat me", urgent("violence")), ("please dont block me", UNKNOWN), ("they lock me in", urgent("locked_in")),
    # ...but a common word is not read as a typo of a keyword
    ("tall", UNKNOWN), ("he told me", UNKNOWN), ("looked in", UNKNOWN), ("policy", UNKNOWN),
    # digits in three scripts, with or without a "number" word
    ("1", topic(1)), ("១", topic(1)), ("๑", topic(1)), ("7", topic(7)), ("៧", topic(7)), ("๗", topic(7)),
    ("lek 3", topic(3)), ("លេខ៥", topic(5)), ("ข้อ 2", topic(2)), ("help 4", topic(4)), ("#6", topic(6)),
    ("0", UNKNOWN), ("8", UNKNOWN), ("99", UNKNOWN), ("0812345678", UNKNOWN),
    # callback
    ("CALL ME", CALLBACK), ("call back please", CALLBACK), ("តេមកខ្ញុំវិញ", CALLBACK), ("ទូរស័ព្ទ មក ខ្ញុំ", CALLBACK),
    ("โทรกลับหาฉัน", CALLBACK),
    # urgent indicators anywhere, without the keyword; the most serious category wins
    ("my boss took my passport", urgent("documents")), ("ថៅកែយកលិខិតឆ្លងដែនខ្ញុំ", urgent("documents")),
    ("นายจ้างยึดพาสปอร์ต", urgent("documents")), ("I have not been paid", urgent("unpaid_wages")),
    ("ថៅកែមិនប\u17C1\u17B8កប្រាក់ខែឲ្យខ្ញុំទេ", urgent("unpaid_wages")), ("ไม่จ่ายค่าจ้าง 3 เดือน", urgent("unpaid_wages")),
    ("they locked me in", urgent("locked_in")), ("ប៉ូលិសចាប់ខ្លួនខ្ញុំ", urgent("detention")),
    ("ตำรวจจับ", urgent("detention")), ("he beat me", urgent("violence")), ("ถูกตีทุกวัน", urgent("violence")),
    ("I was trafficked", urgent("trafficking")), ("not paid and beaten", urgent("violence")),
    ("SOS", urgent("other")), ("ជួយផង បន្ទាន់", urgent("other")), ("โทรกลับด่วน", urgent("other")),
    # a question weighs against alarm words and possible signs, not against strong ones
    ("SOS what do i do", urgent("other")), ("emergency!!", urgent("other")), ("urgent: how much is a passport?",
                                                                                possible("other")),
    ("police came to our camp", possible("detention")), ("can police check my pink card?", UNKNOWN),
    ("they took my passport, what can i do?", urgent("documents")), ("ប៉ូលិសមកកន្លែងធ្វើការយើង", possible("detention")),
    ("ប៉ុស្តិ៍ប៉ូលិសនៅណា", topic(7)), ("ตำรวจมาที่แคมป์", possible("detention")), ("ตำรวจตรวจบัตรได้ไหม", UNKNOWN),
    # negation
    ("nobody took my passport", UNKNOWN), ("i am not in danger", UNKNOWN), ("boss did not beat me", UNKNOWN),
    ("boss did not pay me", urgent("unpaid_wages")), ("ថៅកែមិនបានវាយខ្ញុំទេ", UNKNOWN), ("ไม่ได้ถูกจับ", UNKNOWN),
    ("he says he will keep my passport", UNKNOWN),
    # known look-alikes, answered with their topic
    ("what is the police number", topic(7)), ("លេខប៉ូលិស", topic(7)), ("เบอร์ตำรวจ", topic(7)),
    ("police clearance for korea?", topic(1)), ("ใบรับรองตำรวจ", topic(1)), ("where to take passport photo", topic(2)),
    ("what is the emergency number in Thailand?", topic(7)), ("อย่าบล็อกฉันนะ", UNKNOWN),
    # a Khmer word inside a longer one is not that word (វាយ "hit" in វាយតម្លៃ "evaluate")
    ("ថៅកែវាយខ្ញុំ", urgent("violence")), ("ថៅកែវាយតម្លៃខ្ញុំ", UNKNOWN),
    # STOP and START only as the whole message
    ("STOP", Match(Intent.STOP)), ("stop.", Match(Intent.STOP)), ("ឈប់", Match(Intent.STOP)),
    ("หยุด", Match(Intent.STOP)), ("stop please", UNKNOWN), ("ខ្ញុំចង់ឈប់ធ្វើការ", UNKNOWN),
    ("START", Match(Intent.START)), ("Start", Match(Intent.START)), ("ចាប់ផ្ដើម", Match(Intent.START)),
    # LANG
    ("LANG TH", lang("th")), ("lang 2", lang("th")), ("LANG ១", lang("km")), ("language english", lang("en")),
    ("ភាសា ថៃ", lang("th")), ("ภาษาเขมร", lang("km")), ("English", lang("en")), ("ខ្មែរ", lang("km")),
    ("LANG", lang(None)), ("lang xyz", lang(None)),
    # nothing to match
    ("", EMPTY), ("   ", EMPTY), ("🙂🙂", EMPTY), ("\x00\x1b", EMPTY), ("what is this", UNKNOWN),
    ("x" * 100_000, UNKNOWN),
])
def test_match(ks: keywords.KeywordSet, text: str, expected: Match) -> None:
    assert ks.match(text) == expected


@pytest.mark.parametrize("language", LANGS)
@pytest.mark.parametrize("group", ["help", "callback", "urgent", "stop", "start"])
def test_every_shipped_keyword_matches_its_intent(ks: keywords.KeywordSet, language: str, group: str) -> None:
    expected = {"urgent": urgent("other")}.get(group, Match(Intent(group)))
    for kw in data(language)["keywords"][group]:
        assert ks.match(kw) == expected, kw
        if group not in ("stop", "start"):
            assert ks.match(f"... {kw.upper()}!") == expected, kw  # inside a message, any case


@pytest.mark.parametrize("language", LANGS)
def test_every_shipped_lookalike_is_not_urgent(ks: keywords.KeywordSet, language: str) -> None:
    for entry in data(language)["danger"]["lookalikes"]:
        got = ks.match(entry["text"])
        assert got.intent not in (Intent.URGENT, Intent.POSSIBLE), entry
        if entry["topic"] is not None:
            assert got == topic(entry["topic"]), entry


@pytest.mark.parametrize("language", LANGS)
def test_every_shipped_lang_keyword_with_each_language(ks: keywords.KeywordSet, language: str) -> None:
    common = yaml.safe_load((SCRIPTS / "common.yaml").read_text(encoding="utf-8"))
    for kw in data(language)["keywords"]["lang"]:
        for target, entry in common["languages"].items():
            for name in [str(entry["number"]), *entry["names"]]:
                assert ks.match(f"{kw} {name}") == lang(target), (kw, name)


def test_reply_language_is_script_then_stored_then_khmer(ks: keywords.KeywordSet) -> None:
    assert ks.reply_language("ជួយ", "th") == "km"
    assert ks.reply_language("ช่วย", "km") == "th"
    assert ks.reply_language("help", "th") == "th"
    assert ks.reply_language("help", None) == "km"
    assert ks.reply_language("1", "en") == "en"


def test_every_reply_in_every_language_fits_two_parts(ks: keywords.KeywordSet) -> None:
    produced = list(ks.all_replies())
    assert len(produced) == 3 * 16 * 3  # languages x reply ids x (TH, KH, other)
    for language, rid, country, text in produced:
        assert sms_segments(text) <= 2, (language, rid, country, text)
        assert "{" not in text and "}" not in text


def test_numbers_follow_the_senders_country(ks: keywords.KeywordSet) -> None:
    th = ks.render("urgent", "en", "TH")
    kh = ks.render("urgent", "en", "KH")
    # Thailand: 1300 first, the police only "if you are in danger now"; Cambodia: 117 (1288 waits for a
    # phone check); content review 2026-12, sections 1 and 4.
    assert th.index("1300 social help centre") < th.index("if you are in danger now: police 191") and "117" not in th
    assert "117 police" in kh and "1288" not in kh and "191" not in kh
    # Malaysia, South Korea, a withheld or channel address: the neutral list, each number named with its
    # country, never the Cambodian list as if it were theirs.
    neutral = ks.render("urgent", "en", "MY")
    assert neutral == ks.render("urgent", "en", "KR") == ks.render("urgent", "en", None) != kh
    assert "in Thailand 1300" in neutral and "Thai police 191" in neutral and "Cambodian police 117" in neutral
    assert "1694" in ks.render("topic_7", "km", "TH") and "1297" in ks.render("topic_7", "th", "KH")
    assert ks.render("topic_7", "en", "KH").index("117") < ks.render("topic_7", "en", "KH").index("1288")


def test_keywords_module_imports_no_framework() -> None:
    code = ("import sys, hotline; before = set(sys.modules); import hotline.menus.keywords, hotline.menus.textnorm; "
            "new = set(sys.modules) - before; "
            "bad = sorted(m for m in new if m.split('.')[0] in ('flask', 'twilio', 'sqlalchemy', 'redis', 'rq') "
            "or (m.startswith('hotline.') and not m.startswith('hotline.menus'))); print(bad); assert not bad")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# -- load-time checks: each names the file and the field --------------------------------------------

def broken(tmp_path: Path, filename: str, change) -> Path:  # type: ignore[no-untyped-def]
    target = tmp_path / "sms"
    shutil.copytree(SCRIPTS, target)
    path = target / filename
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(doc)
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return target


@pytest.mark.parametrize("filename,change,message", [
    ("km.yaml", lambda d: d["replies"].pop("topic_3"), "km.yaml: replies: missing topic_3"),
    ("th.yaml", lambda d: d["replies"].update(help="ช่วย " * 40), "th.yaml: replies.help: 3 SMS parts"),
    ("en.yaml", lambda d: d["replies"].update(help="Our escape plan"), "en.yaml: replies.help: contains 'escape'"),
    ("km.yaml", lambda d: d["replies"].update(stop="ការជួញដូរមនុស្ស"), "km.yaml: replies.stop: contains 'ជួញដូរ'"),
    ("en.yaml", lambda d: d["replies"].update(help="Hi {name}"), "en.yaml: replies.help: unknown placeholder {name}"),
    ("en.yaml", lambda d: d["keywords"]["callback"].append("HELP"), "en.yaml: keywords.callback: 'HELP' is already"),
    ("km.yaml", lambda d: d["keywords"]["help"].append("!!"), "km.yaml: keywords.help: '!!' has no letters"),
    ("th.yaml", lambda d: d["keywords"].pop("stop"), "th.yaml: keywords: stop: must be a list"),
    ("en.yaml", lambda d: d["danger"]["urgent"].update(robbery=["robbed"]), "en.yaml: danger.urgent.robbery: unknown"),
    ("en.yaml", lambda d: d["danger"]["urgent"]["violence"].append("@nosuch me"),
     "en.yaml: danger.urgent.violence: '@nosuch me' uses @nosuch"),
    ("km.yaml", lambda d: d["danger"]["urgent"]["violence"].append(".. វាយ"), "must not start or end with .."),
    ("th.yaml", lambda d: d["danger"]["lookalikes"].append({"text": "เบอร์", "topic": 9}),
     "9 is not a topic (1-7)"),
    ("en.yaml", lambda d: d.update(language="fr"), "en.yaml: language: must be 'en'"),
    ("common.yaml", lambda d: d["rate_limit"].update(max_messages=0), "common.yaml: rate_limit: max_messages"),
    ("common.yaml", lambda d: d["numbers"]["TH"][0].update(number=1694), "common.yaml: numbers.TH[0].number"),
    ("common.yaml", lambda d: d["numbers"]["KH"][1].pop("confidence"), "common.yaml: numbers.KH[1].confidence"),
    ("common.yaml", lambda d: d["numbers"]["KH"][0]["labels"].pop("th"), "common.yaml: numbers.KH[0].labels"),
    ("common.yaml", lambda d: d.update(default_language="fr"), "common.yaml: default_language"),
])
def test_invalid_data_is_refused_naming_file_and_field(tmp_path: Path, filename: str, change, message: str) -> None:
    with pytest.raises(ScriptError) as info:
        keywords.load(broken(tmp_path, filename, change))
    assert message in str(info.value)


def test_unparsable_yaml_is_refused_naming_the_file(tmp_path: Path) -> None:
    target = tmp_path / "sms"
    shutil.copytree(SCRIPTS, target)
    (target / "th.yaml").write_text("replies: [unclosed", encoding="utf-8")
    with pytest.raises(ScriptError, match=r"^th\.yaml: not valid YAML"):
        keywords.load(target)
