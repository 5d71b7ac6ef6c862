from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hssk.db import Database
from hssk.db.migrate import discover, migrate


def test_migrations_applied_once(db: Database) -> None:
    with db.connection() as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migration ORDER BY 1")]
        assert versions == [m.version for m in discover()]
    import psycopg

    with psycopg.connect(db.url, autocommit=True) as conn:
        assert migrate(conn) == []  # idempotent


def test_core_tables_exist(db: Database) -> None:
    wanted = {"unit", "account", "person", "person_source", "resource", "audit_event",
              "ingest_job", "ingest_error"}  # fmt: skip
    with db.connection() as conn:
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables")}
    assert wanted <= tables


def test_pool_connections_run_in_utc_without_jit(db: Database) -> None:
    # JIT compiling cost ingestion a third of its speed on a packaged PostgreSQL server
    with db.connection() as conn:
        assert conn.execute("SHOW jit").fetchone() == ("off",)
        assert conn.execute("SHOW TimeZone").fetchone() == ("UTC",)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.text().filter(lambda v: "\x00" not in v), max_size=30))
def test_text_list_round_trips_through_postgres(db: Database, values: list[str]) -> None:
    """A joined list comes back from string_to_array exactly, for any non-empty text without
    the separator (commas, quotes, braces, backslashes, Vietnamese included)."""
    from hssk.db.textlist import SPLIT, joined, splittable

    ok = [v for v in values if splittable(v)]
    with db.connection() as conn:
        row = conn.execute(f"SELECT {SPLIT}", (joined(ok),)).fetchone()
    assert row is not None
    assert row[0] == ok
