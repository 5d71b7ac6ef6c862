"""QĐ 130 ingest end to end on a real PostgreSQL: counts, idempotency, versions, quarantine."""

from __future__ import annotations

from pathlib import Path

from hssk.db import Database
from hssk.ingest import jobs
from hssk.ingest.samples import expected_counts, visit, write_feed
from hssk.records import everything, history, id_for_source_key


def _count(db: Database) -> dict[str, int]:
    with db.connection() as conn:
        return dict(conn.execute("SELECT type, count(*) FROM resource GROUP BY type").fetchall())


def test_counts_equal_source_and_reingest_is_idempotent(idb: Database, tmp_path: Path) -> None:
    feed = write_feed(tmp_path / "a.xml", [visit(i) for i in range(1, 11)])
    s = jobs.ingest(idb, "xml130", [feed], workers=0)
    want = {k: 10 * v for k, v in expected_counts().items()}
    assert s.quarantined == 0, s.errors
    assert s.stored == want
    assert _count(idb) == want
    assert s.persons == 10
    again = jobs.ingest(idb, "xml130", [feed], workers=0)
    assert again.stored == {}
    assert again.skipped == sum(want.values())
    assert again.persons == 0  # identical hồ sơ are recognised by digest: no linking, no writing
    assert _count(idb) == want


def test_corrected_resend_makes_version_2(idb: Database, tmp_path: Path) -> None:
    jobs.ingest(idb, "xml130", [write_feed(tmp_path / "a.xml", [visit(1)])], workers=0)
    fixed = write_feed(tmp_path / "b.xml", [visit(1, MA_BENH_CHINH="J02.9")])
    s = jobs.ingest(idb, "xml130", [fixed], workers=0)
    assert s.updated["Condition"] == 1, str(s.to_json())
    cid = id_for_source_key("Condition", "01001|LK000001|XML1|1|Condition|main")
    with idb.connection() as conn:
        versions = history(conn, "Condition", cid)
    assert [v.version for v in versions] == [2, 1]
    assert versions[0].body["code"]["coding"][0]["code"] == "J02.9"
    assert versions[1].body["code"]["coding"][0]["code"] == "J06.9"


def test_resources_are_attached_to_the_linked_person(idb: Database, tmp_path: Path) -> None:
    jobs.ingest(idb, "xml130", [write_feed(tmp_path / "a.xml", [visit(1)])], workers=0)
    with idb.connection() as conn:
        pid = conn.execute("SELECT person_id FROM person_source").fetchone()[0]
        res = everything(conn, pid)
    assert len(res) == sum(expected_counts().values())
    enc = next(r for r in res if r.type == "Encounter")
    assert enc.body["subject"]["reference"] == f"Patient/{pid}"
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
    s = jobs.ingest(idb, "xml130", [write_feed(tmp_path / "bad.xml", visits)], workers=0)
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
    s = jobs.ingest(idb, "xml130", [feed], workers=0)
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
