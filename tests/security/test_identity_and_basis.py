"""Security findings on identity data, treatment basis, separation of powers and identity
look-ups (issue 14): one test per finding, each an attack that worked before the fix."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient

from hssk.access import accounts
from hssk.access.accounts import Account
from hssk.access.tokens import issue
from hssk.app import create_app
from hssk.db import Database
from hssk.kernel.config import load_settings
from hssk.records import store
from hssk.registry import SourceRecord, link
from hssk.registry.phones import PhoneError, set_phone_in_person
from tests.conftest import truncate_all

COMMUNE = "00001"
VICTIM_CCCD = "001185000011"
ATTACKER_PHONE = "0999000111"


class World:
    """Units, accounts and persons of these tests (built once per module)."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self.persons: dict[str, int] = {}
        self.accounts: dict[str, Account] = {}

    def headers(self, name: str) -> dict[str, str]:
        acc = self.accounts[name]
        return {"Authorization": f"Bearer {issue(load_settings(), acc.actor(acc.scopes))}"}

    def one(self, sql: str, *params: Any) -> Any:
        with self.db.connection() as conn:
            row = conn.execute(sql, params).fetchone()
        return None if row is None else row[0] if len(row) == 1 else row


def _person(conn: Any, name: str, birth: date, cccd: str, household: int | None = None) -> int:
    row = conn.execute(
        """INSERT INTO person (full_name, birth_date, sex, commune_code, cccd, health_id,
               household_id) VALUES (%s, %s, 'F', %s, %s, %s, %s) RETURNING id""",
        (name, birth, COMMUNE, cccd, cccd, household),
    ).fetchone()
    return int(row[0])


@pytest.fixture(scope="module")
def world(db: Database) -> World:
    truncate_all(db)
    w = World(db)
    with db.connection() as conn:
        for uid, kind, name, parent, fac, commune in (
            ("SYT", "department", "Sở Y tế", None, None, None),
            ("TTYT", "district_centre", "Trung tâm Y tế", "SYT", None, None),
            ("TYT", "station", "Trạm Y tế phường", "TTYT", None, COMMUNE),
            ("BV-01", "hospital", "Bệnh viện 01", "SYT", "01001", None),
            ("BV-02", "hospital", "Bệnh viện 02", "SYT", "01002", None),
            ("BHXH", "external", "Bảo hiểm xã hội", None, None, None),
        ):
            accounts.create_unit(conn, uid, kind, name, parent_id=parent, facility_code=fac,
                                 commune_code=commune)  # fmt: skip
        p = w.persons
        p["victim"] = _person(conn, "Nguyễn Thị Nạn", date(1985, 3, 1), VICTIM_CCCD, 1)
        p["patient"] = _person(conn, "Lê Văn Khám", date(1970, 5, 5), "001070000012", 2)
        p["child"] = _person(conn, "Trần Minh Con", date(2019, 6, 1), "001219000013", 1)
        p["adult"] = _person(conn, "Trần Văn Lớn", date(2000, 1, 1), "001200000014", 1)
        p["stranger"] = _person(conn, "Phạm Văn Lạ", date(1980, 1, 1), "001080000015", 3)
        mk = accounts.create_account
        a = w.accounts
        a["his"] = mk(conn, "bv01-his", "system", unit_id="BV-01",
                      scopes=["system/*.read", "system/*.write"])  # fmt: skip
        a["his2"] = mk(conn, "bv02-his", "system", unit_id="BV-02",
                       scopes=["system/*.read", "system/*.write"])  # fmt: skip
        a["doctor"] = mk(conn, "bs.mot", "clinician", unit_id="BV-01", roles=["clinician"])
        a["doctor2"] = mk(conn, "bs.hai", "clinician", unit_id="BV-02", roles=["clinician"])
        a["dept_writer"] = mk(conn, "syt.ghi", "staff", unit_id="SYT",
                              roles=["supervisor"])  # fmt: skip
        a["supervisor"] = mk(conn, "giamsat", "staff", unit_id="TTYT", roles=["supervisor"])
        a["admin"] = mk(conn, "quantri", "staff", unit_id="SYT", roles=["admin"])
        a["station"] = mk(conn, "tram", "staff", unit_id="TYT", roles=["station"])
        a["stranger"] = mk(conn, "nguoi.la", "citizen", person_id=p["stranger"], phone="0912000015")
        a["patient"] = mk(conn, "benh.nhan", "citizen", person_id=p["patient"], phone="0912000012")
        for person in p.values():
            store.save(conn, {"resourceType": "Patient", "id": f"p{person}"}, person_id=person)
            store.save(conn, {"resourceType": "Observation", "id": f"obs{person}",
                              "status": "final", "code": {"text": "huyết áp"},
                              "subject": {"reference": f"Patient/p{person}"}},
                       person_id=person)  # fmt: skip
    return w


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(), world.db)) as c:
        yield c


