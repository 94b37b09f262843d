"""Daily roll-ups for the reports: per local day and dimension, counts only.

A year of a busy line is ten million call events; counting them again for every report page takes
seconds. So a periodic duty rolls each closed local day (in HOTLINE_TIMEZONE) into small tables once,
and `hotline.services.reports` reads those for the days they hold and the base tables for the days
after them (today and yesterday, always live), so every number is the same as counted from scratch.

The same SELECT makes a day's rows for the roll-up and for the live days of a report, so the two can
never count differently. What is rolled up:

- `report_call_days`: inbound calls per day, line, language, caller's country and hang-up node;
- `report_event_days`: messages started (first part) and heard to the end, per day and node;
- `report_funnel_days`: distinct calls per day that chose a language, started or finished a message,
  and how many of those had the same kind of event the day before (a call that runs past midnight):
  distinct calls over a range = sum of `calls` - sum of `spanning` after the range's first day;
- `report_caller_days`: one row per caller and day with a menu call, holding the caller's previous
  such day and the day the number first reached us; the distinct callers of any range [a, b] are
  the rows in it with no previous day on or after a, first-time callers those among them whose first
  day falls in the same period. Exact, with no DISTINCT over a year of calls.

A day is closed six hours after its local midnight (`CLOSED_AFTER`): a call lasts at most four
hours at Twilio, so by then its events and its end are in. Today (and yesterday before 06:00) is
always counted live. Calls are assumed to last under a day (events of a
call are looked up from calls started up to a day before). Rows written later for a day already
rolled up (an import of old data) are not seen until `rebuild`.

Personal data: the roll-ups hold dates and counts. `report_caller_days.caller_id` only links a
caller's next day to the previous one; the retention purge empties it when it empties the caller's
number (`forget_callers`), which leaves every count as it was.
"""

from __future__ import annotations

import logging
import time as clock
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hotline.background.periodic import every
from hotline.db import utcnow
from hotline.models import (
    Call,
    Caller,
    CallEvent,
    Direction,
    ReportCallDay,
    ReportCallerCount,
    ReportCallerDay,
    ReportEventDay,
    ReportFunnelDay,
    ReportRollupState,
)
from hotline.resources import Resources

log = logging.getLogger(__name__)
CLOSED_AFTER = timedelta(hours=6)  # a day is rolled up this long after it ended
CHUNK_DAYS = 31  # days rolled up per transaction
REFRESH_EVERY = 600.0  # seconds between two looks in one worker process (a day is rolled once)
DAYS_PER_TICK = 7  # at most this many days per worker tick, so a backlog never holds up escalation
FUNNEL_KINDS = ("language", "message_part", "message_completed")
TABLES = (ReportCallDay, ReportEventDay, ReportFunnelDay, ReportCallerDay, ReportCallerCount)
_last_run: float | None = None


# --- dialect helpers -----------------------------------------------------------------------------

def _quoted(text: str) -> Any:
    return sa.literal_column("'" + text.replace("'", "''") + "'")


def local_day(col: Any, tz: ZoneInfo, dialect: str, at: date) -> Any:
    """The local date of a UTC timestamp column (on SQLite, with the zone's offset on day `at`)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.timezone(_quoted(tz.key), col), sa.Date)
    offset = datetime.combine(at, time(), tz).utcoffset() or timedelta()
    return sa.func.date(col, _quoted(f"{int(offset.total_seconds() // 60):+d} minutes"))


def _day_before(col: Any, dialect: str) -> Any:
    if dialect == "postgresql":
        return col - sa.literal_column("1")
    return sa.func.date(col, _quoted("-1 day"))


def day_bucket_start(col: Any, by: str, dialect: str) -> Any:
    """The first day of the week (Monday) or month of a date column, as a date (a string on SQLite)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.date_trunc(_quoted(by), sa.cast(col, sa.DateTime)), sa.Date)
    if by == "month":
        return sa.func.strftime(_quoted("%Y-%m-01"), col)
    return sa.func.date(col, _quoted("-6 days"), _quoted("weekday 1"))


def day_bucket(col: Any, by: str, dialect: str) -> Any:
    """The period label of a date column: YYYY-MM-DD of its week's Monday or its month's first day."""
    if dialect == "postgresql":
        return sa.func.to_char(day_bucket_start(col, by, dialect), _quoted("YYYY-MM-DD"))
    return day_bucket_start(col, by, dialect)


def _day(value: date) -> Any:
    return sa.literal(value, sa.Date)


