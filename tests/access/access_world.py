"""A small synthetic world for access tests: units, persons, accounts, records; and the
fixtures (per module) that build it and serve it over HTTP (access and security tests)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
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
from tests.conftest import truncate_all

COMMUNE_A, COMMUNE_B = "00001", "00004"
PASSWORD = "mat-khau-du-dai-1"


@dataclass
class World:
    db: Database
    persons: dict[str, int] = field(default_factory=dict)
    accounts: dict[str, Account] = field(default_factory=dict)
    resources: dict[str, tuple[str, str]] = field(default_factory=dict)  # name → (type, id)

    def headers(self, name: str, scopes: list[str] | None = None) -> dict[str, str]:
        acc = self.accounts[name]
        actor = acc.actor(scopes if scopes is not None else acc.scopes, client="tests")
        return {"Authorization": f"Bearer {issue(load_settings(), actor)}"}


def _person(conn: Any, name: str, birth: date, commune: str, cccd: str) -> int:
    row = conn.execute(
        """INSERT INTO person (full_name, birth_date, sex, commune_code, cccd, health_id)
           VALUES (%s, %s, 'F', %s, %s, %s) RETURNING id""",
        (name, birth, commune, cccd, cccd),
    ).fetchone()
    return int(row[0])


def _resource(conn: Any, body: dict[str, Any], person: int, **kw: Any) -> tuple[str, str]:
    stored, _ = store.save(conn, body, person_id=person, **kw)
    return stored.type, stored.id


def observation(
    person: int, *, label: str | None = None, rid: str | None = None, value: int = 1
) -> dict[str, Any]:
    """An Observation of ``person`` (Patient/p<person>), with a sensitivity label if given."""
    body: dict[str, Any] = {
        "resourceType": "Observation", "status": "final", "code": {"text": "đường huyết"},
        "subject": {"reference": f"Patient/p{person}"}, "valueQuantity": {"value": value},
    }  # fmt: skip
    if label:
        body["meta"] = {"security": [{"code": label}]}
    if rid:
        body["id"] = rid
    return body


def store_observation(world: World, person: int, label: str | None = None) -> str:
    """A fresh Observation of ``person`` written straight into the store; its id."""
    with world.db.connection() as conn:
        stored, _ = store.save(conn, observation(person, label=label), person_id=person,
                               sensitivity=label)  # fmt: skip
    return stored.id


def fresh_world(db: Database) -> World:
    """Empty every table (but the migration ledger), then build the world."""
    truncate_all(db)
    return build_world(db)


def build_world(db: Database) -> World:
    w = World(db)
    with db.connection() as conn:
        units = [
            ("SYT-HN", "department", "Sở Y tế Hà Nội", None, None, None),
            ("TTYT-BD", "district_centre", "Trung tâm Y tế Ba Đình", "SYT-HN", None, None),
            ("TYT-A", "station", "Trạm Y tế phường A", "TTYT-BD", None, COMMUNE_A),
            ("TYT-B", "station", "Trạm Y tế phường B", "TTYT-BD", None, COMMUNE_B),
            ("BV-01", "hospital", "Bệnh viện Đa khoa 01", "SYT-HN", "01001", None),
            ("BV-02", "hospital", "Bệnh viện 02", "SYT-HN", "01002", None),
            ("BHXH-VN", "external", "Cơ sở dữ liệu bảo hiểm", None, None, None),
        ]
        for uid, kind, name, parent, fac, commune in units:
            accounts.create_unit(conn, uid, kind, name, parent_id=parent, facility_code=fac,
                                 commune_code=commune)  # fmt: skip
        p = w.persons
        p["parent"] = _person(conn, "Nguyễn Thị Lan", date(1985, 3, 1), COMMUNE_A, "001185000001")
        p["child"] = _person(conn, "Trần Minh An", date(2019, 6, 1), COMMUNE_A, "001219000002")
        p["grown"] = _person(conn, "Trần Văn Lớn", date(2000, 1, 1), COMMUNE_A, "001200000003")
        p["other"] = _person(conn, "Lê Văn Bình", date(1970, 5, 5), COMMUNE_B, "001070000004")
        for child in ("child", "grown"):
            conn.execute(
                "INSERT INTO guardianship (guardian_person, child_person) VALUES (%s, %s)",
                (p["parent"], p[child]),
            )
        mk = accounts.create_account
        a = w.accounts
        a["citizen"] = mk(conn, "lan", "citizen", person_id=p["parent"], phone="0912000001",
                          password=None)  # fmt: skip
        a["other_citizen"] = mk(conn, "binh", "citizen", person_id=p["other"], phone="0912000004")
        a["doctor"] = mk(conn, "bs.hung", "clinician", unit_id="BV-01", roles=["clinician"],
                         display_name="BS. Hùng", password=PASSWORD)  # fmt: skip
        a["doctor2"] = mk(conn, "bs.mai", "clinician", unit_id="BV-02", roles=["clinician"])
        a["station_a"] = mk(conn, "tram.a", "staff", unit_id="TYT-A", roles=["station"])
        a["station_b"] = mk(conn, "tram.b", "staff", unit_id="TYT-B", roles=["station"])
        a["supervisor"] = mk(conn, "giamsat", "staff", unit_id="TTYT-BD", roles=["supervisor"])
        a["admin"] = mk(conn, "quantri", "staff", unit_id="SYT-HN", roles=["admin"],
                        password=PASSWORD, phone="0912000009")  # fmt: skip
        a["admin_bd"] = mk(conn, "quantri.bd", "staff", unit_id="TTYT-BD", roles=["admin"])
        a["auditor"] = mk(conn, "kiemtoan", "staff", unit_id="SYT-HN", roles=["auditor"])
        a["insurance"] = mk(conn, "bhxh-client", "system", unit_id="BHXH-VN",
                            scopes=["system/Immunization.read"])  # fmt: skip
        a["his"] = mk(conn, "bv01-his", "system", unit_id="BV-01",
                      scopes=["system/*.read", "system/*.write"])  # fmt: skip
        for key, person in p.items():
            w.resources[f"patient_{key}"] = _resource(conn, {
                "resourceType": "Patient", "id": f"p{person}",
                "identifier": [{"system": "urn:hssk:person", "value": str(person)}]},
                person)  # fmt: skip
        pid = p["parent"]
        w.resources["enc_parent"] = _resource(conn, {
            "resourceType": "Encounter", "status": "in-progress", "class": {"code": "AMB"},
            "subject": {"reference": f"Patient/p{pid}"},
            "serviceProvider": {"reference": "Organization/01001"},
            "period": {"start": "2026-11-25T08:00:00+07:00"}}, pid, source_unit="01001")  # fmt: skip
        w.resources["obs_parent"] = _resource(conn, {
            "resourceType": "Observation", "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
            "subject": {"reference": f"Patient/p{pid}"}, "valueQuantity": {"value": 120}},
            pid)  # fmt: skip
        w.resources["hiv_parent"] = _resource(conn, {
            "resourceType": "Condition", "meta": {"security": [{"code": "HIV"}]},
            "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "B20"}]},
            "subject": {"reference": f"Patient/p{pid}"}}, pid, sensitivity="HIV")  # fmt: skip
        w.resources["imm_child"] = _resource(conn, {
            "resourceType": "Immunization", "status": "completed",
            "vaccineCode": {"coding": [{"code": "BCG"}]},
            "patient": {"reference": f"Patient/p{p['child']}"},
            "occurrenceDateTime": "2019-06-02"}, p["child"])  # fmt: skip
        w.resources["obs_grown"] = _resource(conn, {
            "resourceType": "Observation", "status": "final", "code": {"text": "cân nặng"},
            "subject": {"reference": f"Patient/p{p['grown']}"}}, p["grown"])  # fmt: skip
        w.resources["obs_other"] = _resource(conn, {
            "resourceType": "Observation", "status": "final", "code": {"text": "huyết áp"},
            "subject": {"reference": f"Patient/p{p['other']}"}}, p["other"])  # fmt: skip
    return w


@pytest.fixture(scope="module")
def world(db: Database) -> World:
    return fresh_world(db)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(load_settings(), world.db)
    with TestClient(app) as c:
        yield c
