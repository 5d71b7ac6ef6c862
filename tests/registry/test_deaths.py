"""Deaths from every source reach the person: a death paper, an XML1 whose result is death, a
station entry (CSV and web form) and the population register each set the death date, change
the book and stop its reminders; re-sending changes nothing; impossible deaths are refused."""

from __future__ import annotations

import csv
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hssk.access import Actor
from hssk.db import Database
from hssk.ingest import kinds, runner
from hssk.registry import (
    DEATH_SOURCES,
    Death,
    SourceRecord,
    get_person,
    link,
    mark_deceased_many,
)
from hssk.registry.persons import VN
from hssk.web import backend, station
from hssk.web.book import PersonView, build_book
from tests.factories.samples import visit, write_feed

CHILD_BIRTH = "2025-06-01"  # a small child: the book shows a vaccination schedule
DIED = date(2026, 11, 1)


@pytest.fixture
def rdb(clean_db: Database) -> Database:
    with clean_db.connection() as conn:
        conn.execute(
            "INSERT INTO unit (id, kind, name, facility_code) VALUES"
            " ('F01001', 'hospital', 'Bệnh viện 01001', '01001')"
        )
    return clean_db


def _person(db: Database, cccd: str) -> tuple[int, datetime | None]:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT coalesce(merged_into, id), deceased_at FROM person WHERE cccd = %s", (cccd,)
        ).fetchone()
    assert row is not None, f"no person with CCCD {cccd}"
    return int(row[0]), row[1]


def _book(db: Database, pid: int) -> Any:
    with db.connection() as conn:
        data = backend.book_data(conn, pid, self_entries=False)
    assert data is not None
    return build_book(data.person, data.resources)


def _deaths_recorded(db: Database) -> tuple[int, int]:
    """(death reports kept, death-record audit events)."""
    with db.connection() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM person_death),"
            " (SELECT count(*) FROM audit_event WHERE action = 'death-record')"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _assert_dead_in_book(db: Database, cccd: str, day: date) -> None:
    pid, at = _person(db, cccd)
    assert at is not None and at.astimezone(VN).date() == day
    book = _book(db, pid)
    assert book.admin.deceased_at is not None
    assert book.admin.deceased_at.astimezone(VN).date() == day
    assert book.schedule == []  # no vaccination reminders for a deceased child


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _paper(cccd: str, died: str, n: int = 1) -> bytes:
    return (
        "<HSDLGBT><THONG_TIN><SO>GBT" + str(n) + "</SO><HO_TEN>Phạm Văn Bé</HO_TEN>"
        "<NGAY_SINH>20250601</NGAY_SINH><GIOI_TINH>1</GIOI_TINH>"
        f"<SO_CCCD>{cccd}</SO_CCCD><NGAY_TU_VONG>{died}</NGAY_TU_VONG><MA_CSKCB>01001</MA_CSKCB>"
        "<NGUYEN_NHAN_TU_VONG>Viêm phổi nặng</NGUYEN_NHAN_TU_VONG></THONG_TIN></HSDLGBT>"
    ).encode()


def _population(cccd: str, died: str, rid: str = "DC1") -> dict[str, str]:
    return {"ma_ban_ghi": rid, "so_dinh_danh": cccd, "ho_ten": "Trần Thị Bé",
            "ngay_sinh": CHILD_BIRTH, "gioi_tinh": "Nữ", "ma_xa": "00004", "ma_ho": "HO-1",
            "quan_he_chu_ho": "Con", "ngay_mat": died}  # fmt: skip


def _station(cccd: str, died: str, rid: str = "TYT1") -> dict[str, str]:
    return {"ma_ban_ghi": rid, "loai": "tu_vong", "ngay": died, "ma_tram": "01001",
            "ho_ten": "Lê Văn Bé", "ngay_sinh": CHILD_BIRTH, "gioi_tinh": "Nam",
            "so_cccd": cccd, "ngay_mat": died, "ma_icd": "J18.9",
            "nguyen_nhan_tu_vong": "Viêm phổi"}  # fmt: skip


def test_death_paper_sets_the_death_changes_the_book_and_is_idempotent(
    rdb: Database, tmp_path: Path
) -> None:
    cccd = "001225000101"
    with rdb.connection() as conn:  # the child is known, with a schedule, before the paper
        pid = link(conn, SourceRecord("population", "x", "Phạm Văn Bé", CHILD_BIRTH, "M",
                                      cccd=cccd)).person_id  # fmt: skip
    assert _book(rdb, pid).schedule and _book(rdb, pid).admin.deceased_at is None
    (tmp_path / "gbt.xml").write_bytes(_paper(cccd, "202611010930"))
    s = runner.ingest(rdb, "edoc", [tmp_path / "gbt.xml"], workers=0)
    assert s.stored == {"DocumentReference": 1}, s.errors
    _assert_dead_in_book(rdb, cccd, DIED)
    assert _person(rdb, cccd)[1] == datetime(2026, 11, 1, 2, 30, tzinfo=UTC)  # 09:30 in Hà Nội
    with rdb.connection() as conn:
        audit = conn.execute(
            "SELECT person_id, detail FROM audit_event WHERE action = 'death-record'"
        ).fetchall()
    assert [(a[0], a[1]["source"]) for a in audit] == [(pid, "edoc")]
    before = _deaths_recorded(rdb)
    again = runner.ingest(rdb, "edoc", [tmp_path / "gbt.xml"], workers=0)
    assert again.quarantined == 0 and not again.stored
    assert _deaths_recorded(rdb) == before == (1, 1)


