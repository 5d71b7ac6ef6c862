"""The access matrix for writes through the FHIR door: actor × owner (a person the actor may
write for, or not) × sensitivity label × operation (create, update, delete, move to another
person) × door (REST, transaction, batch) → the status, the stored state and the audit."""

from __future__ import annotations

from typing import Any

import pytest
from access.access_world import World, observation, store_observation
from fastapi.testclient import TestClient

from hssk.records import store

ACTORS = ("citizen", "doctor", "station_a", "supervisor", "his")
OWNERS = ("self", "other")  # self: the parent (own book, open encounter, commune A)
LABELS = (None, "HIV")
OPS = ("create", "update", "delete", "move")
DOORS = ("rest", "transaction", "batch")
DONE = {"create": 201, "update": 200, "delete": 204}


def may_write(actor: str, owner: str, label: str | None) -> bool:
    """The policy's answer: citizens their own book (labels included); treating doctors and
    station staff ordinary data of their patients / residents; facility systems by their
    write scope; supervisors nothing."""
    if actor == "his":
        return True
    if actor == "citizen":
        return owner == "self"
    return actor in ("doctor", "station_a") and owner == "self" and label is None


def expected(actor: str, owner: str, label: str | None, op: str) -> int:
    allowed = may_write(actor, owner, label)
    if op == "move":  # never: 409 for who may write the owner's data, 403 for the others
        return 409 if allowed else 403
    return DONE[op] if allowed else 403


def _request(
    op: str, person: int, moved_to: int, label: str | None, rid: str | None
) -> tuple[str, str, dict[str, Any] | None]:
    """(method, Type/id, body) of the operation."""
    if op == "create":
        return "POST", "Observation", observation(person, label=label)
    if op == "delete":
        return "DELETE", f"Observation/{rid}", None
    target = moved_to if op == "move" else person
    return "PUT", f"Observation/{rid}", observation(target, label=label, rid=rid, value=2)


def _send(client: TestClient, headers: dict[str, str], door: str, request: tuple) -> int:
    method, url, body = request
    if door == "rest":
        return client.request(method, f"/fhir/{url}", json=body, headers=headers).status_code
    entry: dict[str, Any] = {"request": {"method": method, "url": url}}
    if body is not None:
        entry["resource"] = body
    bundle = {"resourceType": "Bundle", "type": door, "entry": [entry]}
    resp = client.post("/fhir", json=bundle, headers=headers)
    if resp.status_code != 200:
        return resp.status_code
    return int(resp.json()["entry"][0]["response"]["status"][:3])


def _last_audit(world: World, actor: str) -> tuple[Any, ...]:
    with world.db.connection() as conn:
        row = conn.execute(
            "SELECT outcome, person_id FROM audit_event WHERE actor = %s ORDER BY seq DESC LIMIT 1",
            (str(world.accounts[actor].id),),
        ).fetchone()
    assert row is not None
    return tuple(row)


@pytest.mark.parametrize("door", DOORS)
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("owner", OWNERS)
@pytest.mark.parametrize("actor", ACTORS)
def test_write(
    client: TestClient, world: World, actor: str, owner: str, label: str | None, op: str, door: str
) -> None:
    person = world.persons["parent" if owner == "self" else "other"]
    moved_to = world.persons["other" if owner == "self" else "parent"]
    rid = None if op == "create" else store_observation(world, person, label)
    want = expected(actor, owner, label, op)
    status = _send(client, world.headers(actor), door, _request(op, person, moved_to, label, rid))
    assert status == want, f"{actor} {op} {owner} {label} via {door}: {status}, expected {want}"
    # the audit names the person whose data it is (the current owner for a stored resource)
    assert _last_audit(world, actor) == ("allow" if want < 400 else "deny", person)
    if rid is not None:
        with world.db.connection() as conn:
            after = store.history(conn, "Observation", rid)[0]
        assert after.person_id == person  # never moved
        assert (after.version > 1) == (want < 400)  # a refused write changed nothing
