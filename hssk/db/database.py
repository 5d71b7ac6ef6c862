"""Connection pool and lifecycle of the store."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg
from psycopg.types.json import set_json_dumps, set_json_loads
from psycopg_pool import ConnectionPool

from hssk.db.embedded import start_embedded
from hssk.db.migrate import migrate
from hssk.kernel.config import Settings, load_settings

log = logging.getLogger(__name__)

# JSON(B) through orjson: several times faster, and integers beyond 64 bits (JSONB writes
# 1E+245 as a 246-digit integer) come back as floats, as FHIR decimals were sent.
set_json_loads(orjson.loads)
set_json_dumps(lambda obj: orjson.dumps(obj).decode())


@dataclass
class Database:
    """A psycopg 3 connection pool plus, in embedded mode, the server it started."""

    url: str
    pool: ConnectionPool
    embedded: Any = None
    _closed: bool = field(default=False, repr=False)

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """Borrow a connection; commits on success, rolls back on error."""
        with self.pool.connection() as conn:
            yield conn

    def close(self) -> None:
        """Close the pool. The embedded server stops when the last process using it exits."""
        if not self._closed:
            self.pool.close()
            self._closed = True


def _configure(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SET TIME ZONE 'UTC'")
    # JIT compilation (on by default in Debian's and most packaged servers) pays 30-100 ms of
    # compiling whenever a plan's cost passes jit_above_cost: the batch statements of
    # ingestion and linking always do, and never run long enough to win it back. Measured on
    # PostgreSQL 15: registers 3,187 -> 4,941 persons/s, visits 815 -> 897/s (the embedded
    # server has no JIT). Reports that would gain from it can SET LOCAL jit = on.
    conn.execute("SET jit = off")
    conn.commit()


def open_database(
    settings: Settings | None = None, *, url: str | None = None, run_migrations: bool = True
) -> Database:
    """Open the store: the server at ``url``/HSSK_DATABASE_URL, else the embedded one.

    Migrations are applied before the pool is handed out.
    """
    settings = settings or load_settings()
    embedded = None
    url = url or settings.database_url
    if not url:
        url, embedded = start_embedded(settings.data_dir)
        log.info("embedded PostgreSQL at %s", settings.data_dir / "pg")
    if run_migrations:
        with psycopg.connect(url, autocommit=True) as conn:
            migrate(conn)
    pool = ConnectionPool(
        url,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        configure=_configure,
        open=True,
        name="hssk",
    )
    pool.wait(timeout=30)
    return Database(url=url, pool=pool, embedded=embedded)
