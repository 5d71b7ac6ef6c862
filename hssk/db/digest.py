"""Row counts and content digests of every table: what a restore drill or an upgrade compares."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql


def tables(conn: psycopg.Connection[Any]) -> list[str]:
    """The tables of the ``public`` schema, by name."""
    return [
        r[0]
        for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1"
        )
    ]


def columns(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    """Each table's columns, in order."""
    out: dict[str, list[str]] = {}
    for table, column in conn.execute(
        """SELECT table_name, column_name FROM information_schema.columns
           WHERE table_schema = 'public' ORDER BY table_name, ordinal_position"""
    ):
        out.setdefault(str(table), []).append(str(column))
    return out


def table_digests(
    conn: psycopg.Connection[Any], only: dict[str, list[str]] | None = None
) -> dict[str, tuple[int, str]]:
    """For each table: (rows, md5 of the sorted md5s of its rows' text). Independent of row
    order and physical layout, so a restored table compares equal to the original. With
    ``only`` (table -> columns), those tables over those columns: an upgraded table with new
    columns still compares equal on the columns it had."""
    out: dict[str, tuple[int, str]] = {}
    for name in only or tables(conn):
        row = (
            sql.SQL("ROW({})").format(sql.SQL(", ").join(map(sql.Identifier, only[name])))
            if only
            else sql.SQL("t")
        )
        query = sql.SQL(
            "SELECT count(*), md5(coalesce(string_agg(h, ',' ORDER BY h), '')) "
            "FROM (SELECT md5({}::text) AS h FROM {} AS t) AS rows"
        ).format(row, sql.Identifier(name))
        count, digest = conn.execute(query).fetchone()  # type: ignore[misc]
        out[name] = (int(count), str(digest))
    return out
