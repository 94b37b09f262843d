"""Daily roll-ups: reports read them for closed days and count live after them, with the same numbers."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
import sqlalchemy as sa

from hotline.background import periodic
from hotline.models import (
    Call,
    Caller,
    CallEvent,
    Direction,
    ReportCallDay,
    ReportCallerDay,
    ReportEventDay,
    ReportFunnelDay,
    ReportRollupState,
)
from hotline.services import reports, rollups
from tests.test_reports import PERIOD, TZ, crafted, rows, utc


def snapshot(rep: reports.Report) -> list:
    return [(t.id, [(r.key, r.cells, r.total) for r in t.rows]) for t in rep.tables]


def roll_through(db, day: date) -> int:
    """Roll up every day to `day` (the clock at 07:00 the day after), from scratch."""
    now = datetime.combine(day + timedelta(days=1), time(7), TZ)
    n = rollups.rebuild(db, TZ, now)
    assert rollups.rolled_through(db, TZ) == day
    return n


def late_call(db) -> None:
    """A call across local midnight that starts a message on both days (distinct calls count it once),
    from a caller whose calls on two days fall in one week."""
    caller = db.scalar(sa.select(Caller).where(Caller.phone == "+85510000003"))
    c = Call(call_sid="CA-late", caller_id=caller.id, line="main", direction=Direction.INBOUND, state={},
             status="completed", last_node="topic_wages", started_at=utc(2026, 1, 20, 16, 50),
             ended_at=utc(2026, 1, 20, 17, 20))  # 23:50 to 00:20 local, 20/21 January
    db.add(c)
    db.flush()
    for minutes, kind, node, detail in ((1, "language", None, "km"), (5, "message_part", "topic_wages", "0"),
                                        (15, "message_part", "topic_wages", "0"),
                                        (25, "message_completed", "topic_wages", None)):
        db.add(CallEvent(call_id=c.id, at=c.started_at + timedelta(minutes=minutes), kind=kind, node=node,
                         detail=detail))
    db.add(Call(call_sid="CA-next", caller_id=caller.id, line="main", direction=Direction.INBOUND, state={},
                status="completed", started_at=utc(2026, 1, 22, 3), ended_at=utc(2026, 1, 22, 3, 5)))
    db.commit()


PERIODS = [PERIOD,
           reports.Period(date(2026, 1, 1), date(2026, 2, 28), "week", TZ),
           reports.Period(date(2026, 1, 10), date(2026, 2, 20), "month", TZ),
           reports.Period(date(2026, 1, 21), date(2026, 1, 31), "week", TZ),
           reports.Period(date(2025, 12, 1), date(2026, 3, 31), "month", TZ)]
THROUGH = [date(2026, 1, 1), date(2026, 1, 6), date(2026, 1, 20), date(2026, 1, 21), date(2026, 1, 31),
           date(2026, 2, 1), date(2026, 2, 28), date(2026, 3, 10)]


def test_rolled_up_reports_equal_live_ones_wherever_the_roll_up_ends(db):
    crafted(db)
    late_call(db)
    live = [snapshot(reports.build(db, p)) for p in PERIODS]
    assert rows(reports.build(db, PERIODS[3]), "funnel")["stage_message"] == [1]  # the late call, once
    for through in THROUGH:
        roll_through(db, through)
        for p, expected in zip(PERIODS, live, strict=True):
            assert snapshot(reports.build(db, p)) == expected, (through, p)


def test_the_rolled_up_numbers_are_the_crafted_ones(db):
    crafted(db)
    roll_through(db, date(2026, 3, 31))
    rep = reports.build(db, PERIOD)
    callers = rep.table("callers")
    assert [(r.key, r.cells, r.total) for r in callers.rows] == [("first_time", [1, 1], 3), ("returning", [1, 2], 1)]
    assert rows(rep, "funnel") == {"stage_called": [6], "stage_language": [5], "stage_message": [3],
                                   "stage_completed": [2]}
    assert rows(rep, "messages") == {"topic_wages": [2, 1], "topic_passport": [1, 1]}
    assert db.scalar(sa.select(sa.func.sum(ReportCallDay.calls))) == 8  # every inbound call of the history


def test_refresh_rolls_each_closed_day_once_and_keeps_today_live(db):
    crafted(db)
    early = datetime.combine(date(2026, 1, 20), time(5, 59), TZ)  # 19 January's calls may still run
    assert rollups.refresh(db, TZ, early) == 18  # 1 to 18 January (the first call is on 1 January)
    assert rollups.rolled_through(db, TZ) == date(2026, 1, 18)
    now = datetime.combine(date(2026, 1, 20), time(6, 0), TZ)
    assert rollups.refresh(db, TZ, now) == 1
    assert rollups.rolled_through(db, TZ) == date(2026, 1, 19)
    n_rows = db.scalar(sa.select(sa.func.count()).select_from(ReportCallDay))
    assert rollups.refresh(db, TZ, now) == 0
    assert db.scalar(sa.select(sa.func.count()).select_from(ReportCallDay)) == n_rows
    assert rollups.refresh(db, TZ, now + timedelta(days=1)) == 1
    assert rollups.rolled_through(db, TZ) == date(2026, 1, 20)
    # Another zone's roll-ups are not read (its days are other hours), and are made again.
    assert rollups.rolled_through(db, reports.ZoneInfo("Asia/Bangkok")) is None


def test_nothing_to_roll_up_leaves_reports_live(db):
    assert rollups.refresh(db, TZ) == 0
    assert db.get(ReportRollupState, 1) is None
    assert rows(reports.build(db, PERIOD), "contacts")["channel_voice"] == [0, 0]


def test_the_refresh_is_a_periodic_duty():
    assert rollups.refresh_periodically in periodic.TASKS


def test_roll_ups_hold_no_phone_number_and_the_purge_unlinks_callers(db, res):
    from hotline.services import retention

    crafted(db)
    roll_through(db, date(2026, 3, 31))
    before = snapshot(reports.build(db, PERIOD))
    for model in (ReportCallDay, ReportEventDay, ReportFunnelDay, ReportCallerDay, ReportRollupState):
        for row in db.execute(sa.select(model.__table__)):
            assert not any(isinstance(v, str) and v.startswith("+") for v in row), (model, row)
    assert db.scalar(sa.select(sa.func.count()).where(ReportCallerDay.caller_id.is_not(None))) > 0
    retention.purge(db, res.settings, timedelta(days=30), now=utc(2026, 12, 1))
    db.commit()
    purged = sa.select(Caller.id).where(Caller.phone.is_(None))
    assert db.scalar(sa.select(sa.func.count()).select_from(purged.subquery())) >= 1  # D: no open business
    assert db.scalar(sa.select(sa.func.count()).where(ReportCallerDay.caller_id.in_(purged))) == 0
    assert db.scalar(sa.select(sa.func.count()).where(ReportCallerDay.caller_id.is_(None))) >= 1
    assert snapshot(reports.build(db, PERIOD)) == before


@pytest.mark.parametrize("by", ["month", "week"])
def test_day_buckets_match_the_timestamp_buckets(db, by):
    crafted(db)
    roll_through(db, date(2026, 3, 31))
    got = db.execute(sa.select(rollups.day_bucket(ReportCallDay.day, by, db.get_bind().dialect.name))
                     .where(ReportCallDay.day == date(2026, 2, 1))).scalars().first()
    assert got == ("2026-02-01" if by == "month" else "2026-01-26")


def random_history(db, seed: int) -> None:
    """Forty callers and three hundred calls over ten weeks, at any hour, some across midnight, with
    message and language events, and callers created before, during or after their first call's day."""
    import random

    rnd = random.Random(seed)
    callers = [Caller(phone=f"+8551200{n:04d}", country=rnd.choice(["KH", "TH", None]),
                      created_at=utc(2026, 1, 1) + timedelta(hours=rnd.randrange(0, 60 * 24)))
               for n in range(40)]
    db.add_all(callers)
    db.flush()
    for n in range(300):
        who = rnd.choice(callers)
        at = utc(2025, 12, 28) + timedelta(minutes=rnd.randrange(0, 70 * 24 * 60))
        c = Call(call_sid=f"CA-r{n}", caller_id=who.id, line=rnd.choice(["main", "main", "main", "missed"]),
                 direction=rnd.choice([Direction.INBOUND] * 5 + [Direction.OUTBOUND]), state={},
                 status="completed", last_node=rnd.choice(["main", "topic_wages", None]), started_at=at,
                 ended_at=None if n % 17 == 0 else at + timedelta(minutes=40))
        db.add(c)
        db.flush()
        for k in range(rnd.randrange(0, 6)):
            kind = rnd.choice(["language", "message_part", "message_completed", "key"])
            db.add(CallEvent(call_id=c.id, at=at + timedelta(minutes=8 * k), kind=kind,
                             node=rnd.choice(["topic_wages", "topic_money"]), detail=rnd.choice(["0", "1", None])))
    db.commit()


