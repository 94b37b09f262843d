"""The `hotline` command: thin click commands over plain functions."""

from __future__ import annotations

import importlib
import os
import pkgutil
import secrets
import signal
import subprocess
import sys
import time
from typing import Any

import click

from hotline.settings import Settings, SettingsError, load_settings


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@click.group(help="The Safe Migration Hotline.")
def cli() -> None:
    pass


@cli.group(help="Database commands.")
def db() -> None:
    pass


@db.command("upgrade", help="Apply every migration (safe to run again).")
def db_upgrade() -> None:
    from hotline.db import upgrade

    s = settings_or_exit()
    upgrade(s.database_url)
    click.echo("database is up to date")


@cli.command(help="Run the RQ workers (urgent, default, low; slow in a thread of its own), the outbox "
                  "sweeper and the periodic duties.")
@click.option("--burst", is_flag=True, help="Run the jobs waiting now, then exit.")
@click.option("--queues", default=None, metavar="urgent,default,low,slow",
              help="One worker on just these queues, to scale them apart (default: all, slow in its own thread).")
def worker(burst: bool, queues: str | None) -> None:
    from hotline.background.queues import QUEUES
    from hotline.background.worker import run_worker
    from hotline.logs import setup_logging
    from hotline.resources import Resources

    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    unknown = [q for q in names or () if q not in QUEUES]
    if unknown or names == []:
        raise click.BadParameter(f"queues are {', '.join(QUEUES)}", param_hint="--queues")
    s = settings_or_exit()
    setup_logging(s.log_level)
    run_worker(Resources(s), burst=burst, queues=names)


@cli.group(help="Staff accounts for the console.")
def staff() -> None:
    pass


@staff.command("add", help="Create a staff account; asks for the password.")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "lawyer", "operator"]), default="operator", show_default=True)
@click.option("--name", default="")
@click.option("--phone", default=None, help="E.164 number that rings first when this person calls back.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              envvar="HOTLINE_STAFF_PASSWORD", help="Or set HOTLINE_STAFF_PASSWORD.")
def staff_add(email: str, role: str, name: str, phone: str | None, password: str) -> None:
    from hotline.db import Database
    from hotline.services import staff as staff_service

    s = settings_or_exit()
    database = Database(s.database_url)
    try:
        with database.session() as session:
            user = staff_service.create(session, email, role, password, name=name, phone=phone)
            staff_service.audit(session, None, "staff.created", "staff", user.id, via="cli", role=role)
    except staff_service.StaffError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {user.email} ({role})")


@cli.command(help="Run the hotline: web, one worker and (by default) its own Redis. Ctrl-C stops all.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--web-workers", default=2, show_default=True, type=int)
def run(host: str, port: int, web_workers: int) -> None:
    from hotline.db import upgrade

    s = settings_or_exit()
    env = dict(os.environ)
    if "PUBLIC_BASE_URL" not in env and not s.production:
        env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
        s = s.with_(public_base_url=env["PUBLIC_BASE_URL"])
    redis = None
    if s.embedded_redis:
        from hotline.embedded import EmbeddedRedis

        redis = EmbeddedRedis(s.instance_path).start()
        click.echo(f"redis: embedded redis-server at {redis.sock}")
    upgrade(s.database_url)
    first_login = None if s.production else _ensure_first_admin(s)
    procs: list[subprocess.Popen[Any]] = []

    def stop(*_: Any) -> None:
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if redis is not None:
            redis.stop()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        procs.append(subprocess.Popen([sys.executable, "-m", "hotline", "worker"], env=env))
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", str(web_workers),
             "--threads", "4",
             "hotline:create_app()"], env=env))
        base = env.get("PUBLIC_BASE_URL", s.public_base_url)
        click.echo(f"\n  Simulator:      {base}/simulator\n  Staff console:  {base}/staff\n"
                   f"  Health:         {base}/healthz\n")
        if first_login:
            click.echo(f"  First admin login (shown once; change it): {first_login[0]} / {first_login[1]}\n")
        while all(p.poll() is None for p in procs):
            time.sleep(0.5)
        failed = [p.args for p in procs if p.poll() not in (None, 0)]
        if failed:
            raise click.ClickException(f"a process stopped: {failed}")
    except KeyboardInterrupt:
        pass
    finally:
        stop()


def _ensure_first_admin(s: Settings) -> tuple[str, str] | None:
    """Embedded mode only: an admin account on first run, so the console can be tried at once."""
    import sqlalchemy as sa

    from hotline.db import Database
    from hotline.models import StaffUser
    from hotline.services import staff as staff_service

    database = Database(s.database_url)
    try:
        with database.session() as session:
            if session.scalar(sa.select(sa.func.count(StaffUser.id))):
                return None
            password = secrets.token_urlsafe(12)
            user = staff_service.create(session, "admin@hotline.local", "admin", password, name="First admin")
            staff_service.audit(session, None, "staff.created", "staff", user.id, via="first-run")
            return user.email, password
    finally:
        database.dispose()


def _load_extra_commands() -> None:
    import hotline.commands as pkg

    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if callable(register):
            register(cli)


_load_extra_commands()


def main() -> None:
    cli(prog_name="hotline")
