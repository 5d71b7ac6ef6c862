"""Every FHIR R4 resource type can be stored: an ordinary patient bundle (the kind synthetic
patient generators write, with CareTeam, Claim and ExplanationOfBenefit) is stored whole."""

from __future__ import annotations

import importlib
import pkgutil
import uuid
from typing import Any

from fastapi.testclient import TestClient

from hssk.records.types import (
    CLINICAL_TYPES,
    NOT_STORED,
    R4_ONLY_TYPES,
    SUBJECT_PATHS,
    SUPPORTED_TYPES,
)

H = dict[str, str]


def _entry(resource: dict[str, Any]) -> dict[str, Any]:
    full = f"urn:uuid:{uuid.uuid4()}"
    resource["_full"] = full
    return {"fullUrl": full, "resource": resource,
            "request": {"method": "POST", "url": resource["resourceType"]}}  # fmt: skip


def _bundle() -> dict[str, Any]:
    patient = {"resourceType": "Patient", "name": [{"family": "Nguyễn", "given": ["Văn An"]}],
               "gender": "male", "birthDate": "1980-04-02",
               "identifier": [{"system": "https://fhir.hssk.vn/sid/cccd", "value": "001080012345"}]}  # fmt: skip
    p = _entry(patient)
    ref = {"reference": p["fullUrl"]}
    enc = _entry({"resourceType": "Encounter", "status": "finished", "subject": ref,
                  "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
                  "period": {"start": "2026-03-01T08:00:00+07:00", "end": "2026-03-01T09:00:00+07:00"}})  # fmt: skip
    others = [
        {"resourceType": "CareTeam", "status": "active", "subject": ref,
         "encounter": {"reference": enc["fullUrl"]}},
        {"resourceType": "Claim", "status": "active", "use": "claim", "patient": ref,
         "created": "2026-03-01", "provider": {"display": "Bệnh viện"},
         "priority": {"coding": [{"code": "normal"}]},
         "type": {"coding": [{"code": "professional"}]},
         "insurance": [{"sequence": 1, "focal": True, "coverage": {"display": "BHYT"}}]},
        {"resourceType": "ExplanationOfBenefit", "status": "active", "use": "claim",
         "patient": ref, "created": "2026-03-01", "insurer": {"display": "BHXH"},
         "provider": {"display": "Bệnh viện"}, "outcome": "complete",
         "type": {"coding": [{"code": "professional"}]},
         "insurance": [{"focal": True, "coverage": {"display": "BHYT"}}]},
        {"resourceType": "Goal", "lifecycleStatus": "active", "subject": ref,
         "description": {"text": "Huyết áp dưới 140/90"}},
        {"resourceType": "Provenance", "recorded": "2026-03-01T09:00:00Z", "target": [ref],
         "agent": [{"who": {"display": "Bệnh viện"}}]},
    ]  # fmt: skip
    entries = [p, enc, *[_entry(r) for r in others]]
    for e in entries:
        e["resource"].pop("_full")
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def _r4b_types() -> set[str]:
    import fhir.resources.R4B as r4b
    from fhir.resources.R4B.resource import Resource

    out: set[str] = set()
    for info in pkgutil.iter_modules(r4b.__path__):
        module = importlib.import_module(f"fhir.resources.R4B.{info.name}")
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, Resource):
                out.add(obj.get_resource_type())
    return out


def test_every_r4_type_is_supported() -> None:
    models = _r4b_types()
    assert models - set(SUPPORTED_TYPES) == set(NOT_STORED)
    # what is not an R4B model is an R4 type R4B replaced
    assert set(SUPPORTED_TYPES) - models == set(R4_ONLY_TYPES)
    assert len(set(SUPPORTED_TYPES)) == len(SUPPORTED_TYPES)
    assert "ExplanationOfBenefit" in SUPPORTED_TYPES and "MedicinalProduct" in SUPPORTED_TYPES
    # every clinical type but Appointment (its patient is a participant) names its subject
    assert [t for t in CLINICAL_TYPES if t not in SUBJECT_PATHS] == ["Appointment"]


