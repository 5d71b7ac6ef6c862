"""Assemble the health book from a person's FHIR resources (pure functions, no I/O).

The record store gives every resource of a person in one query; this module sorts them into the
book's sections. It is tolerant: a resource missing an element gives an entry with ``None``
there, never an exception, because data arrive from many systems of uneven quality.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from hssk.ingest.station_map import CHECKUP_SYSTEM
from hssk.kernel.codes import concept_codes
from hssk.kernel.sensitivity import sensitivity_of
from hssk.records.extract import effective, parse_fhir_datetime
from hssk.web import models as m
from hssk.web.schedule import SCHEDULE_MAX_AGE_YEARS, child_schedule, tokens, vaccine_group

# Observation codes (LOINC) of the health indicators shown with trends.
INDICATOR_CODES: dict[str, str] = {
    "8302-2": "height",
    "8306-3": "height",
    "29463-7": "weight",
    "3141-9": "weight",
    "39156-5": "bmi",
    "85354-9": "blood_pressure",
    "55284-4": "blood_pressure",
    "8480-6": "systolic",
    "8462-4": "diastolic",
    "2339-0": "glucose",
    "2345-7": "glucose",
    "15074-8": "glucose",
    "1558-6": "glucose",
    "14749-6": "glucose",
}
INDICATOR_UNITS = {
    "height": "cm",
    "weight": "kg",
    "bmi": "kg/m²",
    "blood_pressure": "mmHg",
    "glucose": "mmol/L",
}
INDICATOR_ORDER = ("height", "weight", "bmi", "blood_pressure", "glucose")

# Encounter types written for health checks (by station staff, or ingested KSK files):
# CHECKUP_SYSTEM, from the station mapper.
CHECKUP_CODES = {"ksk-dinh-ky": "periodic", "ksk-hoc-duong": "school", "sang-loc": "screening"}
REFERRAL_SNOMED = "3457005"
IMAGING_CATEGORIES = {"RAD", "imaging", "IMG", "CT", "US", "XR", "MR", "18748-4"}
_TAG = re.compile(r"<[^>]+>")
# ICD-10 codes of categories never shown outside the person's own book without consent.


# The resource types each section is built from (Encounter also names the facility of what
# was recorded during a visit). A partner's book reads only the types of its sections;
# tests/web check that the result is the same as from the whole record.
_FACILITY = "Encounter"
SECTION_TYPES: dict[str, frozenset[str]] = {
    "admin": frozenset(),
    "insurance": frozenset({"Coverage"}),
    "indicators": frozenset({"Observation"}),
    "history": frozenset({"Condition", _FACILITY}),
    "allergies": frozenset({"AllergyIntolerance"}),
    "risk_factors": frozenset({"Observation"}),
    "immunizations": frozenset({"Immunization", _FACILITY}),
    "schedule": frozenset({"Immunization"}),
    "visits": frozenset({"Encounter", "Condition"}),
    "prescriptions": frozenset({"MedicationRequest", _FACILITY}),
    "labs": frozenset({"Observation", _FACILITY}),
    "imaging": frozenset({"DiagnosticReport", _FACILITY}),
    "summaries": frozenset({"Composition"}),
    "documents": frozenset({"DocumentReference", _FACILITY}),
    "referrals": frozenset({"ServiceRequest", _FACILITY}),
    "appointments": frozenset({"Appointment"}),
    "checkups": frozenset({"Encounter", "Observation"}),
    "self_reported": frozenset(),  # the citizen's entries, not clinical resources
}


def resource_types(sections: Iterable[str] | None) -> frozenset[str] | None:
    """The resource types a book of ``sections`` needs (None: every type, the whole book)."""
    if sections is None:
        return None
    return frozenset().union(*(SECTION_TYPES[s] for s in sections))


@dataclass(frozen=True)
class PersonView:
    """The demographics the book shows (from the registry's golden record)."""

    id: int
    full_name: str | None = None
    birth_date: date | None = None
    birth_text: str | None = None
    sex: str | None = None
    health_id: str | None = None
    cccd: str | None = None
    bhyt: str | None = None
    phone: str | None = None
    address: str | None = None
    commune_code: str | None = None
    deceased_at: datetime | None = None


def concept_text(concept: Any) -> str | None:
    """Human text of a CodeableConcept: its text, else the first display, else the code."""
    if isinstance(concept, list):
        concept = concept[0] if concept else None
    if not isinstance(concept, dict):
        return None
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict) and coding.get("display"):
            return str(coding["display"])
    for coding in concept.get("coding") or ():
        if isinstance(coding, dict) and coding.get("code"):
            return str(coding["code"])
    return None


