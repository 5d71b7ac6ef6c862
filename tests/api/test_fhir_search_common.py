"""Every R4 resource type: a minimal valid instance built from the R4 models is created, read,
versioned and found by ``_id``, ``_lastUpdated`` (Vietnam time when no zone is given) and
``_tag``; the common parameters of the R4 definitions (``identifier``, ``patient``, ``date``,
``code``, ``status``) search every type that has them; unknown parameters follow
``Prefer: handling``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

from hssk.kernel.clock import VN
from hssk.records import params
from hssk.records.types import SUBJECT_PATHS, SUPPORTED_TYPES
from hssk.records.validate import InvalidResource, validate
from tests.factories.minimal import minimal_resource

H = dict[str, str]
TAG = {"system": "https://fhir.hssk.vn/tag", "code": "kiem-thu"}


def _ids(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


def _vn(instant: datetime) -> str:
    """The instant as Vietnam wall-clock time without a zone, to the second."""
    return instant.astimezone(VN).strftime("%Y-%m-%dT%H:%M:%S")


def _of_patient(body: dict[str, Any], ref: dict[str, str]) -> dict[str, Any]:
    """``body`` naming the patient where its type names one (a person's data is read only
    with a right to that person)."""
    rtype = body["resourceType"]
    if rtype == "Appointment":
        return {**body, "participant": [{"actor": ref, "status": "accepted"}]}
    if rtype not in SUBJECT_PATHS:
        return body
    element = SUBJECT_PATHS[rtype][0]
    for value in (ref, [ref]):  # one reference, or a list of them
        try:
            return validate({**body, element: value})
        except InvalidResource:
            continue
    raise AssertionError(f"{rtype}.{element} takes no Patient reference")


def test_every_r4_type_is_created_read_versioned_and_found(
    client: TestClient, platform_headers: H
) -> None:
    """(As the platform itself: directory, clinical and administrative types alike.)"""
    assert len(SUPPORTED_TYPES) >= 145
    patient = client.post(
        "/fhir/Patient", json=minimal_resource("Patient"), headers=platform_headers
    )
    ref = {"reference": f"Patient/{patient.json()['id']}"}
    for rtype in SUPPORTED_TYPES:
        body = _of_patient(minimal_resource(rtype), ref)
        r = client.post(f"/fhir/{rtype}", json=body, headers=platform_headers)
        assert r.status_code == 201, (rtype, r.text)
        rid = r.json()["id"]
        read = client.get(f"/fhir/{rtype}/{rid}", headers=platform_headers)
        assert read.status_code == 200 and read.json()["meta"]["versionId"] == "1", rtype
        tagged = {**read.json(), "meta": {"tag": [TAG]}}
        r = client.put(f"/fhir/{rtype}/{rid}", json=tagged, headers=platform_headers)
        assert r.status_code == 200 and r.json()["meta"]["versionId"] == "2", (rtype, r.text)
        first = client.get(f"/fhir/{rtype}/{rid}/_history/1", headers=platform_headers)
        assert first.status_code == 200 and "tag" not in first.json().get("meta", {}), rtype
        stored = datetime.fromisoformat(r.json()["meta"]["lastUpdated"].replace("Z", "+00:00"))

        def found(query: str, rtype: str = rtype, rid: str = rid) -> bool:
            got = client.get(f"/fhir/{rtype}?_id={rid}&{query}", headers=platform_headers)
            assert got.status_code == 200, (rtype, query, got.text)
            return _ids(got.json()) == [rid]

        assert found("_count=5"), rtype
        today_vn = stored.astimezone(VN).date().isoformat()
        assert found(f"_lastUpdated={today_vn}") and found(f"_lastUpdated=ge{today_vn}"), rtype
        assert not found("_lastUpdated=lt2000-01-01"), rtype
        # no zone: Vietnam time. A minute before / after the write, as a clock in Hà Nội reads
        assert found(f"_lastUpdated=ge{_vn(stored - timedelta(minutes=1))}"), rtype
        assert not found(f"_lastUpdated=gt{_vn(stored + timedelta(minutes=1))}"), rtype
        assert found(f"_tag={TAG['system']}|{TAG['code']}") and not found("_tag=other"), rtype


def test_lastupdated_day_is_the_vietnam_day(client: TestClient, platform_headers: H) -> None:
    r = client.post("/fhir/Basic", json=minimal_resource("Basic"), headers=platform_headers)
    rid = r.json()["id"]
    stored = datetime.fromisoformat(r.json()["meta"]["lastUpdated"].replace("Z", "+00:00"))
    vn_day = stored.astimezone(VN).date()
    for day, hit in ((vn_day, True), (vn_day - timedelta(days=1), False),
                     (vn_day + timedelta(days=1), False)):  # fmt: skip
        got = client.get(f"/fhir/Basic?_lastUpdated={day}", headers=platform_headers).json()
        assert (rid in _ids(got)) is hit, (day, stored)
    # the same instant with its zone, and in UTC
    exact = stored.strftime("%Y-%m-%dT%H:%M:%S")
    got = client.get(f"/fhir/Basic?_lastUpdated=ge{exact}Z", headers=platform_headers).json()
    assert rid in _ids(got)
    got = client.get(f"/fhir/Basic?_lastUpdated=le{exact}", headers=platform_headers).json()
    assert rid not in _ids(got)  # no zone: that wall-clock time in Vietnam, 7 hours earlier


def test_common_parameters_of_the_r4_definitions(client: TestClient, system_headers: H) -> None:
    assert params.common("ExplanationOfBenefit") >= {"patient", "identifier", "status"}
    assert "date" in params.common("CareTeam") and "code" in params.common("Task")
    patient = client.post("/fhir/Patient", json={"resourceType": "Patient", "name": [
        {"family": "Lê", "given": ["Văn Cường"]}], "birthDate": "1990-01-02"},
        headers=system_headers).json()  # fmt: skip
    ref = {"reference": f"Patient/{patient['id']}"}
    team = {"resourceType": "CareTeam", "status": "active", "subject": ref,
            "identifier": [{"system": "https://bv.example.vn/careteam", "value": "CT-7"}],
            "period": {"start": "2026-03-01T23:30:00Z"},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "LA27976-2"}]}]}  # fmt: skip
    task = {"resourceType": "Task", "status": "requested", "intent": "order", "for": ref,
            "code": {"coding": [{"system": "http://hl7.org/fhir/CodeSystem/task-code",
                                 "code": "fulfill"}]},
            "meta": {"profile": ["https://fhir.hssk.vn/StructureDefinition/task"]}}  # fmt: skip
    ids = {}
    for body in (team, task):
        r = client.post(f"/fhir/{body['resourceType']}", json=body, headers=system_headers)
        assert r.status_code == 201, r.text
        ids[body["resourceType"]] = r.json()["id"]

    def search(query: str) -> list[str]:
        r = client.get(f"/fhir/{query}", headers=system_headers)
        assert r.status_code == 200, r.text
        return _ids(r.json())

    p = f"Patient/{patient['id']}"
    assert search(f"CareTeam?patient={p}") == [ids["CareTeam"]]
    assert search("CareTeam?identifier=https://bv.example.vn/careteam|CT-7") == [ids["CareTeam"]]
    assert search("CareTeam?identifier=CT-8") == []
    assert search("CareTeam?status=active") == [ids["CareTeam"]]
    assert search("CareTeam?status=inactive") == []
    # 23:30 UTC on 1 March is 06:30 on 2 March in Vietnam
    assert search("CareTeam?date=2026-03-02") == [ids["CareTeam"]]
    assert search("CareTeam?date=2026-03-01") == []
    assert search(f"Task?subject={p}&code=fulfill") == [ids["Task"]]
    assert search("Task?code=http://hl7.org/fhir/CodeSystem/task-code|fulfill") == [ids["Task"]]
    assert search("Task?_profile=https://fhir.hssk.vn/StructureDefinition/task") == [ids["Task"]]
    assert search("Task?_profile=https://example.org/other") == []


def test_unknown_parameters_follow_the_handling_preference(
    client: TestClient, platform_headers: H
) -> None:
    client.post("/fhir/Basic", json=minimal_resource("Basic"), headers=platform_headers)
    lenient = client.get("/fhir/Basic?colour=blue&_count=5", headers=platform_headers)
    assert lenient.status_code == 200
    bundle = lenient.json()
    assert len(_ids(bundle)) == 1
    self_link = next(x["url"] for x in bundle["link"] if x["relation"] == "self")
    assert "colour" not in self_link and "_count=5" in self_link
    outcome = [e["resource"] for e in bundle["entry"] if e["search"]["mode"] == "outcome"]
    assert outcome and outcome[0]["issue"][0]["expression"] == ["colour"]
    strict = client.get(
        "/fhir/Basic?colour=blue", headers={**platform_headers, "Prefer": "handling=strict"}
    )
    assert strict.status_code == 400
    issue = strict.json()["issue"][0]
    assert issue["expression"] == ["colour"] and "colour" in issue["diagnostics"]
    assert issue["diagnostics"].startswith("Tham số tìm kiếm")
    assert issue["details"]["coding"][0]["code"] == "search-unknown-params"
    # a parameter R4 does not define for the type is unknown too (Goal has no 'status')
    r = client.get(
        "/fhir/Goal?status=active", headers={**platform_headers, "Prefer": "handling=strict"}
    )
    assert r.status_code == 400 and "'status'" in r.json()["issue"][0]["diagnostics"]
    ok = client.get("/fhir/Basic?_id=x", headers={**platform_headers, "Prefer": "handling=strict"})
    assert ok.status_code == 200


def test_bare_person_id_reads_the_golden_patient(client: TestClient, system_headers: H) -> None:
    patient = {"resourceType": "Patient", "name": [{"family": "Phạm", "given": ["Thu"]}],
               "birthDate": "1985-05-06", "gender": "female",
               "identifier": [{"system": "https://fhir.hssk.vn/sid/cccd", "value": "001185001234"}]}  # fmt: skip
    assert client.post("/fhir/Patient", json=patient, headers=system_headers).status_code == 201
    golden = client.get("/fhir/Patient?identifier=001185001234", headers=system_headers).json()
    mpi = next(i for i in _ids(golden) if i.startswith("mpi-"))
    bare = mpi.removeprefix("mpi-")
    r = client.get(f"/fhir/Patient/{bare}", headers=system_headers)
    assert r.status_code == 200 and r.json()["id"] == mpi
    assert client.get("/fhir/Patient/99999999", headers=system_headers).status_code == 404
