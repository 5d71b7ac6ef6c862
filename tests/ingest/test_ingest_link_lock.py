"""A job holds the link lock while it links, not while it stores: concurrent jobs (several
facilities uploading at once) link one at a time but store side by side."""

from __future__ import annotations

from pathlib import Path

import pytest

from hssk.db import Database
from hssk.ingest import jobstore, runner, stream, writer
from hssk.ingest.kinds.xml130 import XmlFile
from hssk.registry.link import LINK_LOCK
from tests.factories.samples import visit, write_feed


def test_resources_are_stored_after_the_link_lock_is_released(
    idb: Database, tmp_path: Path
) -> None:
    files = [  # four files, one batch each (a small file is mapped whole, as one piece)
        str(write_feed(tmp_path / f"{n}.xml", [visit(10 * n + i) for i in range(1, 11)]))
        for n in range(4)
    ]
    with idb.connection() as conn:
        # PostgreSQL itself notes, at each write into `resource`, whether the writing
        # session holds the link lock (an advisory lock on LINK_LOCK) at that moment.
        conn.execute("CREATE TABLE lock_seen (held boolean)")
        conn.execute(
            f"""CREATE FUNCTION note_lock() RETURNS trigger LANGUAGE plpgsql AS $$
                BEGIN
                  INSERT INTO lock_seen SELECT EXISTS (SELECT 1 FROM pg_locks
                    WHERE locktype = 'advisory' AND pid = pg_backend_pid()
                      AND objid = {LINK_LOCK} AND granted);
                  RETURN NULL;
                END $$"""
        )
        conn.execute(
            "CREATE TRIGGER note_lock AFTER INSERT ON resource"
            " FOR EACH STATEMENT EXECUTE FUNCTION note_lock()"
        )
    try:
        summary = runner.ingest(idb, "xml130", files, workers=0, batch=1)
        assert summary.status == "done" and summary.stored["Encounter"] == 40
        with idb.connection() as conn:
            seen = [r[0] for r in conn.execute("SELECT held FROM lock_seen")]
            linked = conn.execute("SELECT count(*) FROM person_source").fetchone()
    finally:
        with idb.connection() as conn:
            conn.execute("DROP TABLE lock_seen")
            conn.execute("DROP TRIGGER note_lock ON resource")
            conn.execute("DROP FUNCTION note_lock()")
    assert len(seen) >= 4  # one COPY per batch at least
    assert not any(seen), "resources were written while the link lock was held"
    assert linked == (40,)


class _Crash(Exception):
    pass


def test_a_crash_between_linking_and_storing_only_links_again(
    idb: Database, tmp_path: Path
) -> None:
    feed = str(write_feed(tmp_path / "a.xml", [visit(i) for i in range(1, 21)]))
    units = stream.map_payloads("xml130", [XmlFile(feed, 0)], None)

    def crash() -> None:
        conn.commit()  # the links are committed, as a job does ...
        raise _Crash()  # ... and the process dies before storing

    with pytest.raises(_Crash), idb.connection() as conn:
        writer.write_units(conn, None, "xml130", units, jobstore.Summary(0, "xml130"), linked=crash)
    linked = _registry(idb)
    assert linked[0] > 0 and linked[1] > 0
    with idb.connection() as conn:
        assert conn.execute("SELECT count(*) FROM resource").fetchone() == (0,)
    summary = runner.ingest(idb, "xml130", [feed], workers=0)  # the resume redoes the batch
    assert summary.stored["Encounter"] == 20 and summary.persons_created == 0
    assert _registry(idb) == linked  # the same persons and links, none twice


def _registry(db: Database) -> tuple[int, int]:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM person), (SELECT count(*) FROM person_source)"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])