def _sent(world: World, phone: str) -> int:
    return int(world.one("SELECT count(*) FROM notification WHERE destination = %s", phone))


# --- 1. identity data belongs to the registry --------------------------------------------------
def test_a_hospital_patient_cannot_route_a_victims_login_code(
    client: TestClient, world: World
) -> None:
    """CRITICAL: a facility system POSTs a Patient with the victim's CCCD and its own phone;
    the golden record keeps no such phone and no login code goes to it."""
    patient = {"resourceType": "Patient", "id": "attacker-1",
               "identifier": [{"system": "https://fhir.hssk.vn/sid/cccd", "value": VICTIM_CCCD}],
               "name": [{"text": "Nguyễn Thị Nạn"}], "birthDate": "1985-03-01",
               "gender": "female", "telecom": [{"system": "phone", "value": ATTACKER_PHONE}],
               "address": [{"text": "Nhà kẻ gian"}]}  # fmt: skip
    resp = client.post("/fhir/Patient", json=patient, headers=world.headers("his"))
    assert resp.status_code in (200, 201), resp.text
    victim = world.persons["victim"]
    # linked to the victim, its demographics kept as a source record ...
    assert world.one("SELECT person_id FROM person_source WHERE source = 'fhir'") == victim
    assert world.one("SELECT phone, address FROM person WHERE id = %s", victim) == (None, None)
    # ... a login code for her CCCD goes nowhere near the attacker's phone
    for ident in (VICTIM_CCCD, ATTACKER_PHONE):
        assert client.post("/auth/otp", json={"identifier": ident}).status_code == 202
    assert _sent(world, ATTACKER_PHONE) == 0
    # nor can the hospital's system load a "population register" of its own making
    census = f"ma_ban_ghi,ho_ten,ngay_sinh,so_cccd,dien_thoai\nx1,Nguyễn Thị Nạn,1985-03-01,{VICTIM_CCCD},{ATTACKER_PHONE}\n"
    r = client.post("/api/v1/ingest/population", headers=world.headers("his"),
                    files={"files": ("dan_cu.csv", census.encode())})  # fmt: skip
    assert r.status_code == 403 and "national" in r.json()["message"], r.text
    # a phone the population register holds becomes the verified one; a change tells the old
    with world.db.connection() as conn:
        link(conn, SourceRecord("population", "dc-1", "Nguyễn Thị Nạn", "1985-03-01", "F",
                                cccd=VICTIM_CCCD, phone="0912000111"))  # fmt: skip
        link(conn, SourceRecord("population", "dc-1", "Nguyễn Thị Nạn", "1985-03-01", "F",
                                cccd=VICTIM_CCCD, phone="0912000222"))  # fmt: skip
    assert world.one("SELECT phone, phone_verified FROM person WHERE id = %s", victim) == (
        "0912000222", True)  # fmt: skip
    assert _sent(world, "0912000111") == 1  # the old phone was told
    assert client.post("/auth/otp", json={"identifier": VICTIM_CCCD}).status_code == 202
    assert _sent(world, "0912000222") == 1 and _sent(world, ATTACKER_PHONE) == 0
    # a phone the citizen confirmed in person: staff write why; audited; the old phone told
    with world.db.connection() as conn:
        with pytest.raises(PhoneError, match="reason"):
            set_phone_in_person(conn, victim, "0912000333", actor="tyt.lan", reason="")
        set_phone_in_person(conn, victim, "0912 000 333", actor="tyt.lan",
                            reason="CCCD gốc xem tại trạm, đổi số mới")  # fmt: skip
    assert _sent(world, "0912000222") == 2
    changes = "SELECT count(*) FROM person_phone_change WHERE person_id = %s"
    assert world.one(changes, victim) == 3  # by the register twice, in person once
    assert world.one(changes + " AND notified_at IS NOT NULL", victim) == 2  # old phone told
    assert world.one("SELECT count(*) FROM audit_event WHERE action = 'phone-change' "
                     "AND person_id = %s", victim) == 1  # fmt: skip


