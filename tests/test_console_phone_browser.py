"""Every console page and the simulator in a real browser at phone width (390 x 844, an on-call
lawyer opening the alert SMS's link), and under axe-core's WCAG 2.1 AA rules: no sideways
scrolling, zero violations, in English and in Khmer.

axe-core is vendored (tests/vendor/axe-core/, pinned, MPL-2.0) and injected through Playwright's
init script, which is not subject to the app's CSP: nothing is fetched from a CDN.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from hotline.db import utcnow
from hotline.models import Case, CasePriority, StaffUser
from hotline.resources import resources_of
from hotline.services import callers, intake, oncall
from hotline.services import cases as case_service
from hotline.services import staff as staff_service
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844}
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
LONG_NOTE = ("Sister says the agent in Rayong kept both passports and the phone; call the shelter "
             "hotline first: https://example.org/a/very/long/link/without/any/spaces/at/all/in/it/123456789")


@dataclass
class Arranged:
    urgent_id: int
    normal_id: int


def _arrange(live_server) -> Arranged:
    with resources_of(live_server.app).db.Session() as s:
        admin = staff_service.create(s, "admin.with.a.long.address@example-ngo.org", "admin", PASSWORD,
                                     name="Chanthou Sovannarith")
        staff_service.create(s, "sokha.lawyer@example-ngo.org", "lawyer", PASSWORD, name="Sokha")
        staff_service.create(s, "donor-reports@example-ngo.org", "reports", PASSWORD, name="Donor")
        admin.phone = "+85512345009"
        ids = []
        for phone, priority, age in (("+66812345678", CasePriority.URGENT, timedelta(minutes=22)),
                                     ("+85512345678", CasePriority.NORMAL, timedelta(hours=30))):
            case, _ = intake.open_case(s, caller=callers.get_or_create(s, phone), source="voice", source_sid=None,
                                       priority=priority)
            case.created_at = utcnow() - age
            ids.append(case.id)
        s.flush()
        urgent = s.get(Case, ids[0])
        assert urgent is not None
        urgent.last_error = "alert SMS to +66******001 failed: 30003 unreachable destination handset"
        case_service.add_note(s, urgent, admin.id, LONG_NOTE)
        case_service.claim(s, urgent.id, admin.id)
        intake.request_callback(s, caller=callers.get_or_create(s, "+66812345670"), phone="+66812345670", source="ivr")
        oncall.add_entry(s, country="KH", phone="+85512345001", name="Dara (on call, nights and weekends)")
        for i in range(3):
            staff_service.audit(s, admin.id, "case.viewed", "case", ids[0], ip="2001:db8:85a3::8a2e:370:7334",
                                detail_with_a_long_name=f"a-long-value-without-spaces-{i}-" + "x" * 40)
        s.commit()
    return Arranged(ids[0], ids[1])


def _login(page, base: str, email: str) -> None:
    page.goto(base + "/staff/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(PASSWORD)
    page.locator("form.login button[type=submit]").click()
    page.wait_for_url(base + "/staff/**")


def _set_language(live_server, email: str, lang: str) -> None:
    with resources_of(live_server.app).db.Session() as s:
        s.execute(sa.update(StaffUser).where(StaffUser.email == email).values(language=lang))
        s.commit()


def _pages(a: Arranged) -> list[tuple[str, str]]:
    """(name, path) of every page an admin sees; the login page is opened logged out."""
    return [("queue", "/staff/"), ("queue-mine", "/staff/?view=mine"), ("queue-all", "/staff/?view=all"),
            ("case", f"/staff/cases/{a.urgent_id}"), ("case-normal", f"/staff/cases/{a.normal_id}"),
            ("callbacks", "/staff/callbacks"), ("oncall", "/staff/oncall"), ("accounts", "/staff/accounts"),
            ("audit", "/staff/audit"), ("reports", "/staff/reports"), ("password", "/staff/password"),
            ("two-factor", "/staff/two-factor"), ("not-found", "/staff/cases/999999")]


def _overflow(page) -> dict[str, Any]:
    """How far the page scrolls sideways, and the widest elements that make it (for the message)."""
    return page.evaluate("""() => {
      const vw = document.documentElement.clientWidth;
      const wide = [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > vw + 1)
        .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className ? '.' + e.className : '')
                          + ' right=' + Math.round(e.getBoundingClientRect().right));
      return {scroll: document.documentElement.scrollWidth, body: document.body.scrollWidth, vw, wide};
    }""")


def _check_width(page, name: str) -> list[str]:
    page.wait_for_load_state("load")
    o = _overflow(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"phone-{name}.png"), full_page=True)
    if max(o["scroll"], o["body"]) > PHONE["width"]:
        return [f"{name}: scrollWidth {o['scroll']} > {PHONE['width']} ({o['wide']})"]
    return []


def test_every_console_page_and_the_simulator_fit_a_phone_without_sideways_scrolling(live_server, browser_page) -> None:
    arranged = _arrange(live_server)
    page, base = browser_page, live_server.url
    page.set_viewport_size(PHONE)
    problems: list[str] = []
    page.goto(base + "/staff/login")
    problems += _check_width(page, "login")
    page.goto(base + "/simulator")
    problems += _check_width(page, "simulator")
    email = "admin.with.a.long.address@example-ngo.org"
    for lang in ("en", "km"):
        _set_language(live_server, email, lang)
        _login(page, base, email)
        for name, path in _pages(arranged):
            page.goto(base + path)
            problems += _check_width(page, f"{name}-{lang}")
        page.locator("header form.inline button", has_text="Log out" if lang == "en" else "ចាក").first.click()
        page.wait_for_url(base + "/staff/login")
    assert problems == [], json.dumps(problems, indent=1, ensure_ascii=False)


def _axe(page) -> list[dict[str, Any]]:
    result = page.evaluate("opts => axe.run(document, opts)", {"runOnly": {"type": "tag", "values": WCAG_AA},
                                                               "resultTypes": ["violations"]})
    return result["violations"]  # type: ignore[no-any-return]


def _describe(name: str, violations: list[dict[str, Any]]) -> list[str]:
    return [f"{name}: {v['id']} ({v['impact']}) {[n['target'] for n in v['nodes']][:4]}"
            f" {v['nodes'][0].get('failureSummary', '')[:200]}" for v in violations]


@pytest.fixture
def axe_page(browser_page):  # type: ignore[no-untyped-def]
    browser_page.context.add_init_script(path=str(AXE))
    return browser_page


def test_axe_finds_no_wcag_aa_violations_on_any_console_page_or_the_simulator(live_server, axe_page) -> None:
    arranged = _arrange(live_server)
    page, base = axe_page, live_server.url
    problems: list[str] = []
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(base + "/staff/login")
    problems += _describe("login", _axe(page))
    email = "admin.with.a.long.address@example-ngo.org"
    for lang in ("en", "km"):
        _set_language(live_server, email, lang)
        _login(page, base, email)
        for name, path in _pages(arranged):
            page.goto(base + path)
            problems += _describe(f"{name}-{lang}", _axe(page))
        page.set_viewport_size(PHONE)  # the phone layout (cards, wrapped tables) is checked too
        for name, path in _pages(arranged)[:4]:
            page.goto(base + path)
            problems += _describe(f"{name}-{lang}-phone", _axe(page))
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(base + "/staff/")
        page.locator("header form.inline button[type=submit]").last.click()
        page.wait_for_url(base + "/staff/login")
    assert problems == [], json.dumps(problems, indent=1, ensure_ascii=False)
