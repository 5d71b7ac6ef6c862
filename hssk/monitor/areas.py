"""The area a supervisor may see: their unit's province, old district or commune.

Department of Health (``department``) → its province; district health centre
(``district_centre``) → the communes of its pre-2025 district; commune station (``station``)
→ its commune (new or old code); the platform and national system clients → everything.
Anything else sees nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import psycopg

from hssk.access.actor import Actor
from hssk.catalog import areas as names
from hssk.catalog.completeness import AreaFilter


class AreaDenied(Exception):
    """The caller has no area to supervise, or asked for one outside theirs."""


@dataclass(frozen=True)
class Area:
    kind: str  # all, province, district_old, commune
    code: str | None
    name: str
    province: str | None = None
    communes: tuple[str, ...] = ()
    communes_old: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return "all" if self.kind == "all" else f"{self.kind}:{self.code}"

    def persons(self) -> AreaFilter:
        """Filter on ``person`` rows of this area."""
        return AreaFilter(self.province, self.communes, self.communes_old)

    def units_sql(self, alias: str = "u") -> tuple[str, list[Any]]:
        """SQL condition on ``unit`` rows (facilities) located in this area."""
        if self.kind == "all":
            return "true", []
        if self.kind == "province":
            return f"{alias}.province_code = %s", [self.province]
        return (
            f"({alias}.commune_code = ANY(%s) OR {alias}.commune_code_old = ANY(%s))",
            [list(self.communes), list(self.communes_old)],
        )

    def contains(self, other: Area) -> bool:
        if self.kind == "all":
            return True
        if self.kind == "province":
            return other.province == self.province and other.kind != "all"
        if other.kind in ("all", "province"):
            return False
        return set(other.communes) <= set(self.communes) and set(other.communes_old) <= set(
            self.communes_old
        )


ALL = Area("all", None, "Toàn hệ thống")


@lru_cache(maxsize=256)
def _district_communes(district: str) -> tuple[str, ...]:
    mapping = names._legacy()[0]
    return tuple(sorted(c for c, d in mapping.items() if d == district))


def province(code: str) -> Area:
    return Area("province", code, names.province_name(code) or f"Tỉnh {code}", province=code)


def district_old(code: str, province_code: str | None = None) -> Area:
    return Area(
        "district_old",
        code,
        names.district_name(code) or f"Huyện {code}",
        province=province_code,
        communes_old=_district_communes(code),
    )


def commune(code: str, code_old: str | None = None, province_code: str | None = None) -> Area:
    name = names.commune_name(code) or names.old_commune_name(code) or f"Xã {code}"
    return Area(
        "commune",
        code,
        name,
        province=province_code,
        communes=(code,),
        communes_old=(code_old,) if code_old else (),
    )


def for_actor(conn: psycopg.Connection[Any], actor: Actor) -> Area:
    """The area ``actor`` supervises; AreaDenied when none."""
    if actor.kind == "system" and actor.has_scope("system", "*", "read") and not actor.unit_id:
        return ALL
    row = None
    if actor.unit_id:
        row = conn.execute(
            """SELECT kind, province_code, commune_code, commune_code_old, district_code_old
               FROM unit WHERE id = %s AND active""",
            (actor.unit_id,),
        ).fetchone()
    if row is None:
        if "admin" in actor.roles or actor.kind == "system":
            return ALL
        raise AreaDenied("tài khoản không gắn với đơn vị nào / the account has no unit")
    kind, prov, comm, comm_old, district = row
    if kind in ("platform", "external"):
        return ALL
    if kind == "department" and prov:
        return province(prov)
    if kind == "district_centre" and district:
        return district_old(district, prov)
    if comm or comm_old:
        return commune(comm or comm_old, comm_old, prov)
    if prov:
        return province(prov)
    raise AreaDenied(f"đơn vị {actor.unit_id} không có địa bàn / unit has no area")


def parse(text: str) -> Area:
    """An area from its key: ``province:01``, ``district_old:001``, ``commune:00004``."""
    kind, _, code = text.partition(":")
    if kind == "all":
        return ALL
    if not code.isdigit():
        raise AreaDenied(f"mã địa bàn '{text}' không hợp lệ / bad area key, e.g. commune:00004")
    if kind == "province":
        return province(code.zfill(2))
    if kind == "district_old":
        return district_old(code.zfill(3))
    if kind == "commune":
        c = code.zfill(5)
        return commune(c, c)
    raise AreaDenied(
        f"loại địa bàn '{kind}' không có / kind must be province, district_old, commune"
    )


def narrow(conn: psycopg.Connection[Any], actor: Actor, wanted: str | None) -> Area:
    """The caller's area, or a part of it they asked for (never more)."""
    own = for_actor(conn, actor)
    if not wanted:
        return own
    area = parse(wanted)
    if area.kind == "commune" and own.province and not area.province:
        area = Area(area.kind, area.code, area.name, own.province, area.communes, area.communes_old)
    if area.kind == "district_old" and own.province and not area.province:
        area = Area(area.kind, area.code, area.name, own.province, area.communes, area.communes_old)
    if not own.contains(area):
        raise AreaDenied(
            f"địa bàn {area.key} nằm ngoài địa bàn được giao ({own.key}) / outside your area"
        )
    return area
