"""Request ids, JSON access lines without personal data, liveness and readiness."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from hssk.app import create_app
from hssk.db import Database
from hssk.http.logs import JsonFormatter, safe_path, uvicorn_log_config
from hssk.kernel.config import load_settings


def test_safe_path_masks_identifiers() -> None:
    assert safe_path("/fhir/Patient/mpi-12") == "/fhir/Patient/mpi-12"
    assert safe_path("/book/001205012345/x") == "/book/############/x"


def test_json_access_lines_carry_the_request_id_and_no_personal_data(
    db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HSSK_LOG_FORMAT", "json")
    client = TestClient(create_app(load_settings(), db))
    with caplog.at_level(logging.INFO, logger="hssk.access"):
        given = client.get("/health/live", headers={"X-Request-ID": "nginx-req-0001"})
        made = client.get(
            "/fhir/Patient?identifier=https://fhir.hssk.vn/sid/cccd|001205012345",
            headers={"X-Request-ID": "bad id with spaces"},
        )
    assert given.headers["x-request-id"] == "nginx-req-0001"
    assert len(made.headers["x-request-id"]) == 32  # a new id: the given one was not valid
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    assert [ln["request_id"] for ln in lines] == ["nginx-req-0001", made.headers["x-request-id"]]
    assert lines[1]["path"] == "/fhir/Patient" and lines[1]["status"] == made.status_code
    assert "001205012345" not in caplog.text


def test_plain_mode_keeps_uvicorns_logging(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HSSK_LOG_FORMAT", raising=False)
    assert "access" in uvicorn_log_config()["formatters"]
    monkeypatch.setenv("HSSK_LOG_FORMAT", "json")
    assert uvicorn_log_config()["root"]["handlers"] == ["default"]


def test_liveness_and_readiness(db: Database) -> None:
    client = TestClient(create_app(load_settings(), db))
    assert client.get("/health/live").json() == {"status": "ok"}
    assert client.get("/health/ready").json() == {"status": "ready"}
    assert client.get("/readyz").status_code == 200
    with db.connection() as conn:
        conn.execute("DELETE FROM schema_migration WHERE version = '0700'")
    try:
        r = client.get("/health/ready")
        assert r.status_code == 503 and "hssk db migrate" in r.json()["reason"]
    finally:
        with db.connection() as conn:
            conn.execute(
                "INSERT INTO schema_migration (version, name, checksum) VALUES ('0700', "
                "'0700_jobs.sql', 'restored-by-test')"
            )


def test_access_lines_name_the_acting_account_but_not_a_citizens(
    clean_db: Database, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from hssk.access import accounts
    from hssk.access.tokens import issue

    monkeypatch.setenv("HSSK_LOG_FORMAT", "json")
    settings = load_settings()
    with clean_db.connection() as conn:
        accounts.create_unit(conn, "BV-LOG", "hospital", "Bệnh viện thử", facility_code="01999")
        doctor = accounts.create_account(conn, "bs.log", "clinician", unit_id="BV-LOG",
                                         roles=["clinician"])  # fmt: skip
        person = conn.execute(
            "INSERT INTO person (full_name, cccd) VALUES ('Lê Thị Log', '001199000777') "
            "RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        citizen = accounts.create_account(conn, "dan.log", "citizen", person_id=person)
    client = TestClient(create_app(settings, clean_db))
    with caplog.at_level(logging.INFO, logger="hssk.access"):
        for acc in (doctor, citizen):
            token = issue(settings, acc.actor(None))
            client.get("/fhir/Patient?_count=1", headers={"Authorization": f"Bearer {token}"})
    lines = [json.loads(JsonFormatter().format(r)) for r in caplog.records]
    assert [ln.get("actor") for ln in lines] == [f"clinician:{doctor.id}", "citizen"]
