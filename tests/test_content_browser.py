"""The content studio in a real browser: the matrix in Khmer, the live SMS-part count, a publish."""

from __future__ import annotations

import pytest

from hotline.resources import resources_of
from hotline.services import staff as staff_service
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "correct horse battery"
# What sticks out past a phone's width (named in the failure message).
WIDE = """Array.from(document.querySelectorAll('body *')).filter(e => e.getBoundingClientRect().right > 391)
  .slice(0, 5).map(e => e.tagName + '.' + e.className + ':' + Math.round(e.getBoundingClientRect().right))"""


def _login(page, base: str) -> None:
    page.goto(base + "/staff/login")
    page.get_by_label("Email").fill("sophea@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/staff/content")


def test_content_staff_edit_a_khmer_reply_with_a_live_part_count_and_publish(live_server, browser_page) -> None:
    with resources_of(live_server.app).db.Session() as s:
        staff_service.create(s, "sophea@example.org", "content", PASSWORD, name="Sophea")
        s.commit()
    page, base = browser_page, live_server.url
    page.set_viewport_size({"width": 1280, "height": 900})
    _login(page, base)  # a content account lands on the studio, not the case queue
    page.goto(base + "/staff/content?lang=km")
    khmer = page.locator('td.cell p.words[lang="km"]').first
    assert khmer.inner_text().strip()
    assert khmer.bounding_box()["width"] > 20  # rendered, not an empty box
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "content-matrix-km.png"))

    page.set_viewport_size({"width": 390, "height": 844})  # a phone: the table scrolls inside its box
    for path in ("/staff/content?lang=km", "/staff/content/menu", "/staff/content/versions",
                 "/staff/content/edit/reply/unknown/km", "/staff/content/menu/main"):
        page.goto(base + path)
        wide = page.evaluate(WIDE)
        assert page.evaluate("document.documentElement.scrollWidth") <= 391, (path, wide)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(base + "/staff/content/edit/reply/unknown/km")
    box = page.locator("#value")
    box.fill("ផ្ញើ HELP ។")
    assert page.locator("#sms-count").inner_text().startswith("1 SMS part(s), UCS-2")
    box.fill("ជួយ " * 50)
    assert page.locator("#sms-count").inner_text().startswith("3 SMS part(s), UCS-2")
    box.fill("ផ្ញើ HELP ដើម្បីមើលបញ្ជី។ CALL យើងតេទៅវិញ។")
    page.get_by_role("button", name="Save in the draft").click()
    page.wait_for_url(base + "/staff/content?lang=km#reply-unknown")
    page.goto(base + "/staff/content/versions")
    page.get_by_role("button", name="Publish the draft").click()
    assert "Version 1 is published" in page.locator("body").inner_text()
