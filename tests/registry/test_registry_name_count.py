"""Persons per name key (used to weigh name agreements) stay equal to a full count through
inserts (COPY), name changes, merges and deletes."""

from __future__ import annotations

from hssk.db import Database
from hssk.registry import SourceRecord, link_many

NAMES = ["Nguyễn Văn An", "Trần Thị Bình", "Nguyễn Văn An", "Lê Hoàng Cường", "Nguyễn Văn An"]


def _counts(conn) -> tuple[dict[str, int], dict[str, int]]:  # type: ignore[no-untyped-def]
    full = dict(conn.execute(
        "SELECT name_key, count(*) FROM person WHERE name_key IS NOT NULL GROUP BY 1"
    ).fetchall())  # fmt: skip
    kept = dict(conn.execute("SELECT name_key, n FROM person_name_count WHERE n > 0").fetchall())
    return full, kept


def test_name_counts_follow_every_change(clean_db: Database) -> None:
    recs = [
        SourceRecord("population", f"r{i}", full_name=name, birth_date=f"19{60 + i}-01-0{i + 1}",
                     sex="M", cccd=None)
        for i, name in enumerate(NAMES)
    ]  # fmt: skip
    with clean_db.connection() as conn:
        ids = [r.person_id for r in link_many(conn, recs)]
        full, kept = _counts(conn)
        assert full == kept and max(kept.values()) == 3  # three distinct persons named An
        conn.execute("UPDATE person SET name_key = 'tran thi binh' WHERE id = %s", (ids[0],))
        conn.execute("UPDATE person SET phone = '0912345678' WHERE id = %s", (ids[1],))
        full, kept = _counts(conn)
        assert full == kept
        conn.execute("DELETE FROM person WHERE id = %s", (ids[3],))
        full, kept = _counts(conn)
        assert full == kept and len(kept) == 2
        link_many(conn, [SourceRecord("insurance", "x", full_name="Lê Hoàng Cường",
                                      birth_date="2001-02-03", sex="F")])  # fmt: skip
        assert _counts(conn)[0] == _counts(conn)[1]
