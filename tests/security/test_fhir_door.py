"""The FHIR door under attack (issue 14): writes authorized against the current owner and label,
no resource moved to another person, every version returned checked, search totals that count
only what the caller may see, and bad input answered with a 4xx OperationOutcome."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

import pytest
from access.access_world import World, observation, store_observation
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hssk.records import search, store

MOVE_REFUSED = "không thể chuyển một tài nguyên sang người khác"


def _owner(world: World, rid: str, rtype: str = "Observation") -> int | None:
    with world.db.connection() as conn:
        row = conn.execute(
            "SELECT person_id FROM resource WHERE type = %s AND id = %s", (rtype, rid)
        ).fetchone()
    return row[0] if row else None


def _audited(world: World, account: str, rid: str) -> list[tuple[Any, ...]]:
    """(action, outcome, person) of the account's events naming resource ``rid``."""
    with world.db.connection() as conn:
        return conn.execute(
            "SELECT action, outcome, person_id FROM audit_event WHERE actor = %s"
            " AND (resource_id = %s OR detail -> 'resources' ? %s) ORDER BY seq",
            (str(world.accounts[account].id), rid, rid),
        ).fetchall()


def _put_bundle(kind: str, url: str, body: dict) -> dict:
    return {"resourceType": "Bundle", "type": kind,
            "entry": [{"resource": body, "request": {"method": "PUT", "url": url}}]}  # fmt: skip


def _get_bundle(*urls: str) -> dict:
    return {"resourceType": "Bundle", "type": "batch",
            "entry": [{"request": {"method": "GET", "url": u}} for u in urls]}  # fmt: skip


# --- 1. writes: the current owner decides, nothing moves to another person --------------------
def test_put_cannot_take_over_another_persons_resource(client: TestClient, world: World) -> None:
    """Another citizen PUTs the parent's Observation with their own subject: refused, the
    resource stays the parent's, and the parent's access log shows the attempt."""
    parent, me = world.persons["parent"], world.persons["other"]
    rid = store_observation(world, parent)
    resp = client.put(f"/fhir/Observation/{rid}", json=observation(me, rid=rid),
                      headers=world.headers("other_citizen"))  # fmt: skip
    assert resp.status_code == 403, resp.text
    assert _owner(world, rid) == parent
    assert ("write", "deny", parent) in _audited(world, "other_citizen", rid)
    log = client.get("/api/v1/me/access-log", headers=world.headers("citizen")).json()
    assert any(
        (e["action"], e["outcome"], e["resource"]) == ("write", "deny", "Observation")
        and e["who"] != "bạn / you"
        for e in log
    ), log


@pytest.mark.parametrize("kind", ["transaction", "batch"])
def test_bundle_put_cannot_take_over(client: TestClient, world: World, kind: str) -> None:
    """The same through a transaction (bulk write) and a batch (one by one)."""
    parent, me = world.persons["parent"], world.persons["other"]
    rid = store_observation(world, parent)
    bundle = _put_bundle(kind, f"Observation/{rid}", observation(me, rid=rid))
    resp = client.post("/fhir", json=bundle, headers=world.headers("other_citizen"))
    status = resp.status_code if kind == "transaction" else int(
        resp.json()["entry"][0]["response"]["status"][:3])  # fmt: skip
    assert status == 403, resp.text
    assert _owner(world, rid) == parent
    assert ("write", "deny", parent) in _audited(world, "other_citizen", rid)


def test_conditional_update_cannot_take_over(client: TestClient, world: World) -> None:
    """A conditional PUT whose search finds nothing the caller may see, naming the victim's id."""
    parent, me = world.persons["parent"], world.persons["other"]
    rid = store_observation(world, parent)
    bundle = _put_bundle("transaction", f"Observation?_id={rid}", observation(me, rid=rid))
    resp = client.post("/fhir", json=bundle, headers=world.headers("other_citizen"))
    assert resp.status_code == 403, resp.text
    assert _owner(world, rid) == parent


