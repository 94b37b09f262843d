"""The reports page, its downloads, the `reports` role, and a case's province on the case page."""

from __future__ import annotations

import csv
import io
import re

import sqlalchemy as sa
from openpyxl import load_workbook

from hotline.models import AuditEvent, Case
from tests.test_console import login, make_case, make_staff, post, token
from tests.test_reports import BODY, NOTE, PHONES, STAFF_NAME, crafted

RANGE = "from=2026-01-01&to=2026-02-28&by=month"


def cells(html: str, table_id: str) -> list[list[str]]:
    section = html.split(f'id="rep-{table_id}"', 1)[1].split("</section>", 1)[0]
    body = section.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    cell = re.compile(r"<t[hd][^>]*>(.*?)</t[hd]>")
    return [[re.sub(r"<[^>]+>", "", c).replace("&lt;", "<").strip() for c in cell.findall(r)]
            for r in re.findall(r"<tr>(.*?)</tr>", body)]


def test_admin_sees_tables_and_charts_with_small_cells_hidden(client, db):
    crafted(db)
    make_staff(db, "admin@example.org", "admin")
    login(client, "admin@example.org")
    resp = client.get(f"/staff/reports?{RANGE}")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert cells(html, "contacts")[0] == ["Calls to the menu", "<5", "<5", "6"]
    assert html.count("<svg") >= 6 and "https://" not in html.split("<main", 1)[1].split("xmlns", 1)[0]
    assert "cdn" not in html.lower()
    for secret in (*PHONES.values(), BODY, NOTE, STAFF_NAME):
        assert secret not in html
    assert ["reports.viewed"] == list(db.scalars(sa.select(AuditEvent.action).where(
        AuditEvent.object_type == "report")))


def test_csv_and_xlsx_hold_exactly_what_the_page_shows(client, db):
    crafted(db)
    make_staff(db, "admin@example.org", "admin")
    login(client, "admin@example.org")
    html = client.get(f"/staff/reports?{RANGE}").get_data(as_text=True)
    resp = client.get(f"/staff/reports/export.csv?{RANGE}")
    assert resp.status_code == 200 and "attachment" in resp.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(resp.get_data(as_text=True).lstrip("\ufeff"))))
    for table_id in ("contacts", "callers", "cases_province", "durations", "sms_keyword"):
        shown = cells(html, table_id)
        start = next(i for i, r in enumerate(rows) if r and r[0] == shown[0][0] and i > 0)
        assert rows[start:start + len(shown)] == shown, table_id
    xlsx = client.get(f"/staff/reports/export.xlsx?{RANGE}")
    wb = load_workbook(io.BytesIO(xlsx.data))
    sheet = [list(r) for r in wb["contacts"].iter_rows(values_only=True)]
    assert sheet[2] == ["Calls to the menu", "<5", "<5", 6]
    text = xlsx.data + resp.data
    for secret in (*PHONES.values(), BODY, NOTE, STAFF_NAME):
        assert secret.encode() not in text


def test_khmer_page(client, db):
    crafted(db)
    user = make_staff(db, "admin@example.org", "admin")
    user.language = "km"
    db.commit()
    login(client, "admin@example.org")
    html = client.get(f"/staff/reports?{RANGE}").get_data(as_text=True)
    assert "ការហៅទៅម៉ឺនុយ" in html
    assert cells(html, "cases_province")[0] == ["បន្ទាយមានជ័យ", "<5", "0", "<5"]  # one case there: hidden


def test_reports_role_sees_reports_and_nothing_else(client, db):
    case = make_case(db)
    make_staff(db, "donor@example.org", "reports")
    login(client, "donor@example.org")
    assert client.get("/staff/").location == "/staff/reports"
    assert client.get(f"/staff/reports?{RANGE}").status_code == 200
    assert client.get(f"/staff/reports/export.csv?{RANGE}").status_code == 200
    assert client.get(f"/staff/cases/{case.id}").status_code == 403
    assert client.get("/staff/callbacks").status_code == 403
    assert client.get("/staff/audit").status_code == 403


def test_lawyers_and_operators_cannot_open_reports(client, db):
    make_staff(db, "op@example.org", "operator")
    login(client, "op@example.org")
    assert client.get("/staff/reports").status_code == 403
    assert client.get(f"/staff/reports/export.xlsx?{RANGE}").status_code == 403


def test_a_bad_range_says_so(client, db):
    make_staff(db, "admin@example.org", "admin")
    login(client, "admin@example.org")
    resp = client.get("/staff/reports?from=2026-03-01&to=2026-01-01&by=month")
    assert resp.status_code == 400 and "at most three years" in resp.get_data(as_text=True)
    assert client.get("/staff/reports?from=yesterday").status_code == 400
    assert client.get(f"/staff/reports/export.pdf?{RANGE}").status_code == 400


def test_staff_set_the_province_on_the_case_page_audited(client, db):
    case = make_case(db)
    make_staff(db)
    login(client)
    page = client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    assert 'name="province"' in page and "Banteay Meanchey" in page and "Mongkol Borei" in page or "Mangkul" in page
    assert post(client, f"/staff/cases/{case.id}/province", {"province": "02", "district": "0203"}).status_code == 302
    db.expire_all()
    got = db.get(Case, case.id)
    assert (got.province, got.district) == ("02", "0203")
    event = db.scalars(sa.select(AuditEvent).where(AuditEvent.action == "case.province")).one()
    assert event.detail == {"before": [None, None], "after": ["02", "0203"]}
    assert "Battambang" in client.get(f"/staff/cases/{case.id}").get_data(as_text=True)
    # A district of another province, or an unknown code, changes nothing.
    post(client, f"/staff/cases/{case.id}/province", {"province": "02", "district": "1701"})
    post(client, f"/staff/cases/{case.id}/province", {"province": "99"})
    db.expire_all()
    assert (db.get(Case, case.id).province, db.get(Case, case.id).district) == ("02", "0203")
    assert post(client, f"/staff/cases/{case.id}/province", {"province": ""}).status_code == 302
    db.expire_all()
    assert db.get(Case, case.id).province is None
    assert token  # the helpers come from test_console
