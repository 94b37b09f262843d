"""A first run and a deployment an NGO can operate: nobody on call is said out loud, the first roster
entry alerts the cases that waited, start-up mistakes are a few lines, `hotline run` is one group.

The `hotline run` tests start the real command in a subprocess (embedded SQLite and redis-server in
a temporary instance folder) and send it real signals; a process belongs to the run when its
environment holds that folder, so "nothing left behind" is checked across the whole machine.
"""

from __future__ import annotations

import io
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

from hotline import create_app
from hotline.cli import _ensure_first_admin, cli
from hotline.db import Database
from hotline.menus.loader import ScriptError, load_script
from hotline.models import Case, CasePriority, OnCallEntry, OutboxJob
from hotline.resources import resources_of
from hotline.services import callers, intake, oncall
from hotline.settings import SettingsError, load_settings
from hotline.startup import StartupError
from tests.conftest import run_worker_burst
from tests.test_console import PASSWORD, login, make_staff, post

ROOT = Path(__file__).resolve().parent.parent
VOICE = ROOT / "ivr_scripts" / "voice"
LAWYER = "+66812349999"


def open_urgent(db, phone: str = "+66891234567", country: str = "TH") -> int:
    caller = callers.get_or_create(db, phone)
    case, _ = intake.open_case(db, caller=caller, source="sms", source_sid=None, priority=CasePriority.URGENT,
                               country=country)
    db.commit()
    return case.id


def bad_script(tmp_path: Path) -> Path:
    """The shipped voice script with one bad default (a target that does not exist)."""
    target = tmp_path / "voice"
    shutil.copytree(VOICE, target)
    menu = target / "menu.yaml"
    text = menu.read_text(encoding="utf-8")
    assert "then: offer_callback}" in text
    menu.write_text(text.replace("no_input: {retries: 2, then: offer_callback}",
                                 "no_input: {retries: 2, then: paperz}", 1), encoding="utf-8")
    return target


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def dead_postgres_url() -> str:
    return f"postgresql://hotline:secret@127.0.0.1:{free_port()}/hotline"


# -- nobody on call ------------------------------------------------------------------------------


def test_nobody_on_call_is_warned_at_web_start_and_not_once_someone_is(settings, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="hotline.services.oncall")
    app = create_app(settings.with_(oncall=()), TESTING=True)
    resources_of(app).close()
    [warning] = [r.getMessage() for r in caplog.records if r.name == "hotline.services.oncall"]
    assert warning.startswith("Nobody is on call: urgent-case alerts reach no one.")
    assert "HOTLINE_ONCALL" in warning and "hotline oncall add" in warning
    caplog.clear()
    app = create_app(settings, TESTING=True)  # HOTLINE_ONCALL covers TH and KH
    resources_of(app).close()
    assert not [r for r in caplog.records if r.name == "hotline.services.oncall"]


def test_a_country_without_anyone_on_call_is_named(settings, db) -> None:
    only_th = settings.with_(oncall=())
    db.add(OnCallEntry(country="TH", phone=LAWYER, name="Nok", position=0, active=True))
    db.commit()
    assert oncall.uncovered(db, only_th) == ("KH",)
    assert oncall.warning_text(("KH",)).startswith("Nobody is on call for KH:")


def test_worker_start_warns_while_nobody_is_on_call(settings, tmp_path, caplog) -> None:
    from hotline.cli import _preflight_worker
    from hotline.resources import Resources

    caplog.set_level(logging.WARNING, logger="hotline.services.oncall")
    res = Resources(settings.with_(oncall=()))
    try:
        _preflight_worker(res)
    finally:
        res.close()
    assert any(r.getMessage().startswith("Nobody is on call") for r in caplog.records)


