"""ivr_scripts/facts.yaml: the numbers, wages and rules the scripts state, with sources and dates.

Pure (stdlib + yaml). Two dates are kept apart on purpose: `source_date` is what the source says,
`phone_checked` the day a person called the number (null until then). `hotline scripts check`
lists every number never phone-checked and every fact due for a check.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import yaml

FACTS_FILE = Path(__file__).resolve().parent.parent.parent / "ivr_scripts" / "facts.yaml"
SECTIONS = ("hotline_numbers", "wages", "rules")
CONFIDENCE = ("high", "medium", "low")
_PARTIAL_DATE = re.compile(r"\d{4}(-\d{2}(-\d{2})?)?")


class FactsError(ValueError):
    """facts.yaml is not valid; the message names the section, item and field."""


@dataclass(frozen=True)
class Fact:
    section: str
    key: str  # the number for hotline_numbers, else the fact's words
    country: str | None
    confidence: str
    source: str
    source_date: str | None
    phone_checked: date | None
    due_for_check: bool
    used_in: tuple[str, ...]
    effective_from: date | None = None  # wages: the day the rate took effect


@dataclass(frozen=True)
class Facts:
    items: tuple[Fact, ...]

    @property
    def numbers(self) -> tuple[Fact, ...]:
        return tuple(f for f in self.items if f.section == "hotline_numbers")

    def number(self, digits: str) -> Fact | None:
        return next((f for f in self.numbers if f.key == digits), None)

    def never_phone_checked(self) -> tuple[Fact, ...]:
        return tuple(f for f in self.numbers if f.phone_checked is None)

    def due(self) -> tuple[Fact, ...]:
        return tuple(f for f in self.items if f.due_for_check)


def load(path: Path | str = FACTS_FILE) -> Facts:
    """Read and check facts.yaml; raise FactsError naming the item and field of the first problem."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or set(data) - set(SECTIONS):
        raise FactsError(f"facts.yaml: top level must hold only {', '.join(SECTIONS)}")
    items = []
    for section in SECTIONS:
        for i, raw in enumerate(data.get(section) or []):
            items.append(_fact(section, i, raw))
    return Facts(tuple(items))


def _fact(section: str, i: int, raw: Any) -> Fact:
    where = f"facts.yaml: {section}[{i}]"
    if not isinstance(raw, dict):
        raise FactsError(f"{where}: must be a mapping")
    if "last_checked" in raw:
        raise FactsError(f"{where}: last_checked is ambiguous: give source_date and phone_checked")
    key = raw.get("number") if section == "hotline_numbers" else raw.get("fact")
    if not isinstance(key, str) or not key.strip():
        raise FactsError(f"{where}: needs {'number (in quotes)' if section == 'hotline_numbers' else 'fact'}")
    if raw.get("confidence") not in CONFIDENCE:
        raise FactsError(f"{where}.confidence: must be one of {', '.join(CONFIDENCE)}")
    if not isinstance(raw.get("source"), str) or not raw["source"].strip():
        raise FactsError(f"{where}.source: must say where the fact comes from")
    if "source_date" not in raw:
        raise FactsError(f"{where}.source_date: missing (null when the source is undated)")
    source_date = raw["source_date"]
    if source_date is not None and not (isinstance(source_date, str) and _PARTIAL_DATE.fullmatch(source_date)):
        raise FactsError(f"{where}.source_date: {source_date!r} must be \"YYYY\", \"YYYY-MM\", \"YYYY-MM-DD\" or null")
    checked = raw.get("phone_checked")
    if section == "hotline_numbers" and "phone_checked" not in raw:
        raise FactsError(f"{where}.phone_checked: missing (null until a person has called the number)")
    if checked is not None and not isinstance(checked, date):
        raise FactsError(f"{where}.phone_checked: {checked!r} must be a date (2026-12-05) or null")
    used_in = raw.get("used_in", [])
    if not isinstance(used_in, list) or not all(isinstance(u, str) for u in used_in):
        raise FactsError(f"{where}.used_in: must be a list of prompt ids and sms:<reply id>")
    if section == "wages" and not isinstance(raw.get("effective_from"), date):
        raise FactsError(f"{where}.effective_from: a wage rate needs the date it took effect")
    return Fact(section, key.strip(), raw.get("country"), raw["confidence"], raw["source"].strip(), source_date,
                checked, bool(raw.get("due_for_check", False)), tuple(used_in), raw.get("effective_from"))


def coverage_lines(facts: Facts) -> list[str]:
    """What `hotline scripts check` prints: every number never phone-checked, every fact due."""
    never = facts.never_phone_checked()
    lines = [f"facts.yaml: {len(facts.numbers)} numbers, {len(facts.items) - len(facts.numbers)} other facts; "
             f"{len(never)} numbers never phone-checked"]
    lines += [f"  never phone-checked: {f.key} ({f.country}, confidence {f.confidence}, source "
              f"{f.source_date or 'undated'})" for f in never]
    lines += [f"  due for a check: {f.key if f.section == 'hotline_numbers' else f.key[:60]}"
              + (f" (rate effective from {f.effective_from})" if f.effective_from else "")
              for f in facts.due()]
    return lines
