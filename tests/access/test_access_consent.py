"""Consent, break-glass, guardianship, the citizen's access log, the audit search, admins."""

from __future__ import annotations

import io
import time
from typing import Any

import pytest
from access_world import World
from fastapi import FastAPI
from fastapi.testclient import TestClient

from hssk.access import accounts
from hssk.access.policy import authorize
from hssk.api.routes.access import router, search_audit_events
from hssk.kernel.config import load_settings


def _read(client: TestClient, world: World, actor: str, resource: str) -> int:
    rtype, rid = world.resources[resource]
    return client.get(f"/fhir/{rtype}/{rid}", headers=world.headers(actor)).status_code


def test_consent_grant_and_revoke(client: TestClient, world: World) -> None:
    assert _read(client, world, "doctor2", "obs_parent") == 403
    grant = client.post("/api/v1/me/consents", headers=world.headers("citizen"),
                        json={"grantee_unit": "BV-02", "categories": ["*"], "days": 30})  # fmt: skip
    assert grant.status_code == 201, grant.text
    cid = grant.json()["id"]
    assert _read(client, world, "doctor2", "obs_parent") == 200
    assert _read(client, world, "doctor2", "hiv_parent") == 403  # '*' never covers HIV
    hiv = client.post("/api/v1/me/consents", headers=world.headers("citizen"),
                      json={"grantee_account": world.accounts["doctor2"].id,
                            "categories": ["HIV"]})  # fmt: skip
    assert hiv.status_code == 201
    assert _read(client, world, "doctor2", "hiv_parent") == 200
    # another citizen cannot revoke it (and cannot tell it exists)
    other = client.delete(f"/api/v1/me/consents/{cid}", headers=world.headers("other_citizen"))
    assert other.status_code == 404
    assert _read(client, world, "doctor2", "obs_parent") == 200
    for consent in (cid, hiv.json()["id"]):
        mine = client.delete(f"/api/v1/me/consents/{consent}", headers=world.headers("citizen"))
        assert mine.status_code == 200
    assert _read(client, world, "doctor2", "obs_parent") == 403
    assert _read(client, world, "doctor2", "hiv_parent") == 403
    listed = client.get("/api/v1/me/consents", headers=world.headers("citizen")).json()
    assert all(c["revoked_at"] for c in listed) and len(listed) == 2


def test_guardian_consents_for_the_child_not_for_strangers(
    client: TestClient, world: World
) -> None:
    child = world.persons["child"]
    ok = client.post("/api/v1/me/consents", headers=world.headers("citizen"),
                     json={"person_id": child, "grantee_unit": "BV-02"})  # fmt: skip
    assert ok.status_code == 201
    assert _read(client, world, "doctor2", "imm_child") == 200
    idor = client.post("/api/v1/me/consents", headers=world.headers("other_citizen"),
                       json={"person_id": child, "grantee_unit": "BV-02"})  # fmt: skip
    assert idor.status_code == 403
    client.delete(f"/api/v1/me/consents/{ok.json()['id']}", headers=world.headers("citizen"))
    kids = client.get("/api/v1/me/children", headers=world.headers("citizen")).json()
    assert [k["person_id"] for k in kids] == [child]  # the grown-up child is no longer listed


def test_break_glass_is_allowed_flagged_and_reviewed(client: TestClient, world: World) -> None:
    other = world.persons["other"]
    assert _read(client, world, "doctor2", "obs_other") == 403
    short = client.post("/api/v1/break-glass", headers=world.headers("doctor2"),
                        json={"person_id": other, "reason": "cấp cứu"})  # fmt: skip
    assert short.status_code == 400  # a reason must be written out
    not_clinician = client.post("/api/v1/break-glass", headers=world.headers("station_a"),
                                json={"person_id": other,
                                      "reason": "bệnh nhân hôn mê, cần xem tiền sử dị ứng"})  # fmt: skip
    assert not_clinician.status_code == 403
    bg = client.post("/api/v1/break-glass", headers=world.headers("doctor2"),
                     json={"person_id": other,
                           "reason": "bệnh nhân hôn mê, cần xem tiền sử dị ứng thuốc"})  # fmt: skip
    assert bg.status_code == 201, bg.text
    assert _read(client, world, "doctor2", "obs_other") == 200
    with world.db.connection() as conn:
        basis = conn.execute(
            "SELECT basis FROM audit_event WHERE actor = %s AND action = 'read' "
            "ORDER BY seq DESC LIMIT 1",
            (str(world.accounts["doctor2"].id),),
        ).fetchone()
    assert basis == ("break-glass",)
    # read-only: no writing under break-glass
    body = {"resourceType": "Observation", "status": "final", "code": {"text": "x"},
            "subject": {"reference": f"Patient/p{other}"}}  # fmt: skip
    assert (
        client.post("/fhir/Observation", json=body, headers=world.headers("doctor2")).status_code
        == 403
    )
    assert client.get("/api/v1/break-glass", headers=world.headers("doctor2")).status_code == 403
    pending = client.get("/api/v1/break-glass", headers=world.headers("auditor")).json()
    assert [p["id"] for p in pending] == [bg.json()["id"]]
    review = client.post(f"/api/v1/break-glass/{bg.json()['id']}/review",
                         headers=world.headers("auditor"), json={"outcome": "justified"})  # fmt: skip
    assert review.status_code == 200
    assert client.get("/api/v1/break-glass", headers=world.headers("auditor")).json() == []


