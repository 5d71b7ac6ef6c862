"""Row counts and content digests of every table: what a restore drill compares."""

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


def table_digests(conn: psycopg.Connection[Any]) -> dict[str, tuple[int, str]]:
    """For each table: (rows, md5 of the sorted md5s of its rows' text). Independent of row
    order and physical layout, so a restored table compares equal to the original."""
    out: dict[str, tuple[int, str]] = {}
    for name in tables(conn):
        query = sql.SQL(
            "SELECT count(*), md5(coalesce(string_agg(h, ',' ORDER BY h), '')) "
            "FROM (SELECT md5(t::text) AS h FROM {} AS t) AS rows"
        ).format(sql.Identifier(name))
        count, digest = conn.execute(query).fetchone()  # type: ignore[misc]
        out[name] = (int(count), str(digest))
    return out
