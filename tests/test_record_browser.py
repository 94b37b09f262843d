"""Record a Khmer prompt in headless Chromium with its fake microphone, keep it, publish, hear it in the simulator."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.models import ContentTake, Role
from hotline.resources import resources_of
from hotline.services import content
from hotline.services import staff as staff_service
from tests.conftest import ARTIFACTS, CHROMIUM
from tests.test_audio_pipeline import speech_like

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "correct horse battery"
PROMPT = "main_menu"


@pytest.fixture
def mic_page(tmp_path: Path) -> Iterator[Any]:
    """Chromium whose microphone "hears" a generated WAV (a tone swelling like syllables)."""
    if not CHROMIUM:
        pytest.skip("Debian's chromium is not installed")
    from playwright.sync_api import sync_playwright

    wav = speech_like(tmp_path / "mic.wav", 6.0, 0.3, 0.3, 0.3)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream", f"--use-file-for-fake-audio-capture={wav}",
            "--autoplay-policy=no-user-gesture-required"])
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(20000)
        yield page
        context.close()
        browser.close()


def test_record_a_khmer_prompt_keep_publish_and_the_simulator_plays_it(live_server, mic_page) -> None:
    page, base = mic_page, live_server.url
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    db = resources_of(live_server.app).db
    with db.Session() as s:
        staff_service.create(s, "sophea@ngo.example", Role.CONTENT, PASSWORD, name="Sophea")
        s.commit()
    ARTIFACTS.mkdir(exist_ok=True)
    page.goto(base + "/staff/login")
    page.get_by_label("Email").fill("sophea@ngo.example")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()

    # From the matrix, "what still needs Khmer", to the prompt's Record link.
    page.goto(f"{base}/staff/content?lang=km&show=needs_recording")
    page.locator(f'a[href="/staff/content/{PROMPT}/km/record"]').click()
    page.wait_for_url(f"{base}/staff/content/{PROMPT}/km/record")
    page.set_viewport_size({"width": 390, "height": 844})  # an NGO worker's phone: nothing scrolls sideways
    assert page.evaluate("() => document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(ARTIFACTS / "record-390.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})
    script = page.locator("#script-text")
    assert script.get_attribute("lang") == "km" and any("\u1780" <= ch <= "\u17ff" for ch in script.inner_text())
    page.get_by_role("button", name="Start recording").click()
    page.wait_for_function("() => document.getElementById('rec-level').value > 0.05")  # the meter moves
    page.wait_for_timeout(2500)
    page.get_by_role("button", name="Stop").click()
    page.wait_for_selector("#rec-review:not([hidden])")
    assert page.eval_on_selector("#rec-audio", "a => a.src.startsWith('blob:')")
    # Redo once: a second take replaces the first before anything is sent.
    page.get_by_role("button", name="Record again").click()
    page.wait_for_selector("#rec-stop:not([disabled])")
    page.wait_for_timeout(2000)
    page.get_by_role("button", name="Stop").click()
    page.wait_for_selector("#rec-review:not([hidden])")
    page.screenshot(path=str(ARTIFACTS / "record.png"), full_page=True)
    page.get_by_role("button", name="Keep this take").click()
    page.wait_for_selector(".flash-ok")
    assert "now in the draft and marked for review" in page.inner_text(".flash-ok")

    with db.Session() as s:
        take = content.cell(s, PROMPT, "km").take
        assert take is not None and take.source == "browser" and 1.5 <= take.duration_ms / 1000 <= 2.6
        sha = take.sha256
    page.goto(f"{base}/staff/content/versions")
    page.get_by_role("button", name="Publish the draft").click()
    page.wait_for_selector(".flash-ok")
    assert "Version 1 is published" in page.inner_text(".flash-ok")

    # The simulator: a Khmer caller reaches the main menu and its new recording is what is fetched.
    fetched: list[str] = []
    page.on("request", lambda r: fetched.append(r.url) if "/audio/km/main_menu" in r.url else None)
    page.goto(base + "/simulator")
    page.select_option("#caller", "+85512345678")
    page.uncheck("#auto-timeout")
    page.click("#call")
    page.wait_for_selector('#transcript li.played[data-name="km/choose_language"]', state="attached")
    page.locator('.key[data-key="1"]:not([disabled])').click()
    page.wait_for_selector('#transcript li.played[data-name^="km/main_menu"]', state="attached")
    page.wait_for_function("() => performance.getEntriesByType('resource')"
                           ".some(e => e.name.includes('/audio/km/main_menu'))")
    assert any(f"/audio/km/main_menu.{sha}.mp3" in url for url in fetched), fetched
    served = page.request.get(f"{base}/audio/km/main_menu.{sha}.mp3")
    assert served.ok and hashlib.sha256(served.body()).hexdigest() == sha
    assert errors == []
    with db.Session() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(ContentTake)) == 1  # the kept take only
