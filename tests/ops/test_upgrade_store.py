"""Upgrade of a store made before it was keyed by person: every row kept (counts and digests),
the rows an earlier merge moved back under the person they were written under, the locator
filled, and an unmerge afterwards moving nothing."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import psycopg
import pytest

from hssk.db import open_database
from hssk.db.digest import columns, table_digests
from hssk.db.migrate import migrate
from hssk.kernel.config import load_settings
from hssk.registry import merged_ids
from hssk.registry.merge import unmerge

pytestmark = pytest.mark.slow
REPO = Path(__file__).parents[2]
# The last version whose merges moved clinical rows (resource keyed by (type, id)).
BEFORE = "4a26554e0f556d70f46643f1427488c5d4cb5196"

# Run by the older version: three persons with records, B merged into A (B's rows moved to
# A), C merged into A and unmerged again (C's rows moved there and back).
FILL = """
import sys
from hssk import wiring
from hssk.db import open_database
from hssk.records import store
from hssk.registry import SourceRecord, link
from hssk.registry.merge import merge, unmerge
wiring.start()
db = open_database(url=sys.argv[1])
with db.connection() as conn:
    ids = [link(conn, SourceRecord("population", str(i), f"Hà Văn {n}", f"19{50 + i}-01-01", "M",
                                   cccd=f"00105000000{i}")).person_id
           for i, n in enumerate(("An", "Bảo", "Chung"))]
    for n, pid in enumerate(ids):
        for v in range(3):
            saved, _ = store.save(conn, {"resourceType": "Observation", "status": "final",
                                         "code": {"text": f"đo {v}"},
                                         "subject": {"reference": f"Patient/mpi-{pid}"}},
                                  person_id=pid)
            store.save(conn, {"resourceType": "Observation", "status": "amended",
                              "code": {"text": f"đo {v}"}}, rid=saved.id, person_id=pid)
    store.save(conn, {"resourceType": "Organization", "name": "Bệnh viện"})
    merge(conn, ids[0], ids[1], reason="test")
    undone = merge(conn, ids[0], ids[2], reason="test")
    unmerge(conn, undone)
print(*ids)
db.close()
"""


def _old_package(into: Path) -> Path:
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", BEFORE, "hssk"],
                                 capture_output=True, check=True, timeout=60).stdout  # fmt: skip
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"the older commit {BEFORE[:7]} is not available (git history needed): {exc}")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def test_upgrade_keys_the_store_by_person_and_keeps_every_row(
    drill_url: str, tmp_path: Path
) -> None:
    old = _old_package(tmp_path / "old")
    env = {**os.environ, "PYTHONPATH": str(old), "HSSK_DATA_DIR": str(tmp_path / "data")}
    res = subprocess.run([sys.executable, "-c", FILL, drill_url], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=300, check=False)  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    a, b, c = (int(x) for x in res.stdout.split())
    with psycopg.connect(drill_url, autocommit=True) as conn:
        had = columns(conn)
        before = table_digests(conn, {t: had[t] for t in ("resource", "resource_history")})
        but_person = {"resource": [c for c in had["resource"] if c != "person_id"]}
        before_but_person = table_digests(conn, but_person)
        moved = conn.execute("SELECT count(*) FROM resource WHERE person_id = %s", (a,)).fetchone()
        assert moved == (6,)  # the older merge moved B's three rows to A
        t0 = time.perf_counter()
        migrate(conn)
        seconds = time.perf_counter() - t0
        after = table_digests(conn, {t: had[t] for t in ("resource", "resource_history")})
        assert seconds < 60
        # every row, every column as it was but the person of the rows the merge had moved
        assert {t: n for t, (n, _) in after.items()} == {t: n for t, (n, _) in before.items()}
        assert after["resource_history"] == before["resource_history"]
        persons = dict(conn.execute("SELECT person_id, count(*) FROM resource GROUP BY 1"))
        assert persons == {a: 3, b: 3, c: 3, None: 1}
        assert table_digests(conn, but_person) == before_but_person
        (count, loc) = conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE l.person_id IS NOT DISTINCT FROM r.person_id)
               FROM resource_locator l JOIN resource r USING (type, id)"""
        ).fetchone()  # type: ignore[misc]
        assert count == loc == 10
        partitions = {r[0] for r in conn.execute("SELECT tableoid::regclass::text FROM resource")}
        assert "resource_none" in partitions and len(partitions) > 1
    db = open_database(load_settings(), url=drill_url)
    try:
        with db.connection() as conn:
            assert sorted(merged_ids(conn, a)) == sorted([a, b])
            (merge_id,) = conn.execute(
                "SELECT id FROM person_merge WHERE unmerged_at IS NULL"
            ).fetchone()  # type: ignore[misc]
            where = conn.execute(
                "SELECT tableoid, ctid, person_id FROM resource ORDER BY 2"
            ).fetchall()
            unmerge(conn, merge_id)
            assert (
                conn.execute("SELECT tableoid, ctid, person_id FROM resource ORDER BY 2").fetchall()
                == where
            )
            assert merged_ids(conn, a) == [a] and merged_ids(conn, b) == [b]
    finally:
        db.close()