@pytest.mark.parametrize("door", ["put", "transaction", "batch"])
def test_a_write_never_moves_a_resource_to_another_person(
    client: TestClient, world: World, door: str
) -> None:
    """The parent may write both their own and their child's book, yet cannot move one of
    their Observations into the child's book: 409 saying to create a new one."""
    parent, child = world.persons["parent"], world.persons["child"]
    rid = store_observation(world, parent)
    body, headers = observation(child, rid=rid), world.headers("citizen")
    if door == "put":
        resp = client.put(f"/fhir/Observation/{rid}", json=body, headers=headers)
        status, outcome = resp.status_code, resp.json()
    else:
        resp = client.post("/fhir", json=_put_bundle(door, f"Observation/{rid}", body),
                           headers=headers)  # fmt: skip
        status, outcome = resp.status_code, resp.json()
        if door == "batch":
            status = int(outcome["entry"][0]["response"]["status"][:3])
            outcome = outcome["entry"][0]["response"]["outcome"]
    assert status == 409, resp.text
    assert outcome["issue"][0]["details"]["coding"][0]["code"] == "move-refused"
    assert MOVE_REFUSED in outcome["issue"][0]["diagnostics"]
    assert _owner(world, rid) == parent


def test_system_cannot_move_a_resource(client: TestClient, world: World) -> None:
    """A hospital system (it may write for anyone) cannot move a resource either."""
    rtype, rid = world.resources["obs_grown"]
    body = {**observation(world.persons["other"], rid=rid)}
    resp = client.put(f"/fhir/{rtype}/{rid}", json=body, headers=world.headers("his"))
    assert resp.status_code == 409, resp.text
    assert _owner(world, rid) == world.persons["grown"]


def test_update_needs_the_right_to_the_current_label(client: TestClient, world: World) -> None:
    """A treating doctor may write the parent's ordinary data, not strip the HIV label off
    (which would make the data readable without the person's consent)."""
    parent = world.persons["parent"]
    rid = store_observation(world, parent, label="HIV")
    resp = client.put(f"/fhir/Observation/{rid}", json=observation(parent, rid=rid, value=2),
                      headers=world.headers("doctor"))  # fmt: skip
    assert resp.status_code == 403, resp.text
    with world.db.connection() as conn:
        assert store.read(conn, "Observation", rid).sensitivity == "HIV"


def test_delete_needs_the_right_to_the_label(client: TestClient, world: World) -> None:
    rid = store_observation(world, world.persons["parent"], label="HIV")
    resp = client.delete(f"/fhir/Observation/{rid}", headers=world.headers("doctor"))
    assert resp.status_code == 403, resp.text
    assert ("delete", "deny", world.persons["parent"]) in _audited(world, "doctor", rid)


# --- 2. every version returned is checked with its own person and label ----------------------
def test_vread_checks_the_label(client: TestClient, world: World) -> None:
    rtype, rid = world.resources["hiv_parent"]
    doctor = world.headers("doctor")
    assert client.get(f"/fhir/{rtype}/{rid}/_history/1", headers=doctor).status_code == 403
    # nor does a missing version tell how many versions there are
    assert client.get(f"/fhir/{rtype}/{rid}/_history/7", headers=doctor).status_code == 403
    own = client.get(f"/fhir/{rtype}/{rid}/_history/7", headers=world.headers("citizen"))
    assert own.status_code == 404


def test_history_checks_the_label(client: TestClient, world: World) -> None:
    rtype, rid = world.resources["hiv_parent"]
    resp = client.get(f"/fhir/{rtype}/{rid}/_history", headers=world.headers("doctor"))
    assert resp.status_code == 403 or not resp.json().get("entry"), resp.text