def test_console_header_warns_while_nobody_is_on_call(settings, db) -> None:
    app = create_app(settings.with_(oncall=()), TESTING=True)
    client = app.test_client()
    try:
        make_staff(db, "admin@example.org", "admin")
        login(client, "admin@example.org", PASSWORD)
        page = client.get("/staff/").get_data(as_text=True)
        assert 'class="oncall-warning"' in page and "Nobody is on call: urgent-case alerts reach no one." in page
        assert post(client, "/staff/oncall", {"country": "TH", "phone": LAWYER, "name": "Nok"}).status_code == 302
        page = client.get("/staff/").get_data(as_text=True)
        assert "Nobody is on call for KH" in page  # TH is covered now, KH still is not
        assert post(client, "/staff/oncall", {"country": "KH", "phone": "+85512349999"}).status_code == 302
        assert 'class="oncall-warning"' not in client.get("/staff/").get_data(as_text=True)
    finally:
        resources_of(app).close()


def test_console_header_reads_the_roster_at_most_once_per_cache_period(settings, db) -> None:
    app = create_app(settings.with_(oncall=()), TESTING=True)
    client = app.test_client()
    roster_reads: list[str] = []

    def count(_conn, _cursor, statement, *_args) -> None:  # type: ignore[no-untyped-def]
        if "oncall_roster" in statement:
            roster_reads.append(statement)

    engine = resources_of(app).db.engine
    try:
        make_staff(db, "lawyer@example.org", "lawyer")
        login(client)
        sa.event.listen(engine, "before_cursor_execute", count)
        for _ in range(5):
            assert "Nobody is on call" in client.get("/staff/").get_data(as_text=True)
        assert len(roster_reads) == 1
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
        resources_of(app).close()


def test_roster_page_does_not_claim_alerts_go_to_an_unset_HOTLINE_ONCALL(settings, db) -> None:
    app = create_app(settings.with_(oncall=()), TESTING=True)
    client = app.test_client()
    try:
        make_staff(db, "admin@example.org", "admin")
        login(client, "admin@example.org", PASSWORD)
        page = client.get("/staff/oncall").get_data(as_text=True)
        assert "alerts go to the numbers in HOTLINE_ONCALL" not in page
        assert "Nobody is on call: the roster is empty and HOTLINE_ONCALL is not set" in page
    finally:
        resources_of(app).close()


def test_roster_page_lists_HOTLINE_ONCALL_when_the_roster_is_empty(client, db) -> None:
    make_staff(db, "admin@example.org", "admin")
    login(client, "admin@example.org", PASSWORD)
    page = client.get("/staff/oncall").get_data(as_text=True)
    assert "alerts go to the numbers in HOTLINE_ONCALL" in page and "TH: +66812345001" in page


def test_roster_refuses_an_unknown_country_code(client, db) -> None:
    make_staff(db, "admin@example.org", "admin")
    login(client, "admin@example.org", PASSWORD)
    assert post(client, "/staff/oncall", {"country": "XX", "phone": "+66812345678"}).status_code == 400
    assert db.scalar(sa.select(sa.func.count(OnCallEntry.id))) == 0


def test_first_roster_entry_alerts_every_waiting_urgent_case_once(settings, fake_twilio, db) -> None:
    nobody = settings.with_(oncall=(), twilio_rest_enabled=True, twilio_api_base_url=fake_twilio.url)
    app = create_app(nobody, TESTING=True)
    client = app.test_client()
    try:
        waiting = [open_urgent(db, "+66891234567"), open_urgent(db, "+66891234568")]
        claimed = open_urgent(db, "+66891234569")
        db.get(Case, claimed).status = "claimed"
        db.commit()
        run_worker_burst(nobody)  # the alert jobs find no one on call and fail
        assert fake_twilio.messages == []

        make_staff(db, "admin@example.org", "admin")
        login(client, "admin@example.org", PASSWORD)
        resp = post(client, "/staff/oncall", {"country": "TH", "phone": LAWYER, "name": "Nok"})
        assert resp.status_code == 302
        assert "Alerting 2 urgent case(s)" in client.get("/staff/oncall").get_data(as_text=True)
        run_worker_burst(nobody)
        assert sorted(m["To"] for m in fake_twilio.messages) == [LAWYER, LAWYER]
        refs = {db.get(Case, cid).ref for cid in waiting}
        assert {m["Body"].split()[3] for m in fake_twilio.messages} == refs

        # A second entry, and the job run again: nobody is texted twice.
        post(client, "/staff/oncall", {"country": "TH", "phone": "+66812348888"})
        run_worker_burst(nobody)
        assert len(fake_twilio.messages) == 2
        db.expire_all()
        assert all(db.get(Case, cid).notified_at for cid in waiting)
    finally:
        resources_of(app).close()


