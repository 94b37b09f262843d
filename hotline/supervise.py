"""`hotline run`'s children as one group: started together, stopped together, on any exit.

Each child runs in a session of its own, so a terminal's Ctrl-C or hang-up (SIGHUP, which gunicorn
would take as "reload" and keep serving) reaches only the supervisor, which then stops them all:
SIGTERM to each child's process group, SIGKILL to what is left after a grace period. A child also
gets SIGTERM from the kernel if the supervisor itself is killed outright (PR_SET_PDEATHSIG), so
nothing is left running with no one to stop it.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import fcntl
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1


class Stopped(BaseException):
    """A signal asked the supervisor to stop (BaseException: no `except Exception` swallows it)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class Busy(Exception):
    """The port or the instance folder is taken by something else."""


class StartFailed(Exception):
    """A child stopped during start-up, or the hotline never answered /healthz."""


def _raise_stopped(signum: int, _frame: Any) -> None:
    raise Stopped(signum)


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """SIGINT, SIGTERM and SIGHUP raise Stopped in the main thread while this block runs."""
    previous = {sig: signal.signal(sig, _raise_stopped) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Hold stop signals for a moment (while a child is being started and recorded, or the group is
    being stopped); a held signal is delivered when the block ends."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _child_setup(parent: int) -> Callable[[], None]:
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)

    def setup() -> None:  # runs in the child between fork and exec: keep it tiny
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os._exit(1)

    return setup


def spawn(args: Sequence[str], *, env: Mapping[str, str] | None = None,
          stdout: IO[Any] | int | None = None, stdin: int | None = None) -> subprocess.Popen[bytes]:
    """Start a child in its own session, tied to this process's life."""
    return subprocess.Popen(list(args), env=dict(env) if env is not None else None, stdout=stdout, stdin=stdin,
                            start_new_session=True, preexec_fn=_child_setup(os.getpid()))


class Group:
    """Named children stopped together."""

    def __init__(self) -> None:
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, args: Sequence[str], env: Mapping[str, str]) -> subprocess.Popen[bytes]:
        with signals_deferred():
            proc = spawn(args, env=env, stdin=subprocess.DEVNULL)
            self.children.append((name, proc))
        return proc

    def exited(self) -> tuple[str, int] | None:
        """The first child that has stopped, with its exit code (negative: killed by that signal)."""
        for name, proc in self.children:
            code = proc.poll()
            if code is not None:
                return name, code
        return None

    def stop(self, grace: float = 10.0) -> None:
        for _name, proc in self.children:
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _name, proc in self.children:
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                pass
        for _name, proc in self.children:
            # Whatever is left in the child's process group (gunicorn's workers, an RQ work-horse).
            _signal_group(proc, signal.SIGKILL)
            if proc.poll() is None:
                proc.wait(timeout=5)
        self.children.clear()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)  # the child leads its own session, so its pid is the group's id
    except ProcessLookupError:
        pass
    except PermissionError:  # pragma: no cover - the group id was reused by someone else's process
        pass


def check_port_free(host: str, port: int) -> None:
    """Raise Busy when something already listens on host:port (as gunicorn would bind it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn does: TIME_WAIT is fine
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                reason = "is already in use" if exc.errno == errno.EADDRINUSE else "needs privileges"
                raise Busy(f"Port {port} on {host} {reason} (is another `hotline run` running?). "
                           f"Stop it, or choose another port: hotline run --port {port + 1}") from None
            raise


class InstanceLock:
    """One `hotline run` per instance folder: an flock held for the supervisor's life."""

    def __init__(self, folder: Path):
        self.path = folder / "run.lock"
        self._fd: int | None = None

    def acquire(self) -> "InstanceLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise Busy(f"Another `hotline run` (pid {holder}) is using {self.path.parent}. Stop it first, "
                       "or set HOTLINE_INSTANCE to another folder.") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def wait_until_answering(base: str, group: Group, timeout: float) -> None:
    """Poll /healthz (and /healthz/ready where it exists) until both say 200; raise StartFailed if
    a child stops meanwhile or the time runs out, with the last answer."""
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        stopped = group.exited()
        if stopped is not None:
            raise StartFailed(f"the {stopped[0]} stopped while starting (exit code {stopped[1]}); see above")
        live = _get(base + "/healthz")
        ready = _get(base + "/healthz/ready") if live[0] == 200 else live
        if live[0] == 200 and ready[0] in (200, 404):  # 404: a build without a readiness page
            return
        last = f"{ready[0] or ''} {ready[1]}".strip()
        time.sleep(0.25)
    raise StartFailed(f"the hotline did not answer {base}/healthz within {timeout:.0f} s (last: {last[:300]})")


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - our own local URL
            return resp.status, resp.read(2000).decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(2000).decode(errors="replace")
    except (urllib.error.URLError, OSError) as exc:
        return 0, str(getattr(exc, "reason", exc))
