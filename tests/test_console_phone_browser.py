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
from hotline.models import Case, CasePriority, OnCallEntry, StaffUser
from hotline.resources import resources_of
from hotline.services import callers, intake, oncall
from hotline.services import cases as case_service
from hotline.services import staff as staff_service
from tests.conftest import ARTIFACTS, LiveServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "correct horse battery"
PHONE = {"width": 390, "height": 844}
AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
WCAG_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
KHMER_NOTE = "បងស្រីរបស់នាងនិយាយថា មេខ្យល់បានយកលិខិតឆ្លងដែនរបស់ពួកគេ។"
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
        staff_service.create(s, "sokha.lawyer@example-ngo.org", "lawyer", PASSWORD, name="សុខា")
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
        case_service.add_note(s, urgent, admin.id, KHMER_NOTE)
        case_service.claim(s, urgent.id, admin.id)
        intake.request_callback(s, caller=callers.get_or_create(s, "+66812345670"), phone="+66812345670", source="ivr")
        oncall.add_entry(s, country="KH", phone="+85512345001", name="Dara (on call, nights and weekends)")
        oncall.add_entry(s, country="TH", phone="+66812345001", name="สมชาย", position=1)
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
            ("two-factor", "/staff/two-factor"), ("not-found", "/staff/cases/999999"),
            ("content", "/staff/content"), ("content-menu", "/staff/content/menu"),
            ("content-versions", "/staff/content/versions"), ("content-script", "/staff/content/script/km")]


