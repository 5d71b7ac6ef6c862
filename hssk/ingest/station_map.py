"""One mapping of a commune health-station entry, whether typed in the station's web form or
sent as a row of the station CSV: the same check-up gives the same resources either way.

A check-up becomes an Encounter (type from ``CHECKUP_SYSTEM``, conclusion as its reason) and
one Observation per measurement (LOINC, so the book's charts pick them up), plus smoking and
drinking status (social history). A death becomes an Observation ``tu-vong`` (and the person's
death, recorded by the registry); a household entry changes the person's household.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from hssk.ingest.model import CS, clean_body, concept
from hssk.kernel import identifiers as ids
from hssk.kernel.codes import ICD10, LOINC, UCUM, V3_ACT_CODE
from hssk.records import id_for_source_key

CHECKUP_SYSTEM = f"{CS}/loai-kham"
CHECKUP_KINDS = {
    "ksk-dinh-ky": "Khám sức khỏe định kỳ",
    "ksk-hoc-duong": "Khám sức khỏe học đường",
    "sang-loc": "Sàng lọc bệnh không lây nhiễm",
}
# The station CSV's ``loai`` of each check-up kind
CSV_CHECKUP_KINDS = {
    "kham_dinh_ky": "ksk-dinh-ky",
    "kham_hoc_duong": "ksk-hoc-duong",
    "sang_loc_ncd": "sang-loc",
}
HOUSEHOLD_ACTIONS = {"join": "Nhập hộ", "leave": "Tách/chuyển khỏi hộ", "head": "Đổi chủ hộ"}

_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
VITAL_SIGNS = concept(_CATEGORY, "vital-signs")
LABORATORY = concept(_CATEGORY, "laboratory")
SOCIAL = concept(_CATEGORY, "social-history")


@dataclass(frozen=True)
class Measurement:
    """A measured value: form field and CSV column, LOINC code, unit, plausible range."""

    key: str
    column: str  # the station CSV's column
    loinc: str
    vi: str
    unit: str
    ucum: str
    low: float
    high: float
    category: str = "vital-signs"


MEASUREMENTS = (
    Measurement("height", "chieu_cao_cm", "8302-2", "Chiều cao", "cm", "cm", 30, 250),
    Measurement("weight", "can_nang_kg", "29463-7", "Cân nặng", "kg", "kg", 1, 300),
    Measurement("systolic", "", "8480-6", "Huyết áp tâm thu", "mmHg", "mm[Hg]", 40, 300),
    Measurement("diastolic", "", "8462-4", "Huyết áp tâm trương", "mmHg", "mm[Hg]", 20, 200),
    # mmol/L: Glucose [Moles/volume] in Blood (2339-0 is the mass concentration, mg/dL)
    Measurement("glucose", "duong_huyet_mmol_l", "15074-8", "Đường huyết", "mmol/L", "mmol/L",
                0.5, 60, "laboratory"),
)  # fmt: skip
BY_KEY = {m.key: m for m in MEASUREMENTS}
BMI = Measurement("bmi", "bmi", "39156-5", "BMI", "kg/m²", "kg/m2", 5, 90)
BP_PANEL = ("85354-9", "Huyết áp")
HABITS = (("smoking", "hut_thuoc", "72166-2", "Hút thuốc lá"),
          ("alcohol", "uong_ruou", "11331-6", "Uống rượu bia"))  # fmt: skip


@dataclass(frozen=True)
class Checkup:
    """A check-up or screening as the station entered it (values already checked)."""

    kind: str  # a key of CHECKUP_KINDS
    day: date
    values: dict[str, float]  # by Measurement.key; BMI is computed, never entered
    smoking: str | None = None
    alcohol: str | None = None
    conclusion: str | None = None
    icd: str | None = None

    @property
    def bmi(self) -> float | None:
        h, w = self.values.get("height"), self.values.get("weight")
        return round(w / (h / 100) ** 2, 1) if h and w else None


@dataclass(frozen=True)
class StationDeath:
    day: date
    cause: str | None = None
    icd: str | None = None
    place: str | None = None


def provider(code: str | None, name: str | None = None, unit_id: str | None = None) -> Any:
    """The station as a reference: by facility code (mã CSKCB), else by its unit id."""
    if code:
        return {"identifier": {"system": ids.FACILITY, "value": code}, "display": name or code}
    if unit_id:
        return {"reference": f"Organization/{unit_id}", "display": name or unit_id}
    return {"display": name} if name else None


def _quantity(value: float, m: Measurement) -> dict[str, Any]:
    return {"value": round(value, 1), "unit": m.unit, "system": UCUM, "code": m.ucum}


def _code(loinc: str, text: str) -> dict[str, Any]:
    return {"coding": [{"system": LOINC, "code": loinc}], "text": text}


def checkup_items(c: Checkup, key: str, station: Any) -> list[tuple[str, dict[str, Any]]]:
    """(source key, resource) of one check-up, the Encounter first; idempotent by ``key``.
    The resources name no patient: the caller attaches them to the person."""
    enc_key = f"{key}|encounter"
    when = c.day.isoformat()
    encounter: dict[str, Any] = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": V3_ACT_CODE, "code": "AMB"},
        "type": [concept(CHECKUP_SYSTEM, c.kind, CHECKUP_KINDS[c.kind])],
        "period": {"start": when, "end": when},
        "serviceProvider": station,
    }
    if c.conclusion or c.icd:
        encounter["reasonCode"] = [
            {"coding": [{"system": ICD10, "code": c.icd}] if c.icd else None,
             "text": c.conclusion or c.icd}
        ]  # fmt: skip
    base = {
        "resourceType": "Observation",
        "status": "final",
        "encounter": {"reference": f"Encounter/{id_for_source_key('Encounter', enc_key)}"},
        "effectiveDateTime": when,
        "performer": [station],
    }
    out = [(enc_key, encounter)]

    def add(name: str, category: dict[str, Any], **body: Any) -> None:
        out.append((f"{key}|{name}", {**base, "category": [category], **body}))

    for m in MEASUREMENTS:
        value = c.values.get(m.key)
        if value is not None and m.key not in ("systolic", "diastolic"):
            cat = LABORATORY if m.category == "laboratory" else VITAL_SIGNS
            add(m.key, cat, code=_code(m.loinc, m.vi), valueQuantity=_quantity(value, m))
    if c.bmi is not None:
        add("bmi", VITAL_SIGNS, code=_code(BMI.loinc, BMI.vi), valueQuantity=_quantity(c.bmi, BMI))
    if c.values.get("systolic") is not None and c.values.get("diastolic") is not None:
        parts = [BY_KEY["systolic"], BY_KEY["diastolic"]]
        add("bp", VITAL_SIGNS, code=_code(*BP_PANEL), component=[
            {"code": _code(m.loinc, m.vi), "valueQuantity": _quantity(c.values[m.key], m)}
            for m in parts
        ])  # fmt: skip
    for attr, name, loinc, text in HABITS:
        if value := getattr(c, attr):
            add(name, SOCIAL, code=_code(loinc, text), valueString=value)
    return [(k, clean_body(body)) for k, body in out]


def death_items(d: StationDeath, key: str, station: Any) -> list[tuple[str, dict[str, Any]]]:
    """(source key, resource) of a death entered by a station: an Observation ``tu-vong``."""
    body = {
        "resourceType": "Observation",
        "status": "final",
        "code": concept(f"{CS}/hssk-observation", "tu-vong", "Báo tử"),
        "effectiveDateTime": d.day.isoformat(),
        "valueDateTime": d.day.isoformat(),
        "performer": [station],
        "note": [{"text": t} for t in (d.cause, d.place and f"Nơi mất: {d.place}") if t],
        "component": [
            {
                "code": {"text": "Nguyên nhân tử vong"},
                "valueCodeableConcept": {"coding": [{"system": ICD10, "code": d.icd}]},
            }
        ]
        if d.icd
        else None,
    }
    return [(f"{key}|death", clean_body(body))]
