"""`hotline oncall add|list`: the on-call roster from a terminal (the console's On-call roster page)."""

from __future__ import annotations

import click
import sqlalchemy as sa


def register(cli: click.Group) -> None:
    @cli.group("oncall", help="The on-call roster: who is texted about urgent cases.")
    def oncall_group() -> None:
        pass

    @oncall_group.command("add", help="Put a number on call for a country's callers, e.g. `hotline oncall add KH "
                                      "+85512345678`. Alerts at once every urgent case no one was told about.")
    @click.argument("country")
    @click.argument("phone")
    @click.option("--name", default="", help="Who this is, as the roster shows it.")
    @click.option("--position", default=0, show_default=True, type=click.IntRange(0, 99),
                  help="Order within the country: alerts and escalations go down the list.")
    def add(country: str, phone: str, name: str, position: int) -> None:
        from hotline.cli import friendly_errors, settings_or_exit
        from hotline.phones import to_e164
        from hotline.services import oncall
        from hotline.services import staff as staff_service

        s = settings_or_exit()
        number = to_e164(phone, country.upper() if len(country) == 2 else None)
        if number is None:
            raise click.BadParameter(f"{phone!r} is not a phone number (write it with + and the country code)",
                                     param_hint="PHONE")
        with friendly_errors():
            from hotline.resources import Resources

            res = Resources(s)  # its database pushes the alert jobs to Redis after the commit
            try:
                with res.db.session() as session:
                    entry = oncall.add_entry(session, country=country, phone=number, name=name, position=position)
                    staff_service.audit(session, None, "oncall.added", "oncall", entry.id, country=entry.country,
                                        via="cli")
                    queued = oncall.alert_waiting_cases(session, s)
            except oncall.RosterError as exc:
                raise click.BadParameter(str(exc), param_hint="COUNTRY") from None
            finally:
                res.close()
        click.echo(f"on call for {entry.country}: {number} (position {position})")
        if queued:
            click.echo(f"alerting {len(queued)} urgent case(s) that were waiting for someone on call")

    @oncall_group.command("list", help="The roster, and HOTLINE_ONCALL if it is set.")
    def list_() -> None:
        from hotline.cli import friendly_errors, settings_or_exit
        from hotline.db import Database
        from hotline.models import OnCallEntry
        from hotline.services import oncall

        s = settings_or_exit()
        with friendly_errors():
            database = Database(s.database_url)
            try:
                with database.Session() as session:
                    rows = session.scalars(sa.select(OnCallEntry).where(OnCallEntry.active.is_(True))
                                           .order_by(OnCallEntry.country, OnCallEntry.position, OnCallEntry.id)).all()
                    for e in rows:
                        click.echo(f"{e.country}  {e.position:>2}  {e.phone}  {e.name}")
                    for o in s.oncall:
                        click.echo(f"{o.country}   -  {o.phone}  (HOTLINE_ONCALL)")
                    warning = oncall.warning_text(oncall.uncovered(session, s))
            finally:
                database.dispose()
        if warning:
            click.echo(f"WARNING: {warning}", err=True)
