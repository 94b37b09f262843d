"""Helpers for the fault and security suites: the hotline's own processes (web under gunicorn, the RQ
worker) started as subprocesses from a test's Settings, exactly as production starts them.

No tests here; the fault, security and retention suites import these.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

from hotline.settings import Settings
from hotline.telephony.signature import sign

ROOT = Path(__file__).resolve().parent.parent


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    """The environment a `hotline` process needs to load exactly these settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HOTLINE_", "TWILIO_"))
           and k not in ("DATABASE_URL", "REDIS_URL", "PUBLIC_BASE_URL", "SECRET_KEY", "RECORDING_KEY")}
    env.update(
        HOTLINE_INSTANCE=str(settings.instance_path),
        DATABASE_URL=settings.database_url,
        TWILIO_ACCOUNT_SID=settings.twilio_account_sid,
        TWILIO_AUTH_TOKEN=settings.twilio_auth_token,
        HOTLINE_ONCALL=",".join(f"{o.country}:{o.phone}" for o in settings.oncall),
        HOTLINE_NUMBER=settings.hotline_number,
        PUBLIC_BASE_URL=settings.public_base_url,
        SECRET_KEY=settings.secret_key,
        RECORDING_KEY=settings.recording_key,
        HOTLINE_LOG_LEVEL="INFO",
        WORKER_TICK_SECONDS=str(settings.worker_tick_seconds),
        PYTHONUNBUFFERED="1",
    )
    if settings.missed_call_numbers:
        env["HOTLINE_MISSED_CALL_NUMBERS"] = ",".join(sorted(settings.missed_call_numbers))
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    if settings.twilio_api_base_url:
        env["TWILIO_API_BASE_URL"] = settings.twilio_api_base_url
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(cond: Callable[[], object], timeout: float, what: str, every: float = 0.05) -> object:
    """Poll until `cond()` is truthy; fail naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(every)


def descendants(pid: int) -> list[int]:
    """Child processes of `pid`, recursively, read from /proc (deepest first)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(stat.parent.name))
    out: list[int] = []

    def walk(p: int) -> None:
        for c in children.get(p, []):
            walk(c)
            out.append(c)

    walk(pid)
    return out


class Process:
    """A subprocess whose output goes to a log file; stopped (or killed) by its own pid only."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        self._fh = open(log, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(args, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=self._fh,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        if not self._fh.closed:
            self._fh.flush()
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL the process and every descendant, as a crash of the machine's process would.

        RQ puts its work-horse in a session of its own, so killing the process group is not enough."""
        for pid in [*descendants(self.proc.pid), self.proc.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(timeout=10)

    def wait(self, timeout: float) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self._fh.close()


def start_worker(settings: Settings, log: Path, *, burst: bool = False, queues: str | None = None) -> Process:
    args = [sys.executable, "-m", "hotline", "worker"] + (["--burst"] if burst else [])
    args += ["--queues", queues] if queues else []
    return Process(args, env_for(settings), log)


class Web:
    """The hotline under gunicorn on a free local port; its public base URL is its own address."""

    def __init__(self, settings: Settings, log: Path, workers: int = 1):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.settings = settings.with_(public_base_url=self.url)
        args = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers),
                "--worker-class", "gthread", "--threads", "4", "--no-control-socket", "hotline:create_app()"]
        self.process = Process(args, env_for(self.settings), log)
        wait_for(self._up, 30, f"gunicorn on {self.url} (log: {log})", every=0.1)

    def _up(self) -> bool:
        if not self.process.alive():
            raise AssertionError(f"gunicorn exited:\n{self.process.output()[-3000:]}")
        try:
            with urllib.request.urlopen(self.url + "/healthz", timeout=2):  # noqa: S310 - local
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def post(self, path: str, params: dict[str, str], timeout: float = 15) -> tuple[int, str]:
        """POST as Twilio does: form-encoded and signed for this server's public URL."""
        url = self.url + path
        req = urllib.request.Request(url, data=urllib.parse.urlencode(params).encode(), method="POST", headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Twilio-Signature": sign(self.settings.twilio_auth_token, url, params),
            "I-Twilio-Idempotency-Token": secrets.token_hex(16)})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310 - local
                return int(resp.status), resp.read().decode()
        except urllib.error.HTTPError as exc:
            return int(exc.code), exc.read().decode(errors="replace")

    def output(self) -> str:
        return self.process.output()

    def stop(self) -> None:
        self.process.stop()
