"""`hotline purge --older-than 90d [--dry-run]`: purge old recordings and message bodies, keep counts."""

from __future__ import annotations

from typing import Any

import click


@click.command("purge", help="Purge recordings, message bodies, phone numbers and closed cases' notes older than an "
                             "age; rows and counts are kept. "
                             "A case still open keeps its own.")
@click.option("--older-than", "older_than", default=None,
              help="Age such as 90d, 12w or 36h (default: RETENTION_DAYS days, 365 unless set).")
@click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
def purge_command(older_than: str | None, dry_run: bool) -> None:
    from datetime import timedelta

    from hotline.cli import settings_or_exit
    from hotline.resources import Resources
    from hotline.services.retention import parse_age, purge_now

    settings = settings_or_exit()
    if older_than is None:
        if not settings.retention_days:
            raise click.UsageError("give --older-than (e.g. 90d) or set RETENTION_DAYS")
        age = timedelta(days=settings.retention_days)
    else:
        try:
            age = parse_age(older_than)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--older-than") from None
    res = Resources(settings)
    try:
        report = purge_now(res, age, dry_run=dry_run)
    finally:
        res.close()
    for line in report.lines():
        click.echo(line)
    if report.remote_failed:
        click.echo(f"Twilio copies not deleted this time: {report.remote_failed} (run again later)")


def register(cli: Any) -> None:
    cli.add_command(purge_command)
