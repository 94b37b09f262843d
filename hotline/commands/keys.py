"""`hotline keys generate` and `hotline keys rotate` (see hotline.crypto for the key list)."""

from __future__ import annotations

from typing import Any

import click


@click.group("keys", help="Data keys: recordings, message bodies and case notes are encrypted with them.")
def keys() -> None:
    pass


@keys.command("generate", help="Print a new Fernet key (put it FIRST in DATA_KEY, keep the old ones after it).")
def generate() -> None:
    from cryptography.fernet import Fernet

    click.echo(Fernet.generate_key().decode())


@keys.command("rotate", help="Re-encrypt stored message bodies, case notes and recordings with the newest key "
                             "(the first in DATA_KEY). Safe to run again; the app may keep running.")
def rotate() -> None:
    from hotline.cli import settings_or_exit
    from hotline.resources import Resources
    from hotline.services import keys as key_service

    settings = settings_or_exit()
    res = Resources(settings)
    try:
        with res.db.session() as s:
            report = key_service.rotate(s, settings)
    finally:
        res.close()
    for line in report.lines():
        click.echo(line)
    if len(settings.data_keys) > 1:
        click.echo("Every value now uses the newest key: the older keys can be removed from DATA_KEY.")


def register(cli: Any) -> None:
    cli.add_command(keys)
