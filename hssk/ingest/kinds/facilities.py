"""The facility list (danh mục cơ sở KCB): one unit a row, written to the ``unit`` table
(not to the record store)."""

from __future__ import annotations

from typing import Any

import orjson
import psycopg

from hssk.ingest.kinds import csvrows
from hssk.ingest.kinds.csvrows import first
from hssk.ingest.model import Problem, Unit, check_identifier, require


def map_facility(path: str, n: int, row: dict[str, str], known: frozenset[str] | None) -> Unit:
    uid = first(row, "id", "ma_don_vi")
    u = csvrows.unit("facilities", path, n, row, uid)
    p: list[Problem] = []
    require(row, ("id", "name", "kind"), f"dòng {n}", p)
    code = first(row, "code", "facility_code", "ma_cskcb")
    if code:
        check_identifier("cskcb", code, "code", p)
    gln = first(row, "gln")
    if gln:
        check_identifier("gln", gln, "gln", p)
    u.problems = p
    u.facility = code or None
    return u


def _unit_row(u: Unit) -> tuple[str | None, ...]:
    r = orjson.loads(u.raw or "{}")
    return (r.get("id"), r.get("kind") or "clinic", r.get("name"), r.get("parent_id") or None,
            r.get("code") or None, r.get("gln") or None, r.get("province_code") or None,
            r.get("new_ward_code") or None, r.get("old_commune_code") or None,
            r.get("district_code") or None)  # fmt: skip


def write_facilities(conn: psycopg.Connection[Any], units: list[Unit]) -> int:
    """Upsert the good facility rows into ``unit`` (COPY into staging + one upsert)."""
    rows = [_unit_row(u) for u in units if not u.problems and u.raw]
    if not rows:
        return 0
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS unit_stage (id text, kind text, name text, parent_id text,"
        " facility_code text, gln text, province_code text, commune_code text,"
        " commune_code_old text, district_code_old text) ON COMMIT DELETE ROWS"
    )
    with conn.cursor().copy("COPY unit_stage FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
    res = conn.execute(
        """INSERT INTO unit AS u (id, kind, name, parent_id, facility_code, gln, province_code,
               commune_code, commune_code_old, district_code_old)
           SELECT DISTINCT ON (id) * FROM unit_stage
           ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
             parent_id = excluded.parent_id, facility_code = excluded.facility_code,
             gln = excluded.gln, province_code = excluded.province_code,
             commune_code = excluded.commune_code, commune_code_old = excluded.commune_code_old,
             district_code_old = excluded.district_code_old
           WHERE (u.kind, u.name, u.parent_id, u.facility_code, u.gln) IS DISTINCT FROM
                 (excluded.kind, excluded.name, excluded.parent_id, excluded.facility_code,
                  excluded.gln)"""
    )
    return res.rowcount


KIND = csvrows.csv_kind("facilities", "Danh mục cơ sở KCB", "Facility list", map_facility,
                        register=True, key_element="id", write=write_facilities)  # fmt: skip
