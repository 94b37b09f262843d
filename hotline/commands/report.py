"""`hotline report --from 2026-01-01 --to 2026-06-30 --by month --format csv|xlsx|json [--output F]`.

The same tables as the console's reports page, with the same small-cell suppression
(REPORT_MIN_CELL), for scheduled exports. Labels are English unless `--lang km`.
"""

from __future__ import annotations

import sys
from datetime import date
from pathlib import Path
from typing import Any

import click


def _date(_ctx: Any, param: Any, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date like 2026-01-31", param=param) from None


@click.command("report", help="Indicators for a date range (local days in HOTLINE_TIMEZONE), small counts hidden.")
@click.option("--from", "start", required=True, callback=_date, help="First day, YYYY-MM-DD.")
@click.option("--to", "end", required=True, callback=_date, help="Last day (included), YYYY-MM-DD.")
@click.option("--by", type=click.Choice(["week", "month"]), default="month", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "xlsx", "json"]), default="csv", show_default=True)
@click.option("--lang", type=click.Choice(["en", "km"]), default="en", show_default=True, help="Label language.")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write to this file (default: standard output; xlsx needs a file).")
def report_command(start: date, end: date, by: str, fmt: str, lang: str, output: Path | None) -> None:
    from hotline.cli import settings_or_exit
    from hotline.db import Database
    from hotline.services import reports
    from hotline.web.staff.i18n import report_label, t

    settings = settings_or_exit()
    try:
        period = reports.Period(start, end, by, settings.tz)  # type: ignore[arg-type]
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if fmt == "xlsx" and output is None:
        raise click.UsageError("--format xlsx needs --output FILE")
    database = Database(settings.database_url)
    try:
        with database.session() as session:
            rep = reports.build(session, period)
    finally:
        database.dispose()
    shown = reports.present(rep, settings.report_min_cell, report_label(lang), lang)
    title = f"{t('rep_title', lang)} {start.isoformat()} – {end.isoformat()} ({by})"
    if fmt == "xlsx":
        data: bytes = reports.to_xlsx(shown, title)
    elif fmt == "json":
        data = reports.to_json(shown, title, {"from": start.isoformat(), "to": end.isoformat(), "by": by,
                                              "min_cell": settings.report_min_cell}).encode() + b"\n"
    else:
        data = reports.to_csv(shown, title).encode()
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        output.write_bytes(data)
        click.echo(f"wrote {output} ({len(data)} bytes)", err=True)


def register(cli: Any) -> None:
    cli.add_command(report_command)
