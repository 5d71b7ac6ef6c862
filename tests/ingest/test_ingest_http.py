"""HTTP ingestion: uploads with jobs, the quarantine API, and the gateway-compatible endpoints."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from hssk.access import accounts
from hssk.app import create_app
from hssk.db import Database
from hssk.ingest import jobstore
from hssk.ingest.xmlparse import build_envelope, build_table
from hssk.kernel.config import load_settings
from tests.factories.samples import expected_counts, visit

SECRET = hashlib.md5(b"bi-mat-cua-benh-vien").hexdigest().upper()


@pytest.fixture
def client(idb: Database) -> Iterator[TestClient]:
    with idb.connection() as conn:
        accounts.create_account(conn, "his01001", "system", unit_id="F01001",
                                scopes=["system/*.write", "system/*.read"], password=SECRET)  # fmt: skip
        accounts.create_account(conn, "reader01", "system", unit_id="F01002",
                                scopes=["system/*.read"], password=SECRET)  # fmt: skip
        accounts.create_account(conn, "staff01", "staff", unit_id="F01001",
                                scopes=["user/*.write"], password=SECRET)  # fmt: skip
        conn.execute("INSERT INTO unit (id, kind, name) VALUES ('SYT99', 'department', 'Sở Y tế')")
        accounts.create_account(conn, "syt99", "staff", unit_id="SYT99",
                                scopes=["user/*.write"], password=SECRET)  # fmt: skip
    with TestClient(create_app(load_settings(), idb)) as c:
        yield c


def _token(client: TestClient, user: str = "his01001") -> str:
    r = client.post("/api/token/take", data={"username": user, "password": SECRET})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["maKetQua"] == "200" and body["id_token"] and body["expires_in"] > 0
    return str(body["access_token"])


def test_token_refuses_a_wrong_password(client: TestClient) -> None:
    r = client.post("/api/token/take", data={"username": "his01001", "password": "SAI"})
    assert r.status_code == 401
    assert r.json()["maKetQua"] == "401" and "mật khẩu" in r.json()["thongDiep"]


def test_gateway_submit_checkin_then_full_file(client: TestClient, idb: Database) -> None:
    token = _token(client)
    checkin_row = {"MA_LK": "LK000001", "STT": "1", "HO_TEN": "Nguyễn Văn Thử 1",
                   "NGAY_SINH": "198503040000", "GIOI_TINH": "1", "SO_CCCD": "001085000001",
                   "NGAY_VAO": "202501021030", "MA_LOAI_KCB": "01", "MA_CSKCB": "01001"}  # fmt: skip
    xml0 = build_table("XML0", [checkin_row])
    form = {"username": "his01001", "loaiHoSo": "0", "maTinh": "01", "maCSKCB": "01001",
            "fileHSBase64": base64.b64encode(xml0).decode()}  # fmt: skip
    r = client.post("/api/qd130/checkInKcbQd4750", data=form, headers={"accessToken": token})
    assert r.status_code == 200, r.text
    assert r.json()["maKetQua"] == "200" and r.json()["maGiaoDich"].startswith("HSSK")
    assert len(r.json()["thoiGianTiepNhan"]) == 14
    with idb.connection() as conn:
        status = conn.execute(
            "SELECT body->>'status' FROM resource WHERE type = 'Encounter'"
        ).fetchone()
    assert status == ("in-progress",)
    env = build_envelope("01001", [visit(1)])
    form = {**form, "loaiHoSo": "130", "fileHSBase64": base64.b64encode(env).decode()}
    r = client.post("/api/qd130/guiHoSoXmlQD3176", data=form, headers={"accessToken": token})
    assert r.json()["maKetQua"] == "200", r.text
    with idb.connection() as conn:
        rows = conn.execute(
            "SELECT body->>'status', version FROM resource WHERE type = 'Encounter'"
        ).fetchall()
        receipts = conn.execute(
            "SELECT facility, records FROM ingest_receipt ORDER BY id"
        ).fetchall()
    assert rows == [("finished", 2)]
    assert receipts == [("01001", 1), ("01001", 1)]
    # the same check-in sent late never reopens the finished visit
    late = {**form, "loaiHoSo": "0", "fileHSBase64": base64.b64encode(xml0).decode()}
    r = client.post("/api/qd130/checkInKcbQd4750", data=late, headers={"accessToken": token})
    assert r.json()["maKetQua"] == "200", r.text
    with idb.connection() as conn:
        again = conn.execute(
            "SELECT body->>'status', version FROM resource WHERE type = 'Encounter'"
        ).fetchall()
    assert again == [("finished", 2)]


def test_gateway_errors_say_what_is_wrong(client: TestClient) -> None:
    token = _token(client)
    base = {"username": "his01001", "loaiHoSo": "130", "maTinh": "01", "maCSKCB": "01001"}
    r = client.post("/api/qd130/guiHoSoXmlQD4750", data={**base, "fileHSBase64": "@@@"},
                    headers={"accessToken": token})  # fmt: skip
    assert r.json()["maKetQua"] == "205" and "base64" in r.json()["thongDiep"]
    r = client.post("/api/qd130/guiHoSoXmlQD4750", data={**base, "fileHSBase64": "AAAA"})
    assert r.status_code == 401 and r.json()["maKetQua"] == "401"
    other = {**base, "maCSKCB": "01002", "fileHSBase64": "AAAA"}
    r = client.post("/api/qd130/guiHoSoXmlQD4750", data=other, headers={"accessToken": token})
    assert r.json()["maKetQua"] == "403" and "01001" in r.json()["thongDiep"]
    bad = build_envelope("01001", [visit(2, NGAY_VAO="202502301000")])
    r = client.post("/api/qd130/guiHoSoXmlQD4750", headers={"accessToken": token},
                    data={**base, "fileHSBase64": base64.b64encode(bad).decode()})  # fmt: skip
    assert r.json()["maKetQua"] == "400"
    assert "NGAY_VAO" in r.json()["thongDiep"] and "không phải ngày" in r.json()["thongDiep"]


def test_upload_job_quarantine_correct_and_replay(client: TestClient, idb: Database) -> None:
    auth = {"Authorization": f"Bearer {_token(client)}"}
    env = build_envelope("01001", [visit(1), visit(2, MA_BENH_CHINH="XX")])
    r = client.post("/api/v1/ingest/xml130", files={"files": ("a.xml", env)}, headers=auth)
    assert r.status_code == 202, r.text
    job = client.get(r.json()["href"], headers=auth).json()
    assert job["status"] == "done" and job["stored"]["Encounter"] == 1
    reader = {"Authorization": f"Bearer {_token(client, 'staff01')}"}  # same unit: may read it
    assert client.get(r.json()["href"], headers=reader).status_code == 200
    with idb.connection() as conn:
        reads = conn.execute(
            "SELECT outcome, resource_id FROM audit_event WHERE action = 'ingest-job-read'"
        ).fetchall()
    assert reads == [("allow", str(job["job_id"]))] * 2
    assert job["quarantined"] == 1 and job["progress"]["files_done"] == 1
    err = job["errors"][0]
    assert err["rule"] == "icd10.unknown" and err["element"] == "MA_BENH_CHINH"
    raw = client.get(f"/api/v1/ingest/errors/{err['id']}", headers=auth).json()["raw"]
    assert "<HOSO_RAW" in raw
    r = client.post(f"/api/v1/ingest/errors/{err['id']}/replay", headers=auth)
    assert r.status_code == 422 and "XX" in r.json()["message"]
    fixed = raw.replace(
        "<MA_BENH_CHINH><![CDATA[XX]]></MA_BENH_CHINH>", "<MA_BENH_CHINH>J20.9</MA_BENH_CHINH>"
    )
    assert fixed != raw
    r = client.put(f"/api/v1/ingest/errors/{err['id']}", content=fixed.encode(),
                   headers={**auth, "Content-Type": "text/plain"})  # fmt: skip
    assert r.status_code == 200, r.text
    r = client.post(f"/api/v1/ingest/errors/{err['id']}/replay", headers=auth)
    assert r.status_code == 200, r.text
    assert r.json()["stored"]["Encounter"] == 1
    left = client.get("/api/v1/ingest/errors", headers=auth).json()
    assert left == []


def _account(idb: Database, username: str) -> str:
    with idb.connection() as conn:
        row = conn.execute("SELECT id FROM account WHERE username = %s", (username,)).fetchone()
    assert row is not None
    return str(row[0])


def _quarantine_two_facilities(idb: Database) -> tuple[int, int]:
    """One quarantined record of facility 01001 and one of 01002 (ids)."""
    with idb.connection() as conn:
        ids = [
            conn.execute(
                "INSERT INTO ingest_error (kind, facility, record, element, value, rule, reason,"
                " reason_vi, raw) VALUES ('xml130', %s, %s, 'NGAY_VAO', '20250230', 'date',"
                " 'not a date', 'không phải ngày', '<HOSO_RAW/>') RETURNING id",
                (fac, f"{fac}|LK9"),
            ).fetchone()[0]  # type: ignore[index]
            for fac in ("01001", "01002")
        ]
    return ids[0], ids[1]


def test_quarantine_is_seen_by_the_facility_only(client: TestClient, idb: Database) -> None:
    own, other = _quarantine_two_facilities(idb)
    staff = {"Authorization": f"Bearer {_token(client, 'staff01')}"}
    listed = client.get("/api/v1/ingest/errors", headers=staff).json()
    assert [r["id"] for r in listed] == [own] and listed[0]["facility"] == "01001"
    assert client.get(f"/api/v1/ingest/errors/{own}", headers=staff).status_code == 200
    assert client.get(f"/api/v1/ingest/errors/{other}", headers=staff).status_code == 403
    # a department's staff (unit without a facility code) sees no one's records
    dept = {"Authorization": f"Bearer {_token(client, 'syt99')}"}
    r = client.get("/api/v1/ingest/errors", headers=dept)
    assert r.status_code == 403 and "cơ sở KCB" in r.json()["thongDiep"]
    assert client.get(f"/api/v1/ingest/errors/{own}", headers=dept).status_code == 403
    platform = {"Authorization": f"Bearer {_token(client)}"}
    everyone = client.get("/api/v1/ingest/errors", headers=platform).json()
    assert {r["id"] for r in everyone} == {own, other}
    assert [r["id"] for r in client.get(
        "/api/v1/ingest/errors?rule=date", headers=platform).json()] == [own, other]  # fmt: skip
    assert client.get("/api/v1/ingest/errors?rule=icd10", headers=platform).json() == []
    with idb.connection() as conn:
        events = conn.execute(
            "SELECT actor, action, outcome, resource_id FROM audit_event"
            " WHERE action LIKE 'ingest-error%' ORDER BY seq"
        ).fetchall()
    staff01, syt99 = _account(idb, "staff01"), _account(idb, "syt99")
    assert (staff01, "ingest-errors", "allow", None) in events
    assert (staff01, "ingest-error-read", "allow", str(own)) in events
    assert (staff01, "ingest-error-read", "deny", str(other)) in events
    assert (syt99, "ingest-errors", "deny", None) in events


def test_discard_keeps_the_record_with_its_reason(client: TestClient, idb: Database) -> None:
    own, _ = _quarantine_two_facilities(idb)
    staff = {"Authorization": f"Bearer {_token(client, 'staff01')}"}
    r = client.post(f"/api/v1/ingest/errors/{own}/discard", json={"reason": " "}, headers=staff)
    assert r.status_code == 422 and "lý do" in r.json()["thongDiep"]
    r = client.post(f"/api/v1/ingest/errors/{own}/discard", json={"reason": "Bản ghi thử"},
                    headers=staff)  # fmt: skip
    assert r.status_code == 200 and r.json()["status"] == "discarded"
    again = client.post(f"/api/v1/ingest/errors/{own}/replay", headers=staff)
    assert again.status_code == 409 and "loại bỏ" in again.json()["thongDiep"]
    fix = client.put(f"/api/v1/ingest/errors/{own}", content=b"<HOSO_RAW/>",
                     headers={**staff, "Content-Type": "text/plain"})  # fmt: skip
    assert fix.status_code == 409
    assert client.get("/api/v1/ingest/errors", headers=staff).json() == []
    gone = client.get("/api/v1/ingest/errors?status=discarded", headers=staff).json()
    assert [(g["id"], g["discard_reason"]) for g in gone] == [(own, "Bản ghi thử")]
    with idb.connection() as conn:
        who = conn.execute(
            "SELECT discarded_by, discarded_at IS NOT NULL FROM ingest_error WHERE id = %s", (own,)
        ).fetchone()
    assert who == (_account(idb, "staff01"), True)


def test_jobs_list_shows_each_caller_its_own(client: TestClient, idb: Database) -> None:
    his = {"Authorization": f"Bearer {_token(client)}"}
    env = build_envelope("01001", [visit(1)])
    r = client.post("/api/v1/ingest/xml130", files={"files": ("a.xml", env)}, headers=his)
    mine = r.json()["job_id"]
    with idb.connection() as conn:  # another facility's job, not started
        other = jobstore.create_job(conn, "xml130", ["/khong-co.xml"], unit_id="F01002")
    staff = {"Authorization": f"Bearer {_token(client, 'staff01')}"}  # same unit as the HIS
    listed = client.get("/api/v1/ingest/jobs", headers=staff).json()
    assert [j["id"] for j in listed] == [mine]
    assert (listed[0]["status"], listed[0]["files_done"], listed[0]["files"]) == ("done", 1, 1)
    assert listed[0]["stored"] == sum(expected_counts().values())
    department = {"Authorization": f"Bearer {_token(client, 'syt99')}"}
    assert client.get("/api/v1/ingest/jobs", headers=department).json() == []
    # a reading scope follows its own unit's jobs only (a job lists quarantined records)
    reader = {"Authorization": f"Bearer {_token(client, 'reader01')}"}  # system/*.read, F01002
    assert [j["id"] for j in client.get("/api/v1/ingest/jobs", headers=reader).json()] == [other]
    # a platform system (system/*.write) follows every job
    assert [j["id"] for j in client.get("/api/v1/ingest/jobs", headers=his).json()] == [
        other,
        mine,
    ]
    pending = client.get("/api/v1/ingest/jobs?status=pending&kind=xml130", headers=his).json()
    assert [j["id"] for j in pending] == [other]
    bad = client.get("/api/v1/ingest/jobs?status=lost", headers=reader)
    assert bad.status_code == 400 and "status" in bad.text
    assert client.get("/api/v1/ingest/jobs").status_code == 401


def test_upload_needs_a_write_scope(client: TestClient) -> None:
    auth = {"Authorization": f"Bearer {_token(client, 'reader01')}"}
    r = client.post("/api/v1/ingest/xml130", files={"files": ("a.xml", b"<x/>")}, headers=auth)
    assert r.status_code == 403
    r = client.post("/api/v1/ingest/xml130", files={"files": ("a.xml", b"<x/>")})
    assert r.status_code == 401
    staff = {"Authorization": f"Bearer {_token(client, 'staff01')}"}
    r = client.post("/api/v1/ingest/facilities", files={"files": ("f.csv", b"id\n")}, headers=staff)
    assert r.status_code == 403 and "system/*.write" in r.json()["message"]


def test_server_start_resumes_unfinished_jobs(idb: Database, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import time

    from hssk.ingest import jobstore
    from tests.factories.samples import write_feed

    feed = write_feed(tmp_path / "left.xml", [visit(i) for i in range(1, 4)])
    with idb.connection() as conn:
        job_id = jobstore.create_job(conn, "xml130", [str(feed)])
    with TestClient(create_app(load_settings(), idb)):
        deadline = time.time() + 30
        status = "pending"
        while status != "done" and time.time() < deadline:
            time.sleep(0.2)
            with idb.connection() as conn:
                status = conn.execute(
                    "SELECT status FROM ingest_job WHERE id = %s", (job_id,)
                ).fetchone()[0]
    assert status == "done"
