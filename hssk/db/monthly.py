"""Monthly range partitions of the append-only logs (audit, outbox, ingest receipts).

A log is partitioned by range of its time column, one partition per UTC month (``<table>_YYYYMM``)
and a DEFAULT partition (``<table>_default``) for a row whose month has no partition yet, so that
no write ever fails on a missing month. The SQL function ``month_partitions`` (migration 0001)
makes partitions and moves rows out of the default partition; the daily job ``logs.partitions``
calls :func:`ensure` for every log so that the current month and the next two always exist,
and ``hssk doctor`` warns when a default partition holds rows (:func:`stray_rows`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg import sql

AHEAD = 2  # months made ahead of the current one


@dataclass(frozen=True)
class Month:
    """One partition of a log: its table and bounds (``start`` is None for the default)."""

    name: str
    start: datetime | None
    end: datetime | None


def ensure(
    conn: psycopg.Connection[Any],
    table: str,
    *,
    since: datetime | None = None,
    ahead: int = AHEAD,
    lock_timeout_ms: int = 10_000,
) -> int:
    """Make the partitions of ``table`` from the month of ``since`` (default: now) to ``ahead``
    months after the current one, and move rows out of the default partition; returns how
    many partitions were made. A partition is made under a short lock of the table: it waits
    ``lock_timeout_ms`` at most (a long transaction on the log) and fails, to be tried again
    by the next run, rather than queue every writer of the log behind it."""
    with conn.transaction():
        before = conn.execute(
            "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
            (f"{max(lock_timeout_ms, 1)}ms",),
        ).fetchone()
        row = conn.execute(
            "SELECT month_partitions(%s::regclass, coalesce(%s::timestamptz, now()), %s)",
            (table, since, ahead),
        ).fetchone()
        if before:  # the caller's transaction goes on with its own setting
            conn.execute("SELECT set_config('lock_timeout', %s, true)", (before[0],))
    return int(row[0]) if row else 0


def months(conn: psycopg.Connection[Any], table: str) -> list[Month]:
    """The partitions of ``table``, oldest first, the default last."""
    rows = conn.execute(
        r"""SELECT c.relname, b[1]::timestamptz, b[2]::timestamptz
            FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
            LEFT JOIN LATERAL regexp_match(pg_get_expr(c.relpartbound, c.oid),
                                           'FROM \(''([^'']+)''\) TO \(''([^'']+)''\)') b ON true
            WHERE i.inhparent = %s::regclass
            ORDER BY b[1]::timestamptz NULLS LAST""",
        (table,),
    ).fetchall()
    return [Month(str(name), start, end) for name, start, end in rows]


def stray_rows(conn: psycopg.Connection[Any], table: str) -> int:
    """Rows of ``table`` waiting in its default partition (0 when it has none)."""
    name = f"{table}_default"
    if conn.execute("SELECT to_regclass(%s)", (name,)).fetchone() == (None,):
        return 0
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))).fetchone()
    return int(row[0]) if row else 0
