"""FHIR code systems HSSK writes and reads, and reading the codes of a CodeableConcept."""

from __future__ import annotations

from typing import Any

ICD10 = "http://hl7.org/fhir/sid/icd-10"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
CVX = "http://hl7.org/fhir/sid/cvx"
UCUM = "http://unitsofmeasure.org"
V3_ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"


def concept_codes(concept: Any) -> list[str]:
    """The codes of a CodeableConcept, or of a list of them (anything else gives [])."""
    concepts = concept if isinstance(concept, list) else [concept]
    out: list[str] = []
    for c in concepts:
        if isinstance(c, dict):
            codings = c.get("coding")
            for x in codings if isinstance(codings, list) else ():
                if isinstance(x, dict) and x.get("code"):
                    out.append(str(x["code"]))
    return out
