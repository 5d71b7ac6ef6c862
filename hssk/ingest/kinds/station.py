"""Commune health station entries (``loai``): a check-up (kham_dinh_ky, kham_hoc_duong,
sang_loc_ncd), a death (tu_vong) or a household listing (ho_gia_dinh); mapped by
``station_map``, as the station's web form is."""

from __future__ import annotations

from datetime import date
from typing import Any

from hssk.ingest import station_map
from hssk.ingest.kinds import csvrows
from hssk.ingest.kinds.csvrows import first
from hssk.ingest.model import (
    HouseholdEntry,
    Item,
    Problem,
    Unit,
    check_facility,
    parse_time,
    require,
)

Items = list[tuple[str, dict[str, Any]]]  # (source key, FHIR body)


def _num(row: dict[str, str], name: str, p: list[Problem], lo: float, hi: float) -> float | None:
    text = row.get(name) or ""
    if not text:
        return None
    try:
        v = float(text.replace(",", "."))
    except ValueError:
        v = float("nan")
    if not (lo <= v <= hi):
        p.append(Problem("value.range", name, text[:20],
                         f"{name} '{text[:20]}' is not a plausible value ({lo}–{hi}).",
                         f"{name} '{text[:20]}' không hợp lý ({lo}–{hi})."))  # fmt: skip
        return None
    return round(v, 2)


def _blood_pressure(row: dict[str, str], p: list[Problem]) -> dict[str, float]:
    """``huyet_ap`` 'systolic/diastolic' as the two measurements (empty when absent)."""
    bp = first(row, "huyet_ap")
    if not bp:
        return {}
    sys_m, dia_m = station_map.BY_KEY["systolic"], station_map.BY_KEY["diastolic"]
    parts = bp.split("/")
    try:
        sys_v, dia_v = float(parts[0]), float(parts[1])
        if len(parts) != 2 or not (
            sys_m.low <= sys_v <= sys_m.high and dia_m.low <= dia_v <= dia_m.high
        ):
            raise ValueError
    except (ValueError, IndexError):
        p.append(Problem("value.range", "huyet_ap", bp[:20],
                         f"huyet_ap '{bp[:20]}' is not 'systolic/diastolic' in mmHg.",
                         f"huyet_ap '{bp[:20]}' không đúng dạng tâm thu/tâm trương (mmHg)."))  # fmt: skip
        return {}
    return {"systolic": sys_v, "diastolic": dia_v}


def _death(u: Unit, row: dict[str, str], n: int, icd: str | None, station: Any,
           key: str, p: list[Problem]) -> Items:  # fmt: skip
    require(row, ("ngay_mat",), f"dòng {n}", p)
    death = parse_time(first(row, "ngay_mat"), "ngay_mat", p)
    if not death or p:
        return []
    u.deceased_at = death
    entry = station_map.StationDeath(
        date.fromisoformat(death), first(row, "nguyen_nhan_tu_vong") or None, icd
    )
    return station_map.death_items(entry, key, station)


def _checkup(row: dict[str, str], loai: str, when: str | None, icd: str | None,
             station: Any, key: str, p: list[Problem]) -> Items:  # fmt: skip
    values = {
        m.key: v
        for m in station_map.MEASUREMENTS
        if m.column and (v := _num(row, m.column, p, m.low, m.high)) is not None
    }
    values.update(_blood_pressure(row, p))
    if not when or p:
        return []
    checkup = station_map.Checkup(
        station_map.CSV_CHECKUP_KINDS[loai],
        date.fromisoformat(when[:10]),
        values,
        smoking=first(row, "hut_thuoc") or None,
        alcohol=first(row, "uong_ruou") or None,
        conclusion=first(row, "ket_luan") or None,
        icd=icd,
    )
    return station_map.checkup_items(checkup, key, station)


def _unknown_entry(loai: str, p: list[Problem]) -> None:
    known_kinds = ", ".join([*station_map.CSV_CHECKUP_KINDS, "tu_vong", "ho_gia_dinh"])
    p.append(Problem("value.code", "loai", loai[:40],
                     f"loai '{loai[:40]}' is not one of {known_kinds}.",
                     f"loai '{loai[:40]}' không thuộc các loại {known_kinds}."))  # fmt: skip


def map_station(path: str, n: int, row: dict[str, str], known: frozenset[str] | None) -> Unit:
    """One station entry (its ``loai`` says which)."""
    rid = first(row, "ma_ban_ghi", "record_id")
    u = csvrows.unit("station", path, n, row, rid)
    p: list[Problem] = []
    require(row, ("ma_ban_ghi", "loai", "ngay", "ho_ten", "ngay_sinh"), f"dòng {n}", p)
    u.person = csvrows.demographics(row, "station", rid, p)
    when = parse_time(first(row, "ngay"), "ngay", p)
    fac = check_facility(first(row, "ma_tram"), "ma_tram", known, p)
    u.facility, u.visit_date = fac, (when or "")[:10] or None
    loai = first(row, "loai")
    diagnosis = first(row, "nguyen_nhan_tu_vong" if loai == "tu_vong" else "ket_luan")
    icd, warning = station_map.icd_check(first(row, "ma_icd"), "ma_icd", diagnosis or None, p)
    if warning is not None:  # kept, with the doubt shown to the station (no one to confirm it)
        u.warnings.append(warning)
    station, key = station_map.provider(fac), f"station|{rid}"
    items: Items = []
    if loai == "tu_vong":
        items = _death(u, row, n, icd, station, key, p)
    elif loai == "ho_gia_dinh":
        u.registry_only = True
        if first(row, "ma_ho"):
            action = "head" if csvrows.is_head(row) else "join"
            u.household = HouseholdEntry(first(row, "ma_ho"), action, when)
    elif loai in station_map.CSV_CHECKUP_KINDS:
        items = _checkup(row, loai, when, icd, station, key, p)
    elif loai:
        _unknown_entry(loai, p)
    u.problems = p
    if not p:
        u.items += [Item(body, k) for k, body in items]
    return u


KIND = csvrows.csv_kind("station", "Nhập liệu của trạm y tế xã", "Commune health station entries",
                        map_station, checks_facility=True, pooled=True,
                        death_element="ngay_mat")  # fmt: skip
