"""Merge and unmerge persons with full history, and decisions on the review queue.

A merge moves the merged person's source links to the survivor, fills the survivor's empty
fields from the merged record, and points ``merged_into`` at the survivor. Clinical data never
moves: a row stays under the person it was written under, and reads of a survivor follow
``merged_ids`` (so an unmerge moves no data either). ``person_merge`` keeps exactly which links
moved and both rows as they were, so ``unmerge`` restores them. Audit events are written by the access component;
until it is wired, ``merge_history`` is the record of who did what.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
import psycopg

from hssk.registry.persons import resolve

# Columns restored by unmerge (everything but the identity and creation time).
_RESTORE = (
    "health_id", "cccd", "cccd_verified", "passport", "bhxh", "bhyt", "temp_card", "full_name",
    "name_key", "family_key", "given_key", "birth_date", "birth_precision", "sex", "phone",
    "address", "province_code", "commune_code", "commune_code_old", "household_id", "mother_id",
    "deceased_at", "verification", "merged_into", "updated_at", "middle_key", "cmnd", "eid",
    "commune_ambiguous", "name_sorted", "phone_verified",
)  # fmt: skip
# Survivor fields filled from the merged person when empty.
_FILL = (
    "health_id", "cccd", "passport", "bhxh", "bhyt", "temp_card", "phone", "address",
    "province_code", "commune_code", "commune_code_old", "household_id", "mother_id",
    "deceased_at", "cmnd", "eid", "birth_date", "full_name", "name_key", "family_key",
    "middle_key", "given_key", "name_sorted", "sex",
)  # fmt: skip


class MergeError(ValueError):
    """A merge or unmerge that cannot be done, with the reason (Vietnamese and English)."""

    def __init__(self, vi: str, en: str) -> None:
        super().__init__(f"{vi} / {en}")
        self.vi, self.en = vi, en


@dataclass
class MergeEvent:
    """One row of merge history."""

    id: int
    survivor_id: int
    merged_id: int
    actor: str | None
    reason: str | None
    moved_sources: list[int]
    moved_resources: list[tuple[str, str]]
    merged_at: datetime
    unmerged_at: datetime | None
    unmerged_by: str | None


def merge(
    conn: psycopg.Connection[Any],
    survivor_id: int,
    merged_id: int,
    *,
    actor: str | None = None,
    reason: str | None = None,
    review_id: int | None = None,
) -> int:
    """Merge ``merged_id`` into ``survivor_id`` (both resolved to current survivors); returns
    the id of the ``person_merge`` row."""
    survivor, merged = resolve(conn, survivor_id), resolve(conn, merged_id)
    if survivor == merged:
        raise MergeError(
            f"Hai mã {survivor_id} và {merged_id} đã là cùng một người ({survivor}).",
            f"persons {survivor_id} and {merged_id} are already the same person ({survivor}).",
        )
    rows = conn.execute(
        "SELECT id, to_jsonb(p) FROM person p WHERE id = ANY(%s) ORDER BY id FOR UPDATE",
        ([survivor, merged],),
    ).fetchall()
    snap = {int(r[0]): r[1] for r in rows}
    for pid in (survivor, merged):
        if pid not in snap:
            raise MergeError(f"Không có người mang mã {pid}.", f"no person with id {pid}.")
    sources = [
        int(r[0])
        for r in conn.execute(
            "UPDATE person_source SET person_id = %s WHERE person_id = %s RETURNING id",
            (survivor, merged),
        ).fetchall()
    ]
    fill = ", ".join(f"{c} = coalesce(s.{c}, m.{c})" for c in _FILL if c not in ("birth_date",))
    conn.execute(
        f"""UPDATE person s SET {fill},
               birth_date = CASE WHEN s.birth_date IS NULL OR (s.birth_precision <> 'D' AND m.birth_precision = 'D')
                                 THEN m.birth_date ELSE s.birth_date END,
               birth_precision = CASE WHEN s.birth_date IS NULL OR (s.birth_precision <> 'D' AND m.birth_precision = 'D')
                                 THEN m.birth_precision ELSE s.birth_precision END,
               cccd_verified = s.cccd_verified OR (m.cccd_verified AND m.cccd = s.cccd),
               -- a phone the survivor gains keeps its own verification (never more)
               phone_verified = CASE WHEN s.phone IS NULL THEN m.phone_verified
                                     ELSE s.phone_verified END,
               updated_at = now()
              FROM person m WHERE s.id = %s AND m.id = %s""",
        (survivor, merged),
    )
    conn.execute(
        "UPDATE person SET merged_into = %s, updated_at = now() WHERE id = %s", (survivor, merged)
    )
    row = conn.execute(
        """INSERT INTO person_merge (survivor_id, merged_id, actor, reason, review_id, moved_sources,
                                     moved_resources, survivor_before, merged_before)
           VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb, %s::jsonb, %s::jsonb) RETURNING id""",
        (
            survivor,
            merged,
            actor,
            reason,
            review_id,
            sources,
            "[]",  # moved_resources: merges no longer move any (kept for earlier merges)
            orjson.dumps(snap[survivor]).decode(),
            orjson.dumps(snap[merged]).decode(),
        ),
    ).fetchone()
    assert row is not None
    _audit(conn, "merge", actor, survivor, {"merged": merged, "merge_id": int(row[0]),
           "reason": reason})  # fmt: skip
    return int(row[0])


def _audit(
    conn: psycopg.Connection[Any], action: str, actor: str | None, person_id: int, detail: Any
) -> None:
    """Merges change whose record data belongs to: the audit trail keeps every one."""
    from hssk.access import audit
    from hssk.access.actor import PLATFORM, Actor

    who = PLATFORM if actor is None else Actor(account_id=actor, kind="staff", client="hssk-mpi")
    audit(conn, who, action, outcome="allow", basis="registry", resource_type="Patient",
          resource_id=f"mpi-{person_id}", person_id=person_id, detail=detail)  # fmt: skip


def unmerge(conn: psycopg.Connection[Any], merge_id: int, *, actor: str | None = None) -> None:
    """Undo a merge: move back exactly the source links that moved and restore both persons as
    they were (clinical data never moved)."""
    row = conn.execute(
        """SELECT survivor_id, merged_id, moved_sources, moved_resources, survivor_before,
                  merged_before, unmerged_at FROM person_merge WHERE id = %s FOR UPDATE""",
        (merge_id,),
    ).fetchone()
    if row is None:
        raise MergeError(f"Không có lần gộp số {merge_id}.", f"no merge with id {merge_id}.")
    survivor, merged, sources, _resources, s_before, m_before, done = row
    if done is not None:
        raise MergeError(
            f"Lần gộp {merge_id} đã được tách lúc {done}.",
            f"merge {merge_id} was already undone at {done}.",
        )
    later = conn.execute(
        """SELECT id FROM person_merge WHERE unmerged_at IS NULL AND id > %s
             AND (merged_id = ANY(%s) OR survivor_id = %s) ORDER BY id DESC LIMIT 1""",
        (merge_id, [survivor, merged], merged),
    ).fetchone()
    if later is not None:
        raise MergeError(
            f"Phải tách lần gộp sau ({later[0]}) trước.",
            f"undo the later merge {later[0]} involving these persons first.",
        )
    conn.execute(
        "UPDATE person_source SET person_id = %s WHERE id = ANY(%s)", (merged, list(sources))
    )
    cols = ", ".join(_RESTORE)
    for pid, before in ((survivor, s_before), (merged, m_before)):
        conn.execute(
            f"UPDATE person SET ({cols}) = (SELECT {cols} FROM jsonb_populate_record(NULL::person, %s::jsonb))"
            " WHERE id = %s",
            (orjson.dumps(before).decode(), pid),
        )
    conn.execute(
        "UPDATE person_merge SET unmerged_at = now(), unmerged_by = %s WHERE id = %s",
        (actor, merge_id),
    )
    _audit(conn, "unmerge", actor, survivor, {"merged": merged, "merge_id": merge_id})


def merge_history(conn: psycopg.Connection[Any], person_id: int) -> list[MergeEvent]:
    """Merges in which a person took part (as survivor or merged), oldest first."""
    rows = conn.execute(
        """SELECT id, survivor_id, merged_id, actor, reason, moved_sources, moved_resources,
                  merged_at, unmerged_at, unmerged_by
             FROM person_merge WHERE survivor_id = %s OR merged_id = %s ORDER BY id""",
        (person_id, person_id),
    ).fetchall()
    return [
        MergeEvent(
            int(r[0]),
            int(r[1]),
            int(r[2]),
            r[3],
            r[4],
            list(r[5]),
            [(t, i) for t, i in r[6]],
            r[7],
            r[8],
            r[9],
        )
        for r in rows
    ]


# --- review queue -------------------------------------------------------------------------
@dataclass
class Review:
    """An uncertain pair awaiting a decision."""

    id: int
    person_id: int
    candidate_id: int
    score: float
    evidence: dict[str, Any]
    status: str
    created_at: datetime
    source: str | None = None
    source_record_id: str | None = None


def list_reviews(
    conn: psycopg.Connection[Any], *, status: str = "open", limit: int = 100
) -> list[Review]:
    """Review rows, highest score first."""
    rows = conn.execute(
        """SELECT r.id, r.person_id, r.candidate_id, r.score, r.evidence, r.status, r.created_at,
                  s.source, s.source_record_id
             FROM match_review r LEFT JOIN person_source s ON s.id = r.person_source_id
            WHERE r.status = %s ORDER BY r.score DESC, r.id LIMIT %s""",
        (status, limit),
    ).fetchall()
    return [
        Review(int(r[0]), int(r[1]), int(r[2]), float(r[3]), r[4], r[5], r[6], r[7], r[8])
        for r in rows
    ]


def decide(
    conn: psycopg.Connection[Any],
    review_id: int,
    *,
    accept: bool,
    actor: str | None = None,
    note: str | None = None,
) -> int | None:
    """Accept (merge the provisional person into the candidate) or reject a review.

    Returns the person_merge id on accept. Other open reviews of the same pair are closed too.
    """
    row = conn.execute(
        "SELECT person_id, candidate_id, status FROM match_review WHERE id = %s FOR UPDATE",
        (review_id,),
    ).fetchone()
    if row is None:
        raise MergeError(f"Không có mục xem xét số {review_id}.", f"no review with id {review_id}.")
    pid, cand, status = int(row[0]), int(row[1]), row[2]
    if status != "open":
        raise MergeError(
            f"Mục xem xét {review_id} đã được quyết định ({status}).",
            f"review {review_id} is already {status}.",
        )
    merge_id = None
    if accept and resolve(conn, pid) != resolve(conn, cand):
        merge_id = merge(
            conn,
            cand,
            pid,
            actor=actor,
            reason=note or "match review accepted",
            review_id=review_id,
        )
    conn.execute(
        """UPDATE match_review SET status = %s, decided_by = %s, decided_at = now(), note = %s
            WHERE status = 'open' AND (id = %s OR (person_id = %s AND candidate_id = %s))""",
        ("accepted" if accept else "rejected", actor, note, review_id, pid, cand),
    )
    _audit(conn, "review-accept" if accept else "review-reject", actor, cand,
           {"review_id": review_id, "person": pid, "note": note})  # fmt: skip
    return merge_id