def test_history_checks_each_version(client: TestClient, world: World) -> None:
    """The parent labels an Observation HIV, then writes it again without the label: the
    treating doctor sees the second version only."""
    parent = world.persons["parent"]
    rid = store_observation(world, parent, label="HIV")
    own = world.headers("citizen")
    resp = client.put(
        f"/fhir/Observation/{rid}", json=observation(parent, rid=rid, value=5), headers=own
    )
    assert resp.status_code == 200, resp.text
    doctor = world.headers("doctor")
    hist = client.get(f"/fhir/Observation/{rid}/_history", headers=doctor)
    assert hist.status_code == 200, hist.text
    assert [e["resource"]["meta"]["versionId"] for e in hist.json()["entry"]] == ["2"]
    assert hist.json()["total"] == 1
    assert client.get(f"/fhir/Observation/{rid}/_history/1", headers=doctor).status_code == 403
    assert client.get(f"/fhir/Observation/{rid}/_history/2", headers=doctor).status_code == 200
    both = client.get(f"/fhir/Observation/{rid}/_history", headers=own).json()
    assert len(both["entry"]) == 2  # the person sees every version of their own data


def test_batch_get_checks_the_label(client: TestClient, world: World) -> None:
    rtype, rid = world.resources["hiv_parent"]
    parent = world.persons["parent"]
    urls = [f"{rtype}/{rid}", f"{rtype}/{rid}/_history/1", f"{rtype}/{rid}/_history",
            f"{rtype}?patient=Patient/p{parent}", f"{rtype}?_id={rid}"]  # fmt: skip
    resp = client.post("/fhir", json=_get_bundle(*urls), headers=world.headers("doctor"))
    assert resp.status_code == 200, resp.text
    entries = resp.json()["entry"]
    for url, entry in zip(urls, entries, strict=True):
        found = entry.get("resource") or {}
        if found.get("resourceType") == "Bundle":
            assert not [e for e in found.get("entry", []) if e.get("resource", {}).get("id") == rid
                        or e.get("resource", {}).get("entry")], url  # fmt: skip
        else:
            assert entry["response"]["status"].startswith("403"), (url, entry)


def test_batch_get_follows_the_rest_routes(client: TestClient, world: World) -> None:
    """A batch GET reads what the same REST request reads (history, versions, searches)."""
    rtype, rid = world.resources["obs_parent"]
    urls = [f"{rtype}/{rid}", f"{rtype}/{rid}/_history/1", f"{rtype}/{rid}/_history"]
    resp = client.post("/fhir", json=_get_bundle(*urls), headers=world.headers("doctor"))
    kinds = [e["resource"]["resourceType"] for e in resp.json()["entry"]]
    assert kinds == ["Observation", "Observation", "Bundle"], resp.text


# --- 3. search totals count only what the caller may see -------------------------------------
def test_search_total_does_not_count_others_rows(client: TestClient, world: World) -> None:
    """Another citizen probing the parent's blood-pressure code with _count=0 learns nothing."""
    headers = world.headers("other_citizen")
    probe = client.get("/fhir/Observation", params={"code": "8480-6", "_count": "0"},
                       headers=headers).json()  # fmt: skip
    assert probe.get("total", 0) == 0, probe
    visible = client.get("/fhir/Observation", params={"status": "final", "_count": "500"},
                         headers=headers).json()  # fmt: skip
    counted = client.get("/fhir/Observation", params={"status": "final", "_count": "0"},
                         headers=headers).json()  # fmt: skip
    assert counted.get("total", len(visible["entry"])) == len(visible["entry"])


# --- 4. bad input: a clear 4xx OperationOutcome, never a 500 ---------------------------------
BAD_GETS = [
    "/fhir/Patient?patient=x",
    "/fhir/Patient?subject=Patient/x",
    "/fhir/Observation?date=2020-01-01%00",
    "/fhir/Observation?date=%00",
    "/fhir/Observation?_sort=%00",
    "/fhir/Observation?code=%00",
    "/fhir/Observation?status=a%00b",
    "/fhir/Observation?patient=%00",
    "/fhir/Observation?identifier=%00",
    "/fhir/Observation?x%00y=1",
    "/fhir/Patient?name=%00",
    "/fhir/Patient?identifier=%00",
    "/fhir/Observation/%00",
    "/fhir/Observation/x/_history/%00",
]


