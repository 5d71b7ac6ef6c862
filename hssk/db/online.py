"""Online migrations: work on big tables that must not stop writes for its whole length.

A migration whose first lines say ``-- hssk:online`` is not run in one transaction. It is cut
into steps at each ``-- hssk:step`` line; each step runs on its own, in autocommit (so
``CREATE INDEX CONCURRENTLY`` is allowed: one such statement per step), and is recorded in
``schema_migration_step`` once done, so a run that was stopped (kill, crash, a failed step)
starts again at the first step not done. A step that also says ``-- hssk:repeat`` is a batched
backfill: it is run again, each batch committed, until it changes no row — written so that a
batch picks rows still to do (``WHERE x IS NULL ... LIMIT n``), it resumes where it stopped.
``-- hssk:long table [table ...]`` names the big tables it works through, for
``hssk db upgrade --plan``.

An index build that was stopped leaves an invalid index behind; ``IF NOT EXISTS`` would take
it for done, so an invalid index of the step's name is dropped before the step runs again.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

_ONLINE = re.compile(r"\A(?:\s*--[^\n]*\n)*?\s*--\s*hssk:online\b")
_STEP = re.compile(r"^--\s*hssk:step\b[^\n]*$", re.M)
_REPEAT = re.compile(r"^--\s*hssk:repeat\b", re.M)
_LONG = re.compile(r"^--\s*hssk:long\s+([\w ,]+)$", re.M)
_INDEX = re.compile(
    r"\bCREATE\s+(?:UNIQUE\s+)?INDEX\s+CONCURRENTLY\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)", re.I
)


def is_online(text: str) -> bool:
    """Whether a migration's header says ``-- hssk:online``."""
    return bool(_ONLINE.match(text))


def long_tables(text: str) -> list[str]:
    """The tables a migration says it works through (``-- hssk:long``)."""
    return [t.lower() for m in _LONG.finditer(text) for t in re.split(r"[\s,]+", m.group(1)) if t]


def steps(text: str) -> list[str]:
    """The steps of an online migration, in order (comment-only parts dropped)."""
    parts = _STEP.split(text)
    return [p.strip() for p in parts if _has_sql(p)]


def _has_sql(part: str) -> bool:
    return any(line.strip() and not line.strip().startswith("--") for line in part.splitlines())


def run(conn: psycopg.Connection[Any], version: str, text: str) -> int:
    """Run the steps not yet done on ``conn`` (autocommit); returns how many ran."""
    conn.execute(
        """CREATE TABLE IF NOT EXISTS schema_migration_step (
             version text NOT NULL, step integer NOT NULL,
             done_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (version, step))"""
    )
    done = {
        r[0]
        for r in conn.execute(
            "SELECT step FROM schema_migration_step WHERE version = %s", (version,)
        )
    }
    ran = 0
    for number, step in enumerate(steps(text)):
        if number in done:
            continue
        index = _INDEX.search(step)
        if index:
            _drop_invalid(conn, index.group(1))
        if _REPEAT.search(step):
            while conn.execute(step.encode()).rowcount > 0:
                pass  # each batch committed on its own (autocommit)
        else:
            conn.execute(step.encode())
        conn.execute(
            "INSERT INTO schema_migration_step (version, step) VALUES (%s, %s)", (version, number)
        )
        ran += 1
    return ran


def _drop_invalid(conn: psycopg.Connection[Any], name: str) -> None:
    row = conn.execute(
        """SELECT NOT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
           JOIN pg_namespace n ON n.oid = c.relnamespace
           WHERE c.relname = %s AND n.nspname = current_schema()""",
        (name.lower(),),
    ).fetchone()
    if row and row[0]:
        conn.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))


def forget(conn: psycopg.Connection[Any], version: str) -> None:
    """Drop the step records of a migration once it is recorded as applied."""
    if conn.execute("SELECT to_regclass('schema_migration_step')").fetchone() != (None,):
        conn.execute("DELETE FROM schema_migration_step WHERE version = %s", (version,))
