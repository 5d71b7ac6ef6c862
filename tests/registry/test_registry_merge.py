"""Merge / unmerge round trip and review-queue decisions."""

from __future__ import annotations

from typing import Any

import pytest

from hssk import records
from hssk.db import Database
from hssk.registry import SourceRecord, get_person, link, link_many, merged_ids, patient_resource
from hssk.registry.merge import MergeError, decide, list_reviews, merge, merge_history, unmerge


def _state(conn: Any) -> tuple[list[Any], list[Any], list[Any]]:
    persons = conn.execute("SELECT to_jsonb(p) FROM person p ORDER BY id").fetchall()
    sources = conn.execute("SELECT id, person_id FROM person_source ORDER BY id").fetchall()
    res = conn.execute("SELECT type, id, person_id FROM resource ORDER BY type, id").fetchall()
    return persons, sources, res


def _add_resources(conn: Any, person_id: int, n: int, prefix: str) -> None:
    for i in range(n):
        conn.execute(
            "INSERT INTO resource (type, id, version, person_id, last_updated, body)"
            " VALUES ('Observation', %s, 1, %s, now(), '{}')",
            (f"{prefix}{i}", person_id),
        )


def test_merge_unmerge_round_trip_restores_exactly(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        a = link(
            conn,
            SourceRecord(
                "population", "1", "Phạm Minh Châu", "2001-02-03", "F", cccd="001301000001"
            ),
        )
        b = link(
            conn,
            SourceRecord("xml130:01001", "bn7", "Pham Minh Chau", "2001", "F", phone="0912000111"),
        )
        c = link(
            conn,
            SourceRecord(
                "immunization", "v1", "Phạm Minh Châu", "2001-02", "F", bhyt="HS4010000000042"
            ),
        )
        assert len({a.person_id, b.person_id, c.person_id}) == 3 or a.person_id != b.person_id
        _add_resources(conn, a.person_id, 2, "a")
        _add_resources(conn, b.person_id, 3, "b")
        before = _state(conn)

        m = merge(conn, a.person_id, b.person_id, actor="reviewer1", reason="same person")
        survivor = get_person(conn, b.person_id)
        assert survivor is not None and survivor.id == a.person_id
        assert survivor.phone == "0912000111" and survivor.replaces == [b.person_id]
        # no clinical row moved: each stays under the person it was written under, and the
        # survivor's record is read under every id merged into it
        assert _state(conn)[2] == before[2]
        assert sorted(merged_ids(conn, a.person_id)) == sorted([a.person_id, b.person_id])
        assert merged_ids(conn, b.person_id)[0] == a.person_id
        assert len(records.everything(conn, merged_ids(conn, b.person_id))) == 5
        res = patient_resource(survivor)
        assert {"other": {"reference": f"Patient/{b.person_id}"}, "type": "replaces"} in res["link"]
        merged_row = conn.execute(
            "SELECT merged_into FROM person WHERE id = %s", (b.person_id,)
        ).fetchone()
        assert merged_row == (a.person_id,)
        # a record arriving after the merge for the merged person's source id lands on the survivor
        again = link(conn, SourceRecord("xml130:01001", "bn7", "Pham Minh Chau", "2001"))
        assert again.person_id == a.person_id

        unmerge(conn, m, actor="reviewer2")
        assert _state(conn) == before
        hist = merge_history(conn, a.person_id)
        assert (
            len(hist) == 1 and hist[0].unmerged_by == "reviewer2" and hist[0].moved_resources == []
        )
        with pytest.raises(MergeError):
            unmerge(conn, m)
        with pytest.raises(MergeError):
            merge(conn, a.person_id, a.person_id)
        audited = conn.execute(
            "SELECT action, actor FROM audit_event WHERE action IN ('merge', 'unmerge') ORDER BY seq"
        ).fetchall()
        assert [r[0] for r in audited] == ["merge", "unmerge"] and audited[1][1] == "reviewer2"


def test_chained_merges_must_be_undone_in_order(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        ids = [
            link(conn, SourceRecord("s", str(i), f"Lê Văn {n}", "1970-01-01", "M")).person_id
            for i, n in enumerate(("Tâm", "Tín", "Toàn"))
        ]
        m1 = merge(conn, ids[0], ids[1])
        m2 = merge(conn, ids[2], ids[0])  # survivor of m1 merged again
        assert get_person(conn, ids[1]).id == ids[2]  # type: ignore[union-attr]
        with pytest.raises(MergeError):
            unmerge(conn, m1)
        unmerge(conn, m2)
        unmerge(conn, m1)
        assert {get_person(conn, i).id for i in ids} == set(ids)  # type: ignore[union-attr]


def test_review_queue_accept_and_reject(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        # two namesakes of one commune and birth year (different full dates: two persons)
        a, b = link_many(
            conn,
            [
                SourceRecord(
                    "population", "1", "Nguyễn Văn Hùng", "1975-06-01", "M", commune_code="00004"
                ),
                SourceRecord(
                    "population", "2", "Nguyễn Văn Hùng", "1975-09-09", "M", commune_code="00004"
                ),
            ],
        )
        assert a.person_id != b.person_id
        # a record with only the birth year could be either: queued, not linked
        maybe = link(
            conn,
            SourceRecord("xml130:01001", "x", "Nguyen Van Hung", "1975", "M", commune_code="00004"),
        )
        assert maybe.created and maybe.review and maybe.rule == "new"
        reviews = list_reviews(conn)
        assert {r.candidate_id for r in reviews} == {a.person_id, b.person_id}
        assert all(r.person_id == maybe.person_id and r.source == "xml130:01001" for r in reviews)
        assert reviews[0].evidence["name"]["level"] == "exact_folded"
        assert reviews[0].evidence["birth"]["level"] == "year"
        first = next(r for r in reviews if r.candidate_id == a.person_id)
        merge_id = decide(conn, first.id, accept=True, actor="nv1")
        assert merge_id is not None
        assert get_person(conn, maybe.person_id).id == a.person_id  # type: ignore[union-attr]
        other = next(r for r in list_reviews(conn) if r.candidate_id == b.person_id)
        assert decide(conn, other.id, accept=False, actor="nv1", note="khác người") is None
        assert list_reviews(conn) == []
        assert {r.status for r in list_reviews(conn, status="rejected")} == {"rejected"}
        assert get_person(conn, b.person_id).id == b.person_id  # type: ignore[union-attr]
        with pytest.raises(MergeError):
            decide(conn, first.id, accept=False)


def test_golden_record_follows_a_chain_of_merges(clean_db: Database) -> None:
    """golden_record (the book's one-read look-up) lands where get_person does, through two
    merges, and knows no person that does not exist."""
    from hssk.registry import golden_record, resolve

    with clean_db.connection() as conn:
        ids = [
            link(conn, SourceRecord("population", str(i), name, f"19{70 + 9 * i}-0{i}-1{i}", "M",
                                    cccd=f"00109000000{i}")).person_id
            for i, name in enumerate(["Lê Văn Nam", "Trần Quốc Bảo", "Đỗ Minh Khôi"], 1)
        ]  # fmt: skip
        merge(conn, ids[1], ids[2], actor="r", reason="same person")  # 3 → 2
        merge(conn, ids[0], ids[1], actor="r", reason="same person")  # 2 → 1, so 3 → 2 → 1
        assert len(set(ids)) == 3
        for pid in ids:
            golden, full = golden_record(conn, pid), get_person(conn, pid)
            assert golden is not None and full is not None
            assert golden.id == full.id == resolve(conn, pid) == ids[0]
            assert golden.replaces == [] and full.replaces == [ids[1]]
            assert golden.cccd == full.cccd
        assert golden_record(conn, max(ids) + 1000) is None
        conn.rollback()