@pytest.mark.parametrize("url", BAD_GETS)
def test_bad_search_input_is_a_4xx_outcome(client: TestClient, world: World, url: str) -> None:
    resp = client.get(url, headers=world.headers("station_a"))
    assert resp.status_code < 500, resp.text
    assert resp.json()["resourceType"] in ("OperationOutcome", "Bundle")


def _nested_extensions(depth: int) -> str:
    """An Observation whose extensions nest ``depth`` levels (valid FHIR at every level)."""
    inner = '{"url": "urn:x"}'
    for _ in range(depth):
        inner = '{"url": "urn:x", "extension": [' + inner + "]}"
    return '{"resourceType": "Observation", "status": "final", "code": {"text": "x"}, ' + (
        '"subject": {"reference": "Patient/p1"}, "extension": [' + inner + "]}"
    )


@pytest.mark.parametrize("depth", [20, 100, 1_000])  # two JSON levels each
def test_deeply_nested_resource_is_refused_before_validation(
    client: TestClient, world: World, depth: int
) -> None:
    headers = {"Content-Type": "application/fhir+json"} | world.headers("his")
    body = _nested_extensions(depth)
    resp = client.post("/fhir/Observation", content=body, headers=headers)
    bundle = ('{"resourceType": "Bundle", "type": "transaction", "entry": [{"fullUrl": '
              '"urn:uuid:1", "resource": ' + body + ', "request": {"method": "POST", '
              '"url": "Observation"}}]}')  # fmt: skip
    in_bundle = client.post("/fhir", content=bundle, headers=headers)
    for r in (resp, in_bundle):
        assert r.status_code == (400 if depth > 30 else 201 if r is resp else 200), r.text[:300]
        if depth > 30:
            assert r.json()["issue"][0]["details"]["coding"][0]["code"] == "body-too-deep"


PARAM_NAMES = [*search.COMMON, *search.DEFINED, *search.BY_TYPE["Patient"], "_sort", "x",
               "patient:missing", "date:exact"]  # fmt: skip
VALUES = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["ge2020", "lt2026-01-01T00:00:00+07:00", "Patient/p1", "http://x|y",
                     "²", "١٢", "-1", "99999999999999999999", "eq", "a,b", "mpi-1", "mpi-²"]),
)  # fmt: skip


@settings(max_examples=80, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))  # fmt: skip
@given(
    rtype=st.sampled_from(["Patient", "Observation", "Condition", "Organization", "Encounter"]),
    params=st.lists(st.tuples(st.sampled_from(PARAM_NAMES), VALUES), max_size=4),
    version=VALUES,
    actor=st.sampled_from(["citizen", "doctor", "his", "supervisor"]),
)
def test_no_search_or_read_input_causes_a_500(
    client: TestClient, world: World, rtype: str, params: list, version: str, actor: str
) -> None:
    """Any search parameters, ids and versions, over REST and in a batch: a Bundle or a 4xx
    OperationOutcome."""
    headers = world.headers(actor)
    rid = params[0][1] if params else "p1"
    urls = [f"/fhir/{rtype}?{urlencode(params)}", f"/fhir/{rtype}/{quote(rid, safe='')}",
            f"/fhir/{rtype}/p1/_history/{quote(version, safe='')}"]  # fmt: skip
    for url in urls:
        resp = client.get(url, headers=headers)
        assert resp.status_code < 500, (url, resp.text[:300])
        assert resp.json()["resourceType"] in ("Bundle", "OperationOutcome", rtype), url
    batch = client.post("/fhir", json=_get_bundle(*(u.removeprefix("/fhir/") for u in urls)),
                        headers=headers)  # fmt: skip
    assert batch.status_code < 500, batch.text[:300]
