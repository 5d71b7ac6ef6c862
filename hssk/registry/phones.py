"""A person's phone: the one a login code may go to, and how it may change.

A golden record's phone is *verified* when the population register holds it or the citizen
confirmed it in person (staff entry with a reason). Only then does a one-time code go to it
(``login_phone``). Every change is kept in ``person_phone_change`` and told to the old phone,
so the owner learns of a change they did not ask for.
"""

from __future__ import annotations

from typing import Any

import psycopg

from hssk.registry.link import resolve
from hssk.registry.normalize import normalize_phone

MIN_REASON = 10  # characters of the written reason of an in-person change


class PhoneError(ValueError):
    """A phone change that cannot be made (the message says why and how to fix it)."""


def login_phone(conn: psycopg.Connection[Any], person_id: int) -> str | None:
    """The person's verified phone (merges followed), or None: the only phone of a golden
    record a one-time code may be sent to."""
    row = conn.execute(
        "SELECT phone FROM person WHERE id = %s AND phone_verified AND phone IS NOT NULL",
        (resolve(conn, person_id),),
    ).fetchone()
    return str(row[0]) if row else None


def verify_from_register(
    conn: psycopg.Connection[Any], rows: list[tuple[int, str, str]], source: str
) -> int:
    """(person id, normalized phone, register record id) of population-register records: the
    register's phone becomes the person's verified phone (the register is authoritative).
    Returns the number of persons whose phone changed."""
    if not rows:
        return 0
    changed = conn.execute(
        """WITH u AS (SELECT DISTINCT ON (id) id, phone, rid
                        FROM unnest(%b::bigint[], %b::text[], %b::text[]) AS x(id, phone, rid)
                       ORDER BY id),
                old AS (SELECT p.id, p.phone FROM person p JOIN u ON u.id = p.id
                         WHERE (p.phone, p.phone_verified) IS DISTINCT FROM (u.phone, true)
                           FOR UPDATE OF p)
           UPDATE person p SET phone = u.phone, phone_verified = true, updated_at = now()
             FROM u JOIN old ON old.id = u.id
            WHERE p.id = u.id
           RETURNING p.id, old.phone, u.phone, u.rid""",
        ([r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]),
    ).fetchall()
    changes = [(int(pid), old, new, f"record {rid}") for pid, old, new, rid in changed]
    _record(conn, [c for c in changes if c[1] != c[2]], source, None)
    return len(changes)


def set_phone_in_person(
    conn: psycopg.Connection[Any], person_id: int, phone: str, *, actor: str, reason: str
) -> str:
    """A phone the citizen confirmed in person, entered by staff with a written reason
    (audited; the old phone is told). Returns the normalized phone."""
    number = normalize_phone(phone)
    if number is None:
        raise PhoneError(
            f"số điện thoại không hợp lệ / not a phone number: {phone!r}; "
            "give 10 digits, e.g. 0912345678"
        )
    if len((reason or "").strip()) < MIN_REASON:
        raise PhoneError(
            f"cần ghi lý do (ít nhất {MIN_REASON} ký tự) / a written reason of at least "
            f"{MIN_REASON} characters is required (e.g. how the citizen proved who they are)"
        )
    pid = resolve(conn, person_id)
    row = conn.execute(
        "SELECT phone FROM person WHERE id = %s AND merged_into IS NULL FOR UPDATE", (pid,)
    ).fetchone()
    if row is None:
        raise PhoneError(f"không có người mang mã {person_id} / no person with id {person_id}")
    conn.execute(
        "UPDATE person SET phone = %s, phone_verified = true, updated_at = now() WHERE id = %s",
        (number, pid),
    )
    _record(conn, [(pid, row[0], number, reason.strip())], "in-person", actor)
    from hssk.access import audit  # the trail is the access component's (as for merges)
    from hssk.access.actor import Actor

    who = Actor(account_id=actor, kind="staff", client="hssk-mpi")
    audit(conn, who, "phone-change", outcome="allow", basis="in-person", resource_type="Patient",
          resource_id=f"mpi-{pid}", person_id=pid,
          detail={"reason": reason.strip(), "changed": row[0] != number})  # fmt: skip
    return number


def _record(
    conn: psycopg.Connection[Any],
    changes: list[tuple[int, str | None, str, str]],
    source: str,
    actor: str | None,
) -> None:
    """Keep each change and tell the old phone (a message without the new number in full)."""
    if not changes:
        return
    rows = conn.execute(
        """INSERT INTO person_phone_change (person_id, old_phone, new_phone, source, actor,
               reason)
           SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[], %s::text[], %s::text[],
                                %s::text[])
           RETURNING id, old_phone, new_phone""",
        ([c[0] for c in changes], [c[1] for c in changes], [c[2] for c in changes],
         [source] * len(changes), [actor] * len(changes), [c[3] for c in changes]),
    ).fetchall()  # fmt: skip
    from hssk.access.notify import tell_phone_changed  # the gateway (no access rules)

    told = [
        cid for cid, old, new in rows if old and old != new and tell_phone_changed(conn, old, new)
    ]
    if told:
        conn.execute(
            "UPDATE person_phone_change SET notified_at = now() WHERE id = ANY(%s)", (told,)
        )
