"""`hotline scripts check`, `hotline audio check|import|placeholders`: thin over plain functions."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from hotline.menus.schema import Script

if TYPE_CHECKING:
    from hotline.audio_tools import ImportReport

SCRIPT_DIR = Path(__file__).resolve().parent.parent.parent / "ivr_scripts" / "voice"


def _script(folder: Path) -> Script:
    from hotline.menus.loader import ScriptError, load_script

    try:
        return load_script(folder)
    except ScriptError as exc:
        raise click.ClickException(str(exc)) from None


def _group(cli: click.Group, name: str, help: str) -> click.Group:
    """Share a group with other modules that add commands to it (e.g. the SMS scripts)."""
    existing = cli.commands.get(name)
    if isinstance(existing, click.Group):
        return existing
    group = click.Group(name, help=help)
    cli.add_command(group)
    return group


def register(cli: click.Group) -> None:
    scripts = _group(cli, "scripts", "Menus and keywords as data (ivr_scripts/).")
    audio = _group(cli, "audio", "Recorded prompts (audio/<lang>/*.mp3 and audio/manifest.json).")

    @scripts.command("check", help="Validate the voice script, its audio, and the SMS keywords (all of ivr_scripts/).")
    @click.option("--voice-dir", type=click.Path(file_okay=False, path_type=Path), default=SCRIPT_DIR,
                  show_default=True)
    @click.option("--audio-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
    def scripts_check(voice_dir: Path, audio_dir: Path | None) -> None:
        from hotline.audio_tools import AUDIO_DIR, matrix

        script = _script(voice_dir)
        rows = matrix(script, audio_dir or AUDIO_DIR)
        missing = [f"{lang}/{name}.mp3" for name, cells in rows for lang, (st, _) in cells.items() if st == "missing"]
        review = sum(1 for p in script.prompts.values() for t in p.texts.values() if t.review)
        click.echo(f"{voice_dir}: {len(script.nodes)} nodes, {len(script.prompts)} prompts, languages "
                   f"{', '.join(script.languages)}: valid ({review} texts marked for review)")
        from hotline.menus import facts  # every number never phone-checked, every fact due

        try:
            for line in facts.coverage_lines(facts.load()):
                click.echo(line)
        except facts.FactsError as exc:
            raise click.ClickException(str(exc)) from None
        if missing:
            raise click.ClickException(f"{len(missing)} audio file(s) missing: {', '.join(missing[:20])}"
                                       + (" ..." if len(missing) > 20 else "")
                                       + "\n(run `hotline audio placeholders` or `hotline audio import`)")
        click.echo(f"audio: all {len(rows) * len(script.languages)} prompt files present")
        from hotline.commands.sms_scripts import DEFAULT_DIR, check_sms
        from hotline.menus.keywords import ScriptError

        try:
            summary = check_sms(DEFAULT_DIR)[-1]
        except ScriptError as exc:
            raise click.ClickException(str(exc)) from None
        click.echo(f"{DEFAULT_DIR}: {summary} (details: `hotline scripts check-sms`)")
        from hotline.menus import consent

        try:
            texts = consent.load()
        except ValueError as exc:
            raise click.ClickException(f"SMS consent questions: {exc}") from None
        click.echo(f"{consent.CONSENT_FILE.name}: valid ({len(texts.replies)} questions and replies, "
                   "review: native-speaker)")

    @audio.command("check", help="Print the prompt x language matrix: recorded, placeholder or missing.")
    @click.option("--audio-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
    def audio_check(audio_dir: Path | None) -> None:
        from hotline.audio_tools import AUDIO_DIR, format_matrix, matrix

        script = _script(SCRIPT_DIR)
        rows = matrix(script, audio_dir or AUDIO_DIR)
        click.echo(format_matrix(script, rows))
        if any(st == "missing" for _, cells in rows for st, _ in cells.values()):
            raise click.ClickException("some prompts have no audio file")

    @audio.command("import", help="Import recordings (any format ffmpeg reads: wav, mp3, m4a, ogg ...) named after "
                                  "the prompts, e.g. main_menu.m4a; --draft puts them into the content studio's draft.")
    @click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
    @click.option("--lang", required=True, help="Language of the recordings, e.g. km.")
    @click.option("--audio-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="The starter set to write into (default: the repo's audio/).")
    @click.option("--draft", is_flag=True, help="Into the draft (marked for review, heard once published) instead "
                                                "of the starter set.")
    def audio_import(directory: Path, lang: str, audio_dir: Path | None, draft: bool) -> None:
        from hotline.audio_tools import AUDIO_DIR, AudioError, import_dir

        try:
            if draft:
                report = _import_into_draft(directory, lang)
            else:
                report = import_dir(directory, lang, _script(SCRIPT_DIR), audio_dir or AUDIO_DIR)
        except AudioError as exc:
            raise click.ClickException(str(exc)) from None
        where = "the draft" if draft else f"{lang}/"
        for name, secs in report.imported:
            click.echo(f"imported {lang}/{name}.mp3 ({secs:.1f}s) into {where}" if draft
                       else f"imported {lang}/{name}.mp3 ({secs:.1f}s)")
        for file, reason in report.refused:
            click.echo(f"refused {file}: {reason}", err=True)
        click.echo(f"{len(report.imported)} imported, {len(report.refused)} refused")
        if report.refused:
            raise SystemExit(1)

    @audio.command("placeholders", help="Generate placeholder prompts offline (espeak-ng) where none exist.")
    @click.option("--force", is_flag=True, help="Also replace existing placeholders (never real recordings).")
    @click.option("--audio-dir", type=click.Path(file_okay=False, path_type=Path), default=None)
    def audio_placeholders(force: bool, audio_dir: Path | None) -> None:
        from hotline.audio_tools import AUDIO_DIR, placeholders

        written = placeholders(_script(SCRIPT_DIR), audio_dir or AUDIO_DIR, force=force)
        click.echo(f"{len(written)} placeholder(s) written")


def _import_into_draft(directory: Path, lang: str) -> ImportReport:
    """Each file through the same pipeline as the console's recorder, into the draft (one at a time:
    a refused file leaves the others in)."""
    from hotline.audio_tools import IMPORTABLE, AudioError, ImportReport  # noqa: F811
    from hotline.cli import settings_or_exit
    from hotline.db import Database
    from hotline.services import content
    from hotline.services.takes import put_take

    settings = settings_or_exit()
    database = Database(settings.database_url)
    report = ImportReport()
    try:
        with database.session() as s:
            if lang not in content.languages(s, content.draft(s)):
                raise AudioError(f"{lang!r} is not a language of the content")
            s.commit()
            files = sorted(p for p in directory.iterdir() if p.is_file() and p.suffix.lower() in IMPORTABLE)
            for path in files:
                try:
                    with s.begin_nested():
                        stored = put_take(s, settings, prompt_id=path.stem, lang=lang, src=path, source="import",
                                          staff_id=None)
                except AudioError as exc:
                    report.refused.append((path.name, str(exc)))
                    continue
                except content.ContentError:
                    report.refused.append((path.name, f"'{path.stem}' is not a prompt; name the file after the "
                                                      "prompt, e.g. main_menu.m4a"))
                    continue
                s.commit()
                report.imported.append((path.stem, stored.made.seconds))
    finally:
        database.dispose()
    return report
