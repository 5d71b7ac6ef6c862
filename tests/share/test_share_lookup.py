"""Card look-up in the gateway's shape: result codes, quotas across restarts, audit."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

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
from hssk.registry.merge import merge
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


def _person(conn, name: str, card: str, birth: str = "1985-03-09") -> int:
    row = conn.execute(
        """INSERT INTO person (full_name, birth_date, sex, bhyt, bhxh)
           VALUES (%s, %s, 'M', %s, %s) RETURNING id""",
        (name, birth, card, card[5:]),
    ).fetchone()
    return int(row[0])


def _card(conn, person_id: int, card: str, start: str, end: str, facility: str) -> None:
    store.bulk_upsert(conn, [store.NewResource({
        "resourceType": "Coverage", "status": "active",
        "identifier": [{"system": BHYT, "value": card}], "subscriberId": card,
        "period": {"start": start, "end": end},
        "class": [{"type": {"text": "plan"}, "value": "dkbd", "name": f"KCB ban đầu {facility}"}],
        "beneficiary": {"reference": f"Patient/mpi-{person_id}"}, "payor": [{"display": "BHXH"}],
    }, person_id=person_id, source_key=f"cov|{card}|{end}")])  # fmt: skip


def test_each_card_answers_its_own_coverage_and_a_merged_persons_card_its_survivor(
    clean_db: Database,
) -> None:
    """Two records of one man with two cards (one social-insurance number), and a woman with
    her own: each card is answered from its own Coverage, read through the person's records;
    once the records are merged the second card still answers, with the survivor's details."""
    today = date(2025, 6, 1)
    old_card, new_card, her_card = "HC4010123450001", "DN4010123450001", "HC4010999990002"
    with clean_db.connection() as conn:
        survivor = _person(conn, "Trần Văn Bình", old_card)
        merged = _person(conn, "Trần Văn Bình", new_card)
        her = _person(conn, "Phạm Thị Cúc", her_card, "1992-11-20")
        _card(conn, survivor, old_card, "2024-01-01", "2024-12-31", "01001")
        _card(conn, merged, new_card, "2023-01-01", "2023-12-31", "01002")
        _card(conn, merged, new_card, "2025-01-01", "2026-12-31", "01003")  # the newest
        _card(conn, her, her_card, "2025-01-01", "2030-12-31", "79001")

        def ask(card: str, name: str = "Trần Văn Bình", born: str = "09/03/1985") -> Any:
            return lookup.lookup(conn, lookup.LookupRequest(card, name, born), today)

        before = ask(new_card)
        assert (before.code, before.person_id) == ("000", merged)
        assert before.data["gtTheDen"] == "31/12/2026" and before.data["maDKBD"] == "01003"
        merge(conn, survivor, merged, actor="test", reason="cùng một người")
        after = ask(new_card)
        assert (after.code, after.person_id) == ("000", survivor)
        assert after.data["gtTheTu"] == "01/01/2025" and after.data["maDKBD"] == "01003"
        own = ask(old_card)  # the survivor's own card: its own Coverage, expired
        assert (own.code, own.person_id) == ("010", survivor)
        assert own.data["gtTheDen"] == "31/12/2024" and own.data["maDKBD"] == "01001"
        hers = ask(her_card, "Phạm Thị Cúc", "20/11/1992")
        assert (hers.code, hers.data["maDKBD"], hers.data["gtTheDen"]) == ("000", "79001",
                                                                          "31/12/2030")  # fmt: skip
        assert ask("HC2010123450001").code == "053"  # his number, a benefit code of neither card
