"""Card look-up in the gateway's shape: result codes, quotas across restarts, audit."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from hssk.access.actor import Actor
from hssk.access.tokens import issue
from hssk.app import create_app
from hssk.db import Database
from hssk.kernel.config import load_settings
from hssk.kernel.identifiers import BHYT
from hssk.records import store
from hssk.share import lookup, quota

CARD = "HC4010123456789"
PATH = "/api/v1/lookup/card"
GATEWAY = "/api/egw/KQNhanLichSuKCB2024"


def _headers(account: str = "bhxh-gw", scopes: str = "system/Coverage.read") -> dict[str, str]:
    actor = Actor(account_id=account, kind="system", scopes=frozenset(scopes.split()), client="t")
    return {"Authorization": f"Bearer {issue(load_settings(), actor)}"}


def _seed(conn) -> None:
    pid = conn.execute(
        """INSERT INTO person (full_name, birth_date, sex, bhyt, bhxh, address)
           VALUES ('Nguyễn Thị Lan', '1990-05-17', 'F', %s, %s, 'Phúc Xá, Hà Nội') RETURNING id""",
        (CARD, CARD[5:]),
    ).fetchone()[0]
    conn.execute(
        """INSERT INTO person (full_name, birth_date, birth_precision, sex, bhyt, bhxh)
           VALUES ('Lê Văn Tư', '1950-01-01', 'Y', 'M', 'HT3010000000001', '0100000001')"""
    )
    store.bulk_upsert(
        conn,
        [
            store.NewResource(
                {
                    "resourceType": "Coverage",
                    "status": "active",
                    "identifier": [{"system": BHYT, "value": "HT3010000000001"}],
                    "subscriberId": "HT3010000000001",
                    "period": {"start": "2020-01-01", "end": "2021-12-31"},
                    "beneficiary": {"reference": "Patient/x"},
                    "payor": [{"display": "BHXH"}],
                },
                person_id=pid + 1,
                source_key="cov|old",
            )
        ],
    )


@pytest.fixture
def app_client(clean_db: Database):
    with clean_db.connection() as conn:
        _seed(conn)
    with TestClient(create_app(load_settings(), clean_db)) as c:
        yield c


BODY = {"maThe": CARD, "hoTen": "Nguyễn Thị Lan", "ngaySinh": "17/05/1990",
        "hoTenCb": "Phạm Văn Cán Bộ", "cccdCb": "001080000001"}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({}, "000"),
        ({"hoTen": "NGUYỄN THỊ LAN"}, "000"),
        ({"maThe": "HT3010000000001", "hoTen": "Lê Văn Tư", "ngaySinh": "1950"}, "010"),
        ({"maThe": "HC4019999999999"}, "050"),
        ({"maThe": "HC4020123456789"}, "052"),
        ({"maThe": "HC2010123456789"}, "053"),
        ({"maThe": "DN4010123456789"}, "051"),
        ({"hoTen": "Trần Văn Nam"}, "060"),
        ({"hoTen": "Nguyen Thi Lan"}, "061"),
        ({"ngaySinh": "18/05/1990"}, "070"),
        ({"ngaySinh": "1990-05-17"}, "205"),
        ({"ngaySinh": "31/02/1990"}, "205"),
        ({"maThe": "HC40"}, "205"),
        ({"hoTen": ""}, "205"),
    ],
)
def test_result_codes(app_client: TestClient, change: dict, code: str) -> None:
    resp = app_client.post(PATH, json={**BODY, **change}, headers=_headers())
    assert resp.status_code == 200
    body = resp.json()
    assert body["maKetQua"] == code, body
    assert body["ghiChu"] and body["message_en"]
    if code in ("000", "010"):
        assert body["hoTen"] and body["ngaySinh"]
    else:
        assert "hoTen" not in body  # nothing learnt from a failed check


def test_gateway_path_form_body_auth_and_audit(app_client: TestClient, clean_db: Database) -> None:
    resp = app_client.post(GATEWAY, data=BODY, headers=_headers())
    assert resp.json()["maKetQua"] == "000"
    assert resp.json()["gioiTinh"] == "Nữ"
    assert app_client.post(GATEWAY, json=BODY).json()["maKetQua"] == "401"
    denied = app_client.post(GATEWAY, json=BODY, headers=_headers(scopes="system/Patient.read"))
    assert denied.status_code == 401 and denied.json()["maKetQua"] == "401"
    with clean_db.connection() as conn:
        rows = conn.execute(
            "SELECT outcome, detail->>'maKetQua', detail->>'hoTenCb' FROM audit_event "
            "WHERE action = 'lookup' ORDER BY seq"
        ).fetchall()
    assert rows[0] == ("allow", "000", "Phạm Văn Cán Bộ")
    assert rows[-1][0] == "deny"


def test_quota_enforced_across_restarts(app_client: TestClient, clean_db: Database) -> None:
    with clean_db.connection() as conn:
        quota.set_limit(conn, "small", 3)
    h = _headers("small")
    for _ in range(3):
        assert app_client.post(PATH, json=BODY, headers=h).status_code == 200
    over = app_client.post(PATH, json=BODY, headers=h)
    assert over.status_code == 429
    retry = int(over.headers["Retry-After"])
    assert 0 < retry <= 24 * 3600
    body = over.json()
    assert "hạn mức" in body["ghiChu"] and "giờ Việt Nam" in body["ghiChu"]
    assert body["datLaiLuc"].endswith("+07:00")
    # A new application (a restart) on the same database keeps the count.
    with TestClient(create_app(load_settings(), clean_db)) as fresh:
        assert fresh.post(PATH, json=BODY, headers=h).status_code == 429
        assert fresh.post(PATH, json=BODY, headers=_headers("other")).status_code == 200
    with clean_db.connection() as conn:
        assert ("small", 3, 3) in quota.usage(conn)
        (denied,) = conn.execute(
            "SELECT count(*) FROM audit_event WHERE actor = 'small' AND outcome = 'deny'"
        ).fetchone()
    assert denied == 2


def test_quota_day_is_vietnam_time(clean_db: Database) -> None:
    late = datetime(2026, 3, 1, 17, 30, tzinfo=UTC)  # 00:30 on 2 March in Hà Nội
    assert quota.today_vn(late) == date(2026, 3, 2)
    assert quota.next_reset(late).isoformat() == "2026-03-03T00:00:00+07:00"
    with clean_db.connection() as conn:
        quota.set_limit(conn, "z", 0)
        state = quota.consume(conn, "z", late)
    assert not state.allowed and state.retry_after(late) == 23 * 3600 + 30 * 60


@given(st.dictionaries(st.sampled_from(["maThe", "hoTen", "ngaySinh", "x"]),
                       st.one_of(st.text(max_size=30), st.integers(), st.none())))  # fmt: skip
def test_parse_never_crashes(raw: dict) -> None:
    out = lookup.parse(raw)
    if isinstance(out, lookup.LookupResult):
        assert out.code == "205" and out.detail
    else:
        assert len(out.ma_the) == 15


def test_share_status_for_supervisors_only(app_client: TestClient) -> None:
    sup = Actor(account_id="sup", kind="staff", unit_id=None, roles=frozenset({"supervisor"}),
                scopes=frozenset({"user/*.read"}))  # fmt: skip
    h = {"Authorization": f"Bearer {issue(load_settings(), sup)}"}
    assert app_client.get("/api/v1/share/status", headers=h).json() == {"partners": {}}
    assert app_client.get("/api/v1/share/status", headers=_headers()).status_code == 403


def test_cli_reports(clean_db: Database) -> None:
    from typer.testing import CliRunner

    from hssk.monitor.cli import app as report
    from hssk.share.cli import app as share

    runner = CliRunner()
    with clean_db.connection() as conn:
        _seed(conn)
    out = runner.invoke(report, ["quality"])
    assert out.exit_code == 0 and "Nghi trùng hồ sơ" in out.output
    out = runner.invoke(report, ["completeness"])
    assert out.exit_code == 0 and "2 persons scored" in out.output
    out = runner.invoke(share, ["partners", "sync"])
    assert out.exit_code == 0 and "bhxh, vneid, city-app, bhxh-giamdinh, byt-ksk" in out.output
    out = runner.invoke(share, ["replay"])
    assert out.exit_code == 0 and "0 events queued again" in out.output