def test_xml1_whose_result_is_death(rdb: Database, tmp_path: Path) -> None:
    cccd = "001225000102"
    v = visit(1, SO_CCCD=cccd, NGAY_SINH="202506010000", KET_QUA_DTRI="5",
              NGAY_VAO="202610300800", NGAY_RA="202611011015")  # fmt: skip
    s = runner.ingest(rdb, "xml130", [write_feed(tmp_path / "v.xml", [v])], workers=0)
    assert s.quarantined == 0, s.errors
    _assert_dead_in_book(rdb, cccd, DIED)
    # the same hồ sơ again: nothing more recorded
    before = _deaths_recorded(rdb)
    runner.ingest(rdb, "xml130", [write_feed(tmp_path / "v2.xml", [v])], workers=0)
    assert _deaths_recorded(rdb) == before == (1, 1)


def test_station_csv_death_entry(rdb: Database, tmp_path: Path) -> None:
    cccd = "001225000103"
    path = _csv(tmp_path / "tram.csv", [_station(cccd, "2026-11-01")])
    s = runner.ingest(rdb, "station", [path], workers=0)
    assert s.quarantined == 0 and s.stored == {"Observation": 1}, s.errors
    _assert_dead_in_book(rdb, cccd, DIED)
    runner.ingest(rdb, "station", [path], workers=0)
    assert _deaths_recorded(rdb) == (1, 1)


def test_population_register_death(rdb: Database, tmp_path: Path) -> None:
    cccd = "001325000104"
    with rdb.connection() as conn:
        conn.execute("INSERT INTO share_partner (id, config) VALUES ('vneid', '{}')")
    path = _csv(tmp_path / "dan_cu.csv", [_population(cccd, "2026-11-01")])
    s = runner.ingest(rdb, "population", [path], workers=0)
    assert s.quarantined == 0, s.errors
    _assert_dead_in_book(rdb, cccd, DIED)
    pid = _person(rdb, cccd)[0]
    with rdb.connection() as conn:
        outbox = conn.execute("SELECT partner, person_id FROM outbox").fetchall()
        presence = conn.execute("SELECT count(*) FROM record_presence").fetchone()
    assert outbox == [("vneid", pid)]  # the partner feed re-sends the person, now deceased
    assert presence == (0,)  # a death is not a clinical record (supervision counters)
    with rdb.connection() as conn:  # the register's household is applied too
        hh = conn.execute(
            "SELECT h.code FROM person p JOIN household h ON h.id = p.household_id"
            " WHERE p.cccd = %s",
            (cccd,),
        ).fetchone()
    assert hh == ("HO-1",)


def test_station_web_death_entry_and_refusals(rdb: Database) -> None:
    cccd = "001225000105"
    with rdb.connection() as conn:
        pid = link(conn, SourceRecord("population", "w", "Lê Văn Bé", CHILD_BIRTH, "M",
                                      cccd=cccd)).person_id  # fmt: skip
    actor = Actor(account_id="tyt.a", kind="staff", unit_id="F01001", roles=frozenset({"station"}))
    raw = {"cccd": cccd, "date": "01/11/2026", "cause": "Viêm phổi", "icd": "J18.9"}
    today = date(2026, 12, 1)
    with rdb.connection() as conn:
        form, data = station.validate_death(raw, today)
        assert form.ok
        where = station.station_ref(conn, "F01001")
        early = {**data, "date": date(2025, 5, 1)}  # before the child was born
        refused = station.save_death(conn, actor, pid, where, early, "k0", today)
        assert not isinstance(refused, str)
        assert "trước ngày sinh" in refused.by_field("vi")["date"]
        saved = station.save_death(conn, actor, pid, where, data, "k1", today)
        assert isinstance(saved, str)
        later = {**data, "date": date(2026, 11, 20)}  # a second death: refused, clearly
        again = station.save_death(conn, actor, pid, where, later, "k2", today)
        assert not isinstance(again, str)
        assert "already recorded dead on 01/11/2026" in again.by_field("en")["date"]
    _assert_dead_in_book(rdb, cccd, DIED)
    with rdb.connection() as conn:
        who = conn.execute(
            "SELECT actor, basis FROM audit_event WHERE action = 'death-record'"
        ).fetchall()
    assert who == [("tyt.a", "station")]


