"""FHIR search at size: name words through the prefix index, totals bounded unless asked."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hssk.db import Database
from hssk.records import search, store


def _patients(conn, names: list[str]) -> None:
    store.bulk_upsert(
        conn,
        [store.NewResource({"resourceType": "Patient", "name": [{"text": n}]}) for n in names],
    )


@pytest.fixture
def patients(clean_db: Database) -> Database:
    with clean_db.connection() as conn:
        _patients(conn, ["Nguyễn Văn An", "Nguyễn Thị Bình", "Trần Ngọc Anh", "Lê Nguyên"])
        _patients(conn, [f"Phạm Văn Số{i}" for i in range(40)])
    return clean_db


def _names(conn, q: search.Query) -> set[str]:
    return {s.body["name"][0]["text"] for s in search.run(conn, q)[1]}


def test_name_words_match_word_starts(patients: Database) -> None:
    with patients.connection() as conn:

        def find(value: str) -> set[str]:
            params = [("name", value), ("_count", "100")]
            return _names(conn, search.parse(conn, "Patient", params))

        assert find("nguy") == {"Nguyễn Văn An", "Nguyễn Thị Bình", "Lê Nguyên"}
        assert find("Nguyen an") == {"Nguyễn Văn An"}  # both words, each a word start
        assert find("ngoc") == {"Trần Ngọc Anh"}
        assert find("guyen") == set()  # inside a word: no match, as before
        assert find("100%") == set()


def test_name_search_uses_the_index(patients: Database) -> None:
    with patients.connection() as conn:
        q = search.parse(conn, "Patient", [("name", "nguyen van")])
        where = " AND ".join(["type = %s", "NOT deleted", *q.where])
        conn.execute("SET LOCAL enable_seqscan = off")  # the table is small here
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                f"EXPLAIN SELECT id FROM resource WHERE {where}".encode(), ["Patient", *q.args]
            )
        )
        assert "resource_term_prefixes" in plan and "Seq Scan" not in plan, plan


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.text("abcdđ ", min_size=0, max_size=6), min_size=0, max_size=4),
    probe=st.text("abcd", min_size=1, max_size=4),
)
def test_prefix_index_equals_the_like_it_replaced(
    db: Database, words: list[str], probe: str
) -> None:
    terms = " " + " ".join(words)
    with db.connection() as conn:
        (indexed, like) = conn.execute(
            "SELECT resource_term_prefixes(%s) @> ARRAY[%s], %s LIKE %s",
            (terms, probe, terms, f"% {probe}%"),
        ).fetchone()
    assert indexed == like


def test_totals_exact_bounded_accurate_or_none(patients: Database, monkeypatch) -> None:
    with patients.connection() as conn:

        def run(*params: tuple[str, str]) -> tuple[int | None, list]:
            return search.run(conn, search.parse(conn, "Patient", list(params)))

        assert run(("name", "pham"), ("_count", "50"))[0] == 40  # the last page: free
        assert run(("name", "pham"), ("_count", "10"))[0] == 40  # within the bound
        monkeypatch.setattr(search, "TOTAL_BOUND", 5)
        total, rows = run(("name", "pham"), ("_count", "10"))
        assert total is None and len(rows) == 10  # beyond the bound: left out
        assert run(("name", "pham"), ("_count", "10"), ("_total", "accurate"))[0] == 40
        assert run(("name", "pham"), ("_total", "none"))[0] is None
        assert run(("name", "pham"), ("_count", "0"), ("_total", "accurate")) == (40, [])
        with pytest.raises(search.SearchError, match="_total"):
            search.parse(conn, "Patient", [("_total", "lots")])
