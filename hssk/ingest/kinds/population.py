"""The population register (Cơ sở dữ liệu quốc gia về dân cư): one person a row, with their
household and, for the deceased, the date of death."""

from __future__ import annotations

from hssk.ingest.kinds import csvrows
from hssk.ingest.kinds.csvrows import first
from hssk.ingest.model import HouseholdEntry, Problem, Unit, parse_time, require


def map_population(path: str, n: int, row: dict[str, str], known: frozenset[str] | None) -> Unit:
    rid = first(row, "ma_ban_ghi", "record_id")
    u = csvrows.unit("population", path, n, row, rid)
    p: list[Problem] = []
    require(row, ("ma_ban_ghi", "ho_ten", "ngay_sinh"), f"dòng {n}", p)
    u.person = csvrows.demographics(row, "population", rid, p)
    death = first(row, "ngay_mat")
    if death:
        u.deceased_at = parse_time(death, "ngay_mat", p)
    if first(row, "ma_ho"):
        u.household = HouseholdEntry(
            first(row, "ma_ho"), "head" if csvrows.is_head(row) else "join"
        )
    u.problems = p
    u.registry_only = True
    return u


KIND = csvrows.csv_kind("population", "Cơ sở dữ liệu quốc gia về dân cư", "Population register",
                        map_population, register=True, death_element="ngay_mat")  # fmt: skip