def ref_text(ref: Any) -> str | None:
    """Display of a Reference (or its reference string)."""
    if isinstance(ref, list):
        ref = ref[0] if ref else None
    if not isinstance(ref, dict):
        return None
    if ref.get("display"):
        return str(ref["display"])
    actor = ref.get("actor")
    if isinstance(actor, dict):
        return ref_text(actor)
    if isinstance(ref.get("reference"), str):
        return str(ref["reference"]).split("/")[-1]
    return None


def ref_id(ref: Any, rtype: str) -> str | None:
    if isinstance(ref, dict) and isinstance(ref.get("reference"), str):
        kind, _, rid = ref["reference"].partition("/")
        if kind == rtype and rid:
            return rid
    return None


def _dt(value: Any) -> datetime | None:
    return parse_fhir_datetime(value) if isinstance(value, str) else None


def quantity_text(q: Any) -> tuple[str | None, str | None]:
    if not isinstance(q, dict) or q.get("value") is None:
        return None, None
    value = q["value"]
    text = f"{value:g}" if isinstance(value, (int, float)) else str(value)
    return text, q.get("unit") or q.get("code")


def value_text(body: dict[str, Any]) -> tuple[str | None, str | None]:
    """Value of an Observation as (text, unit)."""
    if "valueQuantity" in body:
        return quantity_text(body["valueQuantity"])
    if "valueCodeableConcept" in body:
        return concept_text(body["valueCodeableConcept"]), None
    for key in ("valueString", "valueBoolean", "valueInteger", "valueDateTime"):
        if key in body:
            return str(body[key]), None
    # a panel (blood pressure 85354-9): its components' values, "148/92 mmHg"
    parts = [quantity_text(c["valueQuantity"]) for c in body.get("component") or ()
             if isinstance(c, dict) and isinstance(c.get("valueQuantity"), dict)]  # fmt: skip
    if parts and all(v is not None for v, _ in parts):
        units = {u for _, u in parts}
        if len(units) == 1:
            return "/".join(str(v) for v, _ in parts), units.pop()
        return " · ".join(f"{v} {u or ''}".strip() for v, u in parts), None
    return None, None


def is_sensitive(body: dict[str, Any]) -> bool:
    """Sensitive category (HIV, mental health, or a security label): never sent to partners."""
    return sensitivity_of(body) is not None


