"""The clinician's safety banner and the values of panels (blood pressure) in the timeline."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hssk.web.book import value_text
from hssk.web.safety import safety_of


@dataclass
class R:
    type: str
    body: dict[str, Any]


def _allergy(text: str, **extra: Any) -> R:
    return R(
        "AllergyIntolerance",
        {"resourceType": "AllergyIntolerance", "code": {"text": text}, **extra},
    )


def _status(code: str) -> dict[str, Any]:
    return {"coding": [{"code": code}]}


def _condition(code: str, text: str, status: str | None, when: str, **extra: Any) -> R:
    body: dict[str, Any] = {"resourceType": "Condition", "recordedDate": when,
                            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": code}], "text": text}}  # fmt: skip
    if status:
        body["clinicalStatus"] = _status(status)
    body.update(extra)
    return R("Condition", body)


def test_banner_lists_active_allergies_high_risk_first_and_active_problems() -> None:
    resources = [
        _allergy("Tôm cua", reaction=[{"manifestation": [{"text": "Ngứa"}]}]),
        _allergy("Penicilin", criticality="high"),
        _allergy("Aspirin", verificationStatus=_status("refuted")),
        _allergy("Phấn hoa", clinicalStatus=_status("resolved")),
        _condition("I10", "Tăng huyết áp", "active", "2025-01-01"),
        _condition("I10", "Tăng huyết áp", "active", "2026-02-01"),
        _condition("J20.9", "Viêm phế quản cấp", "resolved", "2026-03-01"),
        _condition("E11.9", "Đái tháo đường type 2", None, "2026-03-01"),  # a visit's diagnosis
        _condition("F32.0", "Trầm cảm", "active", "2026-03-02"),
    ]
    s = safety_of(resources, include_sensitive=False)
    assert [a.substance for a in s.allergies] == ["Penicilin", "Tôm cua"]
    assert s.allergies[0].high_risk and s.allergies[1].reaction == "Ngứa"
    assert [p.text for p in s.problems] == ["Tăng huyết áp"]  # F32 is sensitive: not shown
    assert s.problems[0].since is not None and s.problems[0].since.year == 2026
    shown = safety_of(resources, include_sensitive=True)
    assert [p.code for p in shown.problems] == ["F32.0", "I10"]


def test_no_known_allergy_is_said_only_when_recorded() -> None:
    nka = R("AllergyIntolerance", {"resourceType": "AllergyIntolerance",
                                   "code": {"coding": [{"system": "http://snomed.info/sct", "code": "716186003"}]}})  # fmt: skip
    assert safety_of([nka], False).no_known_allergy
    assert not safety_of([], False).no_known_allergy


def test_blood_pressure_panel_shows_its_values() -> None:
    def q(v: float) -> dict[str, Any]:
        return {"valueQuantity": {"value": v, "unit": "mmHg"}}

    bp = {"resourceType": "Observation", "component": [q(148), q(92)]}
    assert value_text(bp) == ("148/92", "mmHg")
    mixed = {
        "resourceType": "Observation",
        "component": [q(70), {"valueQuantity": {"value": 98, "unit": "%"}}],
    }
    assert value_text(mixed) == ("70 mmHg · 98 %", None)
    assert value_text({"resourceType": "Observation", "component": [{"valueString": "x"}]}) == (
        None,
        None,
    )
