"""Health: `/healthz` is liveness (this process and its database, fast); `/healthz/ready` reports
the dependencies (Redis, a live worker for every queue) and names what is down."""

from __future__ import annotations

from flask import Blueprint, jsonify

from hotline.db import ping
from hotline.web import resources

bp = Blueprint("health", __name__)


def _database() -> str:
    try:
        ping(resources().db.engine)
        return "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "down", with its reason
        return f"down: {type(exc).__name__}"


def _reply(checks: dict[str, str], **extra: object):  # type: ignore[no-untyped-def]
    down = sorted(k for k, v in checks.items() if v != "ok")
    body = {"status": "down" if down else "ok", "checks": checks, "down": down, **extra}
    return jsonify(body), 503 if down else 200


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    """Liveness: a load balancer restarts or drops this process only when it (or its database) fails."""
    return _reply({"database": _database()})


@bp.get("/healthz/ready")
def ready():  # type: ignore[no-untyped-def]
    """Readiness: calls are answered without Redis and workers, but alerts would wait; say which."""
    from hotline.background.admin import live_workers, uncovered_queues

    checks = {"database": _database()}
    workers: dict[str, list[str]] = {}
    try:
        redis = resources().redis()
        redis.ping()
        checks["redis"] = "ok"
        workers = live_workers(redis)
        missing = uncovered_queues(workers)
        if not workers:
            checks["worker"] = "down: no live worker (run `hotline worker`)"
        elif missing:
            checks["worker"] = f"down: no live worker on queue(s) {', '.join(missing)} (`hotline worker --queues`)"
        else:
            checks["worker"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"down: {type(exc).__name__}"
        checks["worker"] = "unknown: redis is down"
    return _reply(checks, workers=len(workers), devices=_devices())


def _devices() -> dict[str, int | None]:
    """Seconds since each device-backed channel (the SMS gateway's phone) was last heard from.
    Shown, not checked: a phone that went quiet must not take the web process out of service."""
    from hotline import channels
    from hotline.web.channels import last_seen

    settings = resources().settings
    names = [n for n in channels.enabled(settings) if getattr(channels.ADAPTERS[n], "heartbeat", False)]
    try:
        return {n: last_seen(resources().redis(), n) for n in names}
    except Exception:  # noqa: BLE001 - Redis down is reported above
        return {n: None for n in names}
