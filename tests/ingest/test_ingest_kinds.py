"""Other inputs: FHIR bundles/NDJSON, birth/death e-documents, newborns, HIV data, the CLI."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import orjson
from typer.testing import CliRunner

from hssk.db import Database
from hssk.ingest import kinds, runner
from hssk.ingest.cli import app
from hssk.ingest.xmlparse import build_table
from hssk.records import validate
from tests.factories.samples import expected_counts, visit, write_feed


def test_fhir_bundle_and_ndjson(idb: Database, tmp_path: Path) -> None:
    patient = {"resourceType": "Patient", "id": "p1", "name": [{"text": "Trần Thị Bình"}],
               "gender": "female", "birthDate": "1990-05-06",
               "identifier": [{"system": "https://fhir.hssk.vn/sid/cccd", "value": "001190012345"}]}  # fmt: skip
    obs = {"resourceType": "Observation", "id": "o1", "status": "final",
           "code": {"text": "Cân nặng"}, "subject": {"reference": "Patient/p1"},
           "valueQuantity": {"value": 55, "unit": "kg"}}  # fmt: skip
    bundle = {"resourceType": "Bundle", "type": "collection",
              "entry": [{"resource": patient}, {"resource": obs}]}  # fmt: skip
    (tmp_path / "b.json").write_bytes(orjson.dumps(bundle))
    s = runner.ingest(idb, "fhir", [tmp_path / "b.json"], workers=0)
    assert s.stored == {"Observation": 1} and s.persons == 1 and s.quarantined == 0
    bad = {"resourceType": "Observation", "code": {"text": "x"}}  # status is required
    orphan = {**obs, "id": "o2", "subject": {"reference": "Patient/unknown"}}
    lines = [orjson.dumps(x) for x in ({**obs, "id": "o3"}, bad, orphan)] + [b"{not json"]
    (tmp_path / "c.ndjson").write_bytes(b"\n".join(lines))
    s = runner.ingest(idb, "fhir", [tmp_path / "c.ndjson"], workers=0)
    assert s.stored == {"Observation": 1}
    assert sorted(e["rule"] for e in s.errors) == ["fhir.invalid", "json.syntax", "patient.unknown"]
    with idb.connection() as conn:
        pid = conn.execute("SELECT person_id FROM person_source WHERE source = 'fhir'").fetchone()[
            0
        ]
        rows = conn.execute(
            "SELECT person_id, body FROM resource WHERE type = 'Observation'"
        ).fetchall()
    assert {r[0] for r in rows} == {pid}
    assert all(r[1]["subject"]["reference"] == f"Patient/mpi-{pid}" for r in rows)
    with idb.connection() as conn:  # each run of a job is in the audit trail, with its counts
        runs = conn.execute(
            "SELECT detail FROM audit_event WHERE action = 'ingest-run' ORDER BY seq"
        ).fetchall()
    assert [r[0]["stored"] for r in runs][-2:] == [{"Observation": 1}, {"Observation": 1}]
    assert runs[-1][0]["quarantined"] == 3 and runs[-1][0]["kind"] == "fhir"


def test_birth_certificate_links_the_newborn_to_the_mother(idb: Database, tmp_path: Path) -> None:
    v = visit(1, HO_TEN="Lê Thị Mẹ", GIOI_TINH="2", SO_CCCD="001185000001", MA_LOAI_KCB="03")
    v["XML9"] = build_table("XML9", [{
        "MA_LK": "LK000001", "HO_TEN_NND": "Lê Thị Mẹ", "HO_TEN_CON": "Lê Văn Con",
        "GIOI_TINH_CON": "1", "NGAY_SINH_CON": "202501020630", "CAN_NANG_CON": "3200",
        "MA_THE_TAM": "TE1010123456789", "NGAY_CT": "20250103", "SO": "15",
    }])  # fmt: skip
    v["XML6"] = build_table(
        "XML6", [{"MA_LK": "LK000001", "NGAYKD_HIV": "20240101", "BDDT_ARV": "20240115"}]
    )
    s = runner.ingest(idb, "xml130", [write_feed(tmp_path / "birth.xml", [v])], workers=0)
    assert s.quarantined == 0, s.errors
    assert s.persons_created == 2
    with idb.connection() as conn:
        mother, baby = conn.execute("SELECT id, mother_id FROM person ORDER BY id").fetchall()
        doc = conn.execute(
            "SELECT person_id, body FROM resource WHERE type = 'DocumentReference'"
        ).fetchone()
        hiv = conn.execute(
            "SELECT sensitivity, body FROM resource WHERE codes @> ARRAY['hiv-care-record']"
        ).fetchone()
    assert baby[1] == mother[0]
    assert doc[0] == baby[0] and doc[1]["type"]["coding"][0]["code"] == "giay-chung-sinh"
    assert hiv[0] == "HIV"  # the store's sensitivity column: reads need the rule that allows it
    assert "B24" in [c["code"] for c in hiv[1]["code"]["coding"]]


def test_death_paper_edocument(idb: Database, tmp_path: Path) -> None:
    paper = ("<HSDLGBT><THONG_TIN><HO_TEN>Phạm Văn Già</HO_TEN><NGAY_SINH>19400101</NGAY_SINH>"
             "<GIOI_TINH>1</GIOI_TINH><SO_CCCD>001040000123</SO_CCCD>"
             "<NGAY_TU_VONG>202501050930</NGAY_TU_VONG><MA_CSKCB>01001</MA_CSKCB>"
             "<NGUYEN_NHAN_TU_VONG>Nhồi máu cơ tim</NGUYEN_NHAN_TU_VONG></THONG_TIN></HSDLGBT>")  # fmt: skip
    (tmp_path / "gbt.xml").write_text(paper, "utf-8")
    s = runner.ingest(idb, "edoc", [tmp_path / "gbt.xml"], workers=0)
    assert s.stored == {"DocumentReference": 1}, s.errors
    with idb.connection() as conn:
        body = conn.execute("SELECT body FROM resource").fetchone()[0]
    validate(body)
    assert body["description"] == "Nhồi máu cơ tim"


def test_cli_json_errors_and_replay(idb: Database, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HSSK_DATABASE_URL", idb.url)
    feed = write_feed(tmp_path / "a.xml", [visit(1), visit(2, NGAY_SINH="19851304")])
    runner = CliRunner()
    r = runner.invoke(app, ["xml130", str(feed), "--json", "--workers", "0"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["stored"]["Encounter"] == 1 and out["quarantined"] == 1
    assert set(out["errors"][0]) == {"file", "record", "element", "reason", "rule"}
    r = runner.invoke(app, ["errors", "--json"])
    err = json.loads(r.stdout)[0]
    assert err["rule"] == "date.impossible" and err["element"] == "NGAY_SINH"
    raw = runner.invoke(app, ["errors", "--raw", str(err["id"])]).stdout
    fixed = tmp_path / "fixed.xml"
    fixed.write_text(raw.replace("19851304", "19851004"), "utf-8")
    r = runner.invoke(app, ["replay", str(err["id"]), "--file", str(fixed), "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout.strip().splitlines()[-1])["stored"]["Encounter"] == 1
    r = runner.invoke(app, ["--resume", "--json"])
    assert r.exit_code == 0
    [job] = json.loads(runner.invoke(app, ["jobs", "--json"]).stdout)  # (a replay is no job)
    assert (job["kind"], job["status"], job["records"], job["quarantined"]) == (
        "xml130", "done", 2, 1
    )  # fmt: skip
    assert job["stored"] == sum(expected_counts().values())
    r = runner.invoke(app, ["jobs"])
    assert r.exit_code == 0 and "xong" in r.output and "xml130" in r.output
    r = runner.invoke(app, ["jobs", str(job["id"]), "--json"])
    assert json.loads(r.stdout)["errors"][0]["rule"] == "date.impossible"
    r = runner.invoke(app, ["jobs", "999999"])
    assert r.exit_code == 1 and "999999" in r.output


def test_cli_filters_and_discard(idb: Database, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("HSSK_DATABASE_URL", idb.url)
    feed = write_feed(tmp_path / "a.xml", [visit(1, NGAY_SINH="19851304"),
                                           visit(2, MA_BENH_CHINH="XX")])  # fmt: skip
    runner = CliRunner()
    assert runner.invoke(app, ["xml130", str(feed), "--workers", "0"]).exit_code == 0
    r = runner.invoke(app, ["errors", "--json", "--rule", "icd10.unknown"])
    [err] = json.loads(r.stdout)
    assert err["element"] == "MA_BENH_CHINH" and err["facility"] == "01001"
    assert json.loads(runner.invoke(app, ["errors", "--json", "--facility", "01002"]).stdout) == []
    r = runner.invoke(app, ["discard", str(err["id"])])
    assert r.exit_code != 0  # --reason is required
    r = runner.invoke(app, ["discard", str(err["id"]), "--reason", "gửi nhầm"])
    assert r.exit_code == 0, r.output
    left = json.loads(runner.invoke(app, ["errors", "--json"]).stdout)
    assert [e["rule"] for e in left] == ["date.impossible"]
    gone = json.loads(runner.invoke(app, ["errors", "--json", "--status", "discarded"]).stdout)
    assert [(e["id"], e["discard_reason"]) for e in gone] == [(err["id"], "gửi nhầm")]
    r = runner.invoke(app, ["discard", str(err["id"]), "--reason", "lần nữa"])
    assert r.exit_code == 1 and "bị loại bỏ" in r.output


def test_bundle_with_urn_uuid_references(idb: Database, tmp_path: Path) -> None:
    pat = "urn:uuid:4b1d5a5e-9d3c-4f3e-8f4b-1a2b3c4d5e6f"
    bundle = {"resourceType": "Bundle", "type": "transaction", "entry": [
        {"fullUrl": pat, "resource": {"resourceType": "Patient", "name": [{"text": "Võ Văn Một"}],
                                      "birthDate": "1970-01-01", "gender": "male"},
         "request": {"method": "POST", "url": "Patient"}},
        {"fullUrl": "urn:uuid:0c2f3a44-1111-4a4a-9b9b-222233334444",
         "resource": {"resourceType": "Condition", "subject": {"reference": pat},
                      "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]}},
         "request": {"method": "POST", "url": "Condition"}},
    ]}  # fmt: skip
    (tmp_path / "t.json").write_bytes(orjson.dumps(bundle))
    s = runner.ingest(idb, "fhir", [tmp_path / "t.json"], workers=0)
    assert s.stored == {"Condition": 1} and s.quarantined == 0, s.errors
    with idb.connection() as conn:
        pid, body = conn.execute("SELECT person_id, body FROM resource").fetchone()
    assert pid is not None and body["subject"]["reference"] == f"Patient/mpi-{pid}"


def test_replay_of_one_bad_line(idb: Database, tmp_path: Path) -> None:
    from hssk.ingest import quarantine

    v = visit(1, labs=3)
    v["XML4"] = v["XML4"].replace(
        b"<NGAY_KQ>202501021100</NGAY_KQ>", b"<NGAY_KQ>2025010299</NGAY_KQ>", 1
    )
    s = runner.ingest(idb, "xml130", [write_feed(tmp_path / "a.xml", [v])], workers=0)
    assert s.stored["Observation"] == 2 and s.quarantined == 1
    err = s.errors[0]
    assert (err["rule"], err["element"]) == ("date.format", "NGAY_KQ")
    with idb.connection() as conn:
        raw = quarantine.get_error(conn, err["id"]).raw
        assert raw is not None and raw.count("<CHI_TIET_CLS>") == 1
        quarantine.correct(conn, err["id"], raw.replace("2025010299", "202501021100"))
    with idb.connection() as conn:
        done = quarantine.replay(conn, err["id"])
    assert done.stored == {"Observation": 1}
    with idb.connection() as conn:
        n_obs = conn.execute("SELECT count(*) FROM resource WHERE type = 'Observation'").fetchone()[
            0
        ]
        person = conn.execute("SELECT DISTINCT person_id FROM resource").fetchall()
        report = conn.execute(
            "SELECT body FROM resource WHERE type = 'DiagnosticReport'"
        ).fetchone()[0]
    assert n_obs == 3 and len(person) == 1
    assert len(report["result"]) == 2  # the replayed line did not shrink the visit's report


IMM_HEADER = (
    "ma_ban_ghi,ma_doi_tuong,chuong_trinh,ho_ten,ngay_sinh,gioi_tinh,so_cccd,dien_thoai,dia_chi,"
    "ma_xa,ten_xa,ho_ten_me,ma_vac_xin,ten_vac_xin,mui_so,ngay_tiem,so_lo,vi_tri_tiem,ma_co_so,ten_co_so"
)


def _imm(rid: str, **over: str) -> str:
    row = {"ma_ban_ghi": rid, "ma_doi_tuong": "TE1", "chuong_trinh": "TCMR", "ho_ten": "Bé An",
           "ngay_sinh": "2024-01-05", "gioi_tinh": "Nam", "ma_vac_xin": "BCG", "ten_vac_xin": "Lao",
           "mui_so": "1", "ngay_tiem": "2024-01-06", "so_lo": "BCG123", "vi_tri_tiem": "Cánh tay trái",
           "ma_co_so": "01001"}  # fmt: skip
    row.update(over)
    return ",".join(row.get(c, "") for c in IMM_HEADER.split(","))


def test_immunization_rows_and_broken_csv(idb: Database, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    rows = [_imm("T1"), _imm("T2", mui_so="x"), _imm("T3", ma_co_so="01999"),
            _imm("T4", ngay_tiem="2024-02-31"), _imm("T5", ma_vac_xin="")]  # fmt: skip
    (tmp_path / "a.csv").write_text("\n".join([IMM_HEADER, *rows]), "utf-8")
    s = runner.ingest(idb, "immunization", [tmp_path / "a.csv"], workers=0)
    assert s.stored == {"Immunization": 1}
    assert {e["record"]: e["rule"] for e in s.errors} == {
        "T2": "dose.invalid", "T3": "facility.unknown", "T4": "date.impossible", "T5": "required"}  # fmt: skip
    with idb.connection() as conn:
        body = conn.execute("SELECT body FROM resource").fetchone()[0]
    validate(body)
    assert (
        body["protocolApplied"][0]["doseNumberPositiveInt"] == 1 and body["lotNumber"] == "BCG123"
    )
    (tmp_path / "b.csv").write_bytes(
        (IMM_HEADER + "\n" + _imm("T9", ho_ten="Bé Ân")).encode("cp1258")
    )
    s = runner.ingest(idb, "immunization", [tmp_path / "b.csv"], workers=0)
    assert [e["rule"] for e in s.errors] == ["csv.encoding"] and "UTF-8" in s.errors[0]["reason"]

    def broken(*args: object) -> None:
        raise RuntimeError("defect")

    defective = dataclasses.replace(kinds.kind("immunization"), map=broken)
    monkeypatch.setitem(kinds.BY_NAME, "immunization", defective)
    s = runner.ingest(idb, "immunization", [tmp_path / "a.csv"], workers=0)
    assert s.status == "done" and {e["rule"] for e in s.errors} == {"internal"}
    assert s.quarantined == 5


def test_birth_paper_edocument_creates_mother_and_newborn(idb: Database, tmp_path: Path) -> None:
    paper = ("<HSDLGCS><DU_LIEU_GIAY_CHUNG_SINH><MA_GCS>GCS-01</MA_GCS><HO_TEN_NND>Đỗ Thị Hoa</HO_TEN_NND>"
             "<NGAYSINH_NND>19950203</NGAYSINH_NND><SO_CCCD_NND>001195000777</SO_CCCD_NND>"
             "<HO_TEN_CON>Đỗ Minh Khang</HO_TEN_CON><GIOI_TINH_CON>1</GIOI_TINH_CON>"
             "<NGAY_SINH_CON>202501100815</NGAY_SINH_CON><MA_CSKCB>01001</MA_CSKCB>"
             "<NGAY_CT>20250111</NGAY_CT></DU_LIEU_GIAY_CHUNG_SINH></HSDLGCS>")  # fmt: skip
    (tmp_path / "gcs.xml").write_text(paper, "utf-8")
    s = runner.ingest(idb, "edoc", [tmp_path / "gcs.xml"], workers=0)
    assert s.stored == {"DocumentReference": 1} and s.persons_created == 2, s.errors
    with idb.connection() as conn:
        people = conn.execute("SELECT id, full_name, mother_id FROM person ORDER BY id").fetchall()
    mother, baby = people
    assert baby[2] == mother[0] and "Khang" in baby[1]
