"""Channels: station visits to the insurance gateway as signed QĐ 130 hồ sơ, health checks to
the Ministry's hub; strict simulators; the round trip through HSSK's own gateway; kill -9."""

from __future__ import annotations

import base64
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from fastapi.testclient import TestClient
from test_share_outbox import HSSK, _free_port

from hssk.access import accounts
from hssk.access.signing import register_key
from hssk.app import create_app
from hssk.catalog import bundle
from hssk.db import Database
from hssk.ingest import xmlsig
from hssk.ingest.model import attach
from hssk.ingest.station_map import Checkup, checkup_items, provider
from hssk.ingest.xmlparse import build_envelope, decode_hoso, iter_hoso_bytes
from hssk.kernel import clock
from hssk.kernel.config import load_settings
from hssk.monitor.prom import render
from hssk.records import id_for_source_key, store
from hssk.share import channel_sim, gateway, ksk, outbox, partners, xml130_out
from hssk.share.channel_sim import ChannelState, Refused, check_hoso
from hssk.share.worker import WorkerConfig, run
from hssk.share.xmlsign import Signer, platform_signer, sign_envelope
from tests.factories.supervision import load_province

STATION = provider("01001", "Trạm Y tế Phúc Xá")
SECRET = "A" * 32


class Sim:
    def __init__(self, state: ChannelState):
        self.state = state
        self.server = channel_sim.serve(0, state)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()


@pytest.fixture
def signer(db: Database) -> Signer:
    return platform_signer(load_settings())


@pytest.fixture
def sim(signer: Signer) -> Iterator[Sim]:
    s = Sim(ChannelState([signer.certificate]))
    yield s
    s.server.shutdown()
    s.server.server_close()


def _channels(port: int) -> list[partners.Partner]:
    base = f"http://127.0.0.1:{port}"
    return [
        partners.from_dict({"id": "gw", "channel": "xml130-gateway", "max_attempts": 50,
                            "endpoint": f"{base}{channel_sim.GATEWAY_PATHS[0]}"}),
        partners.from_dict({"id": "hub", "channel": "ksk-hub", "max_attempts": 50,
                            "endpoint": f"{base}{channel_sim.HUB_PATH}"}),
    ]  # fmt: skip


def _checkup(
    conn: Any, pid: int, day: date, key: str, *, kind: str = "ksk-dinh-ky", station: Any = STATION
) -> str:
    c = Checkup(kind, day, {"height": 165.0, "weight": 58.5, "systolic": 125.0,
                            "diastolic": 80.0, "glucose": 5.4},
                conclusion="Sức khỏe bình thường", smoking="Không hút")  # fmt: skip
    items = checkup_items(c, f"test-checkup:{key}", station)
    store.bulk_upsert(conn, [store.NewResource(attach(b, pid), pid, k, "TYT001") for k, b in items])
    return id_for_source_key("Encounter", f"test-checkup:{key}|encounter")


def _adult(conn: Any) -> tuple[int, date]:
    """An adult resident of the loaded province with a CCCD: (person id, birth date)."""
    pid, born = conn.execute(
        "SELECT id, birth_date FROM person WHERE cccd IS NOT NULL AND birth_precision = 'D'"
        " AND birth_date < now() - interval '20 years' ORDER BY id LIMIT 1"
    ).fetchone()
    return int(pid), born


def _visit(conn: Any, pid: int, enc_id: str) -> xml130_out.Visit:
    book = bundle.bundles(conn, [pid])[pid]
    visit = xml130_out.visit_of(book, enc_id)
    assert visit is not None
    return visit


def _tables(data: bytes) -> dict[str, dict[str, str]]:
    (hoso,) = list(iter_hoso_bytes(data))
    hoso = decode_hoso(hoso)
    assert not hoso.errors, hoso.errors
    return {name: rows[0] for name, rows in hoso.tables.items()}


