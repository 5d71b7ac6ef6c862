"""Commune health-station forms: check-ups and screening, household changes, deaths.

A check-up becomes an Encounter (type from ``CHECKUP_SYSTEM``) with one Observation per
measurement (LOINC codes, so the book's indicator charts pick them up). A death notice becomes
a DocumentReference (giấy báo tử). Household changes are kept in ``station_change`` for the
registry to apply to the household of the golden record.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from hssk.kernel import identifiers as ids
from hssk.kernel.codes import ICD10, LOINC, UCUM
from hssk.records import NewResource, bulk_upsert
from hssk.web.book import CHECKUP_SYSTEM
from hssk.web.forms import Form

CHECKUP_KINDS = {
    "ksk-dinh-ky": "Khám sức khỏe định kỳ",
    "ksk-hoc-duong": "Khám sức khỏe học đường",
    "sang-loc": "Sàng lọc bệnh không lây nhiễm",
}
HOUSEHOLD_ACTIONS = {"join": "Nhập hộ", "leave": "Tách/chuyển khỏi hộ", "head": "Đổi chủ hộ"}
_ICD = r"^[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?$"


@dataclass(frozen=True)
class Measurement:
    key: str
    loinc: str
    vi: str
    unit: str
    ucum: str
    low: float
    high: float


MEASUREMENTS = (
    Measurement("height", "8302-2", "Chiều cao", "cm", "cm", 30, 250),
    Measurement("weight", "29463-7", "Cân nặng", "kg", "kg", 1, 300),
    Measurement("systolic", "8480-6", "Huyết áp tâm thu", "mmHg", "mm[Hg]", 50, 260),
    Measurement("diastolic", "8462-4", "Huyết áp tâm trương", "mmHg", "mm[Hg]", 30, 160),
    Measurement("glucose", "2339-0", "Đường huyết", "mmol/L", "mmol/L", 1, 40),
)


def _vital(
    person_ref: str, enc_id: str, when: str, code: str, text: str, **value: Any
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "vital-signs",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code}], "text": text},
        "subject": {"reference": person_ref},
        "encounter": {"reference": f"Encounter/{enc_id}"},
        "effectiveDateTime": when,
        **value,
    }


def _qty(value: float, unit: str, ucum: str) -> dict[str, Any]:
    return {"value": round(value, 1), "unit": unit, "system": UCUM, "code": ucum}


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
    icd = form.text("icd", max_len=10)
    if icd:
        if not re.match(_ICD, icd.upper()):
            form.error(
                "icd",
                f"Mã ICD-10 “{icd}” không đúng dạng; ví dụ I10 hoặc E11.9.",
                f"ICD-10 code “{icd}” is malformed; e.g. I10 or E11.9.",
            )
        out["icd"] = icd.upper()
    if out["height"] and out["weight"]:
        out["bmi"] = round(out["weight"] / (out["height"] / 100) ** 2, 1)
    return form, out


def checkup_resources(
    person_id: int, unit_id: str | None, unit_name: str | None, data: dict[str, Any], key: str
) -> list[NewResource]:
    """The Encounter and Observations of one validated check-up (idempotent by ``key``)."""
    from hssk.records import id_for_source_key

    person_ref = f"Patient/{person_id}"
    enc_key = f"web-checkup:{key}"
    enc_id = id_for_source_key("Encounter", enc_key)
    when = data["date"].isoformat()
    provider: dict[str, Any] = {"display": unit_name or unit_id or "Trạm y tế"}
    if unit_id:
        provider["reference"] = f"Organization/{unit_id}"
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "type": [
            {
                "coding": [{"system": CHECKUP_SYSTEM, "code": data["kind"]}],
                "text": CHECKUP_KINDS[data["kind"]],
            }
        ],
        "subject": {"reference": person_ref},
        "period": {"start": when, "end": when},
        "serviceProvider": provider,
    }
    if data.get("conclusion") or data.get("icd"):
        concept: dict[str, Any] = {"text": data.get("conclusion") or data["icd"]}
        if data.get("icd"):
            concept["coding"] = [{"system": ICD10, "code": data["icd"]}]
        encounter["reasonCode"] = [concept]
    items = [NewResource(encounter, person_id, enc_key, unit_id)]

    def add(name: str, body: dict[str, Any]) -> None:
        items.append(NewResource(body, person_id, f"{enc_key}:{name}", unit_id))

    for meas in MEASUREMENTS:
        if meas.key in ("systolic", "diastolic") or data.get(meas.key) is None:
            continue
        add(
            meas.key,
            _vital(
                person_ref,
                enc_id,
                when,
                meas.loinc,
                meas.vi,
                valueQuantity=_qty(data[meas.key], meas.unit, meas.ucum),
            ),
        )
    if data.get("bmi") is not None:
        add(
            "bmi",
            _vital(
                person_ref,
                enc_id,
                when,
                "39156-5",
                "BMI",
                valueQuantity=_qty(data["bmi"], "kg/m²", "kg/m2"),
            ),
        )
    if data.get("systolic") is not None:
        components = [
            {
                "code": {"coding": [{"system": LOINC, "code": m.loinc}], "text": m.vi},
                "valueQuantity": _qty(data[m.key], m.unit, m.ucum),
            }
            for m in MEASUREMENTS
            if m.key in ("systolic", "diastolic")
        ]
        add("bp", _vital(person_ref, enc_id, when, "85354-9", "Huyết áp", component=components))
    return items


def save_checkup(
    conn: psycopg.Connection[Any],
    person_id: int,
    unit_id: str | None,
    unit_name: str | None,
    data: dict[str, Any],
    key: str,
) -> str:
    """Write the check-up; returns the Encounter id."""
    items = checkup_resources(person_id, unit_id, unit_name, data, key)
    bulk_upsert(conn, items)
    from hssk.records import id_for_source_key

    return id_for_source_key("Encounter", f"web-checkup:{key}")


def validate_household(raw: dict[str, str], today: date) -> tuple[Form, dict[str, Any]]:
    form = Form(raw)
    out: dict[str, Any] = {}
    out["cccd"] = _cccd(form)
    out["action"] = form.choice("action", HOUSEHOLD_ACTIONS)
    out["household_code"] = form.text("household_code", required=True, max_len=20)
    out["relation"] = form.text("relation", max_len=40)
    out["date"] = form.day("date", required=True, today=today)
    return form, out


def validate_death(raw: dict[str, str], today: date) -> tuple[Form, dict[str, Any]]:
    form = Form(raw)
    out: dict[str, Any] = {}
    out["cccd"] = _cccd(form)
    out["date"] = form.day("date", required=True, today=today)
    out["place"] = form.text("place", max_len=200)
    out["cause"] = form.text("cause", required=True, max_len=300)
    return form, out


def save_change(
    conn: psycopg.Connection[Any],
    kind: str,
    person_id: int,
    data: dict[str, Any],
    by: str,
    unit_id: str | None,
) -> int:
    """Queue a household change or a death for the registry (``station_change``)."""
    clean = {k: (v.isoformat() if isinstance(v, date) else v) for k, v in data.items()}
    row = conn.execute(
        """INSERT INTO station_change (kind, person_id, data, entered_by, unit_id)
           VALUES (%s, %s, %s, %s, %s) RETURNING id""",
        (kind, person_id, Jsonb(clean), by, unit_id),
    ).fetchone()
    return int(row[0])  # type: ignore[index]


def death_notice(
    person_id: int, unit_id: str | None, unit_name: str | None, data: dict[str, Any]
) -> dict[str, Any]:
    """A DocumentReference for the death notice (giấy báo tử), LOINC 64297-5."""
    return {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": {"coding": [{"system": LOINC, "code": "64297-5"}], "text": "Giấy báo tử"},
        "subject": {"reference": f"Patient/{person_id}"},
        "date": data["date"].isoformat() + "T00:00:00Z",
        "author": [{"display": unit_name or unit_id or "Trạm y tế"}],
        "description": data["cause"],
        "content": [
            {
                "attachment": {
                    "contentType": "text/plain",
                    "title": f"Tử vong ngày {data['date']:%d/%m/%Y}"
                    + (f" tại {data['place']}" if data.get("place") else "")
                    + f". Nguyên nhân: {data['cause']}",
                }
            }
        ],
    }
