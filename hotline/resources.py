"""What a process needs at run time, built once when the app or a worker starts (never at import)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from redis import Redis

from hotline.db import Database
from hotline.settings import Settings

if TYPE_CHECKING:
    from flask import Flask

    from hotline.telephony.transport import Transport


class Resources:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.db = Database(settings.database_url)
        self._redis: Redis | None = None
        self._transport: Transport | None = None
        self._lock = threading.Lock()
        from hotline.background import outbox

        # Every process (web, worker, command) pushes outbox jobs to RQ after its commits.
        outbox.install(self.db, self.redis)

    @property
    def redis_url(self) -> str:
        if self.settings.redis_url:
            return self.settings.redis_url
        from hotline.embedded import embedded_redis_url

        return embedded_redis_url(self.settings.instance_path)

    def redis(self) -> Redis:
        # redis-py connects lazily, so building the client never fails; commands may.
        if self._redis is None:
            with self._lock:
                if self._redis is None:
                    from hotline.background.queues import connect

                    self._redis = connect(self.redis_url)
        return self._redis

    def transport(self) -> Transport:
        if self._transport is None:
            from hotline.telephony.transport import make_transport

            self._transport = make_transport(self.settings)
        return self._transport

    def init_app(self, app: Flask) -> None:
        from twilio.request_validator import RequestValidator

        app.extensions["hotline"] = self
        app.extensions["hotline.validator"] = RequestValidator(self.settings.twilio_auth_token)

    def close(self) -> None:
        self.db.dispose()
        if self._redis is not None:
            self._redis.close()


def resources_of(app: Any) -> Resources:
    return app.extensions["hotline"]  # type: ignore[no-any-return]
