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
from hssk.api.app import create_app
from hssk.config import load_settings
from hssk.db import Database
from hssk.registry import SourceRecord, link

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
    with db.connection() as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'schema_migration'").fetchall()]  # fmt: skip
        conn.execute(
            ("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY").encode()
        )
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
