"""Stations cannot file impossible or misattributed records, whether typed in the web form or
sent as the station CSV (the same checks, ``ingest.station_map``): dates against the person's
birth, death and today; one death per person, corrected only by an audited amendment;
household codes on record; an ICD-10 code outside its diagnosis's chapter needs confirming."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path

import pytest

from hssk.access import Actor
from hssk.db import Database
from hssk.ingest import runner
from hssk.kernel.icd10 import mismatch
from hssk.registry import SourceRecord, link
from hssk.web import station

TODAY = date(2026, 12, 1)
BIRTH = "1960-03-15"
ACTOR = Actor(account_id="tyt.a", kind="staff", unit_id="F01001", roles=frozenset({"station"}))


@pytest.fixture
def sdb(clean_db: Database) -> Database:
    with clean_db.connection() as conn:
        conn.execute(
            "INSERT INTO unit (id, kind, name, facility_code) VALUES"
            " ('F01001', 'station', 'Trạm y tế xã 01001', '01001')"
        )
    return clean_db


def _person(db: Database, cccd: str, name: str = "Đỗ Văn Hải") -> int:
    with db.connection() as conn:
        rec = SourceRecord("population", cccd, name, BIRTH, "M", cccd=cccd)
        return link(conn, rec).person_id


def _form(db: Database, name: str, raw: dict[str, str], pid: int) -> dict[str, str]:
    """The web form's messages for ``raw`` (both checking steps), in Vietnamese."""
    validate = {"checkup": station.validate_checkup, "household": station.validate_household,
                "death": station.validate_death, "death-amend": station.validate_amendment}  # fmt: skip
    form, data = validate[name](raw, TODAY)
    with db.connection() as conn:
        station.check_person(conn, name, form, data, pid, TODAY)
    return form.by_field("vi")


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=sorted({k for r in rows for k in r}))
        w.writeheader()
        w.writerows(rows)
    return path


def _row(cccd: str, rid: str, **kw: str) -> dict[str, str]:
    return {"ma_ban_ghi": rid, "loai": "kham_dinh_ky", "ngay": "2026-11-20", "ma_tram": "01001",
            "ho_ten": "Đỗ Văn Hải", "ngay_sinh": BIRTH, "gioi_tinh": "Nam", "so_cccd": cccd,
            "can_nang_kg": "60", **kw}  # fmt: skip


def test_checkup_dated_before_birth_is_refused_by_form_and_csv(
    sdb: Database, tmp_path: Path
) -> None:
    cccd = "001060000201"
    pid = _person(sdb, cccd)
    raw = {"cccd": cccd, "kind": "ksk-dinh-ky", "date": "01/01/1890", "weight": "60"}
    assert "trước ngày sinh của người này (15/03/1960)" in _form(sdb, "checkup", raw, pid)["date"]
    ok = _form(sdb, "checkup", {**raw, "date": "20/11/2026"}, pid)
    assert ok == {}
    s = runner.ingest(sdb, "station", [_csv(tmp_path / "t.csv", [_row(cccd, "R1", ngay="1890-01-01"),
                                                               _row(cccd, "R2")])], workers=0)  # fmt: skip
    assert [e["rule"] for e in s.errors] == ["date.before-birth"]
    assert s.stored.get("Encounter") == 1  # the plausible row is stored


def test_checkup_after_death_is_refused(sdb: Database, tmp_path: Path) -> None:
    cccd = "001060000202"
    pid = _person(sdb, cccd)
    with sdb.connection() as conn:
        _, data = station.validate_death({"cccd": cccd, "date": "01/10/2026",
                                             "cause": "Nhồi máu cơ tim"}, TODAY)  # fmt: skip
        where = station.station_ref(conn, "F01001")
        assert isinstance(station.save_death(conn, ACTOR, pid, where, data, "d1", TODAY), str)
    raw = {"cccd": cccd, "kind": "ksk-dinh-ky", "date": "20/11/2026", "weight": "60"}
    assert "sau ngày mất của người này (01/10/2026)" in _form(sdb, "checkup", raw, pid)["date"]
    s = runner.ingest(sdb, "station", [_csv(tmp_path / "t.csv", [_row(cccd, "R3")])], workers=0)
    assert [e["rule"] for e in s.errors] == ["date.after-death"]


