"""`hotline scripts check-sms`: check the SMS keyword data and show the parts of every reply."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from hotline.menus import keywords
from hotline.menus.textnorm import sms_segments, sms_units

DEFAULT_DIR = Path(__file__).resolve().parent.parent.parent / "ivr_scripts" / "sms"


def check_sms(directory: Path) -> list[str]:
    """Load and check the data; one line per reply (language, id, country, encoding, units, parts)."""
    ks = keywords.load(directory)
    lines = []
    for lang, rid, country, text in ks.all_replies():
        encoding, costs = sms_units(text)
        lines.append(f"{lang:3} {rid:10} {country:6} {encoding} {sum(costs):4} units {sms_segments(text)} part(s)")
    # The neutral list repeats numbers of the country lists: each number counts once.
    unchecked = len({n.number for nums in ks.numbers.values() for n in nums if not n.phone_checked})
    lines.append(f"ok: {len(ks.languages)} languages, {len(lines)} replies within {ks.max_reply_parts} parts; "
                 f"{unchecked} numbers still need a phone check")
    return lines


@click.command("check-sms", help="Check the SMS keywords and replies (ivr_scripts/sms) and count SMS parts.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=DEFAULT_DIR,
              show_default=True)
def check_sms_command(directory: Path) -> None:
    try:
        lines = check_sms(directory)
    except keywords.ScriptError as exc:
        raise click.ClickException(str(exc)) from None
    for line in lines:
        click.echo(line)


def register(cli: Any) -> None:
    # The IVR's `hotline scripts` group may already exist (its module loads first): join it.
    group = cli.commands.get("scripts")
    if group is None:
        group = click.Group("scripts", help="Check the IVR and SMS scripts.")
        cli.add_command(group)
    group.add_command(check_sms_command)
