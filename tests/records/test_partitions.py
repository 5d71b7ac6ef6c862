"""The person-keyed store: each person's rows in one hash partition (the plan of a book reads
that one), data with no person apart, the locator answering reads by id, and merges that move
no row at all."""

from __future__ import annotations

from typing import Any

from hssk.db import Database
from hssk.kernel.config import load_settings
from hssk.records import NewResource, bulk_upsert, store
from hssk.registry import SourceRecord, link, merged_ids
from hssk.registry.merge import merge, unmerge


def _obs(person: int | None, value: float) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "effectiveDateTime": f"2025-01-{int(value) % 28 + 1:02d}",
        "valueQuantity": {"value": value, "unit": "mmHg"},
    }
    if person is not None:
        body["subject"] = {"reference": f"Patient/mpi-{person}"}
    return body


def _scanned(plan: Any) -> list[str]:
    """The tables an executed plan read (nodes run at least once)."""
    found = []
    node = plan.get("Plan", plan)
    if "Relation Name" in node and node.get("Actual Loops", 1) > 0:
        found.append(node["Relation Name"])
    for child in node.get("Plans", []):
        found += _scanned(child)
    return found


NAMES = ("An", "Bình", "Cường", "Dũng", "Giang", "Hải", "Khánh", "Long")


def _persons(conn: Any, n: int) -> list[int]:
    ids = [
        link(
            conn,
            SourceRecord(
                "population",
                str(i),
                f"Lý Văn {NAMES[i]}",
                f"19{70 + i}-01-0{i + 1}",
                "M",
                cccd=f"0012700000{i:02d}",
            ),
        ).person_id
        for i in range(n)
    ]
    assert len(set(ids)) == n
    return ids


def _where(conn: Any) -> list[tuple[str, str, str, int | None]]:
    """Every current and earlier row: its partition, key and person."""
    return conn.execute(
        """SELECT tableoid::regclass::text, type, id, person_id FROM resource
           UNION ALL SELECT tableoid::regclass::text, type, id, person_id FROM resource_history
           ORDER BY 1, 2, 3"""
    ).fetchall()


def test_a_persons_book_reads_one_partition(clean_db: Database) -> None:
    parts = load_settings().store_partitions
    with clean_db.connection() as conn:
        persons = _persons(conn, 6)
        bulk_upsert(conn, [NewResource(_obs(p, 100 + i), person_id=p, source_key=f"k{p}-{i}")
                           for p in persons for i in range(3)])  # fmt: skip
        store.save(conn, {"resourceType": "Organization", "name": "Trạm y tế"})
        leaves = conn.execute(
            """SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE i.inhparent = 'resource_by_person'::regclass"""
        ).fetchone()
        assert leaves == (parts,)
        # no person: the default partition; every other row in its person's hash partition
        rows = conn.execute("SELECT tableoid::regclass::text, person_id FROM resource").fetchall()
        assert {t for t, p in rows if p is None} == {"resource_none"}
        assert len({t for t, p in rows if p is not None}) > 1  # spread over partitions
        assert all(t.startswith("resource_p") for t, p in rows if p is not None)
        (count,) = conn.execute("SELECT count(*) FROM resource_locator").fetchone()  # type: ignore[misc]
        assert count == len(rows)
        person = persons[0]
        (home,) = {t for t, p in rows if p == person}
        assert merged_ids(conn, person) == [person]  # never merged: the book asks for one id
        for mode in ("force_custom_plan", "force_generic_plan"):  # planned, or pruned at run
            conn.execute(f"SET plan_cache_mode = {mode}")
            sql, args = store.everything_query(merged_ids(conn, person))
            (plan,) = conn.execute(b"EXPLAIN (ANALYZE, FORMAT JSON) " + sql, args).fetchone()  # type: ignore[misc]
            assert _scanned(plan[0]) == [home], mode
            sql, args = store.everything_query([person], ["Observation"])
            (plan,) = conn.execute(b"EXPLAIN (ANALYZE, FORMAT JSON) " + sql, args).fetchone()  # type: ignore[misc]
            assert _scanned(plan[0]) == [home], mode
        conn.execute("RESET plan_cache_mode")
        assert len(store.everything(conn, person)) == 3


def test_merge_and_unmerge_move_no_row(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        a, b, c = _persons(conn, 3)
        for p in (a, b, c):
            saved, _ = store.save(conn, _obs(p, 120), person_id=p)
            store.save(conn, _obs(p, 121), rid=saved.id, person_id=p)  # a version in history
        before = _where(conn)
        physical = conn.execute("SELECT ctid, xmin::text FROM resource ORDER BY 1").fetchall()
        m1 = merge(conn, a, b, reason="cùng người")
        m2 = merge(conn, c, a, reason="cùng người")  # a chain: b → a → c
        assert _where(conn) == before
        # not even rewritten in place: the same row versions
        assert (
            conn.execute("SELECT ctid, xmin::text FROM resource ORDER BY 1").fetchall() == physical
        )
        assert sorted(merged_ids(conn, b)) == sorted([a, b, c]) and merged_ids(conn, b)[0] == c
        assert len(store.everything(conn, merged_ids(conn, c))) == 3
        unmerge(conn, m2)
        unmerge(conn, m1)
        assert _where(conn) == before
        assert (
            conn.execute("SELECT ctid, xmin::text FROM resource ORDER BY 1").fetchall() == physical
        )
        assert [len(store.everything(conn, merged_ids(conn, p))) for p in (a, b, c)] == [1, 1, 1]


def test_a_resource_given_a_person_later_leaves_the_no_person_partition(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        (p,) = _persons(conn, 1)
        saved, _ = store.save(conn, _obs(None, 90))
        store.save(conn, _obs(None, 91), rid=saved.id)
        store.save(conn, _obs(p, 92), rid=saved.id, person_id=p)
        rows = [r for r in _where(conn) if r[2] == saved.id]
        assert len(rows) == 3 and {r[3] for r in rows} == {p}
        assert len({r[0].replace("resource_history_", "resource_") for r in rows}) == 1
        assert [v.version for v in store.history(conn, "Observation", saved.id)] == [3, 2, 1]
        assert store.person_of(conn, saved.id) is None  # (an Observation, not a Patient)
        (loc,) = conn.execute(
            "SELECT person_id FROM resource_locator WHERE id = %s", (saved.id,)
        ).fetchone()  # type: ignore[misc]
        assert loc == p
        # a later write naming no person does not take it away
        again, _ = store.save(conn, _obs(None, 93), rid=saved.id)
        assert again.person_id == p and store.read(conn, "Observation", saved.id).person_id == p
