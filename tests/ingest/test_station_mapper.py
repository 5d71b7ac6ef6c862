"""The station's web form and the station CSV map one check-up to the same resources (one
mapper, ``ingest.station_map``): same codes, units, values, encounter and station."""

from __future__ import annotations

import copy
from datetime import date
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hssk.ingest import station_map
from hssk.ingest.kinds.station import map_station
from hssk.ingest.model import attach
from hssk.web import station

TODAY = date(2026, 12, 1)
PID = 42
FAC = "01001"
KINDS = {v: k for k, v in station_map.CSV_CHECKUP_KINDS.items()}  # form kind -> CSV loai


def _form(values: dict[str, str], kind: str = "sang-loc", **extra: str) -> dict[str, str]:
    return {"cccd": "001190012345", "kind": kind, "date": "15/11/2026", **values, **extra}


def _row(values: dict[str, str], kind: str = "sang-loc", **extra: str) -> dict[str, str]:
    bp = f"{values['systolic']}/{values['diastolic']}" if values.get("systolic") else ""
    return {"ma_ban_ghi": "TYT1", "loai": KINDS[kind], "ngay": "2026-11-15", "ma_tram": FAC,
            "ho_ten": "Nguyễn Thị Hòa", "ngay_sinh": "1990-04-12", "gioi_tinh": "Nữ",
            "so_cccd": "001190012345", "chieu_cao_cm": values.get("height", ""),
            "can_nang_kg": values.get("weight", ""), "huyet_ap": bp,
            "duong_huyet_mmol_l": values.get("glucose", ""), "ma_icd": extra.get("icd", ""),
            "ket_luan": extra.get("conclusion", "")}  # fmt: skip


def _same_shape(bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Bodies with the encounter reference replaced (its id derives from the source key)."""
    out = []
    for b in copy.deepcopy(bodies):
        if "encounter" in b:
            b["encounter"] = {"reference": "Encounter/<the check-up>"}
        out.append(b)
    return out


def _from_form(raw: dict[str, str]) -> list[dict[str, Any]] | None:
    form, data = station.validate_checkup(raw, TODAY)
    if not form.ok:
        return None
    items = station.checkup_resources(PID, "F01001", station_map.provider(FAC), data, "k")
    return _same_shape([i.body for i in items])


def _from_csv(row: dict[str, str]) -> list[dict[str, Any]] | None:
    unit = map_station("tram.csv", 1, row, frozenset({FAC}))
    if unit.problems:
        return None
    return _same_shape([attach(i.body, PID) for i in unit.items])


def test_form_and_csv_give_the_same_resources() -> None:
    values = {"height": "156", "weight": "59", "systolic": "135", "diastolic": "85",
              "glucose": "6.1"}  # fmt: skip
    form = _from_form(_form(values, icd="I10", conclusion="Tăng huyết áp"))
    csv = _from_csv(_row(values, icd="I10", conclusion="Tăng huyết áp"))
    assert form is not None and csv is not None
    assert form == csv
    enc, *obs = form
    assert enc["resourceType"] == "Encounter" and enc["reasonCode"][0]["coding"][0]["code"] == "I10"
    codes = {o["code"]["coding"][0]["code"]: o for o in obs}
    assert set(codes) == {"8302-2", "29463-7", "39156-5", "85354-9", "15074-8"}
    glucose = codes["15074-8"]  # mmol/L: the moles-per-volume code, as a laboratory result
    assert glucose["valueQuantity"] == {"value": 6.1, "unit": "mmol/L",
                                        "system": "http://unitsofmeasure.org", "code": "mmol/L"}  # fmt: skip
    assert glucose["category"][0]["coding"][0]["code"] == "laboratory"
    assert codes["39156-5"]["valueQuantity"]["value"] == 24.2  # computed from height and weight
    assert all(o["subject"] == {"reference": f"Patient/mpi-{PID}"} for o in form)


def test_glucose_range_is_one_rule() -> None:
    low, high = station_map.BY_KEY["glucose"].low, station_map.BY_KEY["glucose"].high
    for value, ok in ((low, True), (high, True), (low - 0.1, False), (high + 1, False)):
        v = {"glucose": f"{value:g}"}
        assert (_from_form(_form(v)) is not None) is ok
        assert (_from_csv(_row(v)) is not None) is ok


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(sorted(KINDS)),
    height=st.none() | st.integers(30, 250),
    weight=st.none() | st.integers(1, 300),
    glucose=st.none() | st.decimals("0.5", "60", places=1),
    bp=st.none() | st.tuples(st.integers(41, 300), st.integers(20, 200)),
)
def test_same_resources_for_any_plausible_entry(
    kind: str, height: int | None, weight: int | None, glucose: Any, bp: Any
) -> None:
    values = {"height": height, "weight": weight, "glucose": glucose}
    if bp and bp[1] < bp[0]:  # the form also requires diastolic below systolic
        values["systolic"], values["diastolic"] = bp
    text = {k: str(v) for k, v in values.items() if v is not None}
    form = _from_form(_form(text, kind))
    csv = _from_csv(_row(text, kind))
    if not text:  # the form needs one measurement; the CSV row is a visit without any
        assert form is None
        return
    assert form is not None and form == csv
