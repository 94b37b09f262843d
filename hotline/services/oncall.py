"""Who is on call: the roster, the "nobody is on call" warning, and catching up on waiting cases.

An urgent case opened while nobody was on call has an alert job that found no number and failed;
the 15-minute escalation would be the first thing to reach anyone. So adding a roster entry queues
the alert, at once, for every open urgent case that no one has been told about yet.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from hotline.background import outbox
from hotline.models import Case, CasePriority, CaseStatus, OnCallEntry, OutboxJob, OutboxStatus
from hotline.phones import HOME_REGIONS, known_country
from hotline.services.intake import NOTIFY_JOB
from hotline.services.legal_aid import oncall_numbers
from hotline.settings import Settings

log = logging.getLogger(__name__)

# Fictional, never allocated: ACMA (Australia) reserves 0491 570 156 for films and books. The first
# `hotline run` puts it on the roster when no phone is given, so the simulator shows the alerts.
SIMULATOR_PHONE = "+61491570156"
SIMULATOR_NAME = "Simulator phone (fictional number: replace it with a real one)"


class RosterError(ValueError):
    """A roster entry that cannot be stored; the message says why, in the user's terms."""


def add_entry(session: Session, *, country: str, phone: str, name: str = "", position: int = 0) -> OnCallEntry:
    """Add a number to a country's roster (the caller commits). `phone` must be E.164 already."""
    country = country.strip().upper()
    if not known_country(country):
        raise RosterError(f"{country!r} is not a country code: use two letters such as KH or TH")
    entry = OnCallEntry(country=country, phone=phone, name=name[:120], position=position, active=True)
    session.add(entry)
    session.flush()
    return entry


def uncovered(session: Session, settings: Settings) -> tuple[str, ...]:
    """The home countries (KH, TH) whose urgent cases would alert no one; all of them when nobody
    at all is on call. Two small queries: run at start-up and by the console's cached header, never
    on a webhook."""
    roster = set(session.scalars(sa.select(OnCallEntry.country).where(OnCallEntry.active.is_(True)).distinct()))
    return tuple(c for c in HOME_REGIONS if c not in roster and not settings.oncall_for(c))


def warning_text(missing: tuple[str, ...]) -> str | None:
    """One line for logs and the console, or None when every home country has someone on call."""
    if not missing:
        return None
    who = "Nobody is on call" if set(missing) == set(HOME_REGIONS) else f"Nobody is on call for {', '.join(missing)}"
    return (f"{who}: urgent-case alerts reach no one. Add a number in the console (On-call roster), "
            f"with `hotline oncall add {missing[0]} +…`, or set HOTLINE_ONCALL.")


def log_warning(session: Session, settings: Settings) -> str | None:
    """Log the "nobody on call" warning once (at process start); returns it."""
    text = warning_text(uncovered(session, settings))
    if text:
        log.warning("%s", text)
    return text


def alert_waiting_cases(session: Session, settings: Settings) -> list[int]:
    """Queue the alert for every open urgent case no one was told about (the caller commits).

    Idempotent: a case whose alert job is still pending or running is left to it, a case already
    alerted has `notified_at`, and the alert itself is keyed per case, level and number, so two
    admins adding numbers at once still send one text per number. Returns the case ids queued.
    """
    waiting = session.execute(sa.select(Case.id, Case.country, Case.escalation_level).where(
        Case.priority == CasePriority.URGENT, Case.status == CaseStatus.NEW, Case.claimed_by_id.is_(None),
        Case.notified_at.is_(None),
        ~sa.exists().where(OutboxJob.case_id == Case.id, OutboxJob.kind == NOTIFY_JOB,
                           OutboxJob.status.in_((OutboxStatus.PENDING, OutboxStatus.RUNNING))),
    ).order_by(Case.id)).all()
    queued = []
    for case_id, country, level in waiting:
        if not oncall_numbers(session, settings, country):
            continue  # still nobody for this country: the roster page and header say so
        outbox.add_job(session, NOTIFY_JOB, {"case_id": case_id, "level": level or 0}, queue="urgent",
                       case_id=case_id)
        queued.append(case_id)
    if queued:
        log.info("on-call roster changed: alerting %d waiting urgent case(s)", len(queued))
    return queued


@dataclass
class _Cached:
    at: float
    missing: tuple[str, ...]


class WarningCache:
    """The console header's "nobody on call" countries, recomputed at most every `ttl` seconds per
    process (and at once after a roster change in this process)."""

    def __init__(self, ttl: float = 30.0):
        self.ttl = ttl
        self._value: _Cached | None = None
        self._lock = threading.Lock()

    def get(self, session: Session, settings: Settings) -> tuple[str, ...]:
        value = self._value
        if value is None or time.monotonic() - value.at > self.ttl:
            with self._lock:
                value = _Cached(time.monotonic(), uncovered(session, settings))
                self._value = value
        return value.missing

    def clear(self) -> None:
        self._value = None


# --- what the console reads and changes ----------------------------------------------------------


def entries(session: Session) -> list[OnCallEntry]:
    """The whole roster, by country and then the order alerts ring in."""
    return list(session.scalars(sa.select(OnCallEntry).order_by(OnCallEntry.country, OnCallEntry.position,
                                                                OnCallEntry.id)))


def get_entry(session: Session, entry_id: int) -> OnCallEntry | None:
    return session.get(OnCallEntry, entry_id)


def remove_entry(session: Session, entry: OnCallEntry) -> None:
    session.delete(entry)
