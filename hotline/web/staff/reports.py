"""Console: the reports page (`/staff/reports`, admins and the `reports` role) and a case's province.

The page, its charts and its CSV/XLSX downloads are built from one `present()` call, so a download
holds exactly what the page shows, with the same small cells hidden.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from flask import Response, abort, flash, redirect, render_template, request, url_for

from hotline.db import utcnow
from hotline.models import Role
from hotline.services import cases, places, reports
from hotline.web import charts, resources, session
from hotline.web.staff.base import _lang, audit, staff_required
from hotline.web.staff.base import bp as staff_bp
from hotline.web.staff.i18n import report_label, t

REPORT_ROLES = (Role.ADMIN, Role.REPORTS)


@staff_bp.context_processor
def _places() -> dict[str, Any]:
    return {"places": places}


def _period() -> reports.Period | None:
    today = utcnow().astimezone(resources().settings.tz).date()
    default_from = (today.replace(day=1) - timedelta(days=150)).replace(day=1)
    try:
        start = date.fromisoformat(request.args.get("from") or default_from.isoformat())
        end = date.fromisoformat(request.args.get("to") or today.isoformat())
        by = request.args.get("by") or "month"
        return reports.Period(start, end, by, resources().settings.tz)  # type: ignore[arg-type]
    except ValueError:
        return None


def _shown(period: reports.Period) -> list[reports.Shown]:
    rep = reports.build(session(), period)
    return reports.present(rep, resources().settings.report_min_cell, report_label(_lang()), _lang())


def _chart(table: reports.Shown) -> Any:
    if table.chart is None:
        return None
    total = t("rep_total", _lang())
    has_total = bool(table.columns) and table.columns[-1] == total
    body = table.rows[:-1] if table.labels and table.labels[-1] == total else table.rows  # no bar for the total
    values = table.values[:len(body)]
    if table.chart == "line":
        cols = table.columns[:-1] if has_total else table.columns
        return charts.line(table.title, cols, [(r[0], v[:len(cols)], r[1:1 + len(cols)])
                                               for r, v in zip(body, values, strict=True)])
    col = len(table.columns) - 1 if has_total else 0  # bars: the range total, else the first column
    labels, vals, texts = [r[0] for r in body], [v[col] for v in values], [r[1 + col] for r in body]
    if table.chart == "funnel":
        return charts.funnel(table.title, labels, vals, texts)
    return charts.bars(table.title, labels, vals, texts)


@staff_bp.get("/reports", endpoint="reports")
@staff_required(roles=REPORT_ROLES)
def reports_page():  # type: ignore[no-untyped-def]
    period = _period()
    if period is None:
        return render_template("staff/reports.html", tables=[], period=None, args=request.args,
                               error=t("rep_bad_range", _lang()), k=resources().settings.report_min_cell), 400
    shown = _shown(period)
    audit("reports.viewed", "report", None, start=period.start.isoformat(), end=period.end.isoformat(), by=period.by)
    session().commit()
    return render_template("staff/reports.html", tables=[(tb, _chart(tb)) for tb in shown], period=period,
                           args={"from": period.start.isoformat(), "to": period.end.isoformat(), "by": period.by},
                           k=resources().settings.report_min_cell, error=None)


@staff_bp.get("/reports/export.<fmt>")
@staff_required(roles=REPORT_ROLES)
def reports_export(fmt: str):  # type: ignore[no-untyped-def]
    period = _period()
    if period is None or fmt not in ("csv", "xlsx"):
        abort(400)
    shown = _shown(period)
    title = f"{t('rep_title', _lang())} {period.start.isoformat()} – {period.end.isoformat()} ({period.by})"
    audit("reports.exported", "report", None, start=period.start.isoformat(), end=period.end.isoformat(),
          by=period.by, format=fmt)
    session().commit()
    name = f"hotline-report-{period.start.isoformat()}-{period.end.isoformat()}-{period.by}.{fmt}"
    if fmt == "csv":
        body: bytes = ("\ufeff" + reports.to_csv(shown, title)).encode()  # BOM: Excel then reads UTF-8 Khmer
        mimetype = "text/csv; charset=utf-8"
    else:
        body = reports.to_xlsx(shown, title)
        mimetype = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, mimetype=mimetype, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@staff_bp.post("/cases/<int:case_id>/province")
@staff_required(roles=(Role.ADMIN, Role.LAWYER, Role.OPERATOR))
def case_province(case_id: int):  # type: ignore[no-untyped-def]
    """Set (or clear) the home province and district of the person the case is about; audited."""
    case = cases.get_case(session(), case_id)
    if case is None:
        abort(404)
    try:
        province, district = places.check(request.form.get("province"), request.form.get("district"))
    except ValueError:
        flash(t("bad_province", _lang()), "error")
        return redirect(url_for("staff.case_page", case_id=case.id))
    before = cases.set_place(case, province, district)
    audit("case.province", "case", case.id, before=list(before), after=[province, district])
    session().commit()
    flash(t("province_saved", _lang()), "ok")
    return redirect(url_for("staff.case_page", case_id=case.id))
