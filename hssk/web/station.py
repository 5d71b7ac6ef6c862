"""Commune health-station forms: check-ups and screening, household changes, deaths.

The forms check what was typed (messages next to each field); the resources are made by
``hssk.ingest.station_map``, the same mapping as the station CSV, and deaths and households
go to the registry through ``hssk.ingest.person_updates`` (audited, like every other source).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

import psycopg

from hssk.access import Actor
from hssk.ingest import station_map
from hssk.ingest.model import attach
from hssk.ingest.person_updates import record_deaths, record_households
from hssk.kernel import identifiers as ids
from hssk.records import NewResource, bulk_upsert, id_for_source_key
from hssk.registry import Death, HouseholdMove
from hssk.web.forms import Form

CHECKUP_KINDS = station_map.CHECKUP_KINDS
HOUSEHOLD_ACTIONS = station_map.HOUSEHOLD_ACTIONS
MEASUREMENTS = station_map.MEASUREMENTS
_ICD = r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$"


def _cccd(form: Form) -> str | None:
    """The person's CCCD, structurally checked (the registry lookup comes after)."""
    cccd = form.text("cccd", required=True, max_len=20)
    if not cccd:
        return None
    check = ids.check_cccd(cccd)
    if not check.ok:
        form.error("cccd", check.problems[0].vi, check.problems[0].en)
        return None
    return check.value


def _icd(form: Form) -> str | None:
    icd = form.text("icd", max_len=10)
    if not icd:
        return None
    if not re.match(_ICD, icd.upper()):
        form.error(
            "icd",
            f"Mã ICD-10 “{icd}” không đúng dạng; ví dụ I10 hoặc E11.9.",
            f"ICD-10 code “{icd}” is malformed; e.g. I10 or E11.9.",
        )
        return None
    return icd.upper()


def validate_checkup(raw: dict[str, str], today: date) -> tuple[Form, dict[str, Any]]:
    """Check a check-up / screening form. BMI is computed, never typed."""
    form = Form(raw)
    out: dict[str, Any] = {}
    out["cccd"] = _cccd(form)
    out["kind"] = form.choice("kind", CHECKUP_KINDS)
    out["date"] = form.day("date", required=True, today=today)
    for meas in MEASUREMENTS:
        out[meas.key] = form.number(meas.key, meas.low, meas.high, meas.unit)
    if (out["systolic"] is None) != (out["diastolic"] is None) and form.ok:
        missing = "diastolic" if out["diastolic"] is None else "systolic"
        form.error(
            missing,
            "Nhập đủ cả huyết áp tâm thu và tâm trương (ví dụ 120 và 80).",
            "Enter both systolic and diastolic pressure (e.g. 120 and 80).",
        )
    sys_v, dia_v = out["systolic"], out["diastolic"]
    if sys_v is not None and dia_v is not None and dia_v >= sys_v:
        form.error(
            "diastolic",
            f"Huyết áp tâm trương ({dia_v:g}) phải nhỏ hơn tâm thu ({sys_v:g}); "
            "có thể hai ô bị nhập đảo.",
            f"Diastolic ({dia_v:g}) must be lower than systolic ({sys_v:g}); "
            "the two boxes may be swapped.",
        )
    if form.ok and not any(out[m.key] is not None for m in MEASUREMENTS):
        form.error(
            "height",
            "Chưa có kết quả nào; nhập ít nhất một chỉ số đo.",
            "No result entered; enter at least one measurement.",
        )
    out["conclusion"] = form.text("conclusion", max_len=500)
    out["icd"] = _icd(form)
    if out["height"] and out["weight"]:
        out["bmi"] = round(out["weight"] / (out["height"] / 100) ** 2, 1)
    return form, out


def checkup(data: dict[str, Any]) -> station_map.Checkup:
    """The validated form as the station mapper's check-up."""
    values = {m.key: data[m.key] for m in MEASUREMENTS if data.get(m.key) is not None}
    return station_map.Checkup(
        data["kind"], data["date"], values, conclusion=data.get("conclusion"), icd=data.get("icd")
    )


def _resources(
    items: list[tuple[str, dict[str, Any]]], person_id: int, unit_id: str | None
) -> list[NewResource]:
    return [NewResource(attach(body, person_id), person_id, k, unit_id) for k, body in items]


def checkup_resources(
    person_id: int, unit_id: str | None, station: Any, data: dict[str, Any], key: str
) -> list[NewResource]:
    """The Encounter and Observations of one validated check-up (idempotent by ``key``)."""
    items = station_map.checkup_items(checkup(data), f"web-checkup:{key}", station)
    return _resources(items, person_id, unit_id)


def save_checkup(
    conn: psycopg.Connection[Any],
    person_id: int,
    unit_id: str | None,
    station: Any,
    data: dict[str, Any],
    key: str,
) -> str:
    """Write the check-up; returns the Encounter id."""
    bulk_upsert(conn, checkup_resources(person_id, unit_id, station, data, key))
    return id_for_source_key("Encounter", f"web-checkup:{key}|encounter")


def station_ref(conn: psycopg.Connection[Any], unit_id: str | None) -> Any:
    """The staff member's station as the mapper names it (facility code, name)."""
    row = (
        conn.execute("SELECT facility_code, name FROM unit WHERE id = %s", (unit_id,)).fetchone()
        if unit_id
        else None
    )
    return station_map.provider(row[0] if row else None, row[1] if row else None, unit_id)


def validate_household(raw: dict[str, str], today: date) -> tuple[Form, dict[str, Any]]:
    form = Form(raw)
    out: dict[str, Any] = {}
    out["cccd"] = _cccd(form)
    out["action"] = form.choice("action", HOUSEHOLD_ACTIONS)
    out["household_code"] = form.text("household_code", required=True, max_len=20)
    out["relation"] = form.text("relation", max_len=40)
    out["date"] = form.day("date", required=True, today=today)
    return form, out


def save_household(
    conn: psycopg.Connection[Any], actor: Actor, person_id: int, data: dict[str, Any]
) -> None:
    """Apply a household change to the person (registry; audited)."""
    move = HouseholdMove(person_id, data["household_code"], data["action"])
    record_households(conn, actor, [move], basis="station")


def validate_death(raw: dict[str, str], today: date) -> tuple[Form, dict[str, Any]]:
    form = Form(raw)
    out: dict[str, Any] = {}
    out["cccd"] = _cccd(form)
    out["date"] = form.day("date", required=True, today=today)
    out["place"] = form.text("place", max_len=200)
    out["cause"] = form.text("cause", required=True, max_len=300)
    out["icd"] = _icd(form)
    return form, out


def save_death(
    conn: psycopg.Connection[Any],
    actor: Actor,
    person_id: int,
    station: Any,
    data: dict[str, Any],
    key: str,
    today: date,
) -> Form | str:
    """Record the death on the person and store the station's report; returns the report's
    Observation id, or the form with the registry's refusal next to the date."""
    report = Death(person_id, data["date"], "station", f"web-death:{key}")
    out = record_deaths(
        conn, actor, [report], basis="station", source_unit=actor.unit_id, today=today
    )
    if out.refused:
        form = Form({})
        form.error("date", out.refused[0].vi, out.refused[0].en)
        return form
    entry = station_map.StationDeath(data["date"], data["cause"], data.get("icd"), data["place"])
    items = station_map.death_items(entry, report.source_ref, station)
    bulk_upsert(conn, _resources(items, person_id, actor.unit_id))
    return id_for_source_key("Observation", items[0][0])