def _categories(body: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for c in body.get("category") or ():
        out.update(concept_codes(c))
        text = concept_text(c)
        if text:
            out.add(text)
    return out


def _facility(body: dict[str, Any], enc_facility: dict[str, str | None]) -> str | None:
    for key in ("serviceProvider", "performer", "requester", "location", "recorder"):
        found = ref_text(body.get(key))
        if found:
            return found
    enc = ref_id(body.get("encounter") or body.get("context"), "Encounter")
    return enc_facility.get(enc) if enc else None


def _indicator_key(body: dict[str, Any]) -> str | None:
    for code in concept_codes(body.get("code")):
        if code in INDICATOR_CODES:
            return INDICATOR_CODES[code]
    return None


def _to_mmol(value: float, unit: str | None) -> float:
    # Glucose reported in mg/dL is converted so that one chart has one unit.
    return round(value / 18.0, 1) if unit and unit.lower().startswith("mg") else value


def indicators(observations: Iterable[dict[str, Any]]) -> list[m.Indicator]:
    """Trend series of height, weight, BMI, blood pressure and glucose."""
    series: dict[str, list[m.Point]] = {k: [] for k in INDICATOR_ORDER}
    bp_parts: dict[str, dict[str, float]] = {}
    for body in observations:
        key = _indicator_key(body)
        when = effective(body)
        if key is None or when is None:
            continue
        if key == "blood_pressure":
            sys_v = dia_v = None
            for comp in body.get("component") or ():
                kind = _indicator_key(comp)
                qty = (comp.get("valueQuantity") or {}).get("value")
                if kind == "systolic" and isinstance(qty, (int, float)):
                    sys_v = float(qty)
                elif kind == "diastolic" and isinstance(qty, (int, float)):
                    dia_v = float(qty)
            if sys_v is not None:
                series[key].append(m.Point(date=when, value=sys_v, value2=dia_v))
            continue
        qty = body.get("valueQuantity") or {}
        value = qty.get("value")
        if not isinstance(value, (int, float)):
            continue
        if key in ("systolic", "diastolic"):
            bp_parts.setdefault(when.isoformat(), {})[key] = float(value)
            continue
        if key == "glucose":
            value = _to_mmol(float(value), qty.get("unit") or qty.get("code"))
        series[key].append(m.Point(date=when, value=float(value)))
    for at, parts in bp_parts.items():
        if "systolic" in parts:
            series["blood_pressure"].append(
                m.Point(
                    date=datetime.fromisoformat(at),
                    value=parts["systolic"],
                    value2=parts.get("diastolic"),
                )
            )
    out = []
    for key in INDICATOR_ORDER:
        points = sorted(series[key], key=lambda p: p.date)
        if points:
            out.append(m.Indicator(key=key, unit=INDICATOR_UNITS[key], points=points))
    return out


def lab_flag(body: dict[str, Any], low: float | None, high: float | None) -> str | None:
    """H / L / A / N from the interpretation, else from the value against the range."""
    for code in concept_codes(body.get("interpretation")):
        code = code.upper()
        if code in ("H", "HH", "HU", ">"):
            return "H"
        if code in ("L", "LL", "LU", "<"):
            return "L"
        if code in ("A", "AA", "POS"):
            return "A"
        if code in ("N", "NEG"):
            return "N"
    value = (body.get("valueQuantity") or {}).get("value")
    if not isinstance(value, (int, float)):
        return None
    if high is not None and value > high:
        return "H"
    if low is not None and value < low:
        return "L"
    return "N" if (low is not None or high is not None) else None


def _range(body: dict[str, Any]) -> tuple[float | None, float | None, str | None]:
    for rng in body.get("referenceRange") or ():
        if not isinstance(rng, dict):
            continue
        low = (rng.get("low") or {}).get("value")
        high = (rng.get("high") or {}).get("value")
        low = float(low) if isinstance(low, (int, float)) else None
        high = float(high) if isinstance(high, (int, float)) else None
        text = rng.get("text")
        if not text and (low is not None or high is not None):
            text = f"{'' if low is None else f'{low:g}'} – {'' if high is None else f'{high:g}'}"
        return low, high, text
    return None, None, None


def _is_checkup(enc: dict[str, Any]) -> str | None:
    for t in enc.get("type") or ():
        for coding in (t or {}).get("coding") or ():
            if coding.get("system") == CHECKUP_SYSTEM and coding.get("code") in CHECKUP_CODES:
                return CHECKUP_CODES[coding["code"]]
        words = " ".join(tokens(concept_text(t) or ""))
        if "hoc duong" in words or "school" in words:
            return "school"
        if "sang loc" in words or "screening" in words:
            return "screening"
        if "kham suc khoe" in words or "check up" in words:
            return "periodic"
    return None


def _condition(body: dict[str, Any], facility: str | None) -> m.Condition:
    codes = concept_codes(body.get("code"))
    return m.Condition(
        code=codes[0] if codes else None,
        display=concept_text(body.get("code")),
        onset=_dt(body.get("onsetDateTime")) or _dt(body.get("recordedDate")),
        facility=facility,
        status=concept_text(body.get("clinicalStatus")),
    )


def _age_years(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def build_book(
    person: PersonView,
    resources: Sequence[Any],
    *,
    self_entries: Sequence[m.SelfEntry] = (),
    guardian_of: Sequence[int] = (),
    sections: Iterable[str] | None = None,
    include_sensitive: bool = True,
    now: datetime | None = None,
    lang: str = "vi",
) -> m.HealthBook:
    """The health book of ``person`` from its stored resources (``Stored``-like objects with
    ``type``, ``id`` and ``body``). ``sections`` limits what is included (partner field sets);
    ``include_sensitive=False`` drops sensitive categories (HIV, mental health)."""
    now = now or datetime.now(UTC)
    wanted = set(sections) if sections is not None else set(m.SECTIONS)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for res in resources:
        body = res.body
        if not include_sensitive and is_sensitive(body):
            continue
        by_type.setdefault(res.type, []).append(body)
    encounters = by_type.get("Encounter", [])
    enc_facility = {e.get("id", ""): ref_text(e.get("serviceProvider")) for e in encounters}
    conditions = by_type.get("Condition", [])
    cond_by_id = {c.get("id"): c for c in conditions}
    observations = by_type.get("Observation", [])
    book = m.HealthBook(generated_at=now, person_id=person.id, sections=sorted(wanted))

    if "admin" in wanted:
        book.admin = m.Admin(
            person_id=person.id,
            full_name=person.full_name,
            birth_date=person.birth_text,
            sex=person.sex,
            health_id=person.health_id or person.cccd,
            cccd=person.cccd,
            phone=person.phone,
            address=person.address,
            commune_code=person.commune_code,
            deceased_at=person.deceased_at,
            guardian_of=list(guardian_of),
        )
    if "insurance" in wanted:
        book.insurance = _insurance(person, by_type.get("Coverage", []), by_type.get("Claim", []))
    if "indicators" in wanted:
        book.indicators = indicators(observations)
    if "history" in wanted:
        first: dict[str, m.Condition] = {}
        for c in conditions:
            item = _condition(c, _facility(c, enc_facility))
            key = item.code or item.display or c.get("id", "")
            prev = first.get(key)
            if prev is None or (item.onset and prev.onset and item.onset < prev.onset):
                first[key] = item
        book.history = sorted(first.values(), key=lambda c: c.onset or now, reverse=True)
    if "allergies" in wanted:
        book.allergies = [
            m.Allergy(
                substance=concept_text(a.get("code")),
                category=", ".join(a.get("category") or ()) or None,
                criticality=a.get("criticality"),
                reaction=", ".join(
                    filter(
                        None,
                        (concept_text(r.get("manifestation")) for r in a.get("reaction") or ()),
                    )
                )
                or None,
                recorded=effective(a),
            )
            for a in by_type.get("AllergyIntolerance", [])
        ]
    if "risk_factors" in wanted:
        book.risk_factors = [
            m.RiskFactor(
                label=concept_text(o.get("code")) or "—",
                value=value_text(o)[0],
                date=effective(o),
            )
            for o in observations
            if {"social-history", "exposure"} & _categories(o)
        ]
    immunizations = [
        m.Immunization(
            vaccine=concept_text(i.get("vaccineCode")),
            group=vaccine_group(i.get("vaccineCode")),
            date=effective(i),
            dose=next(
                (
                    p.get("doseNumberPositiveInt")
                    for p in i.get("protocolApplied") or ()
                    if isinstance(p, dict)
                ),
                None,
            ),
            facility=_facility(i, enc_facility),
            lot=i.get("lotNumber"),
        )
        for i in by_type.get("Immunization", [])
        if i.get("status", "completed") == "completed"
    ]
    if "immunizations" in wanted:
        book.immunizations = sorted(immunizations, key=lambda i: i.date or now, reverse=True)
    if "schedule" in wanted:  # no vaccination reminders for a person who has died
        alive = person.deceased_at is None
        book.schedule = _schedule(person, immunizations, now.date(), lang) if alive else []
    if "visits" in wanted:
        book.visits = _visits(encounters, conditions, cond_by_id, enc_facility)
    if "prescriptions" in wanted:
        book.prescriptions = [
            m.Prescription(
                medication=concept_text(r.get("medicationCodeableConcept"))
                or ref_text(r.get("medicationReference")),
                dosage="; ".join(
                    d.get("text", "")
                    for d in r.get("dosageInstruction") or ()
                    if isinstance(d, dict)
                )
                or None,
                quantity=quantity_text((r.get("dispenseRequest") or {}).get("quantity"))[0],
                date=effective(r),
                facility=_facility(r, enc_facility),
                visit_id=ref_id(r.get("encounter"), "Encounter"),
            )
            for r in sorted(
                by_type.get("MedicationRequest", []),
                key=lambda r: effective(r) or now,
                reverse=True,
            )
        ]
    if "labs" in wanted:
        book.labs = _labs(observations, enc_facility, now)
    if "imaging" in wanted:
        book.imaging = [
            m.ImagingReport(
                title=concept_text(r.get("code")),
                conclusion=r.get("conclusion") or concept_text(r.get("conclusionCode")),
                date=effective(r),
                facility=_facility(r, enc_facility),
                visit_id=ref_id(r.get("encounter"), "Encounter"),
            )
            for r in by_type.get("DiagnosticReport", [])
            if IMAGING_CATEGORIES & _categories(r)
        ]
    if "summaries" in wanted:
        book.summaries = [
            m.Summary(
                title=c.get("title") or concept_text(c.get("type")),
                date=effective(c),
                sections=[
                    (
                        s.get("title") or "",
                        _narrative_text(s),
                    )
                    for s in c.get("section") or ()
                    if isinstance(s, dict)
                ],
                visit_id=ref_id(c.get("encounter"), "Encounter"),
            )
            for c in by_type.get("Composition", [])
        ]
    if "documents" in wanted:
        book.documents = [_document(d, enc_facility) for d in by_type.get("DocumentReference", [])]
        book.documents.sort(key=lambda d: d.date or now, reverse=True)
    if "referrals" in wanted:
        book.referrals = [_referral(s, enc_facility) for s in by_type.get("ServiceRequest", [])]
        book.referrals.sort(key=lambda r: r.date or now, reverse=True)
    if "appointments" in wanted:
        book.appointments = _appointments(
            by_type.get("Appointment", []), now, alive=person.deceased_at is None
        )
    if "checkups" in wanted:
        book.checkups = _checkups(encounters, observations, enc_facility)
    if "self_reported" in wanted:
        book.self_reported = list(self_entries)
    return book


# the fields of a leave certificate (XML10, XML11) kept by ingestion, by their QĐ 130 names
_XML130_FIELDS = "/xml130-fields"


def _document(d: dict[str, Any], enc_facility: dict[str, str | None]) -> m.Document:
    fields = {
        str(f.get("url")): str(f.get("valueString"))
        for ext in d.get("extension") or ()
        if isinstance(ext, dict) and str(ext.get("url", "")).endswith(_XML130_FIELDS)
        for f in ext.get("extension") or ()
        if isinstance(f, dict)
    }
    period = (d.get("context") or {}).get("period") or {}
    numbers = [i.get("value") for i in d.get("identifier") or () if isinstance(i, dict)]
    doctor = (d.get("authenticator") or {}).get("display") or fields.get("TEN_BS")
    visit = ref_id(((d.get("context") or {}).get("encounter") or [None])[0], "Encounter")
    return m.Document(
        title=concept_text(d.get("type")) or d.get("description"),
        date=effective(d),
        facility=ref_text(d.get("custodian")) or (enc_facility.get(visit) if visit else None),
        number=next((n for n in numbers if n), None),
        diagnosis=fields.get("CHAN_DOAN_RV") or d.get("description"),
        leave_from=_dt(period.get("start")),
        leave_to=_dt(period.get("end")),
        leave_days=fields.get("SO_NGAY_NGHI") or fields.get("SO_NGAY"),
        doctor=doctor,
        visit_id=visit,
    )


def _narrative_text(section: dict[str, Any]) -> str:
    """A Composition section's narrative as plain text: tags dropped, entities decoded (the
    page escapes it again); a treatment summary from XML8 escapes its text in the div."""
    return html.unescape(_TAG.sub(" ", (section.get("text") or {}).get("div", ""))).strip()


def _insurance(
    person: PersonView, coverages: list[dict[str, Any]], claims: list[dict[str, Any]]
) -> m.Insurance:
    ins = m.Insurance(card_number=person.bhyt)
    for cov in coverages:  # a Coverage (insurance register) is the authoritative card
        ins.card_number = cov.get("subscriberId") or ins.card_number
        period = cov.get("period") or {}
        ins.valid_from, ins.valid_to = period.get("start"), period.get("end")
        ins.initial_facility = ref_text(cov.get("payor")) or ins.initial_facility
    return ins


def _schedule(
    person: PersonView, immunizations: list[m.Immunization], today: date, lang: str
) -> list[m.ScheduleDose]:
    if person.birth_date is None or _age_years(person.birth_date, today) >= SCHEDULE_MAX_AGE_YEARS:
        return []
    given = [(i.group, i.date.date()) for i in immunizations if i.group and i.date]
    en = lang == "en"
    return [
        m.ScheduleDose(
            group=item.group,
            vaccine=item.vaccine_en if en else item.vaccine_vi,
            dose=item.dose,
            age=item.age_en if en else item.age_vi,
            due=item.due,
            status=item.status,
            given=item.given,
        )
        for item in child_schedule(person.birth_date, given, today)
    ]


def _visits(
    encounters: list[dict[str, Any]],
    conditions: list[dict[str, Any]],
    cond_by_id: dict[Any, dict[str, Any]],
    enc_facility: dict[str, str | None],
) -> list[m.Visit]:
    by_enc: dict[str, list[dict[str, Any]]] = {}
    for c in conditions:
        enc = ref_id(c.get("encounter"), "Encounter")
        if enc:
            by_enc.setdefault(enc, []).append(c)
    visits = []
    for e in encounters:
        if _is_checkup(e):
            continue
        diagnoses: list[m.Diagnosis] = []
        for d in sorted(e.get("diagnosis") or (), key=lambda d: d.get("rank", 99)):
            cond = cond_by_id.get(ref_id(d.get("condition"), "Condition"))
            if cond:
                codes = concept_codes(cond.get("code"))
                diagnoses.append(
                    m.Diagnosis(
                        code=codes[0] if codes else None,
                        display=concept_text(cond.get("code")),
                        main=d.get("rank") == 1,
                    )
                )
        if not diagnoses:
            for i, cond in enumerate(by_enc.get(e.get("id", ""), [])):
                codes = concept_codes(cond.get("code"))
                diagnoses.append(
                    m.Diagnosis(
                        code=codes[0] if codes else None,
                        display=concept_text(cond.get("code")),
                        main=i == 0,
                    )
                )
        period = e.get("period") or {}
        hosp = e.get("hospitalization") or {}
        visits.append(
            m.Visit(
                id=e.get("id", ""),
                facility=enc_facility.get(e.get("id", "")),
                start=_dt(period.get("start")),
                end=_dt(period.get("end")),
                kind=(e.get("class") or {}).get("code"),
                reason=concept_text(e.get("reasonCode")),
                diagnoses=diagnoses,
                discharge=concept_text(hosp.get("dischargeDisposition")),
                doctor=ref_text(((e.get("participant") or [{}])[0] or {}).get("individual")),
            )
        )
    visits.sort(key=lambda v: v.start or datetime.min.replace(tzinfo=UTC), reverse=True)
    return visits


def _labs(
    observations: list[dict[str, Any]], enc_facility: dict[str, str | None], now: datetime
) -> list[m.LabResult]:
    out = []
    for o in observations:
        if "laboratory" not in _categories(o):
            continue
        low, high, text = _range(o)
        value, unit = value_text(o)
        codes = concept_codes(o.get("code"))
        out.append(
            m.LabResult(
                test=concept_text(o.get("code")),
                code=codes[0] if codes else None,
                value=value,
                unit=unit,
                low=low,
                high=high,
                range_text=text,
                flag=lab_flag(o, low, high),
                date=effective(o),
                facility=_facility(o, enc_facility),
                visit_id=ref_id(o.get("encounter"), "Encounter"),
            )
        )
    out.sort(key=lambda r: r.date or now, reverse=True)
    return out


def _referral(s: dict[str, Any], enc_facility: dict[str, str | None]) -> m.Referral:
    reason = s.get("reasonCode") or []
    codes = concept_codes(reason)
    return m.Referral(
        id=s.get("id", ""),
        date=effective(s),
        from_facility=ref_text(s.get("requester"))
        if not s.get("encounter")
        else _facility(s, enc_facility),
        to_facility=ref_text(s.get("performer")),
        reason=concept_text(s.get("code")) or (s.get("note") or [{}])[0].get("text"),
        diagnosis=" ".join(filter(None, (codes[0] if codes else None, concept_text(reason))))
        or None,
        status=s.get("status"),
        author=ref_text(s.get("requester")),
    )


def _appointments(
    appointments: list[dict[str, Any]], now: datetime, *, alive: bool = True
) -> list[m.Appointment]:
    """The appointments, oldest first; none is upcoming for a person who has died."""
    out = []
    for a in appointments:
        start = _dt(a.get("start"))
        facility = None
        for p in a.get("participant") or ():
            ref = (p or {}).get("actor") or {}
            if isinstance(ref.get("reference"), str) and not ref["reference"].startswith(
                ("Organization", "Location")
            ):
                continue
            facility = ref_text(ref)
            break
        status = a.get("status")
        out.append(
            m.Appointment(
                id=a.get("id", ""),
                start=start,
                facility=facility,
                reason=a.get("description") or concept_text(a.get("reasonCode")),
                status=status,
                upcoming=bool(
                    alive and start and start >= now and status in ("booked", "proposed", "pending")
                ),
            )
        )
    out.sort(key=lambda a: a.start or now)
    return out


def _checkups(
    encounters: list[dict[str, Any]],
    observations: list[dict[str, Any]],
    enc_facility: dict[str, str | None],
) -> list[m.Checkup]:
    obs_by_enc: dict[str, list[dict[str, Any]]] = {}
    for o in observations:
        enc = ref_id(o.get("encounter"), "Encounter")
        if enc:
            obs_by_enc.setdefault(enc, []).append(o)
    out = []
    for e in encounters:
        kind = _is_checkup(e)
        if not kind:
            continue
        results = []
        for o in obs_by_enc.get(e.get("id", ""), []):
            if o.get("component"):
                parts = [value_text(c)[0] or "" for c in o["component"]]
                comp_unit = value_text(o["component"][0])[1] or ""
                results.append(
                    m.CheckupResult(
                        label=concept_text(o.get("code")) or "",
                        value="/".join(parts) + f" {comp_unit}".rstrip(),
                    )
                )
                continue
            value, unit = value_text(o)
            results.append(
                m.CheckupResult(
                    label=concept_text(o.get("code")) or "",
                    value=f"{value or ''} {unit or ''}".strip(),
                )
            )
        out.append(
            m.Checkup(
                id=e.get("id", ""),
                kind=kind,
                date=_dt((e.get("period") or {}).get("start")),
                facility=enc_facility.get(e.get("id", "")),
                results=results,
                conclusion=concept_text(e.get("reasonCode")),
            )
        )
    out.sort(key=lambda c: c.date or datetime.min.replace(tzinfo=UTC), reverse=True)
    return out
