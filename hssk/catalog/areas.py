"""Names and the old (pre-2025) district of administrative codes, for reports.

Data: the ``vietnamadminunits`` package (MIT, © Tran Ngoc Minh Hieu), read offline.
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def _legacy() -> tuple[dict[str, str], ...]:
    """Old commune → old district, old district → name, province → name, commune → name,
    old commune → name."""
    import vietnamadminunits

    data = Path(vietnamadminunits.__file__).parent / "data" / "dataset.db"
    with sqlite3.connect(data) as conn:
        rows = conn.execute(
            "SELECT wardCode, districtCode, district, province, provinceCode, ward"
            " FROM admin_units_legacy"
        ).fetchall()
        new_rows = conn.execute(
            "SELECT provinceCode, province, wardCode, ward FROM admin_units"
        ).fetchall()
    district_of = {r[0]: r[1] for r in rows}
    district_names = {r[1]: f"{r[2]}, {r[3]}" for r in rows}
    provinces = {r[4]: r[3] for r in rows}
    provinces.update({r[0]: r[1] for r in new_rows})
    communes = {r[2]: f"{r[3]}, {r[1]}" for r in new_rows}
    old_communes = {r[0]: f"{r[5]}, {r[2]}, {r[3]}" for r in rows}
    return district_of, district_names, provinces, communes, old_communes


def old_district_of(commune_code_old: str | None) -> str | None:
    """The pre-2025 district code (3 digits) of a pre-2025 commune code."""
    if not commune_code_old:
        return None
    return _legacy()[0].get(commune_code_old.zfill(5))


def district_name(code: str | None) -> str | None:
    return _legacy()[1].get(code or "")


def province_name(code: str | None) -> str | None:
    return _legacy()[2].get(code or "")


def commune_name(code: str | None) -> str | None:
    """Name of a 2025 commune code."""
    return _legacy()[3].get(code or "")


def old_commune_name(code: str | None) -> str | None:
    """Name of a pre-2025 commune code (with its old district)."""
    return _legacy()[4].get(code or "")