def test_access_log_shows_who_read_my_record(client: TestClient, world: World) -> None:
    assert _read(client, world, "doctor", "obs_parent") == 200
    log = client.get("/api/v1/me/access-log", headers=world.headers("citizen"))
    assert log.status_code == 200
    entry = next(e for e in log.json() if e["who"] == "BS. Hùng")
    assert entry["basis"] == "encounter" and entry["unit"] == "Bệnh viện Đa khoa 01"
    child_log = client.get("/api/v1/me/access-log", params={"person_id": world.persons["child"]},
                           headers=world.headers("citizen"))  # fmt: skip
    assert child_log.status_code == 200
    idor = client.get("/api/v1/me/access-log", params={"person_id": world.persons["parent"]},
                      headers=world.headers("other_citizen"))  # fmt: skip
    assert idor.status_code == 403


def test_audit_event_search_for_auditors(world: World) -> None:
    with world.db.connection() as conn:
        auditor = world.accounts["auditor"].actor()
        found = search_audit_events(conn, auditor, [("patient", f"Patient/{world.persons['parent']}"),
                                                    ("date", "ge2020-01-01"), ("_count", "5")])  # fmt: skip
        assert found and all(e["resourceType"] == "AuditEvent" for e in found)
        assert {e["entity"][0]["what"]["reference"] for e in found} == {
            f"Patient/{world.persons['parent']}"
        }
        agent = str(world.accounts["doctor"].id)
        by_agent = search_audit_events(conn, auditor, [("agent", agent)])
        assert by_agent and {e["agent"][0]["who"]["identifier"]["value"] for e in by_agent} == {
            agent
        }
        glass = search_audit_events(conn, auditor, [("basis", "break-glass")])
        assert glass and {e["outcomeDesc"] for e in glass} == {"break-glass"}
        with pytest.raises(PermissionError):
            search_audit_events(conn, world.accounts["doctor"].actor(), [])
        for bad in (("patient", "1 OR 1=1"), ("date", "2020-01-01'; DROP TABLE person;--"),
                    ("_count", "-1")):  # fmt: skip
            with pytest.raises(ValueError, match=bad[0]):
                search_audit_events(conn, auditor, [bad])


def test_audit_event_route(world: World) -> None:
    """The route itself (the app must mount it before the generic /fhir/{type} routes)."""
    app = FastAPI()
    app.include_router(router)
    app.state.db, app.state.settings = world.db, load_settings()
    with TestClient(app) as c:
        ok = c.get("/fhir/AuditEvent", params={"agent": str(world.accounts["doctor"].id)},
                   headers=world.headers("auditor"))  # fmt: skip
        assert ok.status_code == 200 and ok.json()["resourceType"] == "Bundle"
        assert ok.json()["total"] > 0
        assert c.get("/fhir/AuditEvent", headers=world.headers("doctor")).status_code == 403
        bad = c.get(
            "/fhir/AuditEvent", params={"date": "yesterday"}, headers=world.headers("auditor")
        )
        assert bad.status_code == 400 and "date" in bad.text


