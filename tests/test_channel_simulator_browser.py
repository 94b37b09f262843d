"""The simulator's chat pane in headless Chromium, driving a Messenger conversation through the real
/channels/messenger route: a topic button returns a playable voice message, and a voice note opens a
case that staff can play in the console (issue #18's "Done when")."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from hotline.fakes.messenger import FakeMessenger
from hotline.models import Case, Recording
from hotline.services import staff as staff_service
from hotline.settings import Settings
from tests.conftest import ARTIFACTS, run_worker_burst

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PSID = "6100000000000001"  # the simulator's first Messenger contact
PASSWORD = "a-long-password-123"


@pytest.fixture
def fake_messenger() -> Iterator[FakeMessenger]:
    fake = FakeMessenger().start()
    fake.user_wrote(PSID)  # Meta would know the person just wrote (the simulator posts to us, not to it)
    yield fake
    fake.stop()


@pytest.fixture
def settings(settings: Settings, fake_messenger: FakeMessenger) -> Settings:
    return settings.with_(channels={"messenger": {
        "MESSENGER_APP_SECRET": "sim-app-secret", "MESSENGER_PAGE_TOKEN": fake_messenger.page_token,
        "MESSENGER_VERIFY_TOKEN": "sim-verify", "MESSENGER_API_BASE_URL": fake_messenger.url}})


def test_a_messenger_conversation_in_the_simulator_plays_a_topic_and_a_voice_note_reaches_staff(
        live_server, browser_page, db, fake_messenger) -> None:
    page, base = browser_page, live_server.url
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(base + "/simulator")
    assert page.locator("#chat-channel").input_value() == "messenger"
    page.fill("#chat-body", "HELP")
    page.click("#chat-send")
    page.wait_for_selector("#chat-thread li.chat-in", state="attached")
    run_worker_burst(live_server.settings)
    page.wait_for_selector('#chat-thread li.chat-out[data-status="sent"]')
    page.locator("#chat-buttons button", has_text="1 ").first.click()  # topic 1, as a quick reply

    page.wait_for_selector("#chat-thread li.chat-in >> nth=1", state="attached")
    run_worker_burst(live_server.settings)
    audio = page.locator("#chat-thread audio.chat-voice").first
    audio.wait_for(state="attached")
    duration = page.evaluate("""async () => {
        const a = document.querySelector('#chat-thread audio.chat-voice');
        if (a.readyState < 1) await new Promise((ok, bad) => { a.onloadedmetadata = ok; a.onerror = bad; });
        return a.duration; }""")
    assert duration > 1, duration
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "simulator-chat.png"), full_page=True)
    sent_audio = [m for m in fake_messenger.sent if "attachment" in m["message"]]
    assert len(sent_audio) == 1 and sent_audio[0]["message"]["attachment"]["type"] == "audio"

    page.click("#chat-voice")  # the bundled sample as a voice note
    page.wait_for_selector("#chat-thread li.chat-in >> nth=2", state="attached")
    run_worker_burst(live_server.settings)
    db.expire_all()
    case = db.scalar(sa.select(Case).where(Case.source == "messenger"))
    rec = db.scalar(sa.select(Recording).where(Recording.case_id == case.id)) if case else None
    assert case is not None and rec is not None and rec.status == "stored"

    staff_service.create(db, "sokha@example.org", "lawyer", PASSWORD)
    db.commit()
    page.goto(base + "/staff/login")
    page.get_by_label("Email").fill("sokha@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/staff/")
    page.goto(f"{base}/staff/cases/{case.id}")
    player = page.locator("ul.recordings audio")
    src = player.get_attribute("src")
    played = page.evaluate(
        "async (src) => { const r = await fetch(src); return [r.status, r.headers.get('content-type')]; }", src)
    assert played == [200, "audio/wav"]
    assert "Reply on Messenger" in page.content()
    page.screenshot(path=str(ARTIFACTS / "simulator-chat-case.png"), full_page=True)
    assert errors == []
