"""The `hotline` command: thin click commands over plain functions."""

from __future__ import annotations

import importlib
import os
import pkgutil
import secrets
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import click

from hotline.settings import Settings, SettingsError, load_settings


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Ordinary start-up mistakes as a few lines (hotline.startup), not a traceback."""
    from hotline.startup import StartupError, startup_errors
    from hotline.supervise import Busy, StartFailed

    try:
        with startup_errors():
            yield
    except (StartupError, Busy, StartFailed) as exc:
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
@click.option("--check", is_flag=True, help="Exit 0 if a worker on this host is alive (a container healthcheck).")
def worker(burst: bool, queues: str | None, check: bool) -> None:
    from hotline.background.queues import QUEUES
    from hotline.background.worker import run_worker
    from hotline.logs import setup_logging
    from hotline.resources import Resources

    names = [q.strip() for q in queues.split(",") if q.strip()] if queues else None
    unknown = [q for q in names or () if q not in QUEUES]
    if unknown or names == []:
        raise click.BadParameter(f"queues are {', '.join(QUEUES)}", param_hint="--queues")
    s = settings_or_exit()
    with friendly_errors():
        res = Resources(s)
        if check:
            _check_worker(res)
            return
        setup_logging(s.log_level)
        _preflight_worker(res)
    run_worker(res, burst=burst, queues=names)


def _preflight_worker(res: Any) -> None:
    """Database reachable and migrated, Redis answering: else one line instead of a traceback."""
    from hotline.db import check_schema
    from hotline.services import oncall

    check_schema(res.db.engine)
    res.redis().ping()
    with res.db.Session() as session:
        oncall.log_warning(session, res.settings)


def _check_worker(res: Any) -> None:
    """A worker of this host (container) whose loop beat recently (hotline.background.admin)."""
    import socket

    from rq import Worker

    from hotline.background.admin import live_workers

    here = socket.gethostname()
    redis = res.redis()
    live = live_workers(redis)
    alive = [w for w in Worker.all(connection=redis) if w.hostname == here and w.name in live]
    if not alive:
        raise click.ClickException(f"no live worker on {here}")
    click.echo(f"{len(alive)} worker(s) alive on {here}")


@cli.group(help="Staff accounts for the console.")
def staff() -> None:
    pass


@staff.command("add", help="Create a staff account; asks for the password.")
@click.argument("email")
@click.option("--role", type=click.Choice(["admin", "lawyer", "operator", "reports"]), default="operator",
              show_default=True)
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
            # Typed by whoever runs the command, not its owner: changed at first login.
            user = staff_service.create(session, email, role, password, name=name, phone=phone, must_change=True)
            staff_service.audit(session, None, "staff.created", "staff", user.id, via="cli", role=role)
    except staff_service.StaffError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"created {user.email} ({role})")


@cli.command(help="Run the hotline: web, one worker and (by default) its own Redis. Ctrl-C stops all.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--web-workers", default=2, show_default=True, type=int)
@click.option("--start-timeout", default=90, show_default=True, type=float,
              help="Seconds to wait for /healthz to answer before giving up.")
def run(host: str, port: int, web_workers: int, start_timeout: float) -> None:
    """Supervise web, worker and Redis as one group (hotline.supervise): whatever ends this command
    (Ctrl-C, SIGTERM, a closed terminal, a child dying, a start-up error) stops all of them."""
    from hotline import supervise

    s = settings_or_exit()
    env = dict(os.environ)
    if "PUBLIC_BASE_URL" not in env and not s.production:
        env["PUBLIC_BASE_URL"] = f"http://127.0.0.1:{port}"
        s = s.with_(public_base_url=env["PUBLIC_BASE_URL"])
    group = supervise.Group()
    lock = supervise.InstanceLock(s.instance_path)
    redis = None
    try:
        with supervise.stop_on_signals(), friendly_errors():
            supervise.check_port_free(host, port)
            lock.acquire()
            if s.embedded_redis:
                from hotline.embedded import EmbeddedRedis

                redis = EmbeddedRedis(s.instance_path).start(take_over=True)
                _say(f"redis: embedded redis-server at {redis.sock}")
            first_login = _prepare(s)
            group.start("worker", [sys.executable, "-m", "hotline", "worker"], env)
            group.start("web server", [
                sys.executable, "-m", "gunicorn", "--bind", f"{host}:{port}", "--workers", str(web_workers),
                "--threads", "4", "--graceful-timeout", "5", "--no-control-socket", "hotline:create_app()"], env)
            local = f"http://{'127.0.0.1' if host in ('0.0.0.0', '') else host}:{port}"
            supervise.wait_until_answering(local, group, start_timeout)
            _announce(s, env.get("PUBLIC_BASE_URL", s.public_base_url), first_login)
            while (stopped := group.exited()) is None:
                time.sleep(0.5)
            raise click.ClickException(f"the {stopped[0]} stopped (exit code {stopped[1]}); "
                                       "stopped everything else too")
    except supervise.Stopped as stop:
        _say(f"\n{stop.args[0]}: stopping web, worker and redis")
    finally:
        for signum in supervise.STOP_SIGNALS:  # a second Ctrl-C must not cut the clean-up short
            signal.signal(signum, signal.SIG_IGN)
        group.stop()
        if redis is not None:
            redis.stop()
        lock.release()


def _prepare(s: Settings) -> tuple[str, str] | None:
    """Migrate, create the first admin (and put a phone on call) on a first run, then build the app
    once here, so a bad script or database is reported in one line before any child starts."""
    from hotline import create_app
    from hotline.db import upgrade
    from hotline.resources import resources_of

    upgrade(s.database_url)
    first_login = None if s.production else _ensure_first_admin(s)
    app = create_app(s, ONCALL_WARNING=False)
    resources_of(app).close()
    return first_login


def _announce(s: Settings, base: str, first_login: tuple[str, str] | None) -> None:
    from hotline.db import Database
    from hotline.services import oncall

    _say(f"\n  Simulator:      {base}/simulator\n  Staff console:  {base}/staff\n"
         f"  Health:         {base}/healthz\n")
    if first_login:
        _say("  First admin login (shown once; you choose your own at first login): "
             f"{first_login[0]} / {first_login[1]}\n")
    database = Database(s.database_url)
    try:
        with database.Session() as session:
            warning = oncall.warning_text(oncall.uncovered(session, s))
    finally:
        database.dispose()
    if warning:
        _say(f"  WARNING: {warning}\n")


def _say(text: str) -> None:
    """Echo, unless the terminal is gone (after SIGHUP, writing to it fails with EIO)."""
    try:
        click.echo(text)
    except OSError:
        pass


def _ensure_first_admin(s: Settings) -> tuple[str, str] | None:
    """Embedded mode only: an admin account on first run, so the console can be tried at once, and,
    while nobody is on call, that admin's phone (asked on a terminal; else the simulator's fictional
    number, labelled as such) on the roster, so the simulator shows urgent-case alerts."""
    import sqlalchemy as sa

    from hotline.db import Database
    from hotline.models import StaffUser
    from hotline.services import oncall
    from hotline.services import staff as staff_service

    database = Database(s.database_url)
    try:
        with database.session() as session:
            if session.scalar(sa.select(sa.func.count(StaffUser.id))):
                return None
            password = secrets.token_urlsafe(12)
            missing = oncall.uncovered(session, s)
            phone = _ask_alert_phone() if missing else None
            user = staff_service.create(session, "admin@hotline.local", "admin", password, name="First admin",
                                        phone=phone, must_change=True)
            staff_service.audit(session, None, "staff.created", "staff", user.id, via="first-run")
            for country in missing:
                entry = oncall.add_entry(session, country=country, phone=phone or oncall.SIMULATOR_PHONE,
                                         name="First admin" if phone else oncall.SIMULATOR_NAME)
                staff_service.audit(session, None, "oncall.added", "oncall", entry.id, country=country,
                                    via="first-run")
            if missing:
                oncall.alert_waiting_cases(session, s)
                shown = phone or f"{oncall.SIMULATOR_PHONE} (fictional: the simulator shows its alerts)"
                _say(f"on call for {', '.join(missing)}: {shown}; change it under On-call roster")
            return user.email, password
    finally:
        database.dispose()


def _ask_alert_phone() -> str | None:
    """On a terminal, ask for the phone that gets urgent-case alerts; None: use the simulator's."""
    from hotline.phones import to_e164

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return None
    while True:
        raw = click.prompt("Your phone number for urgent-case alerts (with + and country code; "
                           "Enter: a fictional number the simulator shows)", default="", show_default=False)
        if not raw.strip():
            return None
        phone = to_e164(raw)
        if phone:
            return phone
        _say("That is not a phone number; try again, like +85512345678, or press Enter.")


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