@pytest.mark.parametrize(
    "params",
    [
        {"patient": "Patient/p1' OR '1'='1"},
        {"patient": "Patient/p1", "code": "' OR 1=1 --"},
        {"patient": '{"$ne": null}'},
        {"patient": "Patient/p1", "date": "ge2020-01-01'::date; DROP TABLE audit_event; --"},
        {"_id": "x' UNION SELECT body FROM resource --"},
    ],
)
def test_injection_in_search_params(
    client: TestClient, world: World, params: dict[str, str]
) -> None:
    resp = client.get("/fhir/Observation", params=params, headers=world.headers("other_citizen"))
    assert resp.status_code in (200, 400, 403, 404), resp.text
    if resp.status_code == 200:
        people = {e["resource"]["subject"]["reference"] for e in resp.json().get("entry", [])
                  if e.get("resource", {}).get("resourceType") == "Observation"}  # fmt: skip
        assert people <= {f"Patient/p{world.persons['other']}"}
    with world.db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM audit_event").fetchone()[0] > 0  # type: ignore[index]


# --- administrators ----------------------------------------------------------------------


def test_admin_creates_accounts_without_mass_assignment(client: TestClient, world: World) -> None:
    new = {"username": "bs.moi", "kind": "clinician", "unit_id": "BV-01", "roles": ["clinician"],
           "phone": "0912000123"}  # fmt: skip
    for extra in ({"password_hash": "x"}, {"failed_logins": 0}, {"scopes": ["system/*.read"]},
                  {"active": True}, {"id": 1}):  # fmt: skip
        resp = client.post(
            "/api/v1/accounts", json={**new, **extra}, headers=world.headers("admin")
        )
        assert resp.status_code in (400, 422), extra
    created = client.post("/api/v1/accounts", json=new, headers=world.headers("admin"))
    assert created.status_code == 201, created.text
    acc = created.json()
    assert acc["active"] is False and "password_hash" not in acc
    patched = client.patch(f"/api/v1/accounts/{acc['id']}", headers=world.headers("admin"),
                           json={"display_name": "BS. Mới", "password_hash": "x"})  # fmt: skip
    assert patched.status_code in (400, 422)
    # activation with the code sent to the phone, then login
    sent = client.post(f"/api/v1/accounts/{acc['id']}/activation", headers=world.headers("admin"))
    assert sent.status_code == 200
    with world.db.connection() as conn:
        (msg,) = conn.execute("SELECT body FROM notification WHERE destination = '0912000123' "
                              "ORDER BY id DESC LIMIT 1").fetchone()  # type: ignore[misc]  # fmt: skip
    code = next(w.rstrip(",") for w in msg.split() if w.rstrip(",").isdigit())
    act = client.post("/auth/activate", json={"username": "bs.moi", "code": code,
                                              "new_password": "mat-khau-moi-2026"})  # fmt: skip
    assert act.status_code == 200, act.text
    login = client.post("/auth/token", data={"grant_type": "password", "username": "bs.moi",
                                             "password": "mat-khau-moi-2026"})  # fmt: skip
    assert login.status_code == 200
    disabled = client.post(f"/api/v1/accounts/{acc['id']}/disable",
                           headers=world.headers("admin"), json={"reason": "nghỉ việc"})  # fmt: skip
    assert disabled.status_code == 200
    refresh = client.post("/auth/token", data={"grant_type": "refresh_token",
                                               "refresh_token": login.json()["refresh_token"]})  # fmt: skip
    assert refresh.status_code == 400


def test_admin_limits_idor_and_non_admins(client: TestClient, world: World) -> None:
    top_admin = world.accounts["admin"].id  # at SYT-HN, above TTYT-BD
    resp = client.get(f"/api/v1/accounts/{top_admin}", headers=world.headers("admin_bd"))
    assert resp.status_code == 404  # outside their subtree looks like absent
    mine = client.get(f"/api/v1/accounts/{world.accounts['station_a'].id}",
                      headers=world.headers("admin_bd"))  # fmt: skip
    assert mine.status_code == 200
    outside = client.post("/api/v1/accounts", headers=world.headers("admin_bd"),
                          json={"username": "x.bv", "kind": "staff", "unit_id": "BV-01"})  # fmt: skip
    assert outside.status_code == 403
    for actor in ("doctor", "citizen", "auditor"):
        assert client.get("/api/v1/accounts", headers=world.headers(actor)).status_code == 403
    assert client.get("/api/v1/accounts").status_code == 401
    own = world.accounts["admin_bd"].id
    self_grant = client.patch(f"/api/v1/accounts/{own}", headers=world.headers("admin_bd"),
                              json={"roles": ["admin", "station"]})  # fmt: skip
    assert self_grant.status_code == 403
    citizen = client.post("/api/v1/accounts", headers=world.headers("admin_bd"),
                          json={"username": "gia.mao", "kind": "citizen"})  # fmt: skip
    assert citizen.status_code in (400, 422)  # citizens are never created by an admin
    tie = client.post("/api/v1/accounts", headers=world.headers("admin_bd"),
                      json={"username": "gia.mao", "kind": "staff", "unit_id": "TYT-A",
                            "person_id": world.persons["parent"]})  # fmt: skip
    assert tie.status_code in (400, 422)
    escalate = client.patch(f"/api/v1/accounts/{world.accounts['station_a'].id}",
                            headers=world.headers("admin_bd"), json={"roles": ["root"]})  # fmt: skip
    assert escalate.status_code == 400