def test_alerting_waiting_cases_twice_queues_each_case_once(settings, db) -> None:
    nobody = settings.with_(oncall=())
    case_id = open_urgent(db)
    db.add(OnCallEntry(country="TH", phone=LAWYER, name="", position=0, active=True))
    db.flush()
    # The intake's own job is still pending: it will find the new number by itself.
    assert oncall.alert_waiting_cases(db, nobody) == []
    db.execute(sa.update(OutboxJob).values(status="failed"))
    assert oncall.alert_waiting_cases(db, nobody) == [case_id]
    assert oncall.alert_waiting_cases(db, nobody) == []  # its new job is pending now
    db.commit()


def cli_env(settings, tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {"HOTLINE_INSTANCE": str(tmp_path / "cli-instance"), "DATABASE_URL": settings.database_url,
           "REDIS_URL": settings.redis_url or "", "HOTLINE_ONCALL": "", "HOTLINE_ENV": "embedded"}
    return {**env, **extra}


def test_oncall_add_command_alerts_the_waiting_cases(settings, fake_twilio, db, tmp_path) -> None:
    nobody = settings.with_(oncall=(), twilio_rest_enabled=True, twilio_api_base_url=fake_twilio.url)
    open_urgent(db)
    db.execute(sa.update(OutboxJob).values(status="failed"))  # as when it ran with nobody on call
    db.commit()
    result = CliRunner().invoke(cli, ["oncall", "add", "th", "081 234 9999", "--name", "Nok"],
                                env=cli_env(settings, tmp_path))
    assert result.exit_code == 0, result.output
    assert "on call for TH: +66812349999" in result.output
    assert "alerting 1 urgent case(s)" in result.output
    run_worker_burst(nobody)
    assert [m["To"] for m in fake_twilio.messages] == [LAWYER]


def test_oncall_add_command_refuses_an_unknown_country_in_one_line(settings, tmp_path) -> None:
    result = CliRunner().invoke(cli, ["oncall", "add", "XX", "+66812349999"], env=cli_env(settings, tmp_path))
    assert result.exit_code == 2
    assert "'XX' is not a country code" in result.output and "Traceback" not in result.output


def test_first_run_puts_a_labelled_simulator_phone_on_call(settings, db) -> None:
    nobody = settings.with_(oncall=())
    case_id = open_urgent(db)
    db.execute(sa.update(OutboxJob).values(status="failed"))
    db.commit()
    login_ = _ensure_first_admin(nobody)  # pytest's stdin is not a terminal: nothing is asked
    assert login_ is not None and login_[0] == "admin@hotline.local"
    db.expire_all()
    entries = db.scalars(sa.select(OnCallEntry).order_by(OnCallEntry.country)).all()
    assert [(e.country, e.phone) for e in entries] == [("KH", oncall.SIMULATOR_PHONE),
                                                       ("TH", oncall.SIMULATOR_PHONE)]
    assert all("fictional" in e.name for e in entries)
    assert oncall.uncovered(db, nobody) == ()
    # The case that waited is queued to the simulator's phone at once.
    assert db.scalar(sa.select(sa.func.count(OutboxJob.id)).where(OutboxJob.case_id == case_id,
                                                                 OutboxJob.status == "pending")) == 1
    assert _ensure_first_admin(nobody) is None  # a second run changes nothing
    assert db.scalar(sa.select(sa.func.count(OnCallEntry.id))) == 2


def test_first_run_leaves_the_roster_alone_when_HOTLINE_ONCALL_is_set(settings, db) -> None:
    assert _ensure_first_admin(settings) is not None
    assert db.scalar(sa.select(sa.func.count(OnCallEntry.id))) == 0


def test_simulator_phone_is_a_fictional_number() -> None:
    import phonenumbers

    # ACMA's numbers for creative works are valid numbers that are never given to anyone.
    parsed = phonenumbers.parse(oncall.SIMULATOR_PHONE, None)
    assert phonenumbers.is_valid_number(parsed) and phonenumbers.region_code_for_number(parsed) == "AU"
    assert oncall.SIMULATOR_PHONE.startswith("+6149157")


# -- settings messages ---------------------------------------------------------------------------


def settings_error(tmp_path: Path, **env: str) -> str:
    with pytest.raises(SettingsError) as err:
        load_settings({"HOTLINE_INSTANCE": str(tmp_path), **env})
    return str(err.value)


def test_every_bad_oncall_entry_is_named_in_the_users_terms(tmp_path) -> None:
    text = settings_error(tmp_path, HOTLINE_ONCALL="XX:+66812345678, +66 nope,0812345678 ,TH:+66812345001,+999")
    lines = [line for line in text.splitlines() if "HOTLINE_ONCALL" in line]
    assert len(lines) == 4, text
    assert "'XX:+66812345678': 'XX' is not a country code" in text
    assert "'+66 nope' is not a phone number: write it with + and the country code" in text
    assert "'0812345678' is not a phone number" in text and "'+999' is not a phone number" in text
    assert "TH:+66812345001" not in text
    for internal in ("NumberParseException", "default region", "(0)", "(1)"):
        assert internal not in text


@pytest.mark.parametrize("given", ["postgresql://u:pw@db.example.org:5432/hotline",
                                   "postgres://u:pw@db.example.org:5432/hotline"])
def test_database_url_takes_the_documented_postgresql_forms(tmp_path, given) -> None:
    s = load_settings({"HOTLINE_INSTANCE": str(tmp_path), "DATABASE_URL": given})
    assert s.database_url == "postgresql+psycopg://u:pw@db.example.org:5432/hotline"


def test_bad_database_url_says_what_to_write_and_hides_the_password(tmp_path) -> None:
    text = settings_error(tmp_path, DATABASE_URL="mysql://u:hunter22@db/hotline")
    assert "must start with postgresql:// (or postgres://)" in text
    assert "hunter22" not in text and "psycopg" not in text


def test_unusable_instance_folder_is_one_line(tmp_path) -> None:
    text = settings_error(tmp_path, HOTLINE_INSTANCE="/proc/nope")
    assert "HOTLINE_INSTANCE='/proc/nope': cannot use this folder" in text
    assert "FileNotFoundError" not in text and len(text.splitlines()) == 2


def test_missing_secret_file_is_named(tmp_path) -> None:
    text = settings_error(tmp_path, SECRET_KEY_FILE=str(tmp_path / "nope"))
    assert "SECRET_KEY_FILE=" in text and "cannot be read (No such file or directory)" in text


# -- start-up errors: a few lines, no traceback --------------------------------------------------


def test_a_bad_menu_default_is_reported_once_not_once_per_node(tmp_path) -> None:
    with pytest.raises(ScriptError) as err:
        load_script(bad_script(tmp_path))
    assert [str(p) for p in err.value.problems] == [
        "menu.yaml, field 'defaults.no_input.then': unknown target 'paperz'"]


def test_a_node_overriding_a_bad_default_is_still_checked(tmp_path) -> None:
    folder = bad_script(tmp_path)
    menu = yaml.safe_load((folder / "menu.yaml").read_text(encoding="utf-8"))
    menu["nodes"]["main"]["no_input"] = {"retries": 2, "then": "nowhere"}
    (folder / "menu.yaml").write_text(yaml.safe_dump(menu, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ScriptError) as err:
        load_script(folder)
    assert [str(p) for p in err.value.problems] == [
        "menu.yaml, field 'defaults.no_input.then': unknown target 'paperz'",
        "menu.yaml, node 'main', field 'no_input.then': unknown target 'nowhere'"]


def test_create_app_with_an_invalid_script_raises_a_short_startup_error(settings, tmp_path) -> None:
    with pytest.raises(StartupError) as err:
        create_app(settings, IVR_SCRIPT_DIR=str(bad_script(tmp_path)))
    text = str(err.value)
    assert text.count("unknown target 'paperz'") == 1 and "hotline scripts check" in text
    assert len(text.splitlines()) <= 4


def test_create_app_with_an_unreachable_database_names_it_and_the_fix(settings) -> None:
    with pytest.raises(StartupError) as err:
        create_app(settings.with_(database_url=dead_postgres_url().replace("postgresql://",
                                                                           "postgresql+psycopg://")))
    text = str(err.value)
    assert text.startswith("Cannot reach the database:") and "Connection refused" in text
    assert "Check DATABASE_URL" in text and len(text.splitlines()) <= 3 and "secret" not in text


def test_worker_with_an_unreachable_database_says_so_in_a_few_lines(settings, tmp_path) -> None:
    result = CliRunner().invoke(cli, ["worker", "--burst"],
                                env=cli_env(settings, tmp_path, DATABASE_URL=dead_postgres_url()))
    assert result.exit_code == 1
    assert "Error: Cannot reach the database" in result.output and "Traceback" not in result.output
    assert len(result.output.splitlines()) <= 3, result.output


def test_worker_with_redis_away_says_so_in_a_few_lines(settings, tmp_path) -> None:
    result = CliRunner().invoke(cli, ["worker", "--burst"], env=cli_env(
        settings, tmp_path, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0"))
    assert result.exit_code == 1
    assert "Error: Cannot reach Redis" in result.output and "REDIS_URL" in result.output
    assert "Traceback" not in result.output and len(result.output.splitlines()) <= 3, result.output


def test_gunicorn_with_an_invalid_script_prints_the_problem_without_a_traceback(settings, tmp_path) -> None:
    folder = bad_script(tmp_path)
    env = {**os.environ, **cli_env(settings, tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{free_port()}", "--workers", "1",
         "--no-control-socket", f"hotline:create_app(IVR_SCRIPT_DIR={str(folder)!r})"],
        env=env, capture_output=True, text=True, timeout=120, cwd=ROOT)
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert "Traceback" not in output, output
    assert output.count("unknown target 'paperz'") == 1, output
    assert "App failed to load" in output


# -- hotline run: one supervised group -----------------------------------------------------------


def processes_of(instance: Path) -> list[int]:
    """Every live process whose environment names this instance folder (a run's children do)."""
    marker = f"HOTLINE_INSTANCE={instance}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().rsplit(")", 1)[-1].split()[0]
        except OSError:
            continue
        if marker in environ.split(b"\0") and state != "Z":
            found.append(int(entry.name))
    return found


def wait_gone(instance: Path, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := processes_of(instance)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


class Run:
    """`hotline run` in a subprocess, its output collected by a thread."""

    def __init__(self, tmp_path: Path, port: int, **env: str):
        self.instance = tmp_path / "run-instance"
        self.port = port
        base = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "HOTLINE_ONCALL")}
        self.env = {**base, "HOTLINE_INSTANCE": str(self.instance), "PYTHONUNBUFFERED": "1", **env}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "hotline", "run", "--port", str(port), "--web-workers", "1"],
            env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=ROOT)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self.lines.append(raw.decode(errors="replace"))

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, text: str, timeout: float = 150) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.output:
            assert self.proc.poll() is None, f"hotline run exited early:\n{self.output}"
            assert time.monotonic() < deadline, f"no {text!r} within {timeout} s:\n{self.output}"
            time.sleep(0.1)

    def finish(self, timeout: float = 60) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        for pid in processes_of(self.instance):
            os.kill(pid, signal.SIGKILL)


