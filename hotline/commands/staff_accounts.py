"""`hotline staff reset-password EMAIL`: a temporary password for a locked-out or forgotten account."""

from __future__ import annotations

from typing import Any

import click


@click.command("reset-password", help="Give an account a temporary password (printed once), to be changed at "
                                      "its next login; ends its sessions and clears a lockout.")
@click.argument("email")
def reset_password(email: str) -> None:
    import sqlalchemy as sa

    from hotline.cli import settings_or_exit
    from hotline.db import Database
    from hotline.models import StaffUser
    from hotline.services import staff as staff_service

    settings = settings_or_exit()
    database = Database(settings.database_url)
    try:
        with database.session() as session:
            user = session.scalar(sa.select(StaffUser).where(StaffUser.email == email.strip().lower()))
            if user is None:
                raise click.ClickException(f"no account for {email}")
            temporary = staff_service.reset_password(session, user)
            staff_service.audit(session, None, "staff.password_reset", "staff", user.id, via="cli")
    finally:
        database.dispose()
    click.echo(f"temporary password for {user.email} (shown once; changed at next login): {temporary}")


def register(cli: Any) -> None:
    cli.commands["staff"].add_command(reset_password)  # type: ignore[attr-defined]
