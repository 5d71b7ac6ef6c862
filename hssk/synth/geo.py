"""Real administrative units of a province, old (pre-2025, 3 levels) and new (2025, 2 levels).

Read straight from the data files of the ``vietnamadminunits`` package (its SQLite tables
``admin_units_legacy`` / ``admin_units`` and the old → new mapping in ``converter_2025.json``),
never through its address converter, which calls an online geocoder for split wards.
"""

from __future__ import annotations

import json
import sqlite3
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import vietnamadminunits

from hssk.kernel.identifiers import OLD_PROVINCES

_DATA = Path(vietnamadminunits.__file__).parent / "data"


class GeoError(ValueError):
    """A province or district that the administrative-unit data does not know."""


@dataclass(frozen=True)
class Commune:
    """One old commune-level unit and the new ward it belongs to since 07/2025."""

    old_code: str  # 5 digits, QĐ 124/2004
    old_name: str  # "Phường Phúc Xá"
    district_code: str  # 3 digits
    district_name: str  # "Quận Ba Đình"
    province_code: str  # old 2-digit code
    province_name: str  # "Thành phố Hà Nội"
    new_code: str  # 5 digits, 2025 code
    new_name: str  # "Phường Ba Đình"
    new_province_code: str
    new_province_name: str
    split: bool  # the old ward was divided among several new ones (mapped to the default)

    @property
    def urban(self) -> bool:
        return self.old_name.startswith(("Phường", "Thị trấn"))


def _key(text: str) -> str:
    """Accent-less key as the package builds them: 'Thành phố Hà Nội' -> 'thanhphohanoi'."""
    t = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return "".join(c for c in t if c.isalnum() and not unicodedata.combining(c)).lower()


def resolve_province(value: str) -> str:
    """Old 2-digit province code from a code ('1', '01') or a name ('Hà Nội')."""
    v = value.strip()
    if v.isdigit() and f"{int(v):02d}" in OLD_PROVINCES:
        return f"{int(v):02d}"
    for code, name in OLD_PROVINCES.items():
        if _key(name) == _key(v) or _key(v).endswith(_key(name)):
            return code
    raise GeoError(
        f"Không biết tỉnh '{value}' / unknown province '{value}': give an old (pre-2025) "
        f"2-digit province code such as 01 (Hà Nội) or 79 (Hồ Chí Minh), or its name."
    )


@lru_cache(maxsize=8)
def province_communes(province: str) -> tuple[Commune, ...]:
    """All old communes of an old province, with their new ward, ordered by old code."""
    code = resolve_province(province)
    conv = json.loads((_DATA / "converter_2025.json").read_text("utf-8"))
    with sqlite3.connect(f"file:{_DATA / 'dataset.db'}?mode=ro", uri=True) as conn:
        conn.row_factory = sqlite3.Row
        old = conn.execute(
            "SELECT province, district, ward, provinceCode, districtCode, wardCode, provinceKey,"
            " districtKey, wardKey FROM admin_units_legacy WHERE provinceCode = ?"
            " AND wardCode IS NOT NULL ORDER BY wardCode",
            (code,),
        ).fetchall()
        if not old:
            raise GeoError(f"no communes for province {code} in vietnamadminunits data")
        old_pkey = old[0]["provinceKey"]
        new_pkey = next((k for k, v in conv["DICT_PROVINCE"].items() if old_pkey in v), None)
        if new_pkey is None:
            raise GeoError(f"province {code} ({old_pkey}) has no 2025 successor in the data")
        new_rows = {
            r["wardKey"]: r
            for r in conn.execute(
                "SELECT province, ward, provinceCode, wardCode, wardKey FROM admin_units"
                " WHERE provinceKey = ?",
                (new_pkey,),
            )
        }
    to_new: dict[str, tuple[str, bool]] = {}
    for new_key, olds in conv["DICT_PROVINCE_WARD_NO_DIVIDED"].get(new_pkey, {}).items():
        for o in olds:
            to_new[o] = (new_key, False)
    for o, options in conv["DICT_PROVINCE_WARD_DIVIDED"].get(new_pkey, {}).items():
        default = next((x["newWardKey"] for x in options if x["isDefaultNewWard"]), None)
        if default and o not in to_new:
            to_new[o] = (default, True)
    out = []
    for r in old:
        hit = to_new.get(f"{r['provinceKey']}_{r['districtKey']}_{r['wardKey']}")
        new = new_rows.get(hit[0]) if hit else None
        if new is None:  # islands without wards and the like: keep out of the population
            continue
        out.append(
            Commune(
                old_code=r["wardCode"],
                old_name=r["ward"],
                district_code=r["districtCode"],
                district_name=r["district"],
                province_code=code,
                province_name=r["province"],
                new_code=new["wardCode"],
                new_name=new["ward"],
                new_province_code=f"{int(new['provinceCode']):02d}",
                new_province_name=new["province"],
                split=bool(hit and hit[1]),
            )
        )
    return tuple(out)


def select_communes(province: str, district: str | None = None) -> tuple[Commune, ...]:
    """Communes of a province, or of one old district (code like '001' or name like 'Ba Đình')."""
    communes = province_communes(province)
    if not district:
        return communes
    d = district.strip()
    picked = tuple(
        c
        for c in communes
        if (d.isdigit() and int(c.district_code) == int(d))
        or _key(c.district_name) == _key(d)
        or _key(c.district_name).endswith(_key(d))
    )
    if not picked:
        names = sorted({f"{c.district_code} {c.district_name}" for c in communes})
        raise GeoError(
            f"Không có quận/huyện '{district}' trong tỉnh {communes[0].province_name} / "
            f"no district '{district}' in this province. Known: {', '.join(names[:40])}"
        )
    return picked