# --- 2. treatment basis from real care only --------------------------------------------------
def _encounter(person: int, facility: str, status: str = "in-progress") -> dict[str, Any]:
    return {"resourceType": "Encounter", "status": status, "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/p{person}"},
            "serviceProvider": {"identifier": {"value": facility}},
            "period": {"start": "2026-01-01T08:00:00+07:00"}}  # fmt: skip


def _reads(client: TestClient, world: World, who: str, person: str) -> int:
    pid = world.persons[person]
    return client.get(f"/fhir/Observation/obs{pid}", headers=world.headers(who)).status_code


def test_a_write_scope_does_not_open_its_own_treatment_basis(
    client: TestClient, world: World
) -> None:
    """HIGH: a clinician's own Encounter, another facility's code in a system's Encounter, or a
    Department account's check-in for a facility open no basis; only the facility's HIS for
    its own code does, and a check-in without a visit expires (HSSK_CHECKIN_HOURS)."""
    import base64

    from hssk.ingest.xmlparse import build_table

    pid = world.persons["patient"]
    assert _reads(client, world, "doctor2", "patient") == 403
    r = client.post("/fhir/Encounter", json=_encounter(pid, "01002"),
                    headers=world.headers("doctor2"))  # fmt: skip
    assert r.status_code in (200, 201, 403), r.text
    assert _reads(client, world, "doctor2", "patient") == 403  # a clinician's own claim
    r = client.post("/fhir/Encounter", json=_encounter(pid, "01001"), headers=world.headers("his2"))
    assert r.status_code == 201, r.text
    assert _reads(client, world, "doctor", "patient") == 403  # BV-02 naming BV-01's code
    assert _reads(client, world, "doctor2", "patient") == 403
    # a Department account (no facility code) submits a check-in for BV-01: refused, clearly
    row = {"MA_LK": "LK-SYT-1", "STT": "1", "HO_TEN": "Lê Văn Khám", "NGAY_SINH": "197005050000",
           "GIOI_TINH": "1", "SO_CCCD": "001070000012", "NGAY_VAO": "202601021030",
           "MA_LOAI_KCB": "01", "MA_CSKCB": "01001"}  # fmt: skip
    form = {"maTinh": "01", "maCSKCB": "01001",
            "fileHSBase64": base64.b64encode(build_table("XML0", [row])).decode()}  # fmt: skip
    r = client.post("/api/qd130/checkInKcbQd4750", data=form,
                    headers=world.headers("dept_writer"))  # fmt: skip
    assert r.status_code == 403 and "mã CSKCB" in r.json()["thongDiep"], r.text
    assert _reads(client, world, "doctor", "patient") == 403
    # the facility's own HIS, for its own code: the basis opens ...
    r = client.post("/fhir/Encounter", json=_encounter(pid, "01001"), headers=world.headers("his"))
    assert r.status_code == 201, r.text
    assert _reads(client, world, "doctor", "patient") == 200
    # ... and a check-in that never became a visit closes after HSSK_CHECKIN_HOURS
    with world.db.connection() as conn:
        conn.execute("UPDATE resource SET last_updated = now() - interval '25 hours' "
                     "WHERE type = 'Encounter' AND person_id = %s", (pid,))  # fmt: skip
    assert _reads(client, world, "doctor", "patient") == 403
    # an inpatient stay stays open until discharge (HSSK_ADMISSION_HOURS)
    stay = {**_encounter(pid, "01001"), "class": {"code": "IMP"}}
    assert (
        client.post("/fhir/Encounter", json=stay, headers=world.headers("his")).status_code == 201
    )
    with world.db.connection() as conn:
        conn.execute("UPDATE resource SET last_updated = now() - interval '25 hours' "
                     "WHERE type = 'Encounter' AND person_id = %s", (pid,))  # fmt: skip
    assert _reads(client, world, "doctor", "patient") == 200
    with world.db.connection() as conn:  # (closed again for the next tests)
        conn.execute("DELETE FROM resource WHERE type = 'Encounter' AND person_id = %s", (pid,))


