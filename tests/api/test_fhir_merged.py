"""Merges never move clinical rows: every read of a survivor follows the ids merged into it,
and an unmerge gives each person back what was written under it, with no row moved."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from hssk.access.actor import Actor
from hssk.db import Database
from hssk.registry import SourceRecord, link
from hssk.registry.merge import merge, unmerge

H = dict[str, str]


def _obs(person: int, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": f"Patient/mpi-{person}"},
        "effectiveDateTime": "2025-01-02T08:00:00+07:00",
        "valueQuantity": {"value": value, "unit": "mmHg"},
    }


def _rows(conn: Any) -> list[tuple[str, int]]:
    return conn.execute("SELECT id, person_id FROM resource ORDER BY id").fetchall()


def _values(bundle: dict[str, Any]) -> list[float]:
    return sorted(
        e["resource"]["valueQuantity"]["value"]
        for e in bundle.get("entry", [])
        if e["resource"]["resourceType"] == "Observation"
    )


def test_reads_follow_merges_and_nothing_moves(
    client: TestClient, clean_db: Database, system_headers: H, token_for: Any
) -> None:
    with clean_db.connection() as conn:
        a = link(conn, SourceRecord("population", "1", "Đỗ Thị Hạnh", "1980-03-04", "F")).person_id
        b = link(conn, SourceRecord("population", "2", "Vũ Văn Khoa", "1990-05-06", "M")).person_id
    for person, value in ((a, 110), (b, 120)):
        r = client.post("/fhir/Observation", json=_obs(person, value), headers=system_headers)
        assert r.status_code == 201, r.text
    b_obs = client.get(f"/fhir/Observation?patient=mpi-{b}", headers=system_headers).json()
    b_id = b_obs["entry"][0]["resource"]["id"]
    with clean_db.connection() as conn:
        before = _rows(conn)
        merge_id = merge(conn, a, b, reason="cùng người")
        assert _rows(conn) == before  # the merge moved no row

    for ref in (f"mpi-{a}", f"mpi-{b}"):  # either id now names the survivor
        found = client.get(f"/fhir/Observation?patient={ref}", headers=system_headers).json()
        assert _values(found) == [110, 120] and found["total"] == 2
    everything = client.get(f"/fhir/Patient/mpi-{a}/$everything", headers=system_headers).json()
    assert _values(everything) == [110, 120]
    assert everything["entry"][0]["resource"]["id"] == f"mpi-{a}"

    # the survivor, as a citizen, reads what was written under the merged id
    citizen = Actor(account_id="c1", kind="citizen", person_id=a,
                    scopes=frozenset({"patient/*.read"}), client="tests")  # fmt: skip
    r = client.get(f"/fhir/Observation/{b_id}", headers=token_for(citizen))
    assert r.status_code == 200, r.text
    # a write naming the survivor on a row written under the merged id is no move: it stays
    body = r.json() | {"subject": {"reference": f"Patient/mpi-{a}"}}
    body["valueQuantity"]["value"] = 125
    r = client.put(f"/fhir/Observation/{b_id}", json=body, headers=system_headers)
    assert r.status_code == 200, r.text
    with clean_db.connection() as conn:
        assert dict(_rows(conn))[b_id] == b
        unmerge(conn, merge_id)
        assert [p for _, p in _rows(conn)] == [p for _, p in before]  # nothing moved back
    mine = client.get(f"/fhir/Observation?patient=mpi-{a}", headers=system_headers).json()
    theirs = client.get(f"/fhir/Observation?patient=mpi-{b}", headers=system_headers).json()
    assert _values(mine) == [110] and _values(theirs) == [125]
    r = client.get(f"/fhir/Observation/{b_id}", headers=token_for(citizen))
    assert r.status_code == 403