def test_bulk_import_is_fast_and_reports_bad_rows(world: World) -> None:
    rows = ["username,kind,display_name,unit_id,roles,phone,cccd"]
    rows += [f"nv{i:05d},staff,Nhân viên {i},TYT-A,station,09{i:08d}," for i in range(4000)]
    rows += ["bad name!,staff,x,TYT-A,,,", "nv00001,staff,dup,TYT-A,,,", "ok.x,staff,,NOPE,,,",
             "ok.y,staff,,TYT-A,root,,", "dan.001,citizen,Dân,,,,001185000001"]  # fmt: skip
    with world.db.connection() as conn:
        t0 = time.perf_counter()
        result = accounts.import_accounts(conn, io.StringIO("\n".join(rows) + "\n"))
        elapsed = time.perf_counter() - t0
        linked = conn.execute("SELECT person_id FROM account WHERE username = 'dan.001'").fetchone()
    assert result.created == 4001
    reasons = {line: why for line, _, why in result.errors}
    assert set(reasons) == {4002, 4003, 4004, 4005}
    assert any("unknown unit" in w for w in reasons.values())
    assert any("role" in w for w in reasons.values())
    assert linked == (world.persons["parent"],)
    assert elapsed < 4.0, f"import of 4,000 accounts took {elapsed:.2f} s"


def test_policy_edges(world: World) -> None:
    with world.db.connection() as conn:
        sup = world.accounts["supervisor"].actor()
        assert authorize(conn, sup, "aggregate", "Immunization").basis == "area"
        assert not authorize(conn, world.accounts["citizen"].actor(), "aggregate", "Immunization")
        assert not authorize(conn, sup, "frobnicate", "Observation", 1)
        # the encounter closes: still allowed within the grace period, not after
        _, rid = world.resources["enc_parent"]
        body: Any = conn.execute("SELECT body FROM resource WHERE id = %s", (rid,)).fetchone()[0]  # type: ignore[index]
        doctor = world.accounts["doctor"].actor()
        parent = world.persons["parent"]
        for end, expected in (("2000-01-01T00:00:00Z", False), ("2999-01-01", True)):
            body.update(status="finished", period={"start": "1999-01-01", "end": end})
            conn.execute("UPDATE resource SET body = %s WHERE id = %s", (_json(body), rid))
            assert authorize(conn, doctor, "read", "Observation", parent).allowed is expected
        conn.rollback()


def _json(body: Any) -> Any:
    from psycopg.types.json import Jsonb

    return Jsonb(body)


def test_station_links_a_child_to_a_guardian_in_its_commune(
    client: TestClient, world: World
) -> None:
    from access_world import COMMUNE_A

    from hssk.access import relations

    with world.db.connection() as conn:
        baby = conn.execute(
            "INSERT INTO person (full_name, birth_date, commune_code) "
            "VALUES ('Bé Na', current_date - 30, %s) RETURNING id",
            (COMMUNE_A,),
        ).fetchone()[0]  # type: ignore[index]
    body = {"guardian_person": world.persons["other"], "child_person": baby,
            "reason": "giấy khai sinh số 12/2026 đã xem"}  # fmt: skip
    assert client.post("/api/v1/guardianships", json=body,
                       headers=world.headers("station_b")).status_code == 403  # fmt: skip
    assert client.post("/api/v1/guardianships", json=body,
                       headers=world.headers("citizen")).status_code == 403  # fmt: skip
    ok = client.post("/api/v1/guardianships", json=body, headers=world.headers("station_a"))
    assert ok.status_code == 201, ok.text
    kids = client.get("/api/v1/me/children", headers=world.headers("other_citizen")).json()
    assert [k["person_id"] for k in kids] == [baby]
    with world.db.connection() as conn:
        assert relations.end_guardianship(conn, world.persons["other"], baby)
        assert relations.children_of(conn, world.persons["other"]) == []
        relations.link_guardian(conn, world.persons["other"], baby, valid_until="2000-01-01",
                                reason="quyết định giám hộ số 7")  # fmt: skip
        assert relations.children_of(conn, world.persons["other"]) == []
        with pytest.raises(ValueError):
            relations.link_guardian(conn, baby, baby)


