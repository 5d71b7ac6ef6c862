"""Guardianship links (guardian person ↔ child person) for components that create them
(registry, station pages, demo data). Access rules read them in ``policy``."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg

ADULT_AGE = 18  # Civil Code: a guardian's right to the child's book ends at 18


def link_guardian(
    conn: psycopg.Connection[Any],
    guardian_person: int,
    child_person: int,
    *,
    relation: str = "parent",
    valid_until: date | str | None = None,
    created_by: str | None = None,
) -> int:
    """Create (or re-open) the link; returns its id. The policy ends it at the child's 18th
    birthday or at ``valid_until``, whichever comes first."""
    if guardian_person == child_person:
        raise ValueError("a person cannot be their own guardian / không thể tự giám hộ")
    row = conn.execute(
        """INSERT INTO guardianship (guardian_person, child_person, relation, valid_until,
               created_by) VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (guardian_person, child_person) DO UPDATE SET ended_at = NULL,
             relation = excluded.relation, valid_until = excluded.valid_until
           RETURNING id""",
        (guardian_person, child_person, relation, valid_until, created_by),
    ).fetchone()
    assert row is not None
    return int(row[0])


def end_guardianship(
    conn: psycopg.Connection[Any], guardian_person: int, child_person: int
) -> bool:
    """End a link now (court decision, transfer of guardianship...)."""
    cur = conn.execute(
        """UPDATE guardianship SET ended_at = now()
           WHERE guardian_person = %s AND child_person = %s AND ended_at IS NULL""",
        (guardian_person, child_person),
    )
    return cur.rowcount == 1


def children_of(conn: psycopg.Connection[Any], guardian_person: int) -> list[int]:
    """Children whose book this person currently holds (valid link, under 18)."""
    rows = conn.execute(
        f"""SELECT g.child_person FROM guardianship g JOIN person c ON c.id = g.child_person
           WHERE g.guardian_person = %s AND g.ended_at IS NULL
             AND g.valid_from <= current_date
             AND (g.valid_until IS NULL OR g.valid_until > current_date)
             AND (c.birth_date IS NULL
                  OR c.birth_date + interval '{ADULT_AGE} years' > current_date)
           ORDER BY c.birth_date, c.id""",
        (guardian_person,),
    ).fetchall()
    return [int(r[0]) for r in rows]
