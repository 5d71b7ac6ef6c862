"""Guardianship links (guardian person ↔ child person) for components that create them
(registry, station pages, demo data). Access rules read them in ``policy``."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg

ADULT_AGE = 18  # Civil Code: a guardian's right to the child's book ends at 18
MIN_REASON = 10  # characters of the written reason of a link the registry does not support


class GuardianshipError(ValueError):
    """A guardianship that cannot be recorded (the message says why and how to fix it)."""


def link_guardian(
    conn: psycopg.Connection[Any],
    guardian_person: int,
    child_person: int,
    *,
    relation: str = "parent",
    valid_until: date | str | None = None,
    created_by: str | None = None,
    reason: str | None = None,
) -> int:
    """Create (or re-open) the link; returns its id. The policy ends it at the child's 18th
    birthday or at ``valid_until``, whichever comes first.

    Refused for a child of 18 or more, and without a basis: the registry names the guardian
    as the child's mother, or both live in the same household, or the staff member writes
    why (the papers seen: birth certificate, guardianship decision), kept with the link."""
    if guardian_person == child_person:
        raise GuardianshipError("a person cannot be their own guardian / không thể tự giám hộ")
    facts = conn.execute(
        f"""SELECT c.birth_date + interval '{ADULT_AGE} years' <= current_date,
                   c.mother_id = g.id,
                   c.household_id IS NOT NULL AND c.household_id = g.household_id
              FROM person c, person g WHERE c.id = %s AND g.id = %s""",
        (child_person, guardian_person),
    ).fetchone()
    if facts is None:
        raise GuardianshipError("người giám hộ hoặc trẻ không tồn tại / no such guardian or child")
    adult, mother, household = facts
    if adult:
        raise GuardianshipError(
            f"người này đã đủ {ADULT_AGE} tuổi / the child is {ADULT_AGE} or older: an adult's "
            "book is theirs alone (they may grant a consent instead)"
        )
    why = (reason or "").strip()
    basis = "mother" if mother else "household" if household else "staff" if why else None
    if basis is None or (basis == "staff" and len(why) < MIN_REASON):
        raise GuardianshipError(
            "cần căn cứ / a basis is required: the registry does not name this guardian as the "
            "child's mother nor in the same household; write the reason (at least "
            f"{MIN_REASON} characters: the papers you saw, e.g. giấy khai sinh, quyết định giám hộ)"
        )
    row = conn.execute(
        """INSERT INTO guardianship (guardian_person, child_person, relation, valid_until,
               created_by, basis, reason) VALUES (%s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (guardian_person, child_person) DO UPDATE SET ended_at = NULL,
             relation = excluded.relation, valid_until = excluded.valid_until,
             created_by = excluded.created_by, basis = excluded.basis, reason = excluded.reason
           RETURNING id""",
        (guardian_person, child_person, relation, valid_until, created_by, basis, why or None),
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
    return [c[0] for c in children_named(conn, guardian_person)]


def children_named(
    conn: psycopg.Connection[Any], guardian_person: int
) -> list[tuple[int, str | None, date | None]]:
    """(id, name, birth date) of the children of :func:`children_of`, eldest first."""
    rows = conn.execute(
        f"""SELECT g.child_person, c.full_name, c.birth_date
           FROM guardianship g JOIN person c ON c.id = g.child_person
           WHERE g.guardian_person = %s AND g.ended_at IS NULL
             AND g.valid_from <= current_date
             AND (g.valid_until IS NULL OR g.valid_until > current_date)
             AND (c.birth_date IS NULL
                  OR c.birth_date + interval '{ADULT_AGE} years' > current_date)
           ORDER BY c.birth_date, c.id""",
        (guardian_person,),
    ).fetchall()
    return [(int(r[0]), r[1], r[2]) for r in rows]
