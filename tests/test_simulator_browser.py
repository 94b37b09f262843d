"""The browser phone in headless Chromium: a call through the real menus, the urgent path, a text."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from hotline.models import Call, Direction, Message
from tests.conftest import ARTIFACTS, run_worker_burst

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def heard(page, name: str) -> None:
    """Wait until the transcript shows that prompt `name` (e.g. "km/main_menu") was played."""
    page.wait_for_selector(f'#transcript li.played[data-name="{name}"]', state="attached")


def press(page, key: str) -> None:
    page.locator(f'.key[data-key="{key}"]:not([disabled])').click()


def test_call_menus_urgent_path_and_a_text_in_the_browser(live_server, browser_page, db) -> None:
    page = browser_page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(live_server.url + "/simulator")
    page.select_option("#caller", "+85512345678")
    page.select_option("#lang", "en")
    page.uncheck("#auto-timeout")  # this test says when silence happens (the next test lets it time out)
    page.click("#call")

    heard(page, "km/choose_language")  # a new caller first hears the language menu
    assert page.locator("#waiting").get_attribute("data-kind") == "gather"
    press(page, "1")
    heard(page, "km/main_menu")
    # The English words are shown beside the Khmer prompt for staff who do not read Khmer.
    main = page.locator('#transcript li.played[data-name="km/main_menu"]').last
    assert "Main menu." in main.inner_text()

    press(page, "1")
    heard(page, "km/msg_before_you_go_1")
    page.click("#silence")  # a message in parts goes on when the caller presses nothing
    heard(page, "km/msg_before_you_go_2")
    page.click("#silence")
    heard(page, "km/ask_province")  # asked once, after the message: waiting skips it
    page.click("#silence")
    heard(page, "km/after_message")

    press(page, "9")  # urgent help: ring the on-call lawyer in office hours, else record a message
    page.wait_for_selector("#dial-box:not([hidden]), #record-box:not([hidden])")
    if page.locator("#dial-box").is_visible():
        assert "+66812345001" in page.inner_text("#dial-numbers") or "+855" in page.inner_text("#dial-numbers")
        page.click("#no-answer")
        page.wait_for_selector("#record-box:not([hidden])")
    page.click("#sample")
    heard(page, "km/urgent_category")  # after the recording: one optional key for the case's category
    press(page, "1")
    heard(page, "km/urgent_thanks")
    page.wait_for_selector('#transcript li.twiml:has-text("/twilio/voice/recording")', state="attached")
    page.click("#hangup") if page.locator("#hangup").is_enabled() else None
    page.wait_for_selector('#status[data-status="ended"]')

    page.fill("#sms-body", "HELP")
    assert page.inner_text("#sms-parts") == "1"
    page.click("#sms-send")
    page.wait_for_selector("#sms-thread li.in")
    reply = page.locator("#sms-thread li.in").first.inner_text()
    assert "part(s)" in reply

    # The worker sends the on-call alert through the local transport; the third pane shows it, masked.
    run_worker_burst(live_server.settings)
    page.click("#outbox-refresh")
    page.wait_for_selector("#outbox li.out-sms")
    alert = page.locator("#outbox li.out-sms").first.inner_text()
    assert "SMS to +66******001" in alert or "SMS to +855*****001" in alert or "SMS to +66******002" in alert
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "simulator.png"), full_page=True)
    assert errors == []

    call = db.scalar(sa.select(Call).where(Call.direction == Direction.INBOUND))
    assert call is not None and call.status == "completed"
    # Bodies are encrypted at rest (a new token each time): compared after reading, not in SQL.
    assert "HELP" in [m.body for m in db.scalars(sa.select(Message).where(Message.direction == Direction.INBOUND))]


def test_a_call_can_be_placed_and_hung_up_and_a_long_khmer_text_counts_its_parts(live_server, browser_page) -> None:
    page = browser_page
    page.goto(live_server.url + "/simulator")
    page.select_option("#caller", "+66812345678")
    page.click("#call")
    page.wait_for_selector('#transcript li.twiml:has-text("/twilio/voice → 200")', state="attached")
    page.wait_for_selector("#transcript li.played", state="attached")
    if page.locator("#hangup").is_enabled():
        page.click("#hangup")
    page.wait_for_selector('#transcript li.twiml:has-text("/twilio/voice/status → 200")', state="attached")
    assert page.get_attribute("#status", "data-status") == "ended"
    page.fill("#sms-body", "ក" * 71)
    assert page.inner_text("#sms-parts") == "2"  # Khmer is UCS-2: 70 in one part, 67 per part beyond
    page.click("#sms-send")
    page.wait_for_selector("#sms-thread li.in, #sms-thread li.note")


def test_a_message_moves_on_by_itself_when_its_gather_times_out(live_server, browser_page) -> None:
    page = browser_page
    page.goto(live_server.url + "/simulator")
    page.click("#call")
    heard(page, "km/choose_language")
    press(page, "1")
    heard(page, "km/main_menu")
    press(page, "1")
    heard(page, "km/msg_before_you_go_1")
    # No click: the part's audio ends, the Gather's 1 s timeout passes, and the next part is fetched.
    page.wait_for_selector('#transcript li.played[data-name="km/msg_before_you_go_2"]', state="attached",
                           timeout=30000)
    assert page.locator("#transcript li.note", has_text="the menu times out").count() >= 1
