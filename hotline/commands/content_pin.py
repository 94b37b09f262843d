"""`hotline staff set-pin EMAIL`: the PIN a content or admin account types on the content line."""

from __future__ import annotations

from typing import Any

import click


@click.command("set-pin", help="Set the PIN (6-8 digits) an account types on the content line, where staff "
                               "record prompts by phone from the phone number on their account.")
@click.argument("email")
@click.option("--pin", prompt=True, hide_input=True, confirmation_prompt=True, help="Asked when not given.")
def set_pin(email: str, pin: str) -> None:
    import sqlalchemy as sa

    from hotline.cli import settings_or_exit
    from hotline.db import Database
    from hotline.models import StaffUser
    from hotline.services import content_line
    from hotline.services import staff as staff_service

    settings = settings_or_exit()
    database = Database(settings.database_url)
    try:
        with database.session() as session:
            user = session.scalar(sa.select(StaffUser).where(StaffUser.email == email.strip().lower()))
            if user is None:
                raise click.ClickException(f"no account for {email}")
            if user.role not in content_line.ROLES:
                raise click.ClickException(f"{user.email} is {user.role}: only content and admin accounts record")
            if not user.phone:
                raise click.ClickException(f"{user.email} has no phone number: the content line knows staff by it")
            try:
                content_line.set_pin(session, user, pin)
            except content_line.PinError as exc:
                raise click.ClickException(str(exc)) from None
            staff_service.audit(session, None, "content_line.pin_set", "staff", user.id, via="cli")
    finally:
        database.dispose()
    click.echo(f"PIN set for {user.email}; call the content line from {user.phone[:4]}... to record")


def register(cli: Any) -> None:
    cli.commands["staff"].add_command(set_pin)  # type: ignore[attr-defined]
