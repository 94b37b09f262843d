"""The voice script loader (every error names file, node and field) and the pure menu engine."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner

from hotline import create_app
from hotline.cli import cli
from hotline.menus import engine
from hotline.menus.engine import (
    Context,
    Dial,
    Gather,
    Hangup,
    Input,
    Kind,
    OpenUrgentCase,
    Play,
    Record,
    RequestCallback,
    SetLanguage,
    State,
)
from hotline.menus.loader import ScriptError, load_script
from hotline.startup import StartupError

ROOT = Path(__file__).resolve().parent.parent
VOICE = ROOT / "ivr_scripts" / "voice"
TZ = ZoneInfo("Asia/Phnom_Penh")
SCRIPT = load_script(VOICE)


def ctx(local: str = "2026-11-24 20:00", **kw) -> Context:  # type: ignore[no-untyped-def]
    now = datetime.fromisoformat(local).replace(tzinfo=TZ).astimezone(UTC)
    return Context(now=now, tz=TZ, country=kw.pop("country", "KH"), **kw)


@pytest.fixture
def voice_copy(tmp_path: Path) -> Path:
    target = tmp_path / "voice"
    shutil.copytree(VOICE, target)
    return target


def edit(folder: Path, file: str, old: str, new: str) -> None:
    path = folder / file
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def problems(folder: Path) -> list[str]:
    with pytest.raises(ScriptError) as err:
        load_script(folder)
    return [str(p) for p in err.value.problems]


# -- loader -----------------------------------------------------------------------------------------

def test_shipped_script_loads_with_every_prompt_in_every_language_marked_for_review() -> None:
    assert SCRIPT.languages == ("km", "th", "en")
    assert all(set(p.texts) == set(SCRIPT.languages) for p in SCRIPT.prompts.values())
    assert all(t.review == "native-speaker" for p in SCRIPT.prompts.values() for t in p.texts.values())
    assert SCRIPT.global_keys == {"9": "urgent", "8": "callback", "*": "repeat", "0": "main"}
    assert {n.type for n in SCRIPT.nodes.values()} == {"menu", "message", "urgent", "callback", "resume", "hangup",
                                                         "province"}


def test_unknown_target_is_named_with_file_node_and_field(voice_copy: Path) -> None:
    edit(voice_copy, "menu.yaml", '"3": wages\n', '"3": wagez\n')
    assert "menu.yaml, node 'main', field 'keys.3': unknown target 'wagez'" in problems(voice_copy)


def test_unknown_category_at_the_urgent_question_is_named(voice_copy: Path) -> None:
    edit(voice_copy, "menu.yaml", '"6": missing}', '"6": robbery}')
    assert problems(voice_copy) == ["menu.yaml, node 'urgent', field 'categories.keys.6': must be a key 0-9 naming "
                                    "one of trafficking, violence, locked_in, detention, missing, documents, "
                                    "unpaid_wages"]


def test_unreachable_node_is_an_error(voice_copy: Path) -> None:
    edit(voice_copy, "menu.yaml", "  goodbye:\n", "  orphan:\n    type: hangup\n    prompt: goodbye\n\n  goodbye:\n")
    assert problems(voice_copy) == ["menu.yaml, node 'orphan': unreachable node: no key, timeout or global key "
                                    "leads here"]


def test_duplicate_key_is_named_not_silently_overwritten(voice_copy: Path) -> None:
    edit(voice_copy, "menu.yaml", '      "3": wages\n', '      "3": wages\n      "3": money\n')
    found = problems(voice_copy)
    assert len(found) == 1 and found[0].startswith("menu.yaml, node 'main', field 'keys.3': duplicate key '3'")


def test_key_that_shadows_a_global_key_is_a_duplicate(voice_copy: Path) -> None:
    edit(voice_copy, "menu.yaml", '      "7": useful_numbers\n', '      "7": useful_numbers\n      "9": money\n')
    assert any(p.startswith("menu.yaml, node 'main', field 'keys.9': duplicate key '9': it is a global key")
               for p in problems(voice_copy))


def test_missing_text_for_a_language_is_named(voice_copy: Path) -> None:
    edit(voice_copy, "prompts.yaml", "      th: ปุ่มนี้ไม่ได้ใช้\n", "")
    assert problems(voice_copy) == ["prompts.yaml, field 'prompt 'key_not_used'.text.th': missing the th text"]


def test_missing_audio_name_and_review_are_named(voice_copy: Path) -> None:
    edit(voice_copy, "prompts.yaml", "    audio: goodbye\n    review: native-speaker\n", "    audio: ''\n")
    found = problems(voice_copy)
    assert "prompts.yaml, field 'prompt 'goodbye'.review': missing: every text says who must review it " \
           "(e.g. native-speaker)" in found
    assert "prompts.yaml, field 'prompt 'goodbye'.audio': missing or bad audio name for km" in found


def test_unknown_prompt_is_named(voice_copy: Path) -> None:
    edit(voice_copy, "menu.yaml", "parts: [msg_money_1]", "parts: [msg_money_9]")
    assert problems(voice_copy) == ["menu.yaml, node 'money', field 'parts[0]': unknown prompt 'msg_money_9' "
                                    "(not in any prompt file)"]


def test_loop_with_no_way_out_for_a_silent_caller_is_an_error(voice_copy: Path) -> None:
    rest = "\n    wrong_key: {retries: 2, then: goodbye}"  # only offer_callback has this pair
    edit(voice_copy, "menu.yaml", "    no_input: {retries: 0, then: goodbye}" + rest,
         "    no_input: {retries: 0, then: main}" + rest)
    found = problems(voice_copy)
    assert any(re.fullmatch(r"menu\.yaml, node '\w+', field 'no_input\.then': a loop with no way out: a caller who "
                            r"presses nothing goes .*main -> offer_callback -> main.* for ever; end it at a hangup "
                            r"node", p) for p in found), found


def test_error_fallback_prompts_keep_their_fixed_audio_names(voice_copy: Path) -> None:
    edit(voice_copy, "prompts.yaml", "    audio: system_error\n", "    audio: oops\n")
    assert any("common_prompts.system_error" in p and "'system_error'" in p for p in problems(voice_copy))


def test_app_refuses_to_start_on_an_invalid_script(settings, voice_copy: Path) -> None:
    edit(voice_copy, "menu.yaml", '"1": before_you_go', '"1": nowhere')
    with pytest.raises(StartupError, match="node 'main', field 'keys.1': unknown target 'nowhere'") as err:
        create_app(settings, IVR_SCRIPT_DIR=str(voice_copy))
    assert isinstance(err.value.original, ScriptError)


def test_scripts_check_command_reports_problems_and_fails(voice_copy: Path) -> None:
    edit(voice_copy, "menu.yaml", '"1": before_you_go', '"1": nowhere')
    result = CliRunner().invoke(cli, ["scripts", "check", "--voice-dir", str(voice_copy)])
    assert result.exit_code == 1
    assert "menu.yaml, node 'main', field 'keys.1': unknown target 'nowhere'" in result.output


def test_scripts_check_command_passes_on_the_shipped_script() -> None:
    result = CliRunner().invoke(cli, ["scripts", "check"])
    assert result.exit_code == 0, result.output
    assert "16 nodes, 43 prompts, languages km, th, en: valid (129 texts marked for review)" in result.output
    assert "audio: all 129 prompt files present" in result.output
    assert "ivr_scripts/sms: ok: 3 languages, 144 replies within 2 parts" in result.output
    assert "sms_consent.yaml: valid (3 questions and replies" in result.output


def test_importing_the_menus_pulls_in_no_framework() -> None:
    # hotline/__init__.py (the app factory) imports Flask; the menus must not need it, so the package
    # is stood up bare here and only hotline.menus is imported.
    code = ("import sys, types; pkg = types.ModuleType('hotline'); pkg.__path__ = ['hotline']; "
            "sys.modules['hotline'] = pkg; "
            "import hotline.menus.engine, hotline.menus.loader, hotline.menus.schema, hotline.menus.consent; "
            "bad = [m for m in ('flask', 'twilio', 'sqlalchemy', 'redis', 'werkzeug') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- engine ---------------------------------------------------------------------------------------

def play(lang: str, name: str) -> Play:
    return Play(name, lang, name)


@pytest.mark.parametrize(("local", "dials"), [
    ("2026-11-23 08:00", True),  # Monday, opening time
    ("2026-11-28 16:59", True),  # Saturday
    ("2026-11-28 17:00", False),  # closing time
    ("2026-11-29 10:00", False),  # Sunday
    ("2026-11-24 07:59", False),
])
def test_urgent_rings_on_call_only_in_office_hours_in_the_hotline_time_zone(local: str, dials: bool) -> None:
    step = engine.step(SCRIPT, State("main", "km"), Input(Kind.KEY, "9"), ctx(local))
    assert step.effects == (OpenUrgentCase(),)
    if dials:
        assert step.actions == (play("km", "urgent_connecting"), Dial(State("urgent", "km", "dial"), 25))
    else:
        # After hours: the numbers that can act tonight where the caller is, before the recording.
        assert step.actions == (play("km", "urgent_numbers_kh"), play("km", "urgent_record"),
                                Record(State("urgent", "km", "record"), 180, 8))


def test_urgent_records_when_nobody_is_on_call() -> None:
    step = engine.step(SCRIPT, State("main", "en"), Input(Kind.KEY, "9"), ctx("2026-11-24 10:00", can_dial=False))
    assert step.actions[-1] == Record(State("urgent", "en", "record"), 180, 8)


def test_chosen_language_is_remembered_but_the_silent_default_is_not() -> None:
    chosen = engine.step(SCRIPT, State("language", "km"), Input(Kind.KEY, "2"), ctx())
    silent = engine.step(SCRIPT, State("language", "km"), Input(Kind.SILENCE), ctx())
    assert chosen.effects == (SetLanguage("th", remember=True),)
    assert silent.effects == (SetLanguage("km", remember=False),)
    assert chosen.state == State("main", "th") and silent.state == State("main", "km")


def test_forged_or_stale_state_still_gives_a_valid_step() -> None:
    step = engine.step(SCRIPT, State("no-such-node", "xx", "p99", tries=10**6, wrong=-5, ref="a:b:c"),
                       Input(Kind.KEY, "12#"), ctx())
    assert step.state == State("main", "km", wrong=1)
    assert step.actions[0] == play("km", "key_not_used") and isinstance(step.actions[1], Gather)


def test_callback_number_is_parsed_by_the_given_function_and_not_logged() -> None:
    c = ctx(parse_phone=lambda d: "+85512345678" if d == "012345678" else None)
    step = engine.step(SCRIPT, State("callback", "km", "number"), Input(Kind.KEY, "012345678"), c)
    assert step.effects == (RequestCallback("+85512345678", for_someone_else=True),)
    assert all("012345678" not in (e.detail or "") for e in step.events)


def test_resume_continues_at_the_part_the_dropped_call_stopped_in() -> None:
    first = engine.start(SCRIPT, ctx(), lang="en", resume="papers:1")
    assert first.state == State("resume", "en", ref="papers:1")
    step = engine.step(SCRIPT, first.state, Input(Kind.KEY, "1"), ctx())
    assert step.actions == (Gather((play("en", "msg_papers_2"),), State("papers", "en", "p1"), 1, 1, "",
                                   on_empty="done"),)


def test_goodbye_node_ends_the_call() -> None:
    step = engine.step(SCRIPT, State("offer_callback", "th"), Input(Kind.SILENCE), ctx())
    assert step.actions == (play("th", "goodbye"), Hangup())