def test_revoking_a_consent_ends_what_it_granted(client: TestClient, world: World) -> None:
    """HIGH: a clinician who read under a consent wrote an Encounter for their facility;
    after the consent is revoked, that Encounter must not keep the record open."""
    pid = world.persons["patient"]
    doctor2 = world.accounts["doctor2"]
    r = client.post("/api/v1/me/consents", headers=world.headers("patient"),
                    json={"grantee_account": doctor2.id, "categories": ["*"]})  # fmt: skip
    consent = r.json()["id"]
    assert _reads(client, world, "doctor2", "patient") == 200
    r = client.post("/fhir/Encounter", json=_encounter(pid, "01002"),
                    headers=world.headers("doctor2"))  # fmt: skip
    assert r.status_code == 201, r.text
    r = client.delete(f"/api/v1/me/consents/{consent}", headers=world.headers("patient"))
    assert r.status_code == 200, r.text
    assert _reads(client, world, "doctor2", "patient") == 403


# --- 3. separation of powers ------------------------------------------------------------------
def test_admins_cannot_mint_audit_or_sensitive_scopes_nor_combine_auditor(
    client: TestClient, world: World
) -> None:
    """HIGH: an administrator created a system account with system/AuditEvent.read and
    system/Sensitive.read, and gave one account clinician + auditor + admin roles."""
    admin = world.headers("admin")
    for scope in ("system/AuditEvent.read", "system/Sensitive.read"):
        r = client.post("/api/v1/accounts", headers=admin, json={
            "username": f"sys-{scope[7:12].lower()}", "kind": "system", "unit_id": "SYT",
            "system_scopes": [scope]})  # fmt: skip
        assert r.status_code == 400 and "operator" in r.text, r.text
    r = client.post("/api/v1/accounts", headers=admin, json={
        "username": "moi.nguoi", "kind": "clinician", "unit_id": "BV-01",
        "roles": ["clinician", "auditor", "admin"]})  # fmt: skip
    assert r.status_code == 403 and "operator" in r.text, r.text  # no auditor from an admin
    r = client.post(
        "/api/v1/accounts",
        headers=admin,
        json={"username": "bs.ba", "kind": "clinician", "unit_id": "BV-01", "roles": ["clinician"]},
    )
    assert r.status_code == 201, r.text
    r = client.patch(f"/api/v1/accounts/{r.json()['id']}", headers=admin,
                     json={"roles": ["clinician", "auditor"]})  # fmt: skip
    assert r.status_code == 403 and "operator" in r.text, r.text
    # scopes follow the unit's kind: a department's system reads, never writes
    r = client.post("/api/v1/accounts", headers=admin, json={
        "username": "syt-ghi", "kind": "system", "unit_id": "SYT",
        "system_scopes": ["system/*.write"]})  # fmt: skip
    assert r.status_code == 400 and "department" in r.text, r.text
    with world.db.connection() as conn:  # the operator's CLI may, for a national system
        acc = accounts.create_account(conn, "bhxh-audit", "system", unit_id="BHXH",
                                      scopes=["system/AuditEvent.read"], operator=True)  # fmt: skip
        assert acc.scopes == ("system/AuditEvent.read",)
        with pytest.raises(accounts.AccountError, match="national"):
            accounts.create_account(conn, "bv-sens", "system", unit_id="BV-01",
                                    scopes=["system/Sensitive.read"], operator=True)  # fmt: skip
        with pytest.raises(accounts.AccountError, match="cannot be held"):  # an auditor audits
            accounts.create_account(conn, "kt.bs", "clinician", unit_id="BV-01",
                                    roles=["clinician", "auditor"], operator=True)  # fmt: skip