def utc_bounds(first: date, last: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    lo = datetime.combine(first, time(), tz).astimezone(UTC)
    hi = datetime.combine(last + timedelta(days=1), time(), tz).astimezone(UTC)
    return lo, hi


# --- one SELECT per roll-up, over the local days first..last --------------------------------------

def calls_daily(first: date, last: date, tz: ZoneInfo, dialect: str) -> sa.Select[Any]:
    lo, hi = utc_bounds(first, last, tz)
    day = local_day(Call.started_at, tz, dialect, first)
    hang = sa.case((Call.ended_at.is_not(None), sa.func.coalesce(Call.last_node, "")), else_=None)
    language = sa.cast(Call.language, sa.String)
    return (sa.select(day.label("day"), Call.line.label("line"), language.label("language"),
                      Caller.country.label("country"), hang.label("hang_node"), sa.func.count().label("calls"))
            .select_from(Call).outerjoin(Caller, Caller.id == Call.caller_id)
            .where(Call.started_at >= lo, Call.started_at < hi, Call.direction == Direction.INBOUND)
            .group_by(day, Call.line, language, Caller.country, hang))


def _events_of(lo: datetime, hi: datetime) -> Any:
    """Events in [lo, hi), found through the calls started up to a day before (calls' index)."""
    return sa.and_(Call.started_at >= lo - timedelta(days=1), Call.started_at < hi,
                   CallEvent.at >= lo, CallEvent.at < hi)


def events_daily(first: date, last: date, tz: ZoneInfo, dialect: str) -> sa.Select[Any]:
    lo, hi = utc_bounds(first, last, tz)
    day = local_day(CallEvent.at, tz, dialect, first)
    return (sa.select(day.label("day"), CallEvent.kind.label("kind"), CallEvent.node.label("node"),
                      sa.func.count().label("events"))
            .select_from(CallEvent).join(Call, Call.id == CallEvent.call_id)
            .where(_events_of(lo, hi),
                   sa.or_(sa.and_(CallEvent.kind == "message_part", CallEvent.detail == "0"),
                          CallEvent.kind == "message_completed"))
            .group_by(day, CallEvent.kind, CallEvent.node))


def funnel_daily(first: date, last: date, tz: ZoneInfo, dialect: str) -> sa.Select[Any]:
    lo, hi = utc_bounds(first - timedelta(days=1), last, tz)  # the day before, for `spanning`
    day = local_day(CallEvent.at, tz, dialect, first)
    pairs = (sa.select(CallEvent.call_id.label("call_id"), CallEvent.kind.label("kind"), day.label("day"))
             .join(Call, Call.id == CallEvent.call_id)
             .where(_events_of(lo, hi), CallEvent.kind.in_(FUNNEL_KINDS)).distinct().subquery())
    before = sa.func.lag(pairs.c.day).over(partition_by=(pairs.c.call_id, pairs.c.kind), order_by=pairs.c.day)
    days = sa.select(pairs.c.day.label("day"), pairs.c.kind.label("kind"), sa.case(
        (before == _day_before(pairs.c.day, dialect), 1), else_=0).label("span")).subquery()
    return (sa.select(days.c.day.label("day"), days.c.kind.label("kind"), sa.func.count().label("calls"),
                      sa.func.sum(days.c.span).label("spanning"))
            .where(days.c.day >= _day(first)).group_by(days.c.day, days.c.kind))


def callers_daily(first: date, last: date, tz: ZoneInfo, dialect: str) -> sa.Select[Any]:
    """Caller-days of menu calls; the previous day is the caller's last rolled-up one or the one before
    in this window (the roll-up holds only days before `first` when this runs)."""
    lo, hi = utc_bounds(first, last, tz)
    day = local_day(Call.started_at, tz, dialect, first)
    first_day = local_day(Caller.created_at, tz, dialect, first)
    x = (sa.select(day.label("day"), Call.caller_id.label("caller_id"), first_day.label("first_day"))
         .join(Caller, Caller.id == Call.caller_id)
         .where(Call.started_at >= lo, Call.started_at < hi, Call.direction == Direction.INBOUND,
                Call.line == "main")
         .distinct().subquery())
    rolled = (sa.select(sa.func.max(ReportCallerDay.day)).where(ReportCallerDay.caller_id == x.c.caller_id)
              .scalar_subquery())
    lag = sa.func.lag(x.c.day).over(partition_by=x.c.caller_id, order_by=x.c.day)
    return sa.select(x.c.day.label("day"), x.c.caller_id.label("caller_id"),
                     sa.func.coalesce(lag, rolled).label("prev_day"), x.c.first_day.label("first_day"))


DAILY = ((ReportCallDay, calls_daily, ("day", "line", "language", "country", "hang_node", "calls")),
         (ReportEventDay, events_daily, ("day", "kind", "node", "events")),
         (ReportFunnelDay, funnel_daily, ("day", "kind", "calls", "spanning")),
         (ReportCallerDay, callers_daily, ("day", "caller_id", "prev_day", "first_day")))


def fresh(rows: Any, start: date | None, by: str, dialect: str) -> Any:
    """A caller-day that is the caller's first in its period (cut by a range starting on `start`)."""
    return sa.or_(rows.c.prev_day.is_(None), rows.c.prev_day < day_bucket_start(rows.c.day, by, dialect),
                  *([rows.c.prev_day < _day(start)] if start else []))


def first_time(rows: Any, start: date | None, by: str, dialect: str) -> Any:
    """...and the number first reached us in that same period."""
    return sa.and_(fresh(rows, start, by, dialect),
                   day_bucket(rows.c.first_day, by, dialect) == day_bucket(rows.c.day, by, dialect))


def caller_counts_daily(first: date, last: date, dialect: str) -> sa.Select[Any]:
    """`report_caller_counts` rows from the caller-days already rolled up for first..last."""
    rows = ReportCallerDay.__table__
    one = {by: sa.case((fresh(rows, None, by, dialect), 1), else_=0) for by in ("week", "month")}
    new = {by: sa.case((first_time(rows, None, by, dialect), 1), else_=0) for by in ("week", "month")}
    return (sa.select(rows.c.day, sa.func.sum(one["week"]), sa.func.sum(new["week"]),
                      sa.func.sum(one["month"]), sa.func.sum(new["month"]))
            .where(rows.c.day >= _day(first), rows.c.day <= _day(last)).group_by(rows.c.day))


def callers(session: Session, start: date, end: date, through: date, by: str,
            tz: ZoneInfo) -> tuple[dict[str, tuple[int, int]], int, int]:
    """Distinct and first-time callers for local days start..end: per period label, and for the range.

    Whole periods' rolled-up days come from the daily counts (and, for the range, one pass over their
    caller-days); the rest (a period cut by `start`, the live days) from caller-day rows, in one query.
    """
    dialect = session.get_bind().dialect.name
    if by == "month":
        whole = start if start.day == 1 else (start.replace(day=28) + timedelta(days=4)).replace(day=1)
    else:
        whole = start + timedelta(days=(7 - start.weekday()) % 7)
    out: dict[str, tuple[int, int]] = {}
    total = new = 0

    def add(label: str, n: Any, k: Any) -> None:
        a, b = out.get(label, (0, 0))
        out[label] = (a + int(n or 0), b + int(k or 0))

    def in_range(rows: Any) -> tuple[Any, Any]:
        one = sa.or_(rows.c.prev_day.is_(None), rows.c.prev_day < _day(start))
        return one, sa.and_(one, rows.c.first_day >= _day(start), rows.c.first_day <= _day(end))

    parts: list[tuple[date, date]] = []
    last_rolled = min(through, end)
    if whole <= last_rolled:
        c = ReportCallerCount
        cols = (c.week_callers, c.week_first) if by == "week" else (c.month_callers, c.month_first)
        q = (sa.select(day_bucket(c.day, by, dialect), sa.func.sum(cols[0]), sa.func.sum(cols[1]))
             .where(c.day >= whole, c.day <= last_rolled).group_by(day_bucket(c.day, by, dialect)))
        for label, n, k in session.execute(q):
            add(label, n, k)
        t = ReportCallerDay.__table__
        one, fresh_new = in_range(t)
        n, k = session.execute(sa.select(sa.func.sum(sa.case((one, 1), else_=0)),
                                         sa.func.sum(sa.case((fresh_new, 1), else_=0)))
                               .where(t.c.day >= _day(whole), t.c.day <= _day(last_rolled))).one()
        total, new = int(n or 0), int(k or 0)
        if start < whole:
            parts.append((start, whole - timedelta(days=1)))
        if through < end:
            parts.append((through + timedelta(days=1), end))
    else:
        parts.append((start, end))
    for first, last in parts:
        rows = source(session, ReportCallerDay, first, last, through, tz)
        one, fresh_new = in_range(rows)
        q = (sa.select(day_bucket(rows.c.day, by, dialect),
                       sa.func.sum(sa.case((fresh(rows, start, by, dialect), 1), else_=0)),
                       sa.func.sum(sa.case((first_time(rows, start, by, dialect), 1), else_=0)),
                       sa.func.sum(sa.case((one, 1), else_=0)), sa.func.sum(sa.case((fresh_new, 1), else_=0)))
             .group_by(day_bucket(rows.c.day, by, dialect)))
        for label, n, k, n_range, k_range in session.execute(q):
            add(label, n, k)
            total, new = total + int(n_range or 0), new + int(k_range or 0)
    return out, total, new


def source(session: Session, model: Any, first: date, last: date, through: date, tz: ZoneInfo) -> Any:
    """The rows of one roll-up for local days first..last: rolled up to `through`, live after it."""
    dialect = session.get_bind().dialect.name
    make, names = next((m, n) for mod, m, n in DAILY if mod is model)
    parts: list[sa.Select[Any]] = []
    if through >= first:
        parts.append(sa.select(*(getattr(model, n) for n in names))
                     .where(model.day >= first, model.day <= min(through, last)))
    if through < last:
        parts.append(make(max(first, through + timedelta(days=1)), last, tz, dialect))
    return (parts[0] if len(parts) == 1 else sa.union_all(*parts)).subquery()


# --- state and refresh ---------------------------------------------------------------------------

def rolled_through(session: Session, tz: ZoneInfo) -> date | None:
    """The last local day the roll-ups hold, if they were made in this zone."""
    state = session.get(ReportRollupState, 1)
    if state is None or state.tz != tz.key:
        return None
    return state.through


def refresh(session: Session, tz: ZoneInfo, now: datetime | None = None, *, max_days: int | None = None) -> int:
    """Roll up every closed day not rolled up yet (at most `max_days`), a chunk per commit; returns the
    number of days rolled up."""
    dialect = session.get_bind().dialect.name
    last = ((now or utcnow()).astimezone(tz) - CLOSED_AFTER).date() - timedelta(days=1)
    state = session.get(ReportRollupState, 1, populate_existing=True)
    if state is not None and state.tz != tz.key:  # another zone: days mean other hours
        _wipe(session)
        session.delete(state)
        session.flush()
        state = None
    if state is None:
        earliest = session.scalar(sa.select(sa.func.min(Call.started_at)))
        if earliest is None:
            session.commit()
            return 0  # nothing to roll up yet: reports stay live
        start = earliest.astimezone(tz).date()
        state = ReportRollupState(id=1, tz=tz.key, through=start - timedelta(days=1))
        session.add(state)
        session.flush()
    start, rolled = state.through + timedelta(days=1), 0
    while start <= last and (max_days is None or rolled < max_days):
        chunk = CHUNK_DAYS if max_days is None else min(CHUNK_DAYS, max_days - rolled)
        end = min(start + timedelta(days=chunk - 1), last)
        # Claim the days first (a conditional UPDATE, the transaction's first write): a second worker
        # doing the same waits for this one's commit, then finds the days taken and stops.
        claimed = session.execute(
            sa.update(ReportRollupState)
            .where(ReportRollupState.id == 1, ReportRollupState.through == start - timedelta(days=1))
            .values(through=end, updated_at=utcnow()).execution_options(synchronize_session=False))
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            session.rollback()
            break
        for model, make, names in DAILY:
            session.execute(sa.insert(model).from_select(list(names), make(start, end, tz, dialect)))
        session.execute(sa.insert(ReportCallerCount).from_select(
            ["day", "week_callers", "week_first", "month_callers", "month_first"],
            caller_counts_daily(start, end, dialect)))
        session.commit()
        rolled += (end - start).days + 1
        start = end + timedelta(days=1)
    session.commit()
    return rolled


def _wipe(session: Session) -> None:
    for model in TABLES:
        session.execute(sa.delete(model))


def rebuild(session: Session, tz: ZoneInfo, now: datetime | None = None) -> int:
    """Empty the roll-ups and roll every closed day up again (after importing old data)."""
    _wipe(session)
    session.execute(sa.delete(ReportRollupState))
    session.flush()
    return refresh(session, tz, now)


def forget_callers(session: Session, caller_ids: Any) -> int:
    """Unlink purged callers from their caller-days (the counts stay)."""
    result = session.execute(sa.update(ReportCallerDay).where(ReportCallerDay.caller_id.is_not(None),
                                                              ReportCallerDay.caller_id.in_(caller_ids))
                             .values(caller_id=None).execution_options(synchronize_session=False))
    return int(result.rowcount)  # type: ignore[attr-defined]


@every
def refresh_periodically(res: Resources) -> None:
    """Roll up each day once it is closed: looks every ten minutes, and works through a backlog (the
    first run on a year of calls) a week per tick, so the other duties of the tick are not held up."""
    global _last_run
    if _last_run is not None and clock.monotonic() - _last_run < REFRESH_EVERY:
        return
    _last_run = clock.monotonic()
    t0 = clock.perf_counter()
    with res.db.session() as s:
        n = refresh(s, res.settings.tz, max_days=DAYS_PER_TICK)
    if n:
        log.info("reports: rolled up %d day(s) in %.1f s", n, clock.perf_counter() - t0)
    if n >= DAYS_PER_TICK:
        _last_run = None  # more to do: go on at the next tick
