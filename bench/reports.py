"""Reports on a year of a busy line: generate the data set, then time every indicator.

    python bench/reports.py                       # both backends at full scale (PostgreSQL from --pg-url
                                                  # or DATABASE_URL; SQLite in a temporary file)
    python bench/reports.py --scale 0.1 --backend sqlite
    python bench/reports.py --backend postgres --keep   # leave the database for a second look
    python bench/reports.py --reuse-pg NAME --live      # a kept database: without, then with roll-ups

Full scale is 1 M calls, 10 M call events (ten path steps per call), 100 k texts, 10 k cases and
20 k callback requests (with 40 k attempts) over 2026, from 250 k callers. Rows are made by the
database itself (`INSERT ... SELECT` over generate_series on PostgreSQL, a recursive CTE on SQLite)
from arithmetic on the row number, so a run is repeatable and the generator costs no Python time
per row. Then it runs the console page's work for the whole year by month and by week:
`reports.build` (every query), `present` (suppression) and the charts, and prints the seconds per
table. The target: the page in under 2 s on PostgreSQL at full scale.

Then it rolls the year up as the periodic duty would by noon on 31 December
(`hotline.services.rollups`: through 30 December, the last day stays live) and times the page
again. `--live` also times it before the roll-ups are made (every number from the base tables).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from hotline.db import upgrade  # noqa: E402
from hotline.services import reports  # noqa: E402
from hotline.settings import normalise_database_url  # noqa: E402

YEAR_S = 365 * 86400
NODES = ("language", "main", "topic_before", "topic_passport", "topic_wages", "topic_trafficking", "topic_money",
         "topic_home", "topic_numbers")
KEYWORDS = ("help", "info", "call", "sos", "lang", "1", "2", None)


def numbers(dialect: str, n: int) -> str:
    """A FROM clause yielding g.i = 1..n."""
    if dialect == "postgresql":
        return f"generate_series(1::bigint, {n}) AS g(i)"
    return (f"(WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < {n}) SELECT i FROM s) AS g")


def ts(dialect: str, seconds_expr: str) -> str:
    """2026-01-01 00:00 UTC plus an integer number of seconds."""
    if dialect == "postgresql":
        return f"(TIMESTAMPTZ '2026-01-01 00:00:00+00' + ({seconds_expr}) * INTERVAL '1 second')"
    return f"strftime('%Y-%m-%d %H:%M:%f', '2026-01-01 00:00:00', '+' || ({seconds_expr}) || ' seconds')"


def add_seconds(dialect: str, col: str, seconds_expr: str) -> str:
    if dialect == "postgresql":
        return f"({col} + ({seconds_expr}) * INTERVAL '1 second')"
    return f"strftime('%Y-%m-%d %H:%M:%f', {col}, '+' || ({seconds_expr}) || ' seconds')"


def pick(expr: str, values: tuple[str | None, ...]) -> str:
    whens = " ".join(f"WHEN {n} THEN {'NULL' if v is None else repr(v)}" for n, v in enumerate(values))
    return f"(CASE ({expr}) % {len(values)} {whens} END)"


def generate(engine: sa.Engine, scale: float, *, cases: int | None = None, quiet: bool = False) -> dict[str, int]:
    d = engine.dialect.name
    n_callers, n_calls = max(int(250_000 * scale), 10), max(int(1_000_000 * scale), 10)
    n_texts, n_cases, n_cb = max(int(100_000 * scale), 10), max(int(10_000 * scale), 10), max(int(20_000 * scale), 10)
    n_cases = cases or n_cases
    steps = [
        ("callers", f"""INSERT INTO callers (phone, country, language, created_at)
            SELECT '+855' || (10000000 + i), CASE WHEN i % 5 = 0 THEN 'TH' ELSE 'KH' END,
                   {pick("i", ("km", "km", "km", "km", "km", "km", "km", "th", "th", "en"))},
                   {ts(d, f"(i * {YEAR_S // n_callers}) % {YEAR_S}")}
            FROM {numbers(d, n_callers)}"""),
        ("calls", f"""INSERT INTO calls (call_sid, caller_id, direction, line, status, language, state, last_node,
                                        provider, started_at, ended_at, duration_s)
            SELECT 'CA' || i, 1 + (i * 7919) % {n_callers}, 'inbound',
                   CASE WHEN i % 20 = 0 THEN 'missed' ELSE 'main' END,
                   'completed', {pick("i", ("km", "km", "km", "km", "km", "km", "th", "th", "en", None))}, '{{}}',
                   {pick("i * 13", NODES)}, 'twilio', {ts(d, f"i * {YEAR_S} / {n_calls}")},
                   {ts(d, f"i * {YEAR_S} / {n_calls} + 120")}, 120
            FROM {numbers(d, n_calls)}"""),
        # Ten path steps per call: node, language, node, key, node, part 0, part 1, completed (two calls
        # in three), key, hangup.
        ("call_events", f"""INSERT INTO call_events (call_id, at, kind, node, detail)
            SELECT c.id, {add_seconds(d, "c.started_at", "k.i * 10")},
                   CASE k.i WHEN 1 THEN 'node' WHEN 2 THEN 'language' WHEN 3 THEN 'node' WHEN 4 THEN 'key'
                        WHEN 5 THEN 'node' WHEN 6 THEN 'message_part' WHEN 7 THEN 'message_part'
                        WHEN 8 THEN CASE WHEN c.id % 3 = 0 THEN 'key' ELSE 'message_completed' END
                        WHEN 9 THEN 'key' ELSE 'hangup' END,
                   CASE WHEN k.i IN (1, 2) THEN 'language' WHEN k.i IN (3, 4) THEN 'main'
                        ELSE {pick("c.id * 13", NODES)} END,
                   CASE k.i WHEN 6 THEN '0' WHEN 7 THEN '1' WHEN 10 THEN 'completed' ELSE NULL END
            FROM calls c, {numbers(d, 10).replace(" AS g", " AS k").replace("AS g(i)", "AS k(i)")}"""),
        ("messages", f"""INSERT INTO messages (direction, channel, caller_id, peer, body, language, status, keyword,
                                              purpose, provider, created_at)
            SELECT CASE WHEN i % 100 = 0 THEN 'outbound' ELSE 'inbound' END, 'sms', 1 + (i * 104729) % {n_callers},
                   '+855' || (10000000 + (i * 104729) % {n_callers}), NULL,
                   {pick("i", ("km", "km", "km", "th", "en", None))},
                   CASE WHEN i % 100 = 0 THEN (CASE WHEN i % 300 = 0 THEN 'failed' ELSE 'delivered' END)
                        ELSE 'received' END, CASE WHEN i % 100 = 0 THEN NULL ELSE {pick("i", KEYWORDS)} END,
                   CASE WHEN i % 100 = 0 THEN 'oncall_alert' ELSE NULL END, 'twilio',
                   {ts(d, f"i * {YEAR_S} / {n_texts}")}
            FROM {numbers(d, n_texts)}"""),
        ("cases", f"""INSERT INTO cases (ref, caller_id, source, source_sid, priority, category, status, country,
                                        province, language, reported_by_other, escalation_level, overdue,
                                        created_at, claimed_at)
            SELECT 'R' || i, 1 + (i * 31) % {n_callers}, CASE WHEN i % 2 = 0 THEN 'voice' ELSE 'sms' END,
                   CASE WHEN i % 2 = 0 THEN 'CA' || (i * {max(n_calls // n_cases, 1)}) ELSE NULL END,
                   CASE WHEN i % 3 = 0 THEN 'urgent' ELSE 'normal' END,
                   {pick("i", ("trafficking", "documents", "unpaid_wages", "violence", "detention", "other"))},
                   {pick("i * 7", ("new", "claimed", "in_progress", "referred", "closed"))},
                   CASE WHEN i % 4 = 0 THEN 'TH' ELSE 'KH' END,
                   CASE WHEN i % 6 = 0 THEN NULL WHEN (i * i) % 25 < 9 THEN '0' || (1 + (i * i) % 25)
                        ELSE '' || (1 + (i * i) % 25) END, 'km', false,
                   CASE WHEN i % 9 = 0 THEN 1 ELSE 0 END, i % 11 = 0, {ts(d, f"i * {YEAR_S} / {n_cases}")},
                   CASE WHEN i % 5 = 0 THEN NULL ELSE {ts(d, f"i * {YEAR_S} / {n_cases} + 60 + (i * 37) % 3600")} END
            FROM {numbers(d, n_cases)}"""),
        ("callback_requests", f"""INSERT INTO callback_requests (caller_id, phone, country, language, source,
                                        preferred_time, for_someone_else, status, attempts, case_id, outcome,
                                        created_at)
            SELECT 1 + (i * 17) % {n_callers}, '+855' || (20000000 + i), 'KH', 'km', 'ivr', 'now', false,
                   {pick("i", ("done", "done", "failed", "open", "cancelled"))}, 2,
                   CASE WHEN i % 4 = 0 THEN 1 + (i / 4) % {n_cases} ELSE NULL END,
                   CASE WHEN i % 5 < 2 THEN 'reached' ELSE NULL END, {ts(d, f"i * {YEAR_S} / {n_cb}")}
            FROM {numbers(d, n_cb)}"""),
        ("callback_attempts", f"""INSERT INTO callback_attempts (request_id, outcome, at)
            SELECT r.id, CASE WHEN k.i = 2 AND r.status = 'done' THEN 'reached' ELSE 'no_answer' END,
                   {add_seconds(d, "r.created_at", "k.i * 1800 + r.id % 600")}
            FROM callback_requests r, {numbers(d, 2).replace("AS g(i)", "AS k(i)").replace(" AS g", " AS k")}"""),
    ]
    counts = {}
    for table, sql in steps:
        t0 = time.perf_counter()
        with engine.begin() as conn:
            conn.execute(sa.text(sql))
            counts[table] = conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()
        if not quiet:
            print(f"  {table:18} {counts[table]:>10,} rows  {time.perf_counter() - t0:6.1f} s", flush=True)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))
    return counts


def roll_up(engine: sa.Engine) -> None:
    """Roll up the year as the periodic duty would by noon on 31 December (that day stays live)."""
    from datetime import datetime

    from sqlalchemy.orm import Session

    from hotline.services import rollups

    tz = ZoneInfo("Asia/Phnom_Penh")
    t0 = time.perf_counter()
    with Session(engine) as s:
        days = rollups.rebuild(s, tz, datetime(2026, 12, 31, 12, tzinfo=tz))
        n = {m.__tablename__: s.scalar(sa.select(sa.func.count()).select_from(m)) for m in rollups.TABLES}
    print(f"\n  roll-ups: {days} days in {time.perf_counter() - t0:.1f} s; rows: "
          + ", ".join(f"{k} {v:,}" for k, v in n.items()), flush=True)
    with engine.begin() as conn:
        conn.execute(sa.text("ANALYZE"))


def time_reports(engine: sa.Engine, repeat: int) -> None:
    from sqlalchemy.orm import Session

    from hotline.web import charts
    from hotline.web.staff.i18n import report_label

    tz = ZoneInfo("Asia/Phnom_Penh")
    for by in ("month", "week"):
        period = reports.Period(date(2026, 1, 1), date(2026, 12, 31), by, tz)  # type: ignore[arg-type]
        best: dict[str, float] = {}
        totals = []
        for _ in range(repeat):
            with Session(engine) as s:
                t0 = time.perf_counter()
                rep = reports.build(s, period)
                t1 = time.perf_counter()
            shown = reports.present(rep, 5, report_label("km"), "km")
            for t in shown:  # the charts the page draws
                if t.chart == "line":
                    series = [(r[0], v[:-1], r[1:-1]) for r, v in zip(t.rows, t.values, strict=True)]
                    charts.line(t.title, t.columns[:-1], series)
                elif t.chart:
                    charts.bars(t.title, t.labels, [v[0] for v in t.values], [r[1] for r in t.rows])
            reports.to_csv(shown, "bench")
            t2 = time.perf_counter()
            totals.append((t1 - t0, t2 - t1))
            for k, v in rep.seconds.items():
                best[k] = min(best.get(k, v), v)
        q, p = min(totals)
        print(f"\n  year by {by}: page {q + p:.2f} s (queries {q:.2f} s, suppression + charts + CSV {p:.3f} s); "
              f"best of {repeat}; first run {sum(totals[0]):.2f} s")
        for k, v in sorted(best.items(), key=lambda kv: -kv[1]):
            print(f"    {k:18} {v * 1000:8.1f} ms")


def measure(engine: sa.Engine, args: argparse.Namespace) -> None:
    if args.live:
        from hotline.services import rollups

        with engine.begin() as conn:  # no roll-ups: every number counted from the base tables
            for m in (*rollups.TABLES, rollups.ReportRollupState):
                conn.execute(sa.delete(m))
        print("\n  live (no roll-ups):")
        time_reports(engine, args.repeat)
    roll_up(engine)
    print("\n  with the roll-ups (through 30 December; 31 December live):")
    time_reports(engine, args.repeat)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    ap.add_argument("--scale", type=float, default=1.0, help="1.0 = 1 M calls, 10 M events (default)")
    ap.add_argument("--pg-url", default=os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the generated database")
    ap.add_argument("--reuse-pg", metavar="NAME", help="time an existing (kept) PostgreSQL database; no generation")
    ap.add_argument("--live", action="store_true", help="also time the reports before the roll-ups are made")
    args = ap.parse_args()
    print(f"scale {args.scale}: {int(1_000_000 * args.scale):,} calls, {int(10_000_000 * args.scale):,} events")
    if args.backend in ("sqlite", "both"):
        folder = Path(tempfile.mkdtemp(prefix="hotline-bench-"))
        url = f"sqlite:///{folder / 'bench.db'}"
        upgrade(url)
        engine = sa.create_engine(url)
        print(f"\nSQLite ({url})")
        generate(engine, args.scale)
        measure(engine, args)
        engine.dispose()
        if not args.keep:
            (folder / "bench.db").unlink()
    if args.reuse_pg:
        url = sa.engine.make_url(normalise_database_url(args.pg_url)).set(database=args.reuse_pg)
        upgrade(url.render_as_string(hide_password=False))
        engine = sa.create_engine(url)
        print(f"\nPostgreSQL (existing database {args.reuse_pg})")
        measure(engine, args)
        return
    if args.backend in ("postgres", "both"):
        base = sa.engine.make_url(normalise_database_url(args.pg_url))
        name = f"hotline_bench_reports_{os.getpid()}"
        admin = sa.create_engine(base, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = base.set(database=name).render_as_string(hide_password=False)
        try:
            upgrade(url)
            engine = sa.create_engine(url)
            print(f"\nPostgreSQL (database {name})")
            generate(engine, args.scale)
            measure(engine, args)
            engine.dispose()
        finally:
            if not args.keep:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
