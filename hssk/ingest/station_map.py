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

import psycopg

from hssk.ingest.model import CS, Problem, Unit, check_icd10, clean_body, concept
from hssk.kernel import icd10
from hssk.kernel import identifiers as ids
from hssk.kernel.codes import ICD10, LOINC, UCUM, V3_ACT_CODE
from hssk.records import id_for_source_key
from hssk.registry import LifeDates, households_known, life_dates

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
HOUSEHOLD_ACTIONS = {
    "join": "Nhập hộ",
    "new": "Lập hộ mới (người này làm chủ hộ)",
    "leave": "Tách/chuyển khỏi hộ",
    "head": "Đổi chủ hộ",
}
# A new household is founded by its head (the registry creates it on its first member)
REGISTRY_ACTION = {"join": "join", "new": "head", "leave": "leave", "head": "head"}

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


# --- the checks of an entry, the same for the web form and the CSV -----------------------------
def _show(d: date) -> str:
    return d.strftime("%d/%m/%Y")


def day_problem(
    day: date, element: str, life: LifeDates | None, today: date, what: tuple[str, str]
) -> Problem | None:
    """A day entered about a person must not be in the future (Vietnam date), before their
    birth or after their death. ``what``: the date's name (Vietnamese, English)."""
    vi, en = what
    if day > today:
        return Problem("date.future", element, day.isoformat(),
                       f"{en} {_show(day)} is in the future (today is {_show(today)}, Vietnam "
                       "time); enter the day it happened.",
                       f"{vi} {_show(day)} ở tương lai (hôm nay là {_show(today)}, giờ Việt "
                       "Nam); nhập ngày đã diễn ra.")  # fmt: skip
    if life is None:
        return None
    if life.before_birth(day):
        return Problem("date.before-birth", element, day.isoformat(),
                       f"{en} {_show(day)} is before this person's birth ({life.birth_text()}); "
                       "check the date, or whether this is the right person.",
                       f"{vi} {_show(day)} trước ngày sinh của người này ({life.birth_text()}); "
                       "kiểm tra lại ngày, hoặc có đúng người không.")  # fmt: skip
    if life.died is not None and day > life.died:
        return Problem("date.after-death", element, day.isoformat(),
                       f"{en} {_show(day)} is after this person's death ({_show(life.died)}); "
                       "check the date, or whether this is the right person.",
                       f"{vi} {_show(day)} sau ngày mất của người này ({_show(life.died)}); "
                       "kiểm tra lại ngày, hoặc có đúng người không.")  # fmt: skip
    return None


def icd_check(
    text: str | None, element: str, diagnosis: str | None, problems: list[Problem]
) -> tuple[str | None, Problem | None]:
    """The ICD-10 code of an entry (a malformed or unknown one goes to ``problems``) and, when
    it obviously does not fit the diagnosis written beside it, a warning (rule icd10.chapter):
    the form asks the user to confirm it, the CSV keeps the record with the warning noted."""
    codes = check_icd10(text, element, problems)
    code = codes[0] if codes else None
    typed = (text or "").strip().upper() or None  # an unknown code's chapter tells too
    wrong = icd10.mismatch(code or typed, diagnosis)
    if wrong is None:
        return code, None
    return code, Problem("icd10.chapter", element, code, wrong.en, wrong.vi)


def household_problem(action: str, code: str, known: bool, element: str) -> Problem | None:
    """A household code must name a household on record, except to found a new one (then it
    must not)."""
    if action == "new" and known:
        return Problem("household.exists", element, code,
                       f"household {code} already exists; choose 'join' to add this person to "
                       "it, or check the code of the new household.",
                       f"Hộ {code} đã có trong sổ hộ; chọn “Nhập hộ” để thêm người này vào hộ, "
                       "hoặc kiểm tra lại mã hộ mới.")  # fmt: skip
    if action != "new" and not known:
        return Problem("household.unknown", element, code,
                       f"no household {code} is on record; check the code on the household "
                       "book, or choose 'new household' if this person founds it.",
                       f"Không có hộ mã {code} trong sổ hộ; kiểm tra lại mã trên sổ hộ khẩu, "
                       "hoặc chọn “Lập hộ mới” nếu người này lập hộ mới.")  # fmt: skip
    return None


def batch_problems(
    conn: psycopg.Connection[Any], units: list[Unit], today: date
) -> list[tuple[Unit, Problem]]:
    """The checks of the web form that need the person, for a batch of linked station CSV rows:
    a check-up's or household entry's date against the person's birth, death and today; a
    household code on record, or founded in the batch by its head (a listing's head founds the
    household, as "new household" does on the form). Deaths are checked by the registry."""
    rows = [u for u in units if u.kind == "station" and u.person_id and not u.deceased_at]
    if not rows:
        return []
    life = life_dates(conn, {u.person_id for u in rows if u.person_id})
    codes = {u.household.code for u in rows if u.household}
    known = households_known(conn, codes) if codes else set()
    founded = {u.household.code for u in rows if u.household and u.household.action == "head"}
    out: list[tuple[Unit, Problem]] = []
    for u in rows:
        what = ("Ngày biến động", "The date of the change") if u.household else (
            "Ngày khám", "The check-up date")  # fmt: skip
        if u.visit_date:
            p = day_problem(date.fromisoformat(u.visit_date), "ngay",
                            life.get(u.person_id or 0), today, what)  # fmt: skip
            if p is not None:
                out.append((u, p))
                continue
        if u.household:
            action = "new" if u.household.action == "head" and u.household.code not in known else (
                u.household.action)  # fmt: skip
            exists = u.household.code in known or (action == "join" and u.household.code in founded)
            p = household_problem(action, u.household.code, exists, "ma_ho")
            if p is not None:
                out.append((u, p))
    return out


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