# --- 4. identity look-ups: clinical roles only, every person returned audited -----------------
def test_identity_look_ups_are_clinical_and_audited_per_person(
    client: TestClient, world: World
) -> None:
    """MEDIUM: supervisors and admins searched persons in /clinic, opened /clinic/p/{id} for
    sequential ids and used the card look-up; a search was audited without the persons."""
    pid = world.persons["patient"]
    for who in ("supervisor", "admin"):
        h = world.headers(who)
        r = client.get("/clinic", params={"cccd": "001070000012"}, headers=h)
        assert r.status_code == 403 and "Lê Văn Khám" not in r.text
        r = client.get(f"/clinic/p/{pid}", headers=h)
        assert r.status_code == 403 and "Lê Văn Khám" not in r.text
        r = client.post(
            "/api/v1/lookup/card",
            headers=h,
            json={"maThe": "GD4010123456789", "hoTen": "Lê Văn Khám", "ngaySinh": "05/05/1970"},
        )
        assert r.status_code == 401 and r.json()["maKetQua"] == "401"
    # a clinician may search; each person returned is in the audit and their access log
    r = client.get("/clinic", params={"cccd": "001070000012"}, headers=world.headers("doctor"))
    assert r.status_code == 200 and f"/clinic/p/{pid}" in r.text
    events = world.one(
        "SELECT count(*) FROM audit_event WHERE action = 'search' AND person_id = %s "
        "AND detail -> 'persons' @> %s::jsonb", pid, f"[{pid}]")  # fmt: skip
    assert events == 1
    log = client.get("/api/v1/me/access-log", headers=world.headers("patient")).json()
    assert any(e["action"] == "search" and e["who"] != "bạn / you" for e in log), log


# --- 5. guardianships need a basis; units can be created ----------------------------------------
def test_guardianship_needs_a_minor_and_a_basis(client: TestClient, world: World) -> None:
    """LOW: an adult "child" and any person anywhere were accepted as guardian."""
    p, h = world.persons, world.headers("station")

    def link(guardian: str, child: str, **extra: str) -> Any:
        body = {"guardian_person": p[guardian], "child_person": p[child], **extra}
        return client.post("/api/v1/guardianships", json=body, headers=h)

    r = link("victim", "adult")  # same household, but 26 years old
    assert r.status_code == 400 and "18" in r.text, r.text
    r = link("stranger", "child")  # another household, no reason
    assert r.status_code == 400 and "basis" in r.text, r.text
    assert link("stranger", "child", reason="ok").status_code == 400  # a reason says something
    assert link("victim", "child").status_code == 201  # the same household
    r = link("stranger", "child", reason="quyết định giám hộ số 15/2026 của UBND phường")
    assert r.status_code == 201, r.text
    assert world.one("SELECT basis FROM guardianship WHERE guardian_person = %s",
                     p["stranger"]) == "staff"  # fmt: skip


def test_an_admin_creates_a_unit_but_takes_none_over(client: TestClient, world: World) -> None:
    """LOW: POST /api/v1/units always failed (500); it must create new units only."""
    h = world.headers("admin")
    unit = {"id": "PK-03", "kind": "clinic", "name": "Phòng khám 03", "parent_id": "SYT",
            "facility_code": "01003"}  # fmt: skip
    r = client.post("/api/v1/units", json=unit, headers=h)
    assert r.status_code == 201, r.text
    assert world.one("SELECT kind, parent_id FROM unit WHERE id = 'PK-03'") == ("clinic", "SYT")
    for clash in ({"id": "BHXH"}, {"id": "PK-04", "facility_code": "01001"}):
        r = client.post("/api/v1/units", json={**unit, **clash}, headers=h)
        assert r.status_code == 409, r.text  # another unit's id or facility code
    assert world.one("SELECT parent_id FROM unit WHERE id = 'BHXH'") is None
    r = client.post("/api/v1/units", json={**unit, "id": "QG-1", "kind": "external",
                                           "facility_code": None}, headers=h)  # fmt: skip
    assert r.status_code == 403
