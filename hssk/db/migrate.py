"""Versioned SQL migrations, applied on start-up.

Each component owns its tables and keeps its migrations in ``hssk/<component>/migrations/``
as ``NNNN_name.sql``. Numbers are global (ranges per component keep them apart: db 0001–0099,
records 0100–, registry 0200–, ingest 0300–, access 0400–, catalog/share/monitor 0500–,
web 0600–, ops 0700–), and files are applied in number order, each once, in its own transaction
— except an online migration (``-- hssk:online``, ``hssk.db.online``), run step by step.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources
from typing import Any

import psycopg

from hssk.db import online
from hssk.kernel.config import load_settings

COMPONENTS = (
    "db", "records", "registry", "ingest", "access", "catalog", "share", "monitor", "web", "ops",
)  # fmt: skip
_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 7_340_001  # advisory lock: concurrent starts migrate one at a time


@dataclass(frozen=True)
class Migration:
    version: str
    component: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def online(self) -> bool:
        """Runs step by step outside one transaction, resumable (``hssk.db.online``)."""
        return online.is_online(self.sql)


def discover() -> list[Migration]:
    """All migrations shipped in the package, in apply order."""
    found: dict[str, Migration] = {}
    for comp in COMPONENTS:
        folder = resources.files(f"hssk.{comp}").joinpath("migrations")
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            m = _NAME.match(entry.name)
            if not m:
                continue
            version = m.group(1)
            if version in found:
                raise RuntimeError(
                    f"migration number {version} is used twice: {found[version].name} "
                    f"and {entry.name}; renumber one of them"
                )
            found[version] = Migration(version, comp, entry.name, entry.read_text("utf-8"))
    return [found[v] for v in sorted(found)]


def migrate(
    conn: psycopg.Connection[Any],
    migrations: list[Migration] | None = None,
    *,
    partitions: int | None = None,
) -> list[str]:
    """Apply pending migrations (default: those shipped) on an autocommit connection; return
    the names applied.

    ``partitions``: hash partitions of the person-keyed store when a migration creates them
    (setting ``hssk.store_partitions``; HSSK_STORE_PARTITIONS when not given)."""
    applied: list[str] = []
    count = partitions or load_settings().store_partitions
    conn.execute("SELECT set_config('hssk.store_partitions', %s, false)", (str(count),))
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migration (
                 version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
                 applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        done = {
            row[0]: row[1]
            for row in conn.execute("SELECT version, checksum FROM schema_migration").fetchall()
        }
        for mig in discover() if migrations is None else migrations:
            if mig.version in done:
                continue
            if mig.online:
                online.run(conn, mig.version, mig.sql)
            with conn.transaction():
                if mig.online:
                    online.forget(conn, mig.version)
                else:
                    conn.execute(mig.sql.encode())
                conn.execute(
                    "INSERT INTO schema_migration (version, name, checksum) VALUES (%s, %s, %s)",
                    (mig.version, mig.name, mig.checksum),
                )
            applied.append(mig.name)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied
