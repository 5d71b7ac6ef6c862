"""Shared fixtures: a real PostgreSQL for the whole run.

Embedded (pgserver, in a temporary directory) by default; with HSSK_TEST_DATABASE_URL a fresh
database is created on that server for this run and dropped afterwards.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, settings

from hssk import wiring
from hssk.db import Database, open_database
from hssk.kernel.config import load_settings

# Property tests judge what a function returns, never how fast: on a shared machine the first
# draws can take seconds, which Hypothesis's timing checks would report as a failure.
settings.register_profile(
    "hssk", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("hssk")

# As every HSSK process does when it starts (the app, the CLI): the record store's listeners.
wiring.start()
# A few hash partitions of the person-keyed store (16 by default): every test empties them all.
os.environ.setdefault("HSSK_STORE_PARTITIONS", "4")

# ../shared beside the checkout (CI and developers); HSSK_SHARED_DIR for another place.
SHARED = Path(os.environ.get("HSSK_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")


def _server_database(admin_url: str) -> tuple[str, str]:
    name = f"hssk_test_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    return name, url


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    admin = os.environ.get("HSSK_TEST_DATABASE_URL")
    if admin:
        name, url = _server_database(admin)
        yield url
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        return
    from hssk.db.embedded import start_embedded

    data_dir = tmp_path_factory.mktemp("pg")
    url, server = start_embedded(data_dir)
    yield url
    server.cleanup()


@pytest.fixture(scope="session")
def db(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    os.environ["HSSK_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    os.environ["HSSK_DATABASE_URL"] = database_url
    database = open_database(load_settings(), url=database_url)
    yield database
    database.close()


def truncate_all(database: Database) -> None:
    """Empty every table but the migration ledger."""
    with database.connection() as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
                "AND tablename <> 'schema_migration'"
            )
        ]
        if tables:
            conn.execute(
                ("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY").encode()
            )


@pytest.fixture
def clean_db(db: Database) -> Database:
    """The session database, emptied before the test."""
    truncate_all(db)
    return db


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.exists():
        pytest.skip("../shared is not beside the checkout")
    return SHARED