def test_a_second_death_is_refused_and_corrected_by_an_audited_amendment(sdb: Database) -> None:
    cccd = "001060000203"
    pid = _person(sdb, cccd)
    with sdb.connection() as conn:
        _, data = station.validate_death({"cccd": cccd, "date": "01/10/2026",
                                             "cause": "Nhồi máu cơ tim"}, TODAY)  # fmt: skip
        where = station.station_ref(conn, "F01001")
        assert isinstance(station.save_death(conn, ACTOR, pid, where, data, "d1", TODAY), str)
    second = {"cccd": cccd, "date": "05/10/2026", "cause": "Nhồi máu cơ tim"}
    msg = _form(sdb, "death", second, pid)["date"]
    assert "đã được ghi nhận tử vong ngày 01/10/2026" in msg and "đính chính" in msg
    # the correction: a reason is required; then the date changes and the change is audited
    amend = {"cccd": cccd, "date": "05/10/2026", "reason": "ngắn"}
    assert "lý do" in _form(sdb, "death-amend", amend, pid)["reason"]
    amend["reason"] = "Giấy báo tử số 12/GBT ghi ngày 05/10/2026"
    assert _form(sdb, "death-amend", amend, pid) == {}
    _, data = station.validate_amendment(amend, TODAY)
    with sdb.connection() as conn:
        assert station.save_amendment(conn, ACTOR, pid, data, "a1", TODAY) is None
        died = conn.execute("SELECT deceased_at FROM person WHERE id = %s", (pid,)).fetchone()
        audit = conn.execute(
            "SELECT actor, detail FROM audit_event WHERE action = 'death-amend'"
        ).fetchall()
    assert died is not None and died[0].date().isoformat() in ("2026-10-04", "2026-10-05")
    assert [(a[0], a[1]["died_on_before"], a[1]["died_on"]) for a in audit] == [
        ("tyt.a", "2026-10-01", "2026-10-05")
    ]
    # an amendment for a living person is refused
    other = _person(sdb, "001060000204", "Vũ Thị Mai")
    living = {**amend, "cccd": "001060000204"}
    assert "chưa được ghi nhận tử vong" in _form(sdb, "death-amend", living, other)["cccd"]


def test_household_codes_must_exist_in_form_and_csv(sdb: Database, tmp_path: Path) -> None:
    cccd, head = "001060000205", "001060000206"
    pid = _person(sdb, cccd)
    raw = {"cccd": cccd, "action": "join", "household_code": "HO-404", "date": "20/11/2026"}
    assert "Không có hộ mã HO-404" in _form(sdb, "household", raw, pid)["household_code"]
    assert _form(sdb, "household", {**raw, "action": "new"}, pid) == {}
    rows = [_row(cccd, "H1", loai="ho_gia_dinh", ma_ho="HO-404", quan_he_chu_ho="Con"),
            _row(head, "H2", loai="ho_gia_dinh", ma_ho="HO-77", quan_he_chu_ho="Chủ hộ"),
            _row(cccd, "H3", loai="ho_gia_dinh", ma_ho="HO-77", quan_he_chu_ho="Con")]  # fmt: skip
    s = runner.ingest(sdb, "station", [_csv(tmp_path / "h.csv", rows)], workers=0)
    assert [(e["record"], e["rule"]) for e in s.errors] == [("H1", "household.unknown")]
    with sdb.connection() as conn:  # a head founds the household, a member joins it
        hh = conn.execute(
            "SELECT h.code FROM person p JOIN household h ON h.id = p.household_id WHERE p.id = %s",
            (pid,),
        ).fetchone()
    assert hh == ("HO-77",)
    # once on record, "new household" with that code is refused
    assert "đã có trong sổ hộ" in _form(sdb, "household", {**raw, "action": "new",
                                                           "household_code": "HO-77"}, pid)[
        "household_code"
    ]  # fmt: skip


def test_icd_outside_its_diagnosis_chapter_is_flagged() -> None:
    wrong = mismatch("X99", "Tăng huyết áp")
    assert wrong is not None and "Chương XX" in wrong.vi and "Chương IX" in wrong.vi
    assert mismatch("I10", "Tăng huyết áp độ 2") is None
    assert mismatch("O13", "Tăng huyết áp thai kỳ") is None
    assert mismatch("S72.0", "Gãy cổ xương đùi") is None  # words not listed: no opinion
    raw = {"cccd": "001060000207", "kind": "ksk-dinh-ky", "date": "20/11/2026", "weight": "60",
           "icd": "X99", "conclusion": "Tăng huyết áp"}  # fmt: skip
    form, _ = station.validate_checkup(raw, TODAY)
    assert "icd" in form.warned and "Tôi đã kiểm tra" in form.by_field("vi")["icd"]
    form, data = station.validate_checkup({**raw, "icd_confirmed": "1"}, TODAY)
    assert form.ok and data["icd"] == "X99"
    # an unknown code in the wrong chapter says both
    form, _ = station.validate_checkup({**raw, "icd": "X99.99"}, TODAY)
    text = form.by_field("vi")["icd"]
    assert "không có trong ICD-10" in text and "Chương XX" in text


def test_csv_keeps_an_icd_mismatch_with_the_warning_noted(sdb: Database, tmp_path: Path) -> None:
    cccd = "001060000208"
    _person(sdb, cccd)
    row = _row(cccd, "I1", ma_icd="X99", ket_luan="Tăng huyết áp")
    s = runner.ingest(sdb, "station", [_csv(tmp_path / "i.csv", [row])], workers=0)
    assert s.stored.get("Encounter") == 1
    with sdb.connection() as conn:
        noted = conn.execute("SELECT rule, status FROM ingest_error").fetchall()
    assert noted == [("icd10.chapter", "noted")]
