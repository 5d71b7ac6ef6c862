"""The access matrix through the HTTP API: actor × data category × operation → allow/deny,
and every answer audited with the right basis."""

from __future__ import annotations

from typing import Any

import pytest
from access_world import World
from fastapi.testclient import TestClient

ALLOW, DENY = True, False

# (actor, resource, read, write) — write = create an Observation for the same person.
MATRIX: list[tuple[str, str, bool, bool | None]] = [
    # the citizen: own book (ordinary and sensitive), the child's, not a grown child's
    ("citizen", "obs_parent", ALLOW, ALLOW),
    ("citizen", "hiv_parent", ALLOW, None),
    ("citizen", "imm_child", ALLOW, ALLOW),
    ("citizen", "obs_grown", DENY, DENY),
    ("citizen", "obs_other", DENY, DENY),
    ("other_citizen", "obs_other", ALLOW, ALLOW),
    ("other_citizen", "obs_parent", DENY, DENY),
    ("other_citizen", "hiv_parent", DENY, None),
    # clinician with an open encounter at BV-01 (parent), none for others; HIV needs consent
    ("doctor", "obs_parent", ALLOW, ALLOW),
    ("doctor", "hiv_parent", DENY, None),
    ("doctor", "imm_child", DENY, DENY),
    ("doctor", "obs_other", DENY, DENY),
    ("doctor2", "obs_parent", DENY, DENY),
    ("doctor2", "hiv_parent", DENY, None),
    # commune-station staff: residents of their commune only, never sensitive data
    ("station_a", "obs_parent", ALLOW, ALLOW),
    ("station_a", "imm_child", ALLOW, ALLOW),
    ("station_a", "hiv_parent", DENY, None),
    ("station_a", "obs_other", DENY, DENY),
    ("station_b", "obs_other", ALLOW, ALLOW),
    ("station_b", "obs_parent", DENY, DENY),
    # supervisors, administrators, auditors: no identities
    ("supervisor", "obs_parent", DENY, DENY),
    ("supervisor", "hiv_parent", DENY, None),
    ("admin", "obs_parent", DENY, DENY),
    ("auditor", "obs_parent", DENY, DENY),
    # national insurance system: its scope (Immunization.read) only
    ("insurance", "imm_child", ALLOW, DENY),
    ("insurance", "obs_parent", DENY, DENY),
    ("insurance", "hiv_parent", DENY, None),
    # the hospital's own system: patients with an encounter there
    ("his", "obs_parent", ALLOW, ALLOW),
    ("his", "hiv_parent", DENY, None),
    ("his", "obs_other", DENY, ALLOW),  # submitting data needs no treating link, reading does
]


def _last_audit(world: World, account: str) -> tuple[Any, ...]:
    with world.db.connection() as conn:
        row = conn.execute(
            "SELECT action, outcome, basis, person_id FROM audit_event WHERE actor = %s "
            "ORDER BY seq DESC LIMIT 1",
            (str(world.accounts[account].id),),
        ).fetchone()
    assert row is not None, f"no audit event for {account}"
    return tuple(row)


def _person_of(world: World, resource: str) -> int:
    owner = {"parent": "parent", "child": "child", "grown": "grown", "other": "other"}
    return world.persons[owner[resource.split("_")[1]]]


@pytest.mark.parametrize(("actor", "resource", "read", "write"), MATRIX)
def test_read(
    client: TestClient, world: World, actor: str, resource: str, read: bool, write: bool | None
) -> None:
    rtype, rid = world.resources[resource]
    resp = client.get(f"/fhir/{rtype}/{rid}", headers=world.headers(actor))
    assert resp.status_code == (200 if read else 403), resp.text
    action, outcome, basis, person = _last_audit(world, actor)
    assert (action, outcome, person) == (
        "read",
        "allow" if read else "deny",
        _person_of(world, resource),
    )
    assert (basis != "deny") == read


SEARCH_MATRIX = MATRIX


@pytest.mark.parametrize(("actor", "resource", "read", "write"), SEARCH_MATRIX)
def test_search(
    client: TestClient, world: World, actor: str, resource: str, read: bool, write: bool | None
) -> None:
    rtype, rid = world.resources[resource]
    person = _person_of(world, resource)
    resp = client.get(f"/fhir/{rtype}", params={"patient": f"Patient/p{person}"},
                      headers=world.headers(actor))  # fmt: skip
    if resp.status_code == 200:  # a search may answer with only what the actor may see
        ids = {e["resource"]["id"] for e in resp.json().get("entry", []) if "resource" in e}
        assert (rid in ids) == read
    else:
        assert resp.status_code == 403 and not read, resp.text


@pytest.mark.parametrize(
    ("actor", "resource", "write"), [(a, r, w) for a, r, _, w in MATRIX if w is not None]
)
def test_write(client: TestClient, world: World, actor: str, resource: str, write: bool) -> None:
    person = _person_of(world, resource)
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "chiều cao"},
            "subject": {"reference": f"Patient/p{person}"}, "valueQuantity": {"value": 100}}  # fmt: skip
    resp = client.post("/fhir/Observation", json=body, headers=world.headers(actor))
    assert resp.status_code == (201 if write else 403), resp.text
    _, outcome, _, audited_person = _last_audit(world, actor)
    assert outcome == ("allow" if write else "deny")
    assert audited_person in (person, None)


def test_without_token_nothing_is_readable(client: TestClient, world: World) -> None:
    rtype, rid = world.resources["obs_parent"]
    assert client.get(f"/fhir/{rtype}/{rid}").status_code == 401
    assert client.get("/fhir/Observation", params={"patient": "Patient/p1"}).status_code == 401


def test_idor_on_every_resource_path(client: TestClient, world: World) -> None:
    """Another citizen guessing ids: every path over the parent's data is refused."""
    headers = world.headers("other_citizen")
    rtype, rid = world.resources["obs_parent"]
    parent = world.persons["parent"]
    body = {"resourceType": "Observation", "id": rid, "status": "final", "code": {"text": "x"},
            "subject": {"reference": f"Patient/p{parent}"}}  # fmt: skip
    attempts = [
        client.get(f"/fhir/{rtype}/{rid}", headers=headers),
        client.get(f"/fhir/{rtype}/{rid}/_history", headers=headers),
        client.get(f"/fhir/{rtype}/{rid}/_history/1", headers=headers),
        client.put(f"/fhir/{rtype}/{rid}", json=body, headers=headers),
        client.delete(f"/fhir/{rtype}/{rid}", headers=headers),
        client.get(f"/fhir/Patient/p{parent}", headers=headers),
        client.get(f"/fhir/Patient/p{parent}/$everything", headers=headers),
        client.get("/fhir/Observation", params={"subject": f"Patient/p{parent}"}, headers=headers),
        client.get("/api/v1/me/access-log", params={"person_id": parent}, headers=headers),
    ]
    for resp in attempts:
        assert resp.status_code in (403, 404), (
            f"{resp.request.method} {resp.request.url}: {resp.status_code}"
        )
    with world.db.connection() as conn:
        denials = conn.execute(
            "SELECT count(*) FROM audit_event WHERE actor = %s AND outcome = 'deny' AND person_id = %s",
            (str(world.accounts["other_citizen"].id), parent),
        ).fetchone()[0]  # type: ignore[index]
    assert denials >= 7
    # and the data is unchanged
    assert client.get(f"/fhir/{rtype}/{rid}", headers=world.headers("citizen")).status_code == 200
