"""`hssk db upgrade` of a database made, and filled, by an older version of HSSK: every table
keeps its rows (compared on the columns it had), the audit chain verifies, the new tables are
right, and the plan names the migrations that work through big tables."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path

import psycopg
import pytest

from hssk.db import upgrade
from hssk.db.digest import columns, table_digests
from hssk.db.migrate import discover

pytestmark = pytest.mark.slow
QUEUES = {"catalog_dirty"}
REPO = Path(__file__).parents[2]
# An older commit: before persons per name key (0204-0205), quarantine handling (0303) and
# recurring jobs (0700). Its migrations are unchanged since, as released migrations must be.
OLD = "27db5f2c9e071930e6c896c2f195daaf88981e5d"
_DROPS = re.compile(r"DROP TABLE (?:IF EXISTS )?(\w+)")
# Tables a migration stores in another form, compared as they read back (each expression gives
# the row as the table had it): 0305 keeps a digest as its bytes, 0590 the missing fields of a
# completeness row as numbers of its field dictionary.
READ_BACK = {
    "ingest_digest": "ROW(key, encode(digest, 'hex'), updated_at)",
    "completeness": "ROW(person_id, catalog, version, filled, total,"
    " ARRAY(SELECT completeness_field_codes(missing)), computed_at)",
}


def _read_back(conn: psycopg.Connection, table: str) -> tuple[int, str]:
    """``table_digests`` of one table of ``READ_BACK``, over its rows as they read back."""
    count, digest = conn.execute(  # type: ignore[misc]
        f"""SELECT count(*), md5(coalesce(string_agg(h, ',' ORDER BY h), ''))
            FROM (SELECT md5({READ_BACK[table]}::text) AS h FROM {table} AS t) AS rows"""
    ).fetchone()
    return int(count), str(digest)


def _old_package(into: Path) -> Path:
    try:
        archive = subprocess.run(["git", "-C", str(REPO), "archive", OLD, "hssk"],
                                 capture_output=True, check=True, timeout=60).stdout  # fmt: skip
    except (FileNotFoundError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"the older commit {OLD[:7]} is not available (git history needed): {exc}")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _hssk(code: Path, env: dict[str, str], *args: str) -> str:
    """Run ``hssk`` from the package in ``code`` (cwd elsewhere: it comes first on the path)."""
    res = subprocess.run([sys.executable, "-m", "hssk", *args], capture_output=True, text=True,
                         env={**env, "PYTHONPATH": str(code)}, cwd=Path(env["HSSK_DATA_DIR"]).parent,
                         timeout=300, check=False)  # fmt: skip
    assert res.returncode == 0, f"{args}: {res.stdout[-2000:]}{res.stderr[-3000:]}"
    return res.stdout


def test_upgrade_from_an_older_version_loses_nothing(drill_url: str, tmp_path: Path) -> None:
    old = _old_package(tmp_path / "old")
    env = {**os.environ, "HSSK_DATABASE_URL": drill_url, "HSSK_DATA_DIR": str(tmp_path / "data")}
    feeds = tmp_path / "feeds"
    _hssk(old, env, "synth", "--persons", "80", "--province", "01", "--seed", "3",
          "--out", str(feeds))  # fmt: skip
    for kind, rel in (("facilities", "facilities.csv"), ("population", "population"),
                      ("immunization", "immunization"), ("xml130", "his")):  # fmt: skip
        _hssk(old, env, "ingest", kind, str(feeds / rel))
    _hssk(old, env, "audit", "verify")
    with psycopg.connect(drill_url, autocommit=True) as conn:
        had = columns(conn)
        del had["schema_migration"]  # the one table an upgrade must change
        before = table_digests(conn, had)
        assert before["person"][0] >= 80 and before["resource"][0] > 100
        conn.execute("ANALYZE")  # as autovacuum would have: the plan reads the row estimates
        steps = upgrade.plan(conn, big_rows=1)  # every table counts as big here
    pending = {s.migration.version: s for s in steps}
    assert {"0204", "0205", "0303", "0700"} <= set(pending)
    assert any(h.table == "person" and "reads" in h.does for h in pending["0204"].heavy)

    out = _hssk(REPO, env, "db", "upgrade", "--yes")
    assert "no table lost rows" in out
    with psycopg.connect(drill_url) as conn:
        kept = {t: c for t, c in had.items() if t in columns(conn)}
        # Only what a shipped migration drops may go (0601: the station queue nothing read).
        dropped = set(had) - set(kept)
        assert dropped <= {m.group(1) for mig in discover() for m in _DROPS.finditer(mig.sql)}
        # Work queues a migration may fill (catalog 0503 queues the persons never scored);
        # every other table keeps exactly what it had.
        after = table_digests(conn, kept)
        after |= {t: _read_back(conn, t) for t in READ_BACK if t in after}
        for queue in QUEUES & set(kept):
            assert after.pop(queue)[0] >= before[queue][0]
        assert after == {t: before[t] for t in kept if t not in QUEUES}
        wrong = conn.execute(
            """SELECT count(*) FROM (SELECT name_key, count(*) AS n FROM person
               WHERE name_key IS NOT NULL GROUP BY 1) p
               FULL JOIN person_name_count c USING (name_key) WHERE p.n IS DISTINCT FROM c.n"""
        ).fetchone()
        assert wrong == (0,)
        assert upgrade.plan(conn) == []
    _hssk(REPO, env, "audit", "verify")
    assert "up to date" in _hssk(REPO, env, "db", "upgrade")


def test_upgrade_reports_lost_rows_and_dropped_tables() -> None:
    before = {"person": 5, "outbox": 2, "station_change": 3}
    outcome = upgrade.Outcome([], 0.0, before, {"person": 4, "outbox": 9})
    assert outcome.lost == {"person": (5, 4)}
    assert outcome.dropped == {"station_change": 3}
