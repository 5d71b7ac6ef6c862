"""Transactions of generated patient bundles (Synthea style, ``tests/factories/synthea.py``):
every entry is stored, every reference is rewritten to a stored id and resolves, and
``Patient/{id}/$everything`` returns them."""

from __future__ import annotations

import json
from typing import Any

from fastapi.testclient import TestClient

from tests.factories.synthea import TYPES, patient_bundle

H = dict[str, str]


def _references(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [v for k, v in node.items() if k == "reference" and isinstance(v, str)]
        return found + [r for k, v in node.items() if k != "reference" for r in _references(v)]
    if isinstance(node, list):
        return [r for v in node for r in _references(v)]
    return []


def _post(client: TestClient, headers: H, bundle: dict[str, Any]) -> list[tuple[str, str]]:
    r = client.post("/fhir", json=bundle, headers=headers)
    assert r.status_code == 200, r.text
    out = []
    for entry in r.json()["entry"]:
        rtype, rid = entry["response"]["location"].split("/")[:2]
        out.append((rtype, rid))
    return out


def test_generated_bundle_is_stored_whole_and_its_references_resolve(
    client: TestClient, system_headers: H
) -> None:
    bundle = patient_bundle(seed=7, encounters=3)
    assert {e["resource"]["resourceType"] for e in bundle["entry"]} == set(TYPES)
    r = client.post("/fhir", json=bundle, headers=system_headers)
    assert r.status_code == 200, r.text
    statuses = [e["response"]["status"] for e in r.json()["entry"]]
    assert statuses == ["201 Created"] * len(bundle["entry"]), statuses
    stored = [tuple(e["response"]["location"].split("/")[:2]) for e in r.json()["entry"]]
    assert len(set(stored)) == len(stored)
    # where each reference of the bundle must point once stored: entries by their fullUrl,
    # conditional references by the search of the conditional create they match
    target = {e["fullUrl"]: f"{t}/{i}" for e, (t, i) in zip(bundle["entry"], stored, strict=True)}
    target |= {
        f"{t}?{e['request']['ifNoneExist']}": f"{t}/{i}"
        for e, (t, i) in zip(bundle["entry"], stored, strict=True)
        if "ifNoneExist" in e["request"]
    }
    for entry, (rtype, rid) in zip(bundle["entry"], stored, strict=True):
        got = client.get(f"/fhir/{rtype}/{rid}", headers=system_headers)
        assert got.status_code == 200, got.text
        body = got.json()
        assert body["id"] == rid
        text = json.dumps(body)
        assert "urn:uuid:" not in text and "?identifier=" not in text, (rtype, text)
        refs = _references(body)
        # contained resources (``#id``) keep their local names
        expected = [r if r.startswith("#") else target[r] for r in _references(entry["resource"])]
        assert sorted(refs) == sorted(expected), rtype
        for ref in refs:
            if not ref.startswith("#"):
                assert client.get(f"/fhir/{ref}", headers=system_headers).status_code == 200, ref
    patient = next(f"{t}/{i}" for t, i in stored if t == "Patient")
    everything = client.get(f"/fhir/{patient}/$everything", headers=system_headers)
    assert everything.status_code == 200, everything.text
    returned = {
        (e["resource"]["resourceType"], e["resource"]["id"]) for e in everything.json()["entry"]
    }
    assert set(stored) <= returned, set(stored) - returned


def test_bundles_of_one_clinic_share_its_organization_and_practitioner(
    client: TestClient, system_headers: H
) -> None:
    first = _post(client, system_headers, patient_bundle(seed=1, clinic=3))
    second_bundle = patient_bundle(seed=2, clinic=3)
    r = client.post("/fhir", json=second_bundle, headers=system_headers)
    assert r.status_code == 200, r.text
    statuses = {
        e["resource"]["resourceType"]: s["response"]["status"]
        for e, s in zip(second_bundle["entry"], r.json()["entry"], strict=True)
    }
    # conditional creates found the clinic's resources; everything else is new
    assert statuses["Organization"] == statuses["Practitioner"] == "200 OK"
    assert statuses["Patient"] == statuses["Claim"] == "201 Created"
    second = [tuple(e["response"]["location"].split("/")[:2]) for e in r.json()["entry"]]
    assert first[:2] == second[:2]
    for rtype in ("Organization", "Practitioner"):
        assert client.get(f"/fhir/{rtype}", headers=system_headers).json()["total"] == 1
    # the second patient's encounters name the clinic's stored Organization
    pid = next(i for t, i in second if t == "Patient")
    encounters = client.get(f"/fhir/Encounter?patient=Patient/{pid}", headers=system_headers)
    providers = {e["resource"]["serviceProvider"]["reference"] for e in encounters.json()["entry"]}
    assert providers == {f"Organization/{first[0][1]}"}


def test_conditional_reference_matching_nothing_fails_the_transaction(
    client: TestClient, system_headers: H
) -> None:
    bundle = patient_bundle(seed=4, encounters=1)
    enc = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter")
    enc["resource"]["serviceProvider"] = {"reference": "Organization?identifier=urn:x|nowhere"}
    r = client.post("/fhir", json=bundle, headers={**system_headers, "Accept-Language": "en"})
    assert r.status_code == 412, r.text
    issue = r.json()["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "entry-conditional-reference"
    diagnostics = issue["diagnostics"]
    assert "Organization?identifier=urn:x|nowhere" in diagnostics and "0 resources" in diagnostics
    assert client.get("/fhir/Patient", headers=system_headers).json()["total"] == 0


def test_a_reference_to_no_entry_fails_the_transaction(
    client: TestClient, system_headers: H
) -> None:
    bundle = patient_bundle(seed=5, encounters=1)
    cond = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Condition")
    cond["resource"]["encounter"] = {"reference": "urn:uuid:00000000-0000-4000-8000-0000000000ff"}
    r = client.post("/fhir", json=bundle, headers=system_headers)
    assert r.status_code == 400, r.text
    issue = r.json()["issue"][0]
    assert issue["details"]["coding"][0]["code"] == "entry-reference-dangling"
    diagnostics = issue["diagnostics"]
    assert (
        "urn:uuid:00000000-0000-4000-8000-0000000000ff" in diagnostics
        and "Condition" in diagnostics
    )
    assert client.get("/fhir/Condition", headers=system_headers).json()["total"] == 0
