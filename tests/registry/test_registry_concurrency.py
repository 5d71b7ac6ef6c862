"""Concurrent linking of the same person from two connections creates one person."""

from __future__ import annotations

import threading

from hssk.db import Database
from hssk.registry import SourceRecord, link_many


def test_concurrent_batches_do_not_duplicate_a_person(clean_db: Database) -> None:
    results: dict[str, int] = {}
    barrier = threading.Barrier(2)

    def worker(source: str) -> None:
        barrier.wait()
        with clean_db.connection() as conn:
            rec = SourceRecord(source, "1", "Vũ Thị Ngọc", "1999-09-09", "F", cccd="001199009999")
            results[source] = link_many(conn, [rec])[0].person_id

    threads = [threading.Thread(target=worker, args=(s,)) for s in ("population", "insurance")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results["population"] == results["insurance"]
    with clean_db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM person").fetchone() == (1,)
