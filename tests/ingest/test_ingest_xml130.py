"""QĐ 130 ingest end to end on a real PostgreSQL: counts, idempotency, versions, quarantine."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from hssk.db import Database
from hssk.ingest import runner
from hssk.ingest.xml130_tables import LEGACY_4210_RENAMES
from hssk.ingest.xmlparse import parse_table
from hssk.records import everything, history, id_for_source_key
from tests.factories.samples import expected_counts, legacy_visit, visit, write_feed


def _count(db: Database) -> dict[str, int]:
    with db.connection() as conn:
        return dict(conn.execute("SELECT type, count(*) FROM resource GROUP BY type").fetchall())


def test_counts_equal_source_and_reingest_is_idempotent(idb: Database, tmp_path: Path) -> None:
    feed = write_feed(tmp_path / "a.xml", [visit(i) for i in range(1, 11)])
    s = runner.ingest(idb, "xml130", [feed], workers=0)
    want = {k: 10 * v for k, v in expected_counts().items()}
    assert s.quarantined == 0, s.errors
    assert s.stored == want
    assert _count(idb) == want
    assert s.persons == 10
    again = runner.ingest(idb, "xml130", [feed], workers=0)
    assert again.stored == {}
    assert again.skipped == sum(want.values())
    assert again.persons == 0  # identical hồ sơ are recognised by digest: no linking, no writing
    assert _count(idb) == want


def test_corrected_resend_makes_version_2(idb: Database, tmp_path: Path) -> None:
    runner.ingest(idb, "xml130", [write_feed(tmp_path / "a.xml", [visit(1)])], workers=0)
    fixed = write_feed(tmp_path / "b.xml", [visit(1, MA_BENH_CHINH="J02.9")])
    s = runner.ingest(idb, "xml130", [fixed], workers=0)
    assert s.updated["Condition"] == 1, str(s.to_json())
    cid = id_for_source_key("Condition", "01001|LK000001|XML1|1|Condition|main")
    with idb.connection() as conn:
        versions = history(conn, "Condition", cid)
    assert [v.version for v in versions] == [2, 1]
    assert versions[0].body["code"]["coding"][0]["code"] == "J02.9"
    assert versions[1].body["code"]["coding"][0]["code"] == "J06.9"


def test_resources_are_attached_to_the_linked_person(idb: Database, tmp_path: Path) -> None:
    runner.ingest(idb, "xml130", [write_feed(tmp_path / "a.xml", [visit(1)])], workers=0)
    with idb.connection() as conn:
        pid = conn.execute("SELECT person_id FROM person_source").fetchone()[0]
        res = everything(conn, pid)
    assert len(res) == sum(expected_counts().values())
    enc = next(r for r in res if r.type == "Encounter")
    assert enc.body["subject"]["reference"] == f"Patient/mpi-{pid}"
    assert enc.body["status"] == "finished"
    assert enc.body["class"]["code"] == "AMB"
    assert len(enc.body["diagnosis"]) == 3


def test_bad_records_are_quarantined_and_the_rest_goes_on(idb: Database, tmp_path: Path) -> None:
    visits = [
        visit(1),
        visit(2, NGAY_VAO="202513451030"),  # impossible date
        visit(3, MA_BENH_CHINH="Q9X"),  # not ICD-10
        visit(4, SO_CCCD="991085012345"),  # CCCD with no such province
        visit(5, MA_CSKCB="01999"),  # unknown facility (and differs from the envelope)
        visit(6, HO_TEN=""),  # missing required element
        visit(7, NGAY_VAO="209901011030"),  # future
    ]
    s = runner.ingest(idb, "xml130", [write_feed(tmp_path / "bad.xml", visits)], workers=0)
    assert s.stored["Encounter"] == 1
    rules = {e["record"]: e["rule"] for e in s.errors}
    assert rules["01001|LK000002"] == "date.impossible"
    assert rules["01001|LK000003"] == "icd10.unknown"
    assert rules["01001|LK000006"] == "required"
    assert rules["01001|LK000007"] == "date.future"
    assert rules["01001|LK000004"] == "cccd.format"
    assert any(r.startswith("facility") for r in rules.values())
    assert all(e["reason"] for e in s.errors)


def test_duplicated_visit_key_in_one_file(idb: Database, tmp_path: Path) -> None:
    feed = write_feed(tmp_path / "dup.xml", [visit(1), visit(2), visit(1, MA_BENH_CHINH="J02.9")])
    s = runner.ingest(idb, "xml130", [feed], workers=0)
    assert s.stored["Encounter"] == 2
    assert [(e["record"], e["rule"], e["element"]) for e in s.errors] == [
        ("01001|LK000001", "duplicate-key", "MA_LK")
    ]
    with idb.connection() as conn:
        code = conn.execute(
            "SELECT body #>> '{code,coding,0,code}' FROM resource WHERE type = 'Condition'"
            " AND source_key = '01001|LK000001|XML1|1|Condition|main'"
        ).fetchone()[0]
    assert code == "J06.9"  # the first one counts


def test_qd4210_hoso_are_read_under_their_old_names(idb: Database, tmp_path: Path) -> None:
    # Hồ sơ of 2018 – June 2024 came in QĐ 4210: other names in XML1 and XML5, list tables
    # without their outer element, no CCCD. One file mixes them with a QĐ 130 hồ sơ.
    feed = write_feed(tmp_path / "2023.xml", [legacy_visit(1), legacy_visit(2), visit(3)])
    s = runner.ingest(idb, "xml130", [feed], workers=0)
    assert s.quarantined == 0, s.errors
    old = {"Encounter": 1, "Condition": 3, "MedicationRequest": 2, "MedicationDispense": 2,
           "Procedure": 1, "Observation": 4, "DiagnosticReport": 1}  # fmt: skip
    new = expected_counts()
    assert s.stored == {k: 2 * old[k] + new.get(k, 0) for k in old}
    assert s.persons_created == 3
    with idb.connection() as conn:
        pid, bhyt, birth, sex = conn.execute(
            "SELECT p.id, p.bhyt, p.birth_date::text, p.sex FROM person p JOIN person_source s"
            " ON s.person_id = p.id WHERE s.source_record_id = 'BN000001'"
        ).fetchone()
        res = everything(conn, pid)
    assert (bhyt, birth, sex) == ("HT3010100000001", "1951-02-15", "F")
    enc = next(r.body for r in res if r.type == "Encounter")
    assert enc["period"] == {
        "start": "2023-03-15T08:00:00+07:00",
        "end": "2023-03-15T09:30:00+07:00",
    }
    assert enc["type"][0]["coding"][0]["code"] == "01"  # MA_LOAI_KCB 1 of 4210
    totals = {e["url"]: e["valueDecimal"] for e in enc["extension"][0]["extension"]}
    assert totals["t_tongchi_bv"] == 120000  # T_TONGCHI
    conditions = sorted(
        (r.body["code"]["coding"][0]["code"], r.body["code"]["text"])
        for r in res if r.type == "Condition"
    )  # fmt: skip
    assert conditions == [("E11", "E11"), ("I10", "Tăng huyết áp vô căn"), ("K29.7", "K29.7")]
    note = next(
        r.body for r in res
        if r.type == "Observation" and r.body.get("valueString", "").startswith("Huyết áp")
    )  # fmt: skip
    assert note["effectiveDateTime"] == "2023-03-15T08:15:00+07:00"  # XML5 NGAY_YL
    drugs = [r.body for r in res if r.type == "MedicationRequest"]
    assert {d["medicationCodeableConcept"]["text"] for d in drugs} == {"Amlodipin 5mg"}


def test_qd4210_errors_name_the_field_as_sent(idb: Database, tmp_path: Path) -> None:
    feed = write_feed(tmp_path / "bad.xml", [legacy_visit(1, MA_BENH="Q9X"), legacy_visit(2)])
    s = runner.ingest(idb, "xml130", [feed], workers=0)
    assert s.stored["Encounter"] == 1
    (err,) = s.errors
    assert (err["rule"], err["element"]) == ("icd10.unknown", "MA_BENH_CHINH")
    assert err["reason"].endswith("(in this file: MA_BENH)")
    assert err["reason_vi"].endswith("(trong tệp: MA_BENH)")


_XML1_NAMES = sorted({*LEGACY_4210_RENAMES["XML1"], *LEGACY_4210_RENAMES["XML1"].values()})


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(st.sampled_from(_XML1_NAMES), st.from_regex(r"[A-Z0-9.]{1,8}", fullmatch=True))
)
def test_old_names_never_hide_or_overwrite_a_value(fields: dict[str, str]) -> None:
    cells = "".join(f"<{k}>{v}</{k}>" for k, v in fields.items())
    renamed: dict[str, str] = {}
    (row,) = parse_table(f"<TONG_HOP>{cells}</TONG_HOP>".encode(), "XML1", renamed)
    for old, new in LEGACY_4210_RENAMES["XML1"].items():
        if new in fields:  # a QĐ 130 name always keeps its own value
            assert row[new] == fields[new]
            assert row.get(old) == fields.get(old)
        elif old in fields:  # a 4210 name is read as the 130 one, and said so
            assert row[new] == fields[old] and old not in row
            assert renamed[new] == old
    assert sorted(row.values()) == sorted(fields.values())  # nothing lost


def test_a_resend_naming_another_person_moves_nothing(idb: Database, tmp_path: Path) -> None:
    """A write never moves data from one person to another: the same hồ sơ (same MA_LK) sent
    again for someone else leaves what is stored with its person, and is noted for the sender."""
    runner.ingest(idb, "xml130", [write_feed(tmp_path / "a.xml", [visit(1)])], workers=0)
    other = visit(1, HO_TEN="Trần Thị Khác", SO_CCCD="001190099999", MA_THE_BHYT="DN4010199999999", MA_BN="BN999999",
                  NGAY_SINH="199001010000", GIOI_TINH="2")  # fmt: skip
    s = runner.ingest(idb, "xml130", [write_feed(tmp_path / "b.xml", [other])], workers=0)
    cid = id_for_source_key("Condition", "01001|LK000001|XML1|1|Condition|main")
    with idb.connection() as conn:
        owners = {
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT person_id FROM resource WHERE person_id IS NOT NULL"
            )
        }
        versions = history(conn, "Condition", cid)
        noted = conn.execute(
            "SELECT rule, status FROM ingest_error WHERE job_id = %s", (s.job_id,)
        ).fetchall()
    assert len(owners) == 1, owners  # nothing went to the second person
    assert [v.version for v in versions] == [1]
    assert ("record.moved", "noted") in noted
