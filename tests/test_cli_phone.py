"""`hotline call` and `hotline sms` end to end: real HTTP to a running app (the live_server fixture)."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from hotline.cli import cli
from hotline.models import Call, Direction, Message

pytestmark = pytest.mark.slow


def env_for(live_server) -> dict[str, str]:
    s = live_server.settings
    return {"TWILIO_AUTH_TOKEN": s.twilio_auth_token, "TWILIO_ACCOUNT_SID": s.twilio_account_sid,
            "PUBLIC_BASE_URL": s.public_base_url, "HOTLINE_INSTANCE": str(s.instance_path),
            "HOTLINE_NUMBER": s.hotline_number}


def run(live_server, args: list[str], stdin: str = ""):
    result = CliRunner().invoke(cli, args, input=stdin, env=env_for(live_server), catch_exceptions=False)
    return result


def test_call_prints_prompts_and_ends_with_the_status_callback(live_server, db) -> None:
    result = run(live_server, ["call", "--from", "+855 12 345 678", "--no-play"], "\n\n\nh\n")
    assert result.exit_code == 0, result.output
    assert f"calling +85523000000 from +85512345678 via {live_server.url}" in result.output
    assert "▶ km/" in result.output
    assert "call ended: completed" in result.output
    call = db.scalar(sa.select(Call).where(Call.direction == Direction.INBOUND))
    assert call is not None and call.status == "completed" and call.ended_at is not None


def test_call_verbose_shows_the_webhooks_and_twiml(live_server) -> None:
    result = run(live_server, ["call", "--from", "+66812345678", "--no-play", "-v"], "h\n")
    assert result.exit_code == 0, result.output
    assert f"POST {live_server.url}/twilio/voice -> 200" in result.output
    assert "<Response>" in result.output
    assert f"POST {live_server.url}/twilio/voice/status -> 200" in result.output


def test_call_with_a_wrong_auth_token_reports_the_refusal(live_server) -> None:
    env = env_for(live_server) | {"TWILIO_AUTH_TOKEN": "not-the-token"}
    result = CliRunner().invoke(cli, ["call", "--from", "+85512345678", "--no-play"], input="", env=env)
    assert "HTTP 403" in result.output


def test_call_refuses_a_number_that_is_not_one(live_server) -> None:
    result = run(live_server, ["call", "--from", "hello", "--no-play"])
    assert result.exit_code == 2 and "is not a phone number" in result.output


def test_call_to_an_unreachable_app_says_so(live_server) -> None:
    result = run(live_server, ["call", "--from", "+85512345678", "--no-play", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 1 and "cannot reach the hotline" in result.output


def test_sms_sends_one_text_and_prints_the_reply_with_its_parts(live_server, db) -> None:
    result = run(live_server, ["sms", "--from", "+85512345678", "HELP"])
    assert result.exit_code == 0, result.output
    msg = db.scalar(sa.select(Message).where(Message.direction == Direction.INBOUND))
    assert msg is not None and msg.body == "HELP" and msg.peer == "+85512345678"
    import re

    assert re.search(r"\[\d+ SMS parts?, (UCS-2|GSM-7)\]", result.output), result.output
    assert result.output.splitlines()[0].strip()  # the reply's text comes first


def test_call_walks_the_menus_to_a_message_and_leaves_an_urgent_recording(live_server, db) -> None:
    from hotline.models import Recording
    from tests.conftest import run_worker_burst

    # km, main menu 1, silence twice (the message's two parts), then at the province question (a new
    # caller, asked once after a message) 9 urgent, which works there as anywhere; then Enter for each
    # of "nobody answers" (in office hours) and "send the sample recording", and silence or hang up.
    result = run(live_server, ["call", "--from", "+85512345678", "--lang", "en", "--no-play"],
                 "1\n1\n\n\n9\n\n\n\nh\n")  # silence at the category question after the recording
    assert result.exit_code == 0, result.output
    out = result.output
    order = ["▶ km/choose_language.mp3", "▶ km/main_menu.mp3", "(en) Main menu.", "▶ km/msg_before_you_go_1.mp3",
             "▶ km/msg_before_you_go_2.mp3", "▶ km/ask_province.mp3", "▶ km/urgent_numbers_kh.mp3",
             "▶ km/urgent_record.mp3",
             "● recording sent", "▶ km/urgent_thanks.mp3", "call ended: completed"]
    positions = [out.find(marker) for marker in order]
    assert -1 not in positions and positions == sorted(positions), out
    # The recording was left at the simulator's URL; the worker fetches it there, as from Twilio.
    run_worker_burst(live_server.settings)
    rec = db.scalar(sa.select(Recording))
    assert rec is not None and rec.remote_url.startswith(live_server.url + "/simulator/recordings/RE")
    assert rec.status == "stored", rec.status