def test_ordinary_patient_bundle_is_stored_whole(client: TestClient, system_headers: H) -> None:
    r = client.post("/fhir", json=_bundle(), headers=system_headers)
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert all(s.startswith("201") for s in statuses), statuses
    locations = [e["response"]["location"] for e in r.json()["entry"]]
    patient_id = locations[0].split("/")[1]
    for rtype in ("CareTeam", "ExplanationOfBenefit", "Goal", "Provenance", "Claim"):
        found = client.get(f"/fhir/{rtype}?patient=Patient/{patient_id}", headers=system_headers)
        assert found.status_code == 200, found.text
        assert [e["resource"]["resourceType"] for e in found.json()["entry"]] == [rtype]
    everything = client.get(f"/fhir/Patient/{patient_id}/$everything", headers=system_headers)
    types = {e["resource"]["resourceType"] for e in everything.json()["entry"]}
    assert {"CareTeam", "ExplanationOfBenefit", "Goal", "Provenance", "Encounter"} <= types


def test_r4_only_type_is_stored_and_versioned(client: TestClient, system_headers: H) -> None:
    body = {"resourceType": "MedicinalProduct", "id": "mp-1",
            "name": [{"productName": "Paracetamol 500 mg"}]}  # fmt: skip
    assert (
        client.put("/fhir/MedicinalProduct/mp-1", json=body, headers=system_headers).status_code
        == 201
    )
    body["name"][0]["productName"] = "Paracetamol 500 mg viên nén"
    r = client.put("/fhir/MedicinalProduct/mp-1", json=body, headers=system_headers)
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "2"
    history = client.get("/fhir/MedicinalProduct/mp-1/_history", headers=system_headers).json()
    assert history["total"] == 2


def test_unknown_type_is_a_clear_404(client: TestClient, system_headers: H) -> None:
    r = client.get("/fhir/Widget/1", headers={**system_headers, "Accept-Language": "en"})
    assert r.status_code == 404 and "not supported" in r.text
    assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "type-not-supported"


def test_vietnamese_guide_identifier_systems_are_ours(
    client: TestClient, system_headers: H
) -> None:
    from hssk.kernel import identifiers

    assert (
        identifiers.canonical_system("https://fhir.ehealth.gov.vn/core/sid/cccd")
        == identifiers.CCCD
    )
    assert identifiers.canonical_system("https://fhir.hl7.org.vn/core/sid/bhyt") == identifiers.BHYT
    assert identifiers.canonical_system("https://example.org/x") == "https://example.org/x"
    patient = {"resourceType": "Patient", "name": [{"family": "Trần", "given": ["Thị Bình"]}],
               "birthDate": "1975-06-07", "gender": "female",
               "identifier": [{"system": "https://fhir.ehealth.gov.vn/core/sid/cccd",
                               "value": "001175009876"}]}  # fmt: skip
    assert client.post("/fhir/Patient", json=patient, headers=system_headers).status_code == 201
    for system in (identifiers.CCCD, "https://fhir.hl7.org.vn/core/sid/cccd"):
        found = client.get(
            f"/fhir/Patient?identifier={system}|001175009876", headers=system_headers
        )
        golden = [e for e in found.json()["entry"] if e["resource"]["id"].startswith("mpi-")]
        assert len(golden) == 1, found.text


def test_writes_naming_the_golden_patient_join_the_person(
    client: TestClient, system_headers: H
) -> None:
    r = client.post("/fhir", json=_bundle(), headers=system_headers)
    patient_id = r.json()["entry"][0]["response"]["location"].split("/")[1]
    golden = client.get("/fhir/Patient?identifier=https://fhir.hssk.vn/sid/cccd|001080012345",
                        headers=system_headers).json()["entry"][0]["resource"]["id"]  # fmt: skip
    assert golden.startswith("mpi-")
    obs = {"resourceType": "Observation", "status": "final", "code": {"text": "Mạch"},
           "subject": {"reference": f"Patient/{golden}"}, "valueQuantity": {"value": 72}}  # fmt: skip
    assert client.post("/fhir/Observation", json=obs, headers=system_headers).status_code == 201
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"resource": {**obs, "code": {"text": "Nhịp thở"}}, "request": {"method": "POST", "url": "Observation"}}]}  # fmt: skip
    assert client.post("/fhir", json=bundle, headers=system_headers).status_code == 200
    for ref in (f"Patient/{golden}", f"Patient/{patient_id}"):
        found = client.get(f"/fhir/Observation?patient={ref}", headers=system_headers).json()
        assert sorted(e["resource"]["code"]["text"] for e in found["entry"]) == ["Mạch", "Nhịp thở"]