def _overflow(page) -> dict[str, Any]:
    """How far the page scrolls sideways, and the widest elements that make it (for the message)."""
    return page.evaluate("""() => {
      const vw = document.documentElement.clientWidth;
      const wide = [...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > vw + 1)
        .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '')
                          + (e.className ? '.' + e.className : '')
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
        if lang == "km":  # the shipped Khmer font (static/fonts) is what draws the Khmer text
            page.goto(base + "/staff/")
            page.evaluate("document.fonts.ready")
            loaded = page.evaluate("[...document.fonts].filter(f => f.family.includes('Noto Sans Khmer')"
                                   " && f.status === 'loaded').length")
            assert loaded >= 1
        page.locator("header form.inline button", has_text="Log out" if lang == "en" else "ចាក").first.click()
        page.wait_for_url(base + "/staff/login")
    assert problems == [], json.dumps(problems, indent=1, ensure_ascii=False)


def test_the_nobody_on_call_alert_fits_a_phone_too(settings, browser_page) -> None:
    """The header's alert box (nobody on call, with its link to the roster) on the case page."""
    server = LiveServer(settings.with_(oncall=()))
    try:
        arranged = _arrange(server)
        with resources_of(server.app).db.Session() as s:
            s.execute(sa.delete(OnCallEntry))
            s.commit()
        page, base = browser_page, server.url
        page.set_viewport_size(PHONE)
        _login(page, base, "admin.with.a.long.address@example-ngo.org")
        for path in (f"/staff/cases/{arranged.urgent_id}", "/staff/"):
            page.goto(base + path)
            assert page.locator("header .oncall-warning[role=alert]").is_visible()
            assert _check_width(page, "nobody-on-call" + path.replace("/", "-")) == []
    finally:
        server.stop()


def _axe(page) -> list[dict[str, Any]]:
    result = page.evaluate("opts => axe.run(document, opts)", {"runOnly": {"type": "tag", "values": WCAG_AA},
                                                               "resultTypes": ["violations"]})
    return result["violations"]  # type: ignore[no-any-return]


def _describe(name: str, violations: list[dict[str, Any]]) -> list[str]:
    return [f"{name}: {v['id']} ({v['impact']}) {[n['target'] for n in v['nodes']][:4]}"
            f" {v['nodes'][0].get('failureSummary', '')[:200]}" for v in violations]


WRONG_VOICE = """() => {
  const bad = [];
  const walk = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walk.nextNode(); n; n = walk.nextNode()) {
    const text = n.textContent, parent = n.parentElement;
    const want = /[\u1780-\u17ff]/.test(text) ? "km" : /[\u0e00-\u0e7f]/.test(text) ? "th" : null;
    if (!want || !parent) continue;
    const got = (parent.closest("[lang]") || document.documentElement).lang.split("-")[0];
    const tag = parent.tagName.toLowerCase();
    if (got !== want) bad.push(`${want} text in lang=${got} <${tag}>: ${text.trim().slice(0, 30)}`);
  }
  return bad;
}"""


def _wrong_voice(page, name: str) -> list[str]:
    """Khmer or Thai text whose nearest `lang` says otherwise (a screen reader would use the wrong voice)."""
    return [f"{name}: {b}" for b in page.evaluate(WRONG_VOICE)]


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
    problems += _describe("login", _axe(page)) + _wrong_voice(page, "login")
    email = "admin.with.a.long.address@example-ngo.org"
    for lang in ("en", "km"):
        _set_language(live_server, email, lang)
        _login(page, base, email)
        for name, path in _pages(arranged):
            page.goto(base + path)
            problems += _describe(f"{name}-{lang}", _axe(page)) + _wrong_voice(page, f"{name}-{lang}")
        if lang == "km":  # the reverse: English free text inside a Khmer page is marked English
            page.goto(f"{base}/staff/cases/{arranged.urgent_id}")
            assert page.locator("ol.notes .body", has_text="Sister says").get_attribute("lang") == "en"
            assert page.locator("#case-error").get_attribute("lang") == "en"
            assert page.locator("header.site button[name=language]").get_attribute("lang") == "en"
        page.set_viewport_size(PHONE)  # the phone layout (cards, wrapped tables) is checked too
        for name, path in _pages(arranged)[:4]:
            page.goto(base + path)
            problems += _describe(f"{name}-{lang}-phone", _axe(page))
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(base + "/staff/")
        page.locator("header form.inline button[type=submit]").last.click()
        page.wait_for_url(base + "/staff/login")
    assert problems == [], json.dumps(problems, indent=1, ensure_ascii=False)


def test_axe_harness_reports_a_real_violation(axe_page) -> None:
    """The check can fail: a low-contrast button on a bare page is reported."""
    axe_page.set_content('<html lang="en"><head><title>x</title></head><body><main><h1>x</h1>'
                         '<button style="color:#777;background:#888">Call</button></main></body></html>')
    axe_page.add_script_tag(path=str(AXE))  # init scripts run on navigations, not on set_content
    assert axe_page.evaluate("axe.version") == "4.14.1"
    assert "color-contrast" in [v["id"] for v in _axe(axe_page)]
    axe_page.set_content('<html lang="en"><body><p>ជំនួយ</p></body></html>')
    assert _wrong_voice(axe_page, "bare") == ["bare: km text in lang=en <p>: ជំនួយ"]


def _heard(page, name: str) -> None:
    page.wait_for_selector(f'#transcript li.played[data-name="{name}"]', state="attached")


def _focused(page) -> str:
    return page.evaluate("() => { const a = document.activeElement; return a === document.body ? 'body' : "
                         "(a.id || a.className) + (a.dataset.key ? ':' + a.dataset.key : ''); }")


def test_simulator_call_steps_keep_focus_and_pass_axe_with_a_focusable_live_transcript(live_server, axe_page) -> None:
    page = axe_page
    page.set_viewport_size(PHONE)
    page.goto(live_server.url + "/simulator")
    problems = _describe("sim-idle", _axe(page)) + _wrong_voice(page, "sim-idle")
    log = page.locator("#transcript-log")
    assert log.get_attribute("role") == "log" and log.get_attribute("tabindex") == "0"
    assert page.locator("#transcript-log #transcript").count() == 1
    page.select_option("#lang", "en")
    page.uncheck("#auto-timeout")
    page.focus("#call")
    page.keyboard.press("Enter")  # as a keyboard user: Call is disabled once the call is up
    _heard(page, "km/choose_language")
    assert _focused(page) == "key:1"
    problems += _describe("sim-gather", _axe(page)) + _wrong_voice(page, "sim-gather")
    page.keyboard.press("Enter")  # key 1: Khmer
    _heard(page, "km/main_menu")
    page.locator('.key[data-key="9"]').click()  # urgent: ring the lawyer, or record a message
    page.wait_for_selector("#dial-box:not([hidden]), #record-box:not([hidden])")
    if page.locator("#dial-box").is_visible():
        page.wait_for_function("document.activeElement.id === 'dial-h'")
        problems += _describe("sim-dial", _axe(page))
        page.click("#no-answer")
        page.wait_for_selector("#record-box:not([hidden])")
    page.wait_for_function("document.activeElement.id === 'record-h'")
    problems += _describe("sim-record", _axe(page)) + _wrong_voice(page, "sim-record")
    assert _check_width(page, "simulator-recording") == []
    page.focus("#sample")
    page.keyboard.press("Enter")  # the record box hides: focus goes to the next menu's keys
    _heard(page, "km/urgent_category")
    assert _focused(page) == "key:1"
    page.click("#hangup")
    page.wait_for_selector('#status[data-status="ended"]')
    page.wait_for_function("document.activeElement.id === 'call'")
    page.fill("#sms-body", "ជំនួយ")
    page.click("#sms-send")
    page.wait_for_selector("#sms-thread li.in, #sms-thread li.note")
    problems += _describe("sim-ended", _axe(page)) + _wrong_voice(page, "sim-ended")
    assert problems == [], json.dumps(problems, indent=1, ensure_ascii=False)
