"""Online migrations: step by step outside one transaction (CREATE INDEX CONCURRENTLY), batched
backfills committed batch by batch, a stopped run resumed where it stopped, and the upgrade
plan saying which migrations are long and whether writes go on."""

from __future__ import annotations

import psycopg
import pytest

from hssk.db import online
from hssk.db.migrate import Migration, migrate
from hssk.db.upgrade import plan

ONLINE = Migration(
    "9901",
    "ops",
    "9901_big_code_key.sql",
    """-- A folded code on a big table, filled in batches, with a unique index built online.
-- hssk:online
-- hssk:long big
ALTER TABLE big ADD COLUMN IF NOT EXISTS code_key text;
-- hssk:step
INSERT INTO step_log VALUES ('once');
-- hssk:step the backfill: 1,000 rows a batch; a batch past row 15,000 fails while fault.stop
-- hssk:repeat
UPDATE big SET code_key = lower(code)
  || CASE WHEN id > 15000 AND (SELECT stop FROM fault) THEN (1 / (id - id))::text ELSE '' END
WHERE id IN (SELECT id FROM big WHERE code_key IS NULL ORDER BY id LIMIT 1000);
-- hssk:step
CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS big_code_key ON big (code_key);
""",
)
BLOCKING = Migration("9902", "ops", "9902_big_index.sql", "CREATE INDEX big_code ON big (code);")


@pytest.fixture
def conn(drill_url: str):
    with psycopg.connect(drill_url, autocommit=True) as c:
        c.execute("CREATE TABLE big (id bigint PRIMARY KEY, code text NOT NULL)")
        c.execute("INSERT INTO big SELECT n, 'Ma-' || n FROM generate_series(1, 20000) n")
        c.execute("UPDATE big SET code = 'MA-7' WHERE id = 20000")  # folds like row 7
        c.execute("CREATE TABLE step_log (what text)")
        c.execute("CREATE TABLE fault AS SELECT true AS stop")
        c.execute("ANALYZE big")
        yield c


def _applied(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT version FROM schema_migration")}


def test_an_online_migration_resumes_where_it_stopped(conn: psycopg.Connection) -> None:
    assert ONLINE.online and not BLOCKING.online
    assert len(online.steps(ONLINE.sql)) == 4
    # 1. stopped in the middle of the backfill: the batches done stay done
    with pytest.raises(psycopg.errors.DivisionByZero):
        migrate(conn, [ONLINE])
    assert "9901" not in _applied(conn)
    assert conn.execute("SELECT count(code_key) FROM big").fetchone() == (15000,)
    # 2. run again: the backfill goes on from row 15,001; the unique index meets two rows
    # folding alike and fails, leaving an invalid index behind
    conn.execute("UPDATE fault SET stop = false")
    with pytest.raises(psycopg.errors.UniqueViolation):
        migrate(conn, [ONLINE])
    assert conn.execute("SELECT count(code_key) FROM big").fetchone() == (20000,)
    assert conn.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_code_key'::regclass"
    ).fetchone() == (False,)
    # 3. the data fixed, run again: the invalid index is rebuilt, done steps are not redone
    conn.execute("DELETE FROM big WHERE id = 20000")
    assert migrate(conn, [ONLINE]) == ["9901_big_code_key.sql"]
    assert conn.execute(
        "SELECT indisvalid FROM pg_index WHERE indexrelid = 'big_code_key'::regclass"
    ).fetchone() == (True,)
    assert conn.execute("SELECT count(*) FROM step_log").fetchone() == (1,)
    assert conn.execute("SELECT count(*) FROM schema_migration_step").fetchone() == (0,)
    assert "9901" in _applied(conn) and migrate(conn, [ONLINE]) == []


def test_the_plan_names_long_migrations_and_whether_writes_wait(
    conn: psycopg.Connection,
) -> None:
    online_step, blocking_step = plan(conn, big_rows=10_000, migrations=[ONLINE, BLOCKING])
    assert online_step.online and not online_step.blocking
    assert ("big", "works through") in {(h.table, h.does) for h in online_step.heavy}
    assert all(h.rows >= 19_000 for h in online_step.heavy)  # the table's size, estimated
    assert blocking_step.blocking and blocking_step.heavy[0].does == "builds an index on"
    # below the size that matters, an ordinary migration is not long; a declared one still is
    small_online, small_blocking = plan(conn, big_rows=10**9, migrations=[ONLINE, BLOCKING])
    assert small_online.heavy and not small_blocking.heavy