def test_station_visit_reaches_the_gateway_signed_and_reads_back_unchanged(
    clean_db: Database, sim: Sim, signer: Signer
) -> None:
    yesterday = clock.today() - timedelta(days=1)
    with clean_db.connection() as conn:
        prov = load_province(conn, 12, seed=3)
        partners.sync(conn, _channels(sim.port))
        pid, born = _adult(conn)
        enc = _checkup(conn, pid, yesterday, "a")
        events = outbox.events(conn)
    assert {(e["partner"], e["subject"]) for e in events} == {
        ("gw", f"Encounter/{enc}"), ("hub", f"Encounter/{enc}")
    }  # fmt: skip
    # due 24 h after the day of the check-up ended (Vietnam time)
    hub_due = next(e["due_at"] for e in events if e["partner"] == "hub")
    end_of_day = datetime.combine(yesterday + timedelta(days=1), datetime.min.time(), clock.VN)
    assert hub_due == end_of_day + timedelta(hours=24)
    assert next(e["due_at"] for e in events if e["partner"] == "gw") is None

    stats = run(clean_db, WorkerConfig(base_delay=0.01), until_idle=True, max_seconds=60)
    assert (stats.delivered, stats.dead) == (2, 0)
    with clean_db.connection() as conn:
        audited = conn.execute(
            "SELECT person_id, resource_id, basis, detail->>'partner' FROM audit_event"
            " WHERE action = 'share-out' ORDER BY 4"
        ).fetchall()
    assert [(a[0], a[1], a[3]) for a in audited] == [(pid, enc, "gw"), (pid, enc, "hub")]
    assert "QĐ 2733" in audited[0][2] and "QĐ 1551" in audited[1][2]
    (sent,) = sim.state.hoso.values()
    data = base64.b64decode(sent["fileHSBase64"])
    assert xmlsig.check(data, [signer.certificate]).status == "valid"
    delivered = _tables(data)
    assert set(delivered) == {"XML1", "XML8"}
    x1, x8 = delivered["XML1"], delivered["XML8"]
    assert (x1["MA_CSKCB"], x1["MA_BENH_CHINH"], x1["MA_LOAI_KCB"]) == ("01001", "Z00.0", "01")
    assert x1["NGAY_VAO"] == yesterday.strftime("%Y%m%d") + "0000" and x1["CAN_NANG"] == "58.50"
    assert x1["CHAN_DOAN_RV"] == "Sức khỏe bình thường" and x1["NGAY_SINH"] == born.strftime(
        "%Y%m%d0000"
    )
    assert "Chiều cao: 165 cm" in x8["TOMTAT_KQ"] and "125/80 mmHg" in x8["TOMTAT_KQ"]

    # HSSK's own gateway takes the delivered file as a HIS's, signature and all...
    station_unit = prov.stations[next(iter(prov.stations))]
    with clean_db.connection() as conn:
        accounts.create_account(conn, "his-tram", "system", unit_id=station_unit,
                                scopes=["system/*.write", "system/*.read"], password=SECRET)  # fmt: skip
        register_key(conn, station_unit, signer.certificate_pem())
    with TestClient(create_app(load_settings(), clean_db)) as client:
        token = client.post("/api/token/take", data={"username": "his-tram", "password": SECRET})
        r = client.post("/api/qd130/guiHoSoXmlQD3176",
                        data={"username": "his-tram", "loaiHoSo": "130", "maTinh": "01",
                              "maCSKCB": "01001", "fileHSBase64": sent["fileHSBase64"]},
                        headers={"accessToken": token.json()["access_token"]})  # fmt: skip
    assert r.json()["maKetQua"] == "200" and "Chữ ký số hợp lệ" in r.json()["thongDiep"], r.text
    # ... and the visit it stored writes back the very same hồ sơ
    with clean_db.connection() as conn:
        (back,) = conn.execute(
            "SELECT id FROM resource WHERE type = 'Encounter' AND body->'identifier' @> %s",
            (orjson.dumps([{"value": x1["MA_LK"]}]).decode(),),
        ).fetchone()
        again = xml130_out.rows(_visit(conn, pid, back))
        # a visit that came as a hồ sơ is never sent to the gateway again
        assert not [e for e in outbox.events(conn) if e["subject"] == f"Encounter/{back}"]
    assert again == delivered


def test_a_visit_that_cannot_be_written_is_dead_lettered_then_resent_once_fixed(
    clean_db: Database, sim: Sim
) -> None:
    with clean_db.connection() as conn:
        load_province(conn, 8, seed=4)
        partners.sync(conn, _channels(sim.port)[:1])
        pid, _ = _adult(conn)
        nameless = provider(None, "Trạm Y tế chưa có mã", "TYT001")
        _checkup(conn, pid, clock.today(), "b", station=nameless)
    stats = run(clean_db, WorkerConfig(base_delay=0.01), until_idle=True, max_seconds=30)
    assert (stats.delivered, stats.dead) == (0, 1)
    with clean_db.connection() as conn:
        (dead,) = outbox.dead_letters(conn)
        assert "MA_CSKCB" in dead["last_error"] and "thiếu" in dead["last_error"]
        _checkup(conn, pid, clock.today(), "b")  # the station got its facility code
        assert outbox.replay(conn, partner="gw", rebuild=True) == 1
    stats = run(clean_db, WorkerConfig(base_delay=0.01), until_idle=True, max_seconds=30)
    assert stats.delivered == 1 and len(sim.state.hoso) == 1


