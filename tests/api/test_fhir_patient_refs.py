"""A person's id in either form — ``Patient/mpi-N`` (the golden record) or the bare
``Patient/N`` that ingestion once wrote — reads the person and finds the same resources by
``patient=`` and ``subject=``, whichever form the resources carry; after a merge, every form of
either person's id finds the survivor's whole record."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from hssk.db import Database
from hssk.records import store
from hssk.registry import SourceRecord, link
from hssk.registry.merge import merge

H = dict[str, str]


def _obs(reference: str, value: float) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
            "subject": {"reference": reference}, "effectiveDateTime": "2025-02-03T08:00:00+07:00",
            "valueQuantity": {"value": value, "unit": "/min"}}  # fmt: skip


def _forms(person: int) -> list[str]:
    return [f"Patient/mpi-{person}", f"Patient/{person}", f"mpi-{person}", str(person)]


def _found(client: TestClient, headers: H, query: str) -> list[float]:
    r = client.get(f"/fhir/Observation?{query}", headers=headers)
    assert r.status_code == 200, (query, r.text)
    assert r.json()["total"] == len(r.json().get("entry", [])), query
    return sorted(e["resource"]["valueQuantity"]["value"] for e in r.json().get("entry", []))


def test_either_form_of_a_person_id_reads_and_finds_the_same(
    client: TestClient, clean_db: Database, system_headers: H
) -> None:
    with clean_db.connection() as conn:
        a = link(conn, SourceRecord("population", "1", "Lê Thị Mai", "1984-07-08", "F")).person_id
        b = link(conn, SourceRecord("population", "2", "Phạm Văn Nam", "1979-01-02", "M")).person_id
        # as ingestion stored it before references became ``mpi-N``: under the person, bare id
        store.save(conn, _obs(f"Patient/{a}", 62), person_id=a)
    for ref, value in ((f"Patient/mpi-{a}", 61), (f"Patient/mpi-{b}", 70)):
        r = client.post("/fhir/Observation", json=_obs(ref, value), headers=system_headers)
        assert r.status_code == 201, r.text
    for person, values in ((a, [61, 62]), (b, [70])):
        for form in _forms(person):
            if form.startswith("Patient/"):
                read = client.get(f"/fhir/{form}", headers=system_headers)
                assert read.status_code == 200 and read.json()["id"] == f"mpi-{person}", form
            for param in ("patient", "subject"):
                assert _found(client, system_headers, f"{param}={form}") == values, (param, form)

    with clean_db.connection() as conn:
        merge(conn, a, b, reason="cùng một người")
    for person in (a, b):
        for form in _forms(person):
            for param in ("patient", "subject"):
                assert _found(client, system_headers, f"{param}={form}") == [61, 62, 70], (
                    param,
                    form,
                )
        everything = client.get(f"/fhir/Patient/{person}/$everything", headers=system_headers)
        assert everything.status_code == 200, everything.text
        values = [e["resource"].get("valueQuantity", {}).get("value")
                  for e in everything.json()["entry"]]  # fmt: skip
        assert sorted(v for v in values if v is not None) == [61, 62, 70]
