"""``hssk db upgrade``: bring a database made by an earlier version to this one, say first
which migrations will take long on big tables, and check afterwards that no table lost rows.

Migrations are plain SQL run in one transaction each (``hssk.db.migrate``). One that rewrites,
indexes or reads a whole big table holds its locks for as long as that takes: writes to the
table wait. ``plan`` names those, with the table's size, so the operator picks a maintenance
window (or stops ingestion) before running them. An online migration (``hssk.db.online``) says
which big tables it works through; writes go on while it runs, and a stopped run resumes.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from hssk.db import online
from hssk.db.digest import tables
from hssk.db.migrate import Migration, discover, migrate

BIG_ROWS = 1_000_000
# Statements whose cost grows with a table: (pattern, what it does). Table names are the
# first identifier after the keyword.
_HEAVY = (
    (
        re.compile(
            r"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?:ONLY\s+)?(\w+)[^;]*\b(?:TYPE|SET\s+NOT\s+NULL|ADD\s+(?:CONSTRAINT|PRIMARY|UNIQUE|FOREIGN|CHECK))",
            re.I | re.S,
        ),
        "rewrites or checks every row of",
    ),
    (
        re.compile(
            r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+(?!CONCURRENTLY)(?:IF\s+NOT\s+EXISTS\s+)?\w*\s*ON\s+(?:ONLY\s+)?(\w+)",
            re.I,
        ),
        "builds an index on",
    ),
    (re.compile(r"\bUPDATE\s+(\w+)\s", re.I), "updates rows of"),
    (re.compile(r"\bDELETE\s+FROM\s+(\w+)", re.I), "deletes rows of"),
    (re.compile(r"\bINSERT\s+INTO\s+\w+[^;]*?\bFROM\s+(\w+)", re.I | re.S), "reads all of"),
)


_DROP = re.compile(r"\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(\w+)", re.I)
_BODY = re.compile(r"\$(\w*)\$.*?\$\1\$", re.S)  # function bodies: defined, not run


@dataclass(frozen=True)
class Heavy:
    table: str
    rows: int
    does: str


@dataclass
class Step:
    migration: Migration
    heavy: list[Heavy] = field(default_factory=list)

    @property
    def online(self) -> bool:
        """Writes go on while it runs (``-- hssk:online``); a stopped run resumes."""
        return self.migration.online

    @property
    def blocking(self) -> bool:
        """Works through a big table holding its locks: writes to it wait."""
        return bool(self.heavy) and not self.online


def _estimates(conn: psycopg.Connection[Any]) -> dict[str, int]:
    # a partitioned table holds what its partitions hold
    return {
        str(name): max(int(rows or 0), 0)
        for name, rows in conn.execute(
            """SELECT relname, CASE WHEN relkind = 'p' THEN (
                 SELECT sum(greatest(l.reltuples, 0)) FROM pg_partition_tree(c.oid) t
                 JOIN pg_class l ON l.oid = t.relid WHERE t.isleaf) ELSE reltuples END
               FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = 'public' AND relkind IN ('r', 'p')"""
        )
    }


def plan(
    conn: psycopg.Connection[Any],
    big_rows: int = BIG_ROWS,
    migrations: list[Migration] | None = None,
) -> list[Step]:
    """The pending migrations (default: those shipped), each with the big tables it works
    through: found in its statements, or named by the migration itself (``-- hssk:long``)."""
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migration (
             version text PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,
             applied_at timestamptz NOT NULL DEFAULT now())"""
    )
    done = {r[0] for r in conn.execute("SELECT version FROM schema_migration")}
    rows = _estimates(conn)
    steps = []
    for mig in discover() if migrations is None else migrations:
        if mig.version in done:
            continue
        step = Step(mig)
        seen: set[tuple[str, str]] = set()
        for table in online.long_tables(mig.sql):
            seen.add((table, "works through"))
            if table in rows and not rows[table]:  # never analyzed: count it
                rows[table] = _count(conn, table)
            step.heavy.append(Heavy(table, rows.get(table, 0), "works through"))
        statements = _BODY.sub("", mig.sql)
        for pattern, does in _HEAVY:
            for m in pattern.finditer(statements):
                table = m.group(1).lower()
                if rows.get(table, 0) >= big_rows and (table, does) not in seen:
                    seen.add((table, does))
                    step.heavy.append(Heavy(table, rows[table], does))
        for m in _DROP.finditer(statements):
            table = m.group(1).lower()
            if table in rows:
                n = _count(conn, table)
                if n:
                    step.heavy.append(Heavy(table, n, "drops (its rows are deleted)"))
        steps.append(step)
    return steps


def _count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()
    return int(row[0]) if row else 0


def row_counts(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Exact rows of every table."""
    return {name: _count(conn, name) for name in tables(conn)}


@dataclass
class Outcome:
    applied: list[str]
    seconds: float
    before: dict[str, int]
    after: dict[str, int]

    @property
    def lost(self) -> dict[str, tuple[int, int]]:
        """Tables still there with fewer rows than before: (before, after)."""
        return {
            t: (n, self.after[t]) for t, n in self.before.items()
            if t in self.after and self.after[t] < n
        }  # fmt: skip

    @property
    def dropped(self) -> dict[str, int]:
        """Tables a migration dropped, with the rows they had (the plan announced them)."""
        return {t: n for t, n in self.before.items() if t not in self.after}


def upgrade(url: str, migrations: list[Migration] | None = None) -> Outcome:
    """Apply the pending migrations, counting every table's rows before and after."""
    with psycopg.connect(url, autocommit=True) as conn:
        before = row_counts(conn)
        t0 = time.perf_counter()
        applied = migrate(conn, migrations)
        seconds = time.perf_counter() - t0
        after = row_counts(conn)
    return Outcome(applied, seconds, before, after)