# --- the gateway simulator's strict checks (no database) ----------------------------------------


def _offline_visit() -> xml130_out.Visit:
    c = Checkup("ksk-dinh-ky", date(2026, 3, 4), {"height": 160.0, "weight": 50.0},
                conclusion="Bình thường")  # fmt: skip
    items = checkup_items(c, "offline", STATION)
    resources = []
    for key, body in items:
        rtype = body["resourceType"]
        resources.append({**body, "id": id_for_source_key(rtype, key)})
    patient = {"resourceType": "Patient", "id": "person-7", "name": [{"text": "Lê Thị Hoa"}],
               "gender": "female", "birthDate": "1975-08-09",
               "identifier": [{"system": "https://fhir.hssk.vn/sid/cccd", "value": "001175000123"}]}  # fmt: skip
    return xml130_out.Visit(resources[0], patient, resources[1:])


def _form(data: bytes) -> dict[str, str]:
    return {"loaiHoSo": "130", "maTinh": "01", "maCSKCB": "01001",
            "fileHSBase64": base64.b64encode(data).decode()}  # fmt: skip


def _signed_with(tables: dict[str, dict[str, str]], signer: Signer, edit: Any = None) -> bytes:
    from hssk.ingest.xmlparse import build_table

    files = {name: build_table(name, [row]) for name, row in tables.items()}
    if edit is not None:
        files = {name: edit(name, data) for name, data in files.items()}
    return sign_envelope(build_envelope("01001", [files]), signer)


def _refusal(form: dict[str, str], signer: Signer) -> Refused:
    with pytest.raises(Refused) as err:
        check_hoso(form, [signer.certificate])
    return err.value


def test_gateway_simulator_refuses_wrong_fields_bad_signatures_and_duplicates(
    signer: Signer, sim: Sim
) -> None:
    tables = xml130_out.rows(_offline_visit())
    good = _signed_with(tables, signer)
    assert check_hoso(_form(good), [signer.certificate])[1] == tables["XML1"]["MA_LK"]

    def rename(name: str, data: bytes) -> bytes:
        return data.replace(b"CAN_NANG>", b"CAN_NANG_KG>") if name == "XML1" else data

    r = _refusal(_form(_signed_with(tables, signer, rename)), signer)
    assert r.code == "400" and "CAN_NANG_KG" in r.vi
    swapped = _signed_with(tables, signer, lambda n, d: d.replace(b"<STT>1</STT>", b"", 1)
                           .replace(b"</MA_BN>", b"</MA_BN><STT>1</STT>", 1) if n == "XML1" else d)  # fmt: skip
    r = _refusal(_form(swapped), signer)
    assert r.code == "400" and "sai thứ tự" in r.vi
    long_name = {**tables, "XML1": {**tables["XML1"], "HO_TEN": "A" * 256}}
    r = _refusal(_form(_signed_with(long_name, signer)), signer)
    assert "HO_TEN" in r.vi and "255" in r.vi
    not_number = {**tables, "XML1": {**tables["XML1"], "T_THUOC": "mười"}}
    r = _refusal(_form(_signed_with(not_number, signer)), signer)
    assert "T_THUOC" in r.vi and "không phải số" in r.vi
    no_summary = {"XML1": tables["XML1"]}
    assert "XML8" in _refusal(_form(_signed_with(no_summary, signer)), signer).vi
    # signatures: tampered, missing, foreign
    tampered = good.replace(b"<NGAYLAP>", b"<NGAYLAP>1", 1)
    assert _refusal(_form(tampered), signer).code == "403"
    unsigned = xml130_out.envelope(tables)
    assert _refusal(_form(unsigned), signer).code == "403"
    from cryptography.hazmat.primitives.asymmetric import rsa

    from hssk.share.xmlsign import _self_signed

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    foreign = sign_envelope(
        xml130_out.envelope(tables), Signer(other_key, _self_signed(other_key, "X"))
    )
    assert _refusal(_form(foreign), signer).code == "403"
    # a duplicate MA_LK: refused with 409, which tells the sender the gateway has the visit
    partner = _channels(sim.port)[0]
    body = {"loaiHoSo": "130", "maTinh": "01", "maCSKCB": "01001",
            "fileHSBase64": base64.b64encode(good).decode()}  # fmt: skip
    with httpx.Client() as client:
        first = gateway.classify(gateway.post(client, partner, body))
        second_resp = gateway.post(client, partner, body)
    assert first == (True, False, None)
    assert second_resp.json()["maKetQua"] == "409"
    assert gateway.classify(second_resp)[:2] == (True, False)
    assert sim.state.counters["gateway.duplicates"] == 1 and len(sim.state.hoso) == 1


