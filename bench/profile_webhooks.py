"""Where a webhook's time goes: cProfile over signed requests through the app in one process.

    python bench/profile_webhooks.py [--n 500] [--kind voice-first|voice-step|sms] [--backend embedded|postgres]

Prints milliseconds per request and the functions with the most own time and cumulative time.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402
    ACCOUNT_SID,
    AUTH_TOKEN,
    RECORDING_KEY,
    call_sid,
    kh_number,
    msg_sid,
    sms_params,
    voice_params,
)
from hotline.telephony.signature import sign  # noqa: E402

PUBLIC = "http://127.0.0.1:5000"
CLEANUP: list[Callable[[], None]] = []


def build_app(backend: str, folder: Path):  # type: ignore[no-untyped-def]
    from hotline import create_app
    from hotline.db import upgrade
    from hotline.settings import OnCall, Settings

    if backend == "embedded":
        from hotline.embedded import EmbeddedRedis

        redis = EmbeddedRedis(folder).start()
        CLEANUP.append(redis.stop)
        db_url, redis_url = f"sqlite:///{folder / 'hotline.db'}", redis.url
    else:
        import sqlalchemy as sa

        admin = sa.create_engine(os.environ.get("DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
                                 .replace("postgresql://", "postgresql+psycopg://"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text('DROP DATABASE IF EXISTS "hotline_profile" WITH (FORCE)'))
            conn.execute(sa.text('CREATE DATABASE "hotline_profile"'))
        db_url = str(admin.url.set(database="hotline_profile").render_as_string(hide_password=False))
        redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379") + "/14"
    upgrade(db_url)
    settings = Settings(instance_path=folder, database_url=db_url, redis_url=redis_url,
                        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN, public_base_url=PUBLIC,
                        secret_key="profile", recording_key=RECORDING_KEY,
                        oncall=(OnCall("KH", "+85512345001"), OnCall("TH", "+66812345001")))
    return create_app(settings)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--kind", default="voice-first", choices=["voice-first", "voice-step", "sms"])
    ap.add_argument("--backend", default="embedded", choices=["embedded", "postgres"])
    ap.add_argument("--top", type=int, default=30)
    args = ap.parse_args()
    import logging

    folder = Path(tempfile.mkdtemp(prefix="hl-prof-", dir="/tmp"))
    app = build_app(args.backend, folder)
    logging.getLogger().setLevel(logging.INFO)
    client = app.test_client()
    rng = random.Random(1)

    def one_request(i: int) -> None:
        if args.kind == "sms":
            path, params = "/twilio/sms", sms_params(["HELP", "1", "CALL", "hello"][i % 4], kh_number(rng),
                                                     msg_sid(rng))
        else:
            sid, frm = call_sid(rng), kh_number(rng)
            params = voice_params(sid, frm)
            if args.kind == "voice-step":
                resp = client.post("/twilio/voice", data=params,
                                   headers={"X-Twilio-Signature": sign(AUTH_TOKEN, PUBLIC + "/twilio/voice", params)})
                import re

                action = re.search(rb'action="([^"]+)"', resp.data)
                assert action, resp.data
                path = action.group(1).decode().replace("&amp;", "&").removeprefix(PUBLIC)
                params = {**params, "Digits": "1"}
            else:
                path = "/twilio/voice"
        resp = client.post(path, data=params, headers={"X-Twilio-Signature": sign(AUTH_TOKEN, PUBLIC + path, params)})
        assert resp.status_code == 200 and b"system_error" not in resp.data, resp.data

    for i in range(20):  # warm-up
        one_request(i)
    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    for i in range(args.n):
        one_request(i)
    prof.disable()
    elapsed = time.perf_counter() - t0
    per = elapsed / args.n * 1000 / (2 if args.kind == "voice-step" else 1)
    print(f"{args.kind} on {args.backend}: {args.n} requests in {elapsed:.2f} s under the profiler "
          f"(~{per:.2f} ms per request, profiler overhead included)")
    for order, restrict in (("tottime", None), ("cumulative", None), ("cumulative", "hotline/")):
        out = io.StringIO()
        stats = pstats.Stats(prof, stream=out).sort_stats(order)
        if restrict:
            stats.print_stats(restrict, args.top)
        else:
            stats.print_stats(args.top)
        print(out.getvalue(), flush=True)
    for fn in CLEANUP:
        fn()
    shutil.rmtree(folder, ignore_errors=True)
    sys.stdout.flush()
    os._exit(0)  # the app's thread pools would otherwise keep the interpreter waiting


if __name__ == "__main__":
    sys.exit(main())
