"""What the content version check costs the voice hot path (hotline.services.content.ContentLive).

    python bench/content_check.py            # SQLite in a temp dir + the embedded redis-server

Prints, per call of `ContentLive.published()`: the fast path (within the interval: a clock read),
a check through Redis (GET), a check through the database (the key missing or Redis away), and the
one-off load of a newly published version (render + the start-up loaders + the audio map).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def per_call(fn, n: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - t0) / n * 1e6


def main() -> None:
    from hotline.db import Database, upgrade
    from hotline.embedded import EmbeddedRedis
    from hotline.menus import keywords
    from hotline.menus.loader import load_script
    from hotline.services import content

    tmp = Path(tempfile.mkdtemp(prefix="hotline-bench-content-"))
    url = f"sqlite:///{tmp / 'bench.db'}"
    upgrade(url)
    redis_server = EmbeddedRedis(tmp / "redis").start()
    from redis import Redis

    r = Redis.from_url(redis_server.url)
    db = Database(url)
    store = content.ContentStore(tmp / "store")
    with db.Session() as s:
        content.import_tree(s, ROOT, store)
        s.commit()
    starter = content.Snapshot(0, 0, load_script(ROOT / "ivr_scripts" / "voice"),
                               keywords.load(ROOT / "ivr_scripts" / "sms"))
    live = content.ContentLive(starter, db.Session, lambda: r, interval=2.0)
    t0 = time.perf_counter()
    live.published(wait=True)  # what the background thread does once per process after a publish
    first = time.perf_counter() - t0
    assert live.current.number == 1
    fast = per_call(live.published, 200_000)

    def forced() -> None:
        live._checked = float("-inf")
        live.published()

    content.announce_number(lambda: r, 1)
    via_redis = per_call(forced, 2000)
    r.delete(content.REDIS_KEY)
    no_redis = content.ContentLive(starter, db.Session, None, interval=2.0)
    no_redis.current = live.current

    def forced_db() -> None:
        no_redis._checked = float("-inf")
        no_redis.published()

    via_db = per_call(forced_db, 500)
    loads = []
    with db.Session() as s:
        v = content.latest(s)
        for _ in range(5):
            t0 = time.perf_counter()
            content.snapshot(s, v)
            loads.append(time.perf_counter() - t0)
    print(f"published() within the interval:     {fast:8.2f} µs per call (a clock read)")
    print(f"published() checking via Redis GET:  {via_redis:8.1f} µs per check (at most once per 2 s per process)")
    print(f"published() checking via SQLite:     {via_db:8.1f} µs per check (key missing or Redis away)")
    print(f"loading a new version, first time:   {first * 1000:8.0f} ms (in a background thread, once per process)")
    print(f"loading a version (render + loaders): {statistics.median(loads) * 1000:7.0f} ms median of 5")
    db.dispose()
    redis_server.stop()


if __name__ == "__main__":
    main()
