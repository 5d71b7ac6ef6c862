"""The FHIR R4 API against a real PostgreSQL: CRUD, versions, search, bundles, validation."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from fhir.resources.R4B import get_fhir_model_class

from hssk.access.actor import Actor
from hssk.kernel import identifiers
from hssk.records.store import content
from hssk.records.types import SUPPORTED_TYPES

H = dict[str, str]


def _strip(body: dict[str, Any]) -> dict[str, Any]:
    """Everything but the server-assigned meta.versionId and meta.lastUpdated."""
    return content(body)


def _patient(cccd: str = "001205012345", name: str = "Nguyễn Văn An") -> dict[str, Any]:
    family, *given = name.split()
    return {
        "resourceType": "Patient",
        "identifier": [{"system": identifiers.CCCD, "value": cccd}],
        "name": [{"family": family, "given": [" ".join(given)], "text": name}],
        "gender": "male",
        "birthDate": "2005-04-12",
    }


def _obs(patient_ref: str, day: int, value: float = 120) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": patient_ref},
        "effectiveDateTime": f"2025-01-{day:02d}T08:00:00+07:00",
        "valueQuantity": {"value": value, "unit": "mmHg"},
    }


def test_metadata_is_a_valid_capability_statement(client: TestClient) -> None:
    r = client.get("/fhir/metadata")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    body = r.json()
    get_fhir_model_class("CapabilityStatement").model_validate(body)
    types = {res["type"] for res in body["rest"][0]["resource"]}
    assert {"Patient", "Encounter", "Observation", "Immunization", "Appointment"} <= types
    patient = next(x for x in body["rest"][0]["resource"] if x["type"] == "Patient")
    assert {"identifier", "name", "birthdate"} <= {p["name"] for p in patient["searchParam"]}


def test_no_token_is_401_and_no_scope_is_403(client: TestClient, token_for: Any) -> None:
    r = client.get("/fhir/Patient")
    assert r.status_code == 401 and r.json()["resourceType"] == "OperationOutcome"
    r = client.get("/fhir/Patient", headers={"Authorization": "Bearer not-a-jwt"})
    assert r.status_code == 401
    weak = token_for(Actor("weak", "system", scopes=frozenset({"system/Organization.read"})))
    assert client.post("/fhir/Patient", json=_patient(), headers=weak).status_code == 403


def test_create_read_update_history_delete(client: TestClient, system_headers: H) -> None:
    r = client.post("/fhir/Patient", json=_patient(), headers=system_headers)
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    assert r.headers["etag"] == 'W/"1"' and r.headers["location"].endswith(
        f"Patient/{pid}/_history/1"
    )
    got = client.get(f"/fhir/Patient/{pid}", headers=system_headers).json()
    assert _strip(got) == {**_patient(), "id": pid}
    changed = {**_patient(), "id": pid, "gender": "female"}
    r = client.put(
        f"/fhir/Patient/{pid}", json=changed, headers={**system_headers, "If-Match": 'W/"1"'}
    )
    assert r.status_code == 200 and r.json()["meta"]["versionId"] == "2"
    stale = client.put(
        f"/fhir/Patient/{pid}", json=changed, headers={**system_headers, "If-Match": 'W/"1"'}
    )
    assert stale.status_code == 412
    hist = client.get(f"/fhir/Patient/{pid}/_history", headers=system_headers).json()
    assert [e["response"]["etag"] for e in hist["entry"]] == ['W/"2"', 'W/"1"']
    v1 = client.get(f"/fhir/Patient/{pid}/_history/1", headers=system_headers).json()
    assert v1["gender"] == "male"
    assert client.delete(f"/fhir/Patient/{pid}", headers=system_headers).status_code == 204
    assert client.get(f"/fhir/Patient/{pid}", headers=system_headers).status_code == 410
    assert client.get("/fhir/Patient/nope", headers=system_headers).status_code == 404


@pytest.mark.parametrize(
    ("body", "element"),
    [
        ({"resourceType": "Patient", "birthDate": "2025-13-45"}, "Patient.birthDate"),
        ({"resourceType": "Patient", "gender": "male", "favouriteColour": "blue"}, "Patient.favouriteColour"),
        ({"resourceType": "Observation", "status": "final"}, "Observation.code"),
        ({"resourceType": "Observation", "status": "final", "code": {"text": "x"}, "valueQuantity": {"value": "abc"}}, "Observation.valueQuantity.value"),
    ],
)  # fmt: skip
def test_invalid_resources_say_which_element(
    client: TestClient, system_headers: H, body: dict[str, Any], element: str
) -> None:
    r = client.post(f"/fhir/{body['resourceType']}", json=body, headers=system_headers)
    assert r.status_code == 400, r.text
    oo = r.json()
    assert oo["resourceType"] == "OperationOutcome"
    assert any(element in (i.get("expression") or [""])[0] for i in oo["issue"]), oo


def test_hostile_bodies_never_500(client: TestClient, system_headers: H) -> None:
    for raw in (
        b"",
        b"{",
        b"[]",
        b'"x"',
        b"\xff\xfe",
        b'{"resourceType": 5}',
        b'{"resourceType":"Nope"}',
    ):
        r = client.post(
            "/fhir/Patient",
            content=raw,
            headers={**system_headers, "content-type": "application/fhir+json"},
        )
        assert r.status_code == 400, (raw, r.status_code, r.text)
        assert r.json()["resourceType"] == "OperationOutcome"
    assert client.get("/fhir/Observation?date=yesterday", headers=system_headers).status_code == 400
    assert client.get("/fhir/Unknown/1", headers=system_headers).status_code == 404
    r = client.get("/fhir/Patient?identifier=' OR 1=1 --", headers=system_headers)
    assert r.status_code == 200 and r.json()["entry"] == []


def test_search_paging_by_patient_date_code(client: TestClient, system_headers: H) -> None:
    pid = client.post("/fhir/Patient", json=_patient(), headers=system_headers).json()["id"]
    other = client.post(
        "/fhir/Patient", json=_patient("001305099999", "Trần Thị Bình"), headers=system_headers
    ).json()["id"]
    for day in range(1, 26):
        assert (
            client.post(
                "/fhir/Observation", json=_obs(f"Patient/{pid}", day), headers=system_headers
            ).status_code
            == 201
        )
    client.post("/fhir/Observation", json=_obs(f"Patient/{other}", 3), headers=system_headers)
    seen: list[str] = []
    url: str | None = f"/fhir/Observation?patient=Patient/{pid}&_count=10"
    pages = 0
    while url:
        page = client.get(url, headers=system_headers).json()
        assert page["total"] == 25
        seen += [e["resource"]["id"] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
        pages += 1
    assert pages == 3 and len(seen) == len(set(seen)) == 25
    r = client.get(
        f"/fhir/Observation?patient={pid}&date=ge2025-01-20&date=lt2025-01-23",
        headers=system_headers,
    )
    assert r.json()["total"] == 3
    r = client.get(
        "/fhir/Observation?code=http://loinc.org|8480-6&date=2025-01-03", headers=system_headers
    )
    assert r.json()["total"] == 2
    assert client.get("/fhir/Observation?code=9999-9", headers=system_headers).json()["total"] == 0


def test_patient_identifier_and_name_search(client: TestClient, system_headers: H) -> None:
    client.post("/fhir/Patient", json=_patient(), headers=system_headers)
    for system in (identifiers.CCCD, identifiers.HEALTH_ID):
        r = client.get(f"/fhir/Patient?identifier={system}|001205012345", headers=system_headers)
        ids = [e["resource"]["id"] for e in r.json()["entry"]]
        # the stored Patient and the golden record of its person (first)
        assert r.json()["total"] == 2 and ids[0].startswith("mpi-"), (system, ids)
    r = client.get("/fhir/Patient?identifier=001205012345", headers=system_headers)
    assert r.json()["total"] == 2
    assert (
        client.get("/fhir/Patient?identifier=001205099999", headers=system_headers).json()["total"]
        == 0
    )
    # a word finds stored Patients; a full name also finds golden records in the MPI
    assert client.get("/fhir/Patient?name=nguyen", headers=system_headers).json()["total"] == 1
    r = client.get("/fhir/Patient?name=Nguyen Van An&birthdate=2005-04-12", headers=system_headers)
    assert r.json()["total"] == 2 and r.json()["entry"][0]["resource"]["id"].startswith("mpi-")
    assert (
        client.get("/fhir/Patient?name=nguyen&birthdate=2004", headers=system_headers).json()[
            "total"
        ]
        == 0
    )
    assert client.get("/fhir/Patient?name=tran", headers=system_headers).json()["total"] == 0


def test_golden_patient_reference_in_searches(client: TestClient, system_headers: H) -> None:
    pid = client.post("/fhir/Patient", json=_patient(), headers=system_headers).json()["id"]
    client.post("/fhir/Observation", json=_obs(f"Patient/{pid}", 4), headers=system_headers)
    golden = client.get(f"/fhir/Patient/{pid}/$everything", headers=system_headers).json()["entry"][
        0
    ]
    gid = golden["resource"]["id"]
    r = client.get(f"/fhir/Observation?patient=Patient/{gid}", headers=system_headers).json()
    assert r["total"] == 1 and r["entry"][0]["resource"]["subject"]["reference"] == f"Patient/{pid}"


def _transaction(pid_url: str = "urn:uuid:11111111-1111-1111-1111-111111111111") -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"fullUrl": pid_url, "resource": _patient(), "request": {"method": "POST", "url": "Patient",
             "ifNoneExist": f"identifier={identifiers.CCCD}|001205012345"}},
            {"resource": _obs(pid_url, 5), "request": {"method": "POST", "url": "Observation"}},
            {"resource": _obs(pid_url, 6), "request": {"method": "POST", "url": "Observation"}},
        ],
    }  # fmt: skip


def test_transaction_commits_and_resolves_references(client: TestClient, system_headers: H) -> None:
    r = client.post("/fhir", json=_transaction(), headers=system_headers)
    assert r.status_code == 200, r.text
    resp = r.json()
    assert resp["type"] == "transaction-response"
    assert [e["response"]["status"] for e in resp["entry"]] == ["201 Created"] * 3
    pid = resp["entry"][0]["response"]["location"].split("/")[1]
    obs = client.get(f"/fhir/Observation?patient={pid}", headers=system_headers).json()
    assert obs["total"] == 2
    assert {e["resource"]["subject"]["reference"] for e in obs["entry"]} == {f"Patient/{pid}"}
    # conditional create: the same bundle again finds the patient instead of creating another
    again = client.post("/fhir", json=_transaction(), headers=system_headers).json()
    assert again["entry"][0]["response"]["status"] == "200 OK"
    assert client.get("/fhir/Patient", headers=system_headers).json()["total"] == 1


def test_transaction_rolls_back_on_any_failure(client: TestClient, system_headers: H) -> None:
    bundle = _transaction()
    bundle["entry"].append(
        {
            "resource": {"resourceType": "Observation", "status": "final"},
            "request": {"method": "POST", "url": "Observation"},
        }
    )
    r = client.post("/fhir", json=bundle, headers=system_headers)
    assert r.status_code == 400
    assert any("Bundle.entry[3]" in i["expression"][0] for i in r.json()["issue"])
    bundle = _transaction()
    bundle["entry"].append(
        {
            "resource": {**_patient(), "id": "x1"},
            "request": {"method": "PUT", "url": "Patient/x1", "ifMatch": 'W/"7"'},
        }
    )
    r = client.post("/fhir", json=bundle, headers=system_headers)
    assert r.status_code == 412, r.text
    assert "Bundle.entry[3]" in r.json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/Patient", headers=system_headers).json()["total"] == 0
    assert client.get("/fhir/Observation", headers=system_headers).json()["total"] == 0


def test_batch_entries_fail_independently(client: TestClient, system_headers: H) -> None:
    bundle = {"resourceType": "Bundle", "type": "batch", "entry": [
        {"resource": _patient(), "request": {"method": "POST", "url": "Patient"}},
        {"request": {"method": "GET", "url": "Patient/missing"}},
        {"resource": {**_patient(), "id": "b2"}, "request": {"method": "PUT", "url": "Patient/b2", "ifMatch": 'W/"3"'}},
    ]}  # fmt: skip
    resp = client.post("/fhir", json=bundle, headers=system_headers).json()
    assert [e["response"]["status"][:3] for e in resp["entry"]] == ["201", "404", "412"]


def test_official_transaction_example(
    client: TestClient, system_headers: H, shared_dir: Path
) -> None:
    example = json.loads(
        (shared_dir / "data/fhir-r4-examples/Bundle-bundle-transaction.json").read_text()
    )
    # As published it asks for ValueSet/$lookup, which this server does not implement, and an
    # If-Match on Patient/123a: the whole transaction must fail and leave nothing behind.
    r = client.post("/fhir", json=example, headers=system_headers)
    assert r.status_code in (412, 501), r.text
    assert client.get("/fhir/Patient", headers=system_headers).json()["total"] == 0
    # Without the operation, and with Patient/123a at version 2, it is processed as the spec says.
    seed = next(e["resource"] for e in example["entry"] if e["request"]["url"] == "Patient/123a")
    client.put("/fhir/Patient/123a", json={**seed, "gender": "female"}, headers=system_headers)
    client.put("/fhir/Patient/123a", json=seed, headers=system_headers)
    client.put(
        "/fhir/Patient/234", json={"resourceType": "Patient", "id": "234"}, headers=system_headers
    )
    bundle = copy.deepcopy(example)
    bundle["entry"] = [e for e in bundle["entry"] if "$" not in e["request"]["url"]]
    seed_changed = next(e for e in bundle["entry"] if e["request"]["url"] == "Patient/123a")
    seed_changed["resource"]["active"] = False
    r = client.post("/fhir", json=bundle, headers=system_headers)
    assert r.status_code == 200, r.text
    statuses = {
        e["request"]["url"]: s["response"]["status"]
        for e, s in zip(bundle["entry"], r.json()["entry"], strict=True)
    }
    assert statuses["Patient"].startswith("201")
    assert statuses["Patient/123"].startswith("201")
    assert statuses["Patient/123a"].startswith("200")
    assert statuses["Patient/234"].startswith("204")
    assert statuses["Patient/12334"].startswith("404")
    assert client.get("/fhir/Patient/234", headers=system_headers).status_code == 410
    assert (
        client.get("/fhir/Patient/123a", headers=system_headers).json()["meta"]["versionId"] == "3"
    )


def _corpus(shared_dir: Path) -> list[dict[str, Any]]:
    out = []
    for path in sorted((shared_dir / "data/fhir-r4-examples").glob("*.json")):
        body = json.loads(path.read_text())
        if body.get("resourceType") in SUPPORTED_TYPES:
            out.append(body)
    return out


def test_official_examples_round_trip(
    client: TestClient, platform_headers: H, shared_dir: Path
) -> None:
    system_headers = platform_headers  # conformance, not access rules: resources may be unlinked
    corpus = sorted(_corpus(shared_dir), key=lambda b: b["resourceType"] != "Patient")
    assert len(corpus) > 200
    for body in corpus:
        rtype, rid = body["resourceType"], body["id"]
        r = client.put(f"/fhir/{rtype}/{rid}", json=body, headers=system_headers)
        assert r.status_code in (200, 201), (rtype, rid, r.text)
        got = client.get(f"/fhir/{rtype}/{rid}", headers=system_headers).json()
        assert _strip(got) == _strip(body), f"{rtype}/{rid} changed on the way"
    # POST too (a new id is assigned; the rest comes back equal)
    for body in corpus[:40]:
        r = client.post(f"/fhir/{body['resourceType']}", json=body, headers=system_headers)
        assert r.status_code == 201, r.text
        got = client.get(
            f"/fhir/{body['resourceType']}/{r.json()['id']}", headers=system_headers
        ).json()
        assert {k: v for k, v in _strip(got).items() if k != "id"} == {
            k: v for k, v in _strip(body).items() if k != "id"
        }


def test_everything_returns_the_whole_record(client: TestClient, system_headers: H) -> None:
    pid = client.post("/fhir/Patient", json=_patient(), headers=system_headers).json()["id"]
    for day in (1, 2, 3):
        client.post("/fhir/Observation", json=_obs(f"Patient/{pid}", day), headers=system_headers)
    r = client.get(f"/fhir/Patient/{pid}/$everything", headers=system_headers)
    assert r.status_code == 200
    types = [e["resource"]["resourceType"] for e in r.json()["entry"]]
    # the stored Patient and the golden record of the master patient index
    assert types.count("Patient") == 2 and types.count("Observation") == 3
    golden = r.json()["entry"][0]["resource"]
    assert golden["id"].startswith("mpi-")
    assert client.get(f"/fhir/Patient/{golden['id']}", headers=system_headers).json()["name"]
    same = client.get(f"/fhir/Patient/{golden['id']}/$everything", headers=system_headers).json()
    assert same["total"] == r.json()["total"]


def test_reads_are_audited(client: TestClient, system_headers: H, clean_db: Any) -> None:
    pid = client.post("/fhir/Patient", json=_patient(), headers=system_headers).json()["id"]
    client.get(f"/fhir/Patient/{pid}", headers=system_headers)
    with clean_db.connection() as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM audit_event ORDER BY seq")]
    assert actions[-2:] == ["write", "read"]


def test_patient_match_grades(client: TestClient, system_headers: H) -> None:
    client.post("/fhir/Patient", json=_patient(), headers=system_headers)
    client.post(
        "/fhir/Patient", json=_patient("001305099999", "Trần Thị Bình"), headers=system_headers
    )
    query = {"resourceType": "Patient", "name": [{"text": "Nguyen Van An"}], "birthDate": "2005-04-12",
             "gender": "male"}  # fmt: skip
    params = {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": query}]}
    r = client.post("/fhir/Patient/$match", json=params, headers=system_headers)
    assert r.status_code == 200, r.text
    entries = r.json()["entry"]
    assert entries and entries[0]["resource"]["name"][0]["text"] == "Nguyễn Văn An"
    grades = [e["search"]["extension"][0]["valueCode"] for e in entries]
    assert grades[0] in ("certain", "probable")
    assert all(e["resource"]["id"].startswith("mpi-") for e in entries)
    assert "Trần Thị Bình" not in [e["resource"]["name"][0]["text"] for e in entries]
    bad = client.post(
        "/fhir/Patient/$match", json={"resourceType": "Parameters"}, headers=system_headers
    )
    assert bad.status_code == 400 and bad.json()["resourceType"] == "OperationOutcome"
