"""`hotline content export|import DIR`: dump a content version to a folder, or seed one from it.

A folder holds what the repo holds: ivr_scripts/ (voice/, sms/ and the rest) and audio/ (the
files and manifest.json). `import` checks the folder with the start-up loaders and publishes it as
the next version (every web process serves it within seconds); `--draft` loads it into the draft
instead, for the content studio to review first.
"""

from __future__ import annotations

from pathlib import Path

import click


def register(cli: click.Group) -> None:
    @cli.group("content", help="Content versions (what callers hear and read): export and import.")
    def content_group() -> None:
        pass

    @content_group.command("export", help="Write a version's ivr_scripts/ and audio/ into DIR (default: the "
                                          "published one; --version N, or --draft).")
    @click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
    @click.option("--version", "number", type=int, default=None, help="A published version number.")
    @click.option("--draft", is_flag=True, help="Export the draft instead.")
    def export(directory: Path, number: int | None, draft: bool) -> None:
        import sqlalchemy as sa

        from hotline.cli import friendly_errors, settings_or_exit
        from hotline.db import Database
        from hotline.models import ContentVersion
        from hotline.services import content

        s = settings_or_exit()
        with friendly_errors():
            db = Database(s.database_url)
            try:
                with db.Session() as session:
                    v: ContentVersion | None
                    if draft:
                        v = content.draft(session)
                    elif number is not None:
                        v = session.scalar(sa.select(ContentVersion).where(ContentVersion.number == number))
                    else:
                        v = content.latest(session) or content.draft(session)
                    if v is None:
                        raise click.ClickException(f"there is no version {number}")
                    files = content.write_tree(session, v, directory, content.store_for(s))
                    session.commit()
            finally:
                db.dispose()
        label = f"version {v.number}" if v.number else "the draft"
        click.echo(f"Wrote {label} to {directory}: {len(files)} script files and audio/ with its manifest.")

    @content_group.command("import", help="Read ivr_scripts/ and audio/ from DIR (e.g. `.` for the repo's "
                                          "starter set), check them and publish them as the next version. "
                                          "The current draft is replaced (export it first to keep it).")
    @click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
    @click.option("--draft", "as_draft", is_flag=True, help="Replace the draft with it; do not publish.")
    @click.option("--note", default="", help="What this version is, for the versions page.")
    def import_(directory: Path, as_draft: bool, note: str) -> None:
        from hotline.cli import friendly_errors, settings_or_exit
        from hotline.resources import Resources
        from hotline.services import content

        s = settings_or_exit()
        with friendly_errors():
            res = Resources(s)
            try:
                with res.db.Session() as session:
                    try:
                        v = content.import_tree(session, directory, content.store_for(s), None,
                                                publish_it=not as_draft, note=note)
                    except content.ContentInvalid as exc:
                        session.rollback()
                        raise click.ClickException("the folder is not valid; nothing was changed:\n  - "
                                                   + "\n  - ".join(p.message for p in exc.problems)) from None
                    except content.ContentError as exc:
                        session.rollback()
                        raise click.ClickException(f"{exc.key}: {exc.detail}") from None
                    session.commit()
                    number = v.number
                if number:
                    content.announce_number(res.redis, number)
            finally:
                res.close()
        click.echo(f"Published as version {number}." if number else "Loaded into the draft (not published).")
