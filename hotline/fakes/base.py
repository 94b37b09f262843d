"""What every local fake of a chat platform shares: a threaded HTTP server on a free port, the
requests it saw, and scripted failures (`fail_next`), as `hotline.fakes.twilio_rest` does for Twilio.

A subclass builds its Flask app in `routes(app)` and calls `self.failure()` at the top of each
API call to answer a scripted failure instead (status, platform error body).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, request
from werkzeug.serving import make_server


@dataclass
class Failure:
    status: int
    description: str
    retry_after: int | None = None


@dataclass
class FakeServer:
    name: str = "fake"
    requests: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0  # seconds every answer waits (a slow platform; longer than our timeout: a timeout)
    url: str = ""
    _failures: list[Failure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: Any = None

    def fail_next(self, n: int = 1, status: int = 500, description: str = "Internal Server Error",
                  retry_after: int | None = None) -> None:
        with self._lock:
            self._failures.extend(Failure(status, description, retry_after) for _ in range(n))

    def failure(self) -> Failure | None:
        if self.delay:
            time.sleep(self.delay)
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def error(self, failure: Failure) -> Response:  # each platform words its errors its own way
        return Response(failure.description, status=failure.status)

    def routes(self, app: Flask) -> None:
        raise NotImplementedError

    def app(self) -> Flask:
        app = Flask(self.name)

        @app.before_request
        def _record() -> None:
            with self._lock:
                self.requests.append((request.method, request.path))

        self.routes(app)
        return app

    def start(self, host: str = "127.0.0.1", port: int = 0) -> Any:
        self._server = make_server(host, port, self.app(), threaded=True)
        self.url = f"http://{host}:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True, name=self.name).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
