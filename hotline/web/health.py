"""GET /healthz: database, Redis and worker heartbeat; 200 when all are up, else 503 naming the part."""

from __future__ import annotations

from datetime import UTC, timedelta

from flask import Blueprint, jsonify

from hotline.db import ping, utcnow
from hotline.web import resources

bp = Blueprint("health", __name__)
WORKER_STALE = timedelta(seconds=90)


@bp.get("/healthz")
def healthz():  # type: ignore[no-untyped-def]
    res = resources()
    checks: dict[str, str] = {}
    try:
        ping(res.db.engine)
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means "down", with its reason
        checks["database"] = f"down: {type(exc).__name__}"
    try:
        redis = res.redis()
        redis.ping()
        checks["redis"] = "ok"
        checks["worker"] = _worker_state(redis)
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"down: {type(exc).__name__}"
        checks["worker"] = "unknown: redis is down"
    ok = all(v == "ok" for v in checks.values())
    return jsonify(status="ok" if ok else "down", checks=checks), 200 if ok else 503


def _worker_state(redis) -> str:  # type: ignore[no-untyped-def]
    from rq import Worker

    workers = Worker.all(connection=redis)
    now = utcnow()
    alive = [w for w in workers if w.last_heartbeat and now - _aware(w.last_heartbeat) < WORKER_STALE]
    return "ok" if alive else "down: no worker heartbeat in the last 90 s (run `hotline worker`)"


def _aware(dt):  # type: ignore[no-untyped-def]

    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
