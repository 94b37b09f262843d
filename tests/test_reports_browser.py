"""The reports page in a real browser (Debian's Chromium via Playwright): Khmer labels, charts, CSV."""

from __future__ import annotations

import csv
import io

import pytest
import sqlalchemy as sa

from bench.reports import generate
from hotline.resources import resources_of
from hotline.services import staff as staff_service
from tests.conftest import ARTIFACTS

pytestmark = [pytest.mark.browser, pytest.mark.slow]
PASSWORD = "correct horse battery"


def test_reports_page_in_khmer_with_charts_and_a_csv_download(live_server, browser_page) -> None:
    res = resources_of(live_server.app)
    generate(res.db.engine, 0.002, cases=600, quiet=True)  # 2,000 calls, 20,000 path steps, 600 cases
    with res.db.Session() as s:
        user = staff_service.create(s, "donor@example.org", "reports", PASSWORD, name="Donor")
        user.language = "km"
        s.commit()
        phones = list(s.scalars(sa.text("SELECT phone FROM callers LIMIT 50")))
    page, base = browser_page, live_server.url
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(base + "/staff/login")
    page.locator("#email").fill("donor@example.org")
    page.locator("#password").fill(PASSWORD)
    page.locator("button[type=submit]").click()
    page.wait_for_url(base + "/staff/reports")
    page.locator("#r-from").fill("2026-01-01")
    page.locator("#r-to").fill("2026-12-31")
    page.locator("#r-by").select_option("month")
    page.locator("form.filters button[type=submit]").click()
    page.wait_for_url("**/staff/reports?from=2026-01-01&to=2026-12-31&by=month")

    assert page.locator("h1").inner_text() == "របាយការណ៍ខ្សែទូរស័ព្ទជំនួយ"
    assert page.locator("#rep-contacts svg.chart polyline").count() >= 1
    assert page.locator("#rep-cases_province svg.chart rect").count() >= 5
    assert page.locator("#rep-funnel svg.chart rect").count() == 4
    heading = page.locator("#h-cases_province").inner_text()
    assert heading == "ករណីតាមខេត្តកំណើត"
    # Khmer is shaped by a real font: the heading is wider than a row of missing-glyph boxes would be narrow.
    assert page.locator("#h-cases_province").evaluate("e => e.getBoundingClientRect().width") > 100
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "reports-km.png"), full_page=True)

    with page.expect_download() as info:
        page.locator("#download-csv").click()
    path = info.value.path()
    text = open(path, encoding="utf-8-sig").read()
    rows = list(csv.reader(io.StringIO(text)))
    assert ["ទំនាក់ទំនងតាមមធ្យោបាយ"] in rows
    shown = page.locator("#rep-contacts tbody tr").first.locator("th, td").all_inner_texts()
    assert [c.strip() for c in shown] in rows
    for phone in phones:
        assert phone not in text