def test_gateway_token_is_taken_once_and_required(signer: Signer, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HSSK_TEST_GATEWAY_PASSWORD", "mat-khau-cong")
    guarded = Sim(ChannelState([signer.certificate], password="mat-khau-cong"))
    try:
        base = f"http://127.0.0.1:{guarded.port}"
        partner = partners.from_dict({
            "id": "gw-token", "channel": "xml130-gateway",
            "endpoint": f"{base}{channel_sim.GATEWAY_PATHS[0]}",
            "auth": {"type": "gateway-token", "token_url": f"{base}{channel_sim.TOKEN_PATH}",
                     "username": "hssk", "password_env": "HSSK_TEST_GATEWAY_PASSWORD"},
        })  # fmt: skip
        body = gateway.payload(_offline_visit(), signer)
        with httpx.Client() as client:
            unauthenticated = gateway.post(client, _channels(guarded.port)[0], body)
            first = gateway.classify(gateway.post(client, partner, body))
            second = gateway.classify(gateway.post(client, partner, body))
        assert unauthenticated.status_code == 401
        assert gateway.classify(unauthenticated)[:2] == (False, True)  # a new token may help
        assert first == (True, False, None) and second[:2] == (True, False)
        assert guarded.state.counters["token.issued"] == 1
    finally:
        guarded.server.shutdown()
        guarded.server.server_close()


# --- the health-check hub -----------------------------------------------------------------------


def test_templates_by_kind_and_age_and_the_hub_checks_strictly(signer: Signer, sim: Sim) -> None:
    visit = _offline_visit()
    assert ksk.choose(visit).name == "ksk-adult"
    child = xml130_out.Visit(visit.encounter, {**visit.patient, "birthDate": "2023-01-10"},
                             visit.related)  # fmt: skip
    assert ksk.choose(child).name == "ksk-child"
    pupil = xml130_out.Visit(visit.encounter, {**visit.patient, "birthDate": "2015-01-10"},
                             visit.related)  # fmt: skip
    assert ksk.choose(pupil).name == "ksk-student"
    driver_enc = {**visit.encounter, "type": [{"coding": [{"code": "ksk-lai-xe"}]}]}
    assert ksk.choose(xml130_out.Visit(driver_enc, visit.patient, visit.related)).name == (
        "ksk-driver"
    )
    body = ksk.payload(visit, signer)
    hoso = orjson.loads(body["hoSo"])
    record = hoso["duLieu"]
    assert list(record) == ksk.hub().templates["ksk-adult"].codes
    assert (record["MA_CSKCB"], record["NGAY_VAO"], record["GIOI_TINH"]) == (
        "01001", "04/03/2026", "2"
    )  # fmt: skip
    assert (record["CHIEU_CAO"], record["CAN_NANG"], record["NGAY_SINH"]) == (
        "160", "50", "09/08/1975"
    )  # fmt: skip
    for template in ("ksk-child", "ksk-student"):
        v = child if template == "ksk-child" else pupil
        r = ksk.payload(v, signer)
        assert ksk.check(r, [signer.certificate]) is None, template
    assert ksk.check(body, [signer.certificate]) is None

    def resigned(data: dict[str, Any]) -> dict[str, Any]:
        from hssk.share.xmlsign import sign_bytes

        text = orjson.dumps({**hoso, "duLieu": data}).decode()
        return {**body, "hoSo": text, "chuKySo": sign_bytes(text.encode(), signer)}

    wrong = {("NGAY_KHAM" if k == "NGAY_VAO" else k): v for k, v in record.items()}
    refusal = ksk.check(resigned(wrong), [signer.certificate])
    assert refusal is not None and refusal.field == "NGAY_KHAM" and refusal.code == "400"
    bad_date = ksk.check(resigned({**record, "NGAY_VAO": "2026-03-04"}), [signer.certificate])
    assert bad_date is not None and bad_date.field == "NGAY_VAO" and "dd/mm/yyyy" in bad_date.vi
    no_name = ksk.check(resigned({**record, "HO_TEN": ""}), [signer.certificate])
    assert no_name is not None and no_name.field == "HO_TEN"
    forged = {**body, "hoSo": body["hoSo"].replace("01001", "01002")}
    assert ksk.check(forged, [signer.certificate]).code == "403"  # type: ignore[union-attr]
    partner = _channels(sim.port)[1]
    with httpx.Client() as client:
        assert ksk.classify(ksk.post(client, partner, body)) == (True, False, None)
        again = ksk.post(client, partner, body)
        refused = ksk.post(client, partner, forged)
    assert again.json()["maKetQua"] == "409" and ksk.classify(again)[:2] == (True, False)
    assert refused.status_code == 403 and ksk.classify(refused)[:2] == (False, False)
    assert len(sim.state.ksk) == 1


def test_overdue_health_checks_show_in_the_list_and_the_metrics(
    clean_db: Database, sim: Sim
) -> None:
    with clean_db.connection() as conn:
        load_province(conn, 8, seed=5)
        partners.sync(conn, _channels(sim.port)[1:])
        pid, _ = _adult(conn)
        _checkup(conn, pid, clock.today() - timedelta(days=3), "late")
        _checkup(conn, pid, clock.today(), "on-time")
        late = outbox.events(conn, overdue=True)
        assert [e["partner"] for e in late] == ["hub"] and late[0]["overdue"]
        text = render(conn)
    assert 'hssk_outbox_overdue_events{partner="hub"} 1.0' in text
    assert 'hssk_outbox_lag_seconds{partner="hub"}' in text


# --- exactly once through kill -9 ---------------------------------------------------------------


def test_channels_deliver_exactly_once_through_failures_and_kill9(
    clean_db: Database, signer: Signer, tmp_path: Path
) -> None:
    cert = tmp_path / "platform.pem"
    cert.write_bytes(signer.certificate.public_bytes(serialization.Encoding.PEM))
    port = _free_port()
    env = {**os.environ, "HSSK_DATABASE_URL": clean_db.url}  # the same data dir: same signer
    sim = subprocess.Popen(
        [HSSK, "share", "channel-simulator", "--port", str(port), "--trust", str(cert),
         "--fail-rate", "0.3", "--seed", "2"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{url}/_stats")
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        with clean_db.connection() as conn:
            load_province(conn, 40, seed=6)
            partners.sync(conn, _channels(port))
            persons = [r[0] for r in conn.execute(
                "SELECT id FROM person WHERE birth_date IS NOT NULL ORDER BY id LIMIT 20")]  # fmt: skip
            for i, pid in enumerate(persons):
                _checkup(conn, pid, clock.today() - timedelta(days=i % 2), f"k{i}")
            (expected,) = conn.execute("SELECT count(*) FROM outbox").fetchone()
        assert expected == 2 * len(persons)
        cmd = [HSSK, "share", "worker", "--batch", "5", "--concurrency", "3", "--lease", "2",
               "--base-delay", "0.05", "--max-delay", "0.5"]  # fmt: skip
        first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            stats = httpx.get(f"{url}/_stats", timeout=30).json()
            if stats["hoso"] + stats["ksk"] >= expected // 3:
                break
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)  # mid-flight: some events stay leased
        first.wait(10)
        with clean_db.connection() as conn:
            done = conn.execute("SELECT count(*) FROM outbox WHERE status = 'delivered'").fetchone()
        assert done[0] < expected
        second = subprocess.run([*cmd, "--until-idle", "--max-seconds", "120"], env=env,
                                capture_output=True, timeout=180)  # fmt: skip
        assert second.returncode == 0, second.stderr.decode()[-2000:]
        with clean_db.connection() as conn:
            rows = conn.execute("SELECT partner, subject, status, attempts FROM outbox").fetchall()
        assert {r[2] for r in rows} == {"delivered"}
        assert max(r[3] for r in rows) > 1  # failures were retried
        received = httpx.get(f"{url}/_received", timeout=30).json()
        stats = httpx.get(f"{url}/_stats", timeout=30).json()
    finally:
        sim.terminate()
        sim.wait(10)
    keys = [h["maLk"] for h in received["hoso"]]
    assert len(keys) == len(set(keys)) == len(persons) == stats["gateway.accepted"]
    visits = [k["maLuotKham"] for k in received["ksk"]]
    assert len(visits) == len(set(visits)) == len(persons) == stats["ksk.accepted"]
    assert set(keys) == set(visits)
    assert stats.get("failed", 0) > 0


def test_visit_days_and_check_up_ages_count_in_vietnam_days() -> None:
    from hssk.share.xml130_out import _days, vn_day

    # admitted 20:00 UTC on 01/12 = 03:00 on 02/12 in Vietnam; out on 06/12: five days, not six
    assert vn_day("2026-12-01T20:00:00Z").isoformat() == "2026-12-02"
    assert _days("03", "2026-12-01T20:00:00Z", "2026-12-06T10:00:00+07:00") == "5"
    assert vn_day("2026-12-06").isoformat() == "2026-12-06"  # a date is the day written