def test_impossible_deaths_are_refused(rdb: Database, tmp_path: Path) -> None:
    # before birth: the register's record is held back with the reason
    path = _csv(tmp_path / "dan_cu.csv", [_population("001325000106", "2024-01-01")])
    s = runner.ingest(rdb, "population", [path], workers=0)
    assert [e["rule"] for e in s.errors] == ["death.before-birth"]
    assert _person(rdb, "001325000106")[1] is None
    # a second death on another day: the station's entry is held back; the same day is fine
    cccd = "001225000107"
    (tmp_path / "gbt.xml").write_bytes(_paper(cccd, "20261101"))
    runner.ingest(rdb, "edoc", [tmp_path / "gbt.xml"], workers=0)
    rows = [_station(cccd, "2026-11-05", "TYT9"), _station(cccd, "2026-11-01", "TYT10")]
    s = runner.ingest(rdb, "station", [_csv(tmp_path / "tram.csv", rows)], workers=0)
    assert [(e["rule"], e["record"]) for e in s.errors] == [("death.already-dead", "TYT9")]
    assert "01/11/2026 (nguồn: Giấy báo tử)" in s.errors[0]["reason_vi"]
    assert "đính chính" in s.errors[0]["reason_vi"] and s.errors[0]["element"] == "ngay_mat"
    _assert_dead_in_book(rdb, cccd, DIED)


def _child(conn: psycopg.Connection[Any], n: int) -> int:
    given = ("Lan", "Mai", "Cúc", "Đào", "Huệ", "Thu", "Hoa", "Nga", "Yến", "Vân")[n]
    rec = SourceRecord("t", f"c{n}", f"Ngô Thị {given}", f"2025-06-{n + 1:02d}", "F")
    return link(conn, rec).person_id


def test_registry_keeps_the_most_authoritative_report_whatever_the_order(
    rdb: Database,
) -> None:
    with rdb.connection() as conn:
        a, b, c = (_child(conn, n) for n in range(3))
        noon = datetime(2026, 11, 1, 12, 0)  # Vietnam time
        reports = [
            Death(a, DIED, "station", "s1"),
            Death(a, noon, "population", "p1"),  # same day, more authoritative: its time wins
            Death(b, date(2026, 12, 2), "station", "s2"),  # tomorrow in Vietnam
            Death(c, datetime(2026, 11, 30, 23, 30, tzinfo=UTC), "edoc", "e1"),
        ]
        out = mark_deceased_many(conn, reports, today=date(2026, 12, 1))
        assert {(d.person_id, d.source) for d in out.applied} == {(a, "population"), (c, "edoc")}
        assert [d.source_ref for d in out.confirmed] == ["s1"]
        assert [(r.rule, r.death.person_id) for r in out.refused] == [("death.future", b)]
        person = get_person(conn, a)
        assert person is not None and person.deceased_at == noon.replace(tzinfo=VN)
        dead_c = get_person(conn, c)
        # 23:30 UTC on 30 November is 1 December in Vietnam: not in the future there
        assert dead_c is not None and dead_c.deceased_at is not None
        assert dead_c.deceased_at.astimezone(VN).date() == date(2026, 12, 1)
        # the same reports again change nothing
        again = mark_deceased_many(conn, reports[:2], today=date(2026, 12, 1))
        assert len(again.unchanged) == 2 and not again.changed
        # a less authoritative first report is refined by a later, better one (same day)
        d = _child(conn, 9)
        mark_deceased_many(conn, [Death(d, DIED, "station", "s9")], today=date(2026, 12, 1))
        up = mark_deceased_many(conn, [Death(d, noon, "xml130", "x9")], today=date(2026, 12, 1))
        assert [x.source_ref for x in up.upgraded] == ["x9"]


def test_no_upcoming_appointment_for_a_deceased_person() -> None:
    soon = (datetime.now(UTC) + timedelta(days=10)).isoformat()
    appointment = {"resourceType": "Appointment", "id": "a1", "status": "booked", "start": soon}

    class Res:
        type, id, body = "Appointment", "a1", appointment

    alive = PersonView(id=1, birth_date=date(2025, 6, 1))
    dead = PersonView(id=1, birth_date=date(2025, 6, 1), deceased_at=datetime.now(UTC))
    assert build_book(alive, [Res()]).appointments[0].upcoming
    assert build_book(alive, [Res()]).schedule
    book = build_book(dead, [Res()])
    assert not book.appointments[0].upcoming and book.schedule == []


def test_every_death_source_is_an_ingest_kind() -> None:
    reporting = {k.name for k in kinds.KINDS_LIST if k.death_element}
    assert reporting == set(DEATH_SOURCES)