def test_area_of_supervisors_and_stations(world: World) -> None:
    from access_world import COMMUNE_A, COMMUNE_B

    from hssk.access.policy import area_of

    with world.db.connection() as conn:
        district = area_of(conn, world.accounts["supervisor"].actor())
        assert district is not None and not district.everything
        assert {COMMUNE_A, COMMUNE_B} <= set(district.commune_codes)
        assert "BV-01" not in district.unit_ids  # the hospital reports to the department
        station = area_of(conn, world.accounts["station_a"].actor())
        assert station is not None and station.commune_codes == (COMMUNE_A,)
        assert area_of(conn, world.accounts["doctor"].actor()) is None
        assert area_of(conn, world.accounts["citizen"].actor()) is None


def test_audit_event_search_through_the_app(client: TestClient, world: World) -> None:
    assert _read(client, world, "doctor", "obs_parent") == 200
    ok = client.get("/fhir/AuditEvent", params={"patient": f"Patient/{world.persons['parent']}"},
                    headers=world.headers("auditor"))  # fmt: skip
    assert ok.status_code == 200 and ok.json()["total"] > 0
    for actor in ("doctor", "citizen", "supervisor", "his"):
        assert client.get("/fhir/AuditEvent", headers=world.headers(actor)).status_code == 403
    assert client.get("/fhir/AuditEvent").status_code == 401


def test_disabled_account_tokens_stop_working(
    client: TestClient, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(accounts, "STATUS_TTL", 0.0)
    with world.db.connection() as conn:
        acc = accounts.create_account(conn, "bs.tam", "clinician", unit_id="BV-01",
                                      roles=["clinician"])  # fmt: skip
    world.accounts["bs.tam"] = acc
    headers = world.headers("bs.tam")  # issued before the account is disabled
    rtype, rid = world.resources["obs_parent"]
    assert client.get(f"/fhir/{rtype}/{rid}", headers=headers).status_code == 200
    resp = client.post(f"/api/v1/accounts/{acc.id}/disable", headers=world.headers("admin"),
                       json={"reason": "mất thiết bị"})  # fmt: skip
    assert resp.status_code == 200
    assert client.get(f"/fhir/{rtype}/{rid}", headers=headers).status_code == 401


def test_consent_purpose_period_and_category(world: World) -> None:
    doctor2 = world.accounts["doctor2"].actor()
    parent = world.persons["parent"]
    with world.db.connection() as conn:
        conn.execute(
            """INSERT INTO consent (grantor_person, grantee_unit, categories, purpose, period_end)
               VALUES (%s, 'BV-02', '{Immunization}', 'research', now() + interval '1 day'),
                      (%s, 'BV-02', '{*}', NULL, now() - interval '1 day')""",
            (parent, parent),
        )
        read = authorize(conn, doctor2, "read", "Immunization", parent, purpose="research")
        assert read.allowed and read.basis == "consent"
        assert not authorize(conn, doctor2, "read", "Immunization", parent, purpose="treatment")
        assert not authorize(conn, doctor2, "read", "Observation", parent, purpose="research")
        # the expired '*' consent covers nothing
        assert not authorize(conn, doctor2, "read", "Observation", parent)
        conn.rollback()


def test_a_units_kind_is_read_by_every_decision(world: World) -> None:
    # the policy remembers which units are national (to skip the encounter check); a unit
    # whose kind changed is judged by its new kind at once, or refused for one decision
    his = world.accounts["his"].actor()
    parent = world.persons["parent"]

    def decide(conn) -> str:  # type: ignore[no-untyped-def]
        return authorize(conn, his, "read", "Observation", parent).basis

    with world.db.connection() as conn:
        assert decide(conn) == "encounter"  # BV-01 has an open encounter with the parent
        conn.execute("UPDATE unit SET kind = 'external' WHERE id = 'BV-01'")
        assert decide(conn) == "scope"  # now a national system's client
        assert decide(conn) == "scope"
        conn.execute("UPDATE unit SET kind = 'hospital' WHERE id = 'BV-01'")
        assert decide(conn) in ("deny", "encounter")  # the stale hint never allows more
        assert decide(conn) == "encounter"
        conn.rollback()
