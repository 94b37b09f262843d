"""The staff console in a real browser: headless Debian Chromium driven by Playwright."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
import sqlalchemy as sa

from hotline.db import utcnow
from hotline.models import AuditEvent, Case, CasePriority
from hotline.resources import resources_of
from hotline.services import callers, intake
from hotline.services import staff as staff_service
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "correct horse battery"
NOTE = "Spoke to her sister; safe to call after 18:00."


def _arrange(live_server) -> tuple[Case, Case]:
    with resources_of(live_server.app).db.Session() as s:
        staff_service.create(s, "sokha@example.org", "lawyer", PASSWORD, name="Sokha")
        cases = []
        for phone, priority, age in (("+66812345678", CasePriority.URGENT, timedelta(minutes=22)),
                                     ("+85512345678", CasePriority.NORMAL, timedelta(hours=3))):
            case, _ = intake.open_case(s, caller=callers.get_or_create(s, phone), source="voice", source_sid=None,
                                       priority=priority)
            case.created_at = utcnow() - age
            cases.append(case)
        s.commit()
        s.expunge_all()
    return cases[0], cases[1]


def _login(page, base: str) -> None:
    page.goto(base + "/staff/login")
    page.get_by_label("Email").fill("sokha@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/staff/")


def test_staff_logs_in_claims_notes_and_closes_a_case(live_server, browser_page) -> None:
    urgent, normal = _arrange(live_server)
    page, base = browser_page, live_server.url
    page.set_viewport_size({"width": 1280, "height": 720})
    _login(page, base)

    rows = page.locator("table.queue tbody tr")
    assert rows.evaluate_all("rs => rs.map(r => r.dataset.ref)") == [urgent.ref, normal.ref]
    assert "OVERDUE" in rows.first.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)

    page.get_by_role("link", name=urgent.ref).click()
    page.get_by_role("button", name="Claim this case").click()
    assert page.get_by_role("status").inner_text().strip() == "You have claimed this case."
    assert page.locator("#case-status").inner_text() == "claimed"
    assert page.locator("#claimed-by").inner_text() == "Sokha"

    page.get_by_label("New note").fill(NOTE)
    page.get_by_role("button", name="Save note").click()
    assert page.locator("ol.notes .body").all_inner_texts() == [NOTE]

    page.get_by_label("Status", exact=True).select_option("closed")
    page.get_by_label("Reason").fill("referred to legal partner")
    page.get_by_role("button", name="Save status").click()
    assert page.locator("#case-status").inner_text() == "closed"

    with resources_of(live_server.app).db.Session() as s:
        case = s.get(Case, urgent.id)
        assert case is not None and case.status == "closed" and case.claimed_by is not None
        assert case.claimed_by.email == "sokha@example.org"
        assert [n.body for n in case.notes] == [NOTE]
        assert [h.to_status for h in case.history] == ["new", "claimed", "closed"]
        actions = s.scalars(sa.select(AuditEvent.action).where(AuditEvent.object_type == "case")
                            .order_by(AuditEvent.id)).all()
        assert actions == ["case.viewed", "case.claimed", "case.viewed", "case.note_added", "case.viewed",
                           "case.status", "case.viewed"]

    # After logging out, the same browser gets the login page and no case data.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(base + "/staff/login")
    page.goto(f"{base}/staff/cases/{urgent.id}")
    assert re.match(re.escape(base) + r"/staff/login\?next=", page.url)
    html = page.content()
    assert urgent.ref not in html and NOTE not in html and "+66" not in html


def test_a_logged_out_browser_sees_no_case_data(live_server, browser_page) -> None:
    urgent, normal = _arrange(live_server)
    page, base = browser_page, live_server.url
    for path in (f"/staff/cases/{urgent.id}", "/staff/", "/staff/callbacks", "/staff/audit"):
        response = page.goto(base + path)
        assert response is not None and response.status == 200  # the login page, after the redirect
        assert page.url.startswith(base + "/staff/login")
        html = page.content()
        assert urgent.ref not in html and normal.ref not in html
        assert page.get_by_role("heading", name="Log in").is_visible()