@pytest.mark.parametrize("chunk", [31, 3])
def test_rolled_up_equals_live_on_random_histories(db, monkeypatch, chunk):
    monkeypatch.setattr(rollups, "CHUNK_DAYS", chunk)  # chunks that cut weeks and months
    random_history(db, seed=chunk)
    periods = [reports.Period(date(2026, 1, 1), date(2026, 3, 8), "month", TZ),
               reports.Period(date(2026, 1, 1), date(2026, 3, 8), "week", TZ),
               reports.Period(date(2026, 1, 14), date(2026, 2, 25), "month", TZ),
               reports.Period(date(2026, 1, 7), date(2026, 2, 25), "week", TZ)]
    live = [snapshot(reports.build(db, p)) for p in periods]
    assert sum(r.total or 0 for r in reports.build(db, periods[0]).table("callers").rows) > 10
    for through in (date(2026, 1, 3), date(2026, 1, 15), date(2026, 2, 2), date(2026, 2, 24), date(2026, 3, 20)):
        roll_through(db, through)
        for p, expected in zip(periods, live, strict=True):
            assert snapshot(reports.build(db, p)) == expected, (through, p)


def test_the_periodic_duty_works_through_a_backlog_a_week_per_tick(db, res, monkeypatch):
    crafted(db)
    live = snapshot(reports.build(db, PERIOD))
    monkeypatch.setattr(rollups, "_last_run", None)
    monkeypatch.setattr(rollups, "utcnow", lambda: datetime.combine(date(2026, 3, 2), time(9), TZ))
    rollups.refresh_periodically(res)
    db.expire_all()
    assert rollups.rolled_through(db, TZ) == date(2026, 1, 7)  # a week, from the first call's day
    rollups.refresh_periodically(res)  # a backlog: no ten-minute wait
    db.expire_all()
    assert rollups.rolled_through(db, TZ) == date(2026, 1, 14)
    for _ in range(20):
        rollups.refresh_periodically(res)
    db.expire_all()
    assert rollups.rolled_through(db, TZ) == date(2026, 3, 1)  # closed days only: 2 March is today
    assert snapshot(reports.build(db, PERIOD)) == live


def test_two_workers_rolling_up_at_once_count_each_day_once(db, res):
    import threading

    crafted(db)
    live = snapshot(reports.build(db, PERIOD))
    now = datetime.combine(date(2026, 3, 20), time(9), TZ)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            with res.db.Session() as s:
                rollups.refresh(s, TZ, now)
        except Exception as exc:  # noqa: BLE001 - a second first run may lose the race to create the state
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db.expire_all()
    assert rollups.rolled_through(db, TZ) == date(2026, 3, 18)
    assert db.scalar(sa.select(sa.func.sum(ReportCallDay.calls))) == 8  # not twice
    assert snapshot(reports.build(db, PERIOD)) == live
    assert len(errors) <= 1