@pytest.fixture
def run_factory(tmp_path) -> Iterator[type[Run]]:
    runs: list[Run] = []

    class Tracked(Run):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            runs.append(self)

    yield Tracked
    for r in runs:  # never leave a run behind, even when a test fails
        r.kill()


def healthz(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
        return int(resp.status)


def test_run_stops_every_child_when_its_terminal_closes(tmp_path, run_factory) -> None:
    """SIGHUP: gunicorn alone would take it as "reload" and keep serving; SIGINT and SIGTERM take
    the same path in the supervisor."""
    run = run_factory(tmp_path, free_port())
    run.wait_for("Simulator:")
    # The URLs come only once the hotline answers.
    assert healthz(run.port) == 200
    assert "WARNING: Nobody is on call" not in run.output  # the first run put the simulator phone on call
    assert "(fictional: the simulator shows its alerts)" in run.output
    children = processes_of(run.instance)
    assert len(children) >= 4, children  # the command, gunicorn (+ its worker), the RQ worker, redis-server
    run.proc.send_signal(signal.SIGHUP)
    assert run.finish() == 0, run.output
    assert wait_gone(run.instance) == [], run.output
    assert not (run.instance / "redis.sock").exists()


def test_run_stops_everything_when_a_child_dies(tmp_path, run_factory) -> None:
    run = run_factory(tmp_path, free_port())
    run.wait_for("Simulator:")
    worker = [pid for pid in processes_of(run.instance)
              if b"worker" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
    assert worker, run.output
    os.kill(worker[0], signal.SIGKILL)
    assert run.finish() == 1
    assert "Error: the worker stopped (exit code -9); stopped everything else too" in run.output
    assert wait_gone(run.instance) == [], run.output


def test_children_stop_even_when_the_supervisor_is_killed_outright(tmp_path, run_factory) -> None:
    """SIGKILL cannot be caught: the kernel sends each child SIGTERM (PR_SET_PDEATHSIG) instead."""
    run = run_factory(tmp_path, free_port())
    run.wait_for("Simulator:")
    run.proc.kill()
    run.finish()
    assert wait_gone(run.instance) == [], run.output


def test_run_with_an_unreachable_database_leaves_no_redis_behind(tmp_path, run_factory) -> None:
    run = run_factory(tmp_path, free_port(), DATABASE_URL=dead_postgres_url())
    assert run.finish(timeout=120) == 1
    assert "Error: Cannot reach the database" in run.output and "Traceback" not in run.output
    assert len(run.output.strip().splitlines()) <= 4, run.output
    assert "Simulator:" not in run.output
    assert wait_gone(run.instance) == []


def test_run_refuses_a_busy_port_in_one_line(tmp_path, run_factory) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = run_factory(tmp_path, port)
        assert run.finish(timeout=60) == 1
    assert run.output.strip() == (f"Error: Port {port} on 127.0.0.1 is already in use (is another `hotline run` "
                                  f"running?). Stop it, or choose another port: hotline run --port {port + 1}")
    assert wait_gone(run.instance) == []


def test_run_with_an_unusable_instance_folder_is_one_short_message(tmp_path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    proc = subprocess.run([sys.executable, "-m", "hotline", "run", "--port", str(free_port())],
                          env={**env, "HOTLINE_INSTANCE": "/proc/nope"}, capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and "HOTLINE_INSTANCE='/proc/nope': cannot use this folder" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 2


def test_run_with_an_invalid_script_stops_its_redis_and_says_why(tmp_path, monkeypatch) -> None:
    from hotline.web import voice

    monkeypatch.setattr(voice, "SCRIPT_DIR", bad_script(tmp_path))
    instance = tmp_path / "inst"
    env = {"HOTLINE_INSTANCE": str(instance), "DATABASE_URL": None, "REDIS_URL": None, "HOTLINE_ONCALL": None}
    result = CliRunner().invoke(cli, ["run", "--port", str(free_port())], env=env)  # type: ignore[arg-type]
    assert result.exit_code == 1, result.output
    assert result.output.count("unknown target 'paperz'") == 1 and "Traceback" not in result.output
    assert "Simulator:" not in result.output
    assert not (instance / "redis.sock").exists()
    assert wait_gone(instance, timeout=10) == []
    Database(f"sqlite:///{instance / 'hotline.db'}").dispose()


def test_a_second_run_on_the_same_instance_is_refused_while_the_first_holds_it(tmp_path) -> None:
    from hotline.supervise import Busy, InstanceLock

    first = InstanceLock(tmp_path).acquire()
    try:
        with pytest.raises(Busy, match=f"Another `hotline run` \\(pid {os.getpid()}\\) is using {tmp_path}"):
            InstanceLock(tmp_path).acquire()
    finally:
        first.release()
    InstanceLock(tmp_path).acquire().release()


def test_a_redis_server_left_behind_is_replaced_not_reused(tmp_path) -> None:
    from hotline.embedded import EmbeddedRedis, redis_server_binary

    sock = tmp_path / "redis.sock"
    leftover = subprocess.Popen([redis_server_binary(), "--port", "0", "--unixsocket", str(sock),
                                 "--dir", str(tmp_path), "--save", ""], stdout=subprocess.DEVNULL,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not sock.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        server = EmbeddedRedis(tmp_path).start(take_over=True)
        try:
            assert leftover.wait(timeout=10) == 0  # it was asked to stop, and did
            assert server.proc is not None and server.proc.pid != leftover.pid
        finally:
            server.stop()
        assert not sock.exists()
    finally:
        if leftover.poll() is None:
            leftover.kill()


# -- Docker files ---------------------------------------------------------------------------------
# No Docker daemon runs where the suite runs (CI included), so the image is not built and the stack
# is not started here (the README says so). These tests read the files as `docker compose config`
# would and check what an operator relies on.


def compose() -> dict:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))  # resolves `<<: *app`
    assert isinstance(doc, dict)
    return doc


def test_compose_has_the_whole_stack_with_restart_policies_and_healthchecks() -> None:
    services = compose()["services"]
    assert set(services) == {"caddy", "db", "redis", "migrate", "web", "worker"}
    for name, svc in services.items():
        if name == "migrate":  # one-shot: explicit "no", and explicitly nothing to probe
            assert svc["restart"] == "no" and svc["healthcheck"] == {"disable": True}
            continue
        assert svc["restart"] == "unless-stopped", name
        check = svc["healthcheck"]
        assert check["test"][0] == "CMD" and check["retries"] >= 3, name
    assert services["web"]["healthcheck"]["test"][-1].count("http://127.0.0.1:8000/healthz") == 1
    assert services["worker"]["healthcheck"]["test"] == ["CMD", "hotline", "worker", "--check"]
    assert services["db"]["healthcheck"]["test"][1] == "pg_isready"
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    for name in ("web", "worker", "migrate"):
        assert services[name]["depends_on"]["db"] == {"condition": "service_healthy"}
        assert services[name]["depends_on"]["redis"] == {"condition": "service_healthy"}
    assert services["web"]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_only_caddy_is_published_and_it_proxies_https_to_web() -> None:
    services = compose()["services"]
    published = {name for name, svc in services.items() if svc.get("ports")}
    assert published == {"caddy"}
    assert {"80:80", "443:443"} <= set(services["caddy"]["ports"])
    assert "./Caddyfile:/etc/caddy/Caddyfile:ro" in services["caddy"]["volumes"]
    assert any(v.startswith("caddy_data:") for v in services["caddy"]["volumes"])  # certificates survive
    caddyfile = (ROOT / "Caddyfile").read_text(encoding="utf-8")
    sites = [line for line in caddyfile.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert sites[0] == "{$HOTLINE_DOMAIN} {" and "\treverse_proxy web:8000" in sites
    assert services["web"]["expose"] == ["8000"]


def test_app_services_trust_one_proxy_and_call_twilio_back_over_https() -> None:
    services = compose()["services"]
    for name in ("web", "worker", "migrate"):
        env = services[name]["environment"]
        assert env["HOTLINE_ENV"] == "production"
        assert env["TRUSTED_PROXIES"] == "1"
        assert env["PUBLIC_BASE_URL"].startswith("https://${HOTLINE_DOMAIN:?")
        assert env["DATABASE_URL"].startswith("postgresql://")
        assert env["HOTLINE_ONCALL"] == "${HOTLINE_ONCALL:-}"  # no made-up numbers by default
        assert env["HOTLINE_NUMBER"].startswith("${HOTLINE_NUMBER:?")
    assert services["web"]["command"][0] == "gunicorn" and "hotline:create_app()" in services["web"]["command"]


def test_env_example_holds_no_number_that_could_receive_a_message() -> None:
    values = {}
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    assert re.search(r"\d{6,}", "".join(values.values())) is None, values
    assert values["HOTLINE_ONCALL"] == "" and values["HOTLINE_NUMBER"] == ""
    assert values["HOTLINE_DOMAIN"].endswith(".example.org")  # RFC 2606: reserved for examples
    compose_vars = set(re.findall(r"\$\{(\w+)", (ROOT / "docker-compose.yml").read_text(encoding="utf-8")))
    assert compose_vars <= set(values), compose_vars - set(values)


def test_dockerignore_keeps_secrets_and_local_state_out_of_the_image() -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    assert {".git", ".venv", "instance", ".env", "test-artifacts", ".pytest_cache", ".mypy_cache",
            "**/__pycache__"} <= ignored
    copied = re.findall(r"^COPY (\S+)", (ROOT / "Dockerfile").read_text(), flags=re.M)
    assert copied and not set(copied) & ignored


def test_worker_check_reports_a_live_worker_on_this_host_only(settings, tmp_path) -> None:
    from redis import Redis
    from rq import Worker

    from hotline.background.worker import beat

    env = cli_env(settings, tmp_path)
    result = CliRunner().invoke(cli, ["worker", "--check"], env=env)
    assert result.exit_code == 1 and "no live worker on" in result.output
    redis = Redis.from_url(settings.redis_url)
    worker = Worker(["urgent"], connection=redis)
    worker.register_birth()
    try:
        result = CliRunner().invoke(cli, ["worker", "--check"], env=env)
        assert result.exit_code == 1, result.output  # registered, but its loop never beat
        beat(redis, [worker], 60)
        result = CliRunner().invoke(cli, ["worker", "--check"], env=env)
        assert result.exit_code == 0, result.output
        assert f"1 worker(s) alive on {socket.gethostname()}" in result.output
    finally:
        worker.register_death()


def test_web_healthcheck_command_agrees_with_healthz(live_server) -> None:
    """The compose healthcheck, run as Docker runs it, against the real app on a local port."""
    command = compose()["services"]["web"]["healthcheck"]["test"]
    assert command[:3] == ["CMD", "python", "-c"]
    code = command[3].replace("http://127.0.0.1:8000", live_server.url)
    assert code != command[3]
    try:
        with urllib.request.urlopen(live_server.url + "/healthz", timeout=5) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60).returncode == (
        0 if status == 200 else 1)
    dead = command[3].replace("127.0.0.1:8000", f"127.0.0.1:{free_port()}")
    assert subprocess.run([sys.executable, "-c", dead], capture_output=True, timeout=60).returncode != 0


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_first_run_on_a_terminal_asks_for_the_alert_phone_until_it_is_one(settings, db, monkeypatch,
                                                                          capsys) -> None:
    monkeypatch.setattr(sys, "stdin", _Terminal("not a phone\n012 345 678\n"))
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    assert _ensure_first_admin(settings.with_(oncall=())) is not None
    out = capsys.readouterr().out
    assert "That is not a phone number" in out and "on call for KH, TH: +85512345678" in out
    db.expire_all()
    assert {(e.country, e.phone, e.name) for e in db.scalars(sa.select(OnCallEntry))} == {
        ("KH", "+85512345678", "First admin"), ("TH", "+85512345678", "First admin")}
