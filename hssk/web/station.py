"""Commune health-station forms: check-ups and screening, household changes, deaths.

The forms check what was typed (messages next to each field); the resources are made by
``hssk.ingest.station_map``, the same mapping as the station CSV, and deaths and households
go to the registry through ``hssk.ingest.person_updates`` (audited, like every other source).
"""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg

from hssk.access import Actor
from hssk.ingest import station_map
from hssk.ingest.model import Problem, attach
from hssk.ingest.person_updates import record_amendment, record_deaths, record_households
from hssk.kernel import identifiers as ids
from hssk.records import NewResource, bulk_upsert, id_for_source_key
from hssk.registry import (
    Death,
    DeathAmendment,
    HouseholdMove,
    households_known,
    life_dates,
)
from hssk.web.forms import Form

CHECKUP_KINDS = station_map.CHECKUP_KINDS
HOUSEHOLD_ACTIONS = station_map.HOUSEHOLD_ACTIONS
MEASUREMENTS = station_map.MEASUREMENTS
# What each form's date is, in its messages
DATE_NAMES = {
    "checkup": ("Ngày khám", "The check-up date"),
    "household": ("Ngày biến động", "The date of the change"),
    "death": ("Ngày mất", "The date of death"),
    "death-amend": ("Ngày mất đính chính", "The corrected date of death"),
}


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


def icd_field(form: Form, diagnosis: str | None, *, required: bool = False) -> str | None:
    """The form's ICD-10 code (the station CSV's check, ``station_map.icd_check``; the
    clinician's referral uses it too); a code that does not fit the diagnosis stops the form
    until the user ticks ``icd_confirmed``."""
    problems: list[Problem] = []
    code, warning = station_map.icd_check(
        form.text("icd", required=required, max_len=10), "ICD-10", diagnosis, problems
    )
    if warning is not None and problems:  # an unknown code that is also in the wrong chapter
        problems.append(warning)
    elif warning is not None and form.raw.get("icd_confirmed") != "1":
        form.warn("icd", warning.vi, warning.reason)
    for p in problems:
        form.error("icd", p.vi, p.reason)
    return code


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
    out["icd"] = icd_field(form, out["conclusion"])
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
    action = station_map.REGISTRY_ACTION[data["action"]]
    move = HouseholdMove(person_id, data["household_code"], action)
    record_households(conn, actor, [move], basis="station")


def validate_death(raw: dict[str, str], today: date) -> tuple[Form, dict[str, Any]]:
    form = Form(raw)
    out: dict[str, Any] = {}
    out["cccd"] = _cccd(form)
    out["date"] = form.day("date", required=True, today=today)
    out["place"] = form.text("place", max_len=200)
    out["cause"] = form.text("cause", required=True, max_len=300)
    out["icd"] = icd_field(form, out["cause"])
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


def validate_amendment(raw: dict[str, str], today: date) -> tuple[Form, dict[str, Any]]:
    """The correction of a recorded date of death: the right date and why it changes."""
    form = Form(raw)
    out: dict[str, Any] = {}
    out["cccd"] = _cccd(form)
    out["date"] = form.day("date", required=True, today=today)
    out["reason"] = form.text("reason", required=True, max_len=500)
    if out["reason"] and len(out["reason"]) < 10:
        form.error("reason", "Ghi rõ lý do đính chính (ít nhất 10 ký tự), ví dụ số giấy báo tử "
                   "đúng.", "Give the reason for the correction (at least 10 characters), e.g. "
                   "the number of the right death paper.")  # fmt: skip
    return form, out


def check_person(
    conn: psycopg.Connection[Any],
    form_name: str,
    form: Form,
    data: dict[str, Any],
    person_id: int,
    today: date,
) -> None:
    """The checks that need the person, as the station CSV makes them (``station_map``): the
    date against their birth, death and today; the household code on record; one death."""
    life = life_dates(conn, [person_id]).get(person_id)
    day = data.get("date")
    if form_name == "death" and life is not None and life.died is not None:
        form.error("date", *_already_dead(life.died))
        return
    if form_name == "death-amend" and (life is None or life.died is None):
        form.error("cccd", "Người này chưa được ghi nhận tử vong: không có ngày mất để đính "
                   "chính. Dùng mẫu “Báo tử”.", "This person is not recorded dead: there is no "
                   "date of death to correct. Use the death notice form.")  # fmt: skip
        return
    if day is not None and form_name in ("checkup", "household", "death"):
        p = station_map.day_problem(day, "date", life, today, DATE_NAMES[form_name])
        if p is not None:
            form.error("date", p.vi, p.reason)
    if form_name == "household" and data.get("household_code") and data.get("action"):
        code = data["household_code"]
        known = bool(households_known(conn, [code]))
        p = station_map.household_problem(data["action"], code, known, "household_code")
        if p is not None:
            form.error("household_code", p.vi, p.reason)


def _already_dead(died: date) -> tuple[str, str]:
    return (
        f"Người này đã được ghi nhận tử vong ngày {died:%d/%m/%Y}; mỗi người chỉ có một lần báo "
        "tử. Nếu ngày mất đã ghi là sai, hãy lập đính chính (có ghi lý do, được lưu vết kiểm "
        "tra) bằng liên kết “Đính chính ngày mất” bên dưới.",
        f"This person is already recorded dead on {died:%d/%m/%Y}; a person has one death "
        "notice. If that date is wrong, file a correction (with its reason, audited) through "
        "the “Correct the date of death” link below.",
    )


def save_amendment(
    conn: psycopg.Connection[Any],
    actor: Actor,
    person_id: int,
    data: dict[str, Any],
    key: str,
    today: date,
) -> Form | None:
    """Correct the person's date of death (registry) and audit it with its reason; the form
    with the registry's refusal, or None."""
    amendment = DeathAmendment(person_id, data["date"], data["reason"], f"web-amend:{key}")
    refusal = record_amendment(conn, actor, amendment, basis="station", today=today)
    if refusal is not None:
        form = Form({})
        form.error("date", refusal.vi, refusal.en)
        return form
    return None
