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
