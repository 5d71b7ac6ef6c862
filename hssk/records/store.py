"""The clinical record store: FHIR R4 JSON in JSONB, versioned, with indexed columns.

Single-resource functions serve the FHIR API; ``bulk_upsert`` serves ingestion (COPY into a
staging table, then one set-based upsert). Every change keeps the previous version in
``resource_history`` and is published to listeners (outbox, completeness) in the same
transaction.

Keyed by person (migration 0105): ``resource`` and ``resource_history`` are hash-partitioned
by ``person_id`` (no person: the default partition), and ``resource_locator`` says under which
person each ``(type, id)`` lives. Reads by id and the existence check of bulk writes ask the
locator, then read one partition; a new resource is written to the locator first (its key is
the one unique constraint, so a partition may be a foreign table on another server). The
person a row was written under never changes (merges are followed on read by the callers,
through the registry's ``merged_ids``); a resource with no person may be given one.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from hashlib import sha1
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from hssk.db.textlist import SPLIT, joined, splittable
from hssk.kernel.sensitivity import sensitivity_of
from hssk.records import events, extract
from hssk.records.rows import SERVER_META, Rendered, finish_line, prerender, text

NAMESPACE = uuid.UUID("6f1c5d2e-3b7a-4c1e-9a55-1d2f0c7b8e41")
_NS_BYTES = NAMESPACE.bytes


class NotFound(Exception):
    """No such resource."""


class Gone(Exception):
    """The resource was deleted."""


class VersionConflict(Exception):
    """If-Match named a version that is not the current one."""


@dataclass
class Stored:
    """A resource as stored: its current body (with id and meta) and the indexed columns."""

    type: str
    id: str
    version: int
    last_updated: datetime
    body: dict[str, Any]
    person_id: int | None = None
    deleted: bool = False
    sensitivity: str | None = None


@dataclass
class NewResource:
    """A resource to write in bulk. With a ``source_key`` its id is derived from it, so a
    re-sent source record updates the same resource instead of creating a second one."""

    body: dict[str, Any]
    person_id: int | None = None
    source_key: str | None = None
    source_unit: str | None = None
    sensitivity: str | None = None
    create_only: bool = False  # stored already: leave it as it is (counted unchanged)
    # rendered ahead of the write (rows.prerender); ``body`` then holds resourceType and id only
    rendered: Rendered | None = None


@dataclass
class BulkResult:
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    unchanged: int = 0
    # (type, id) → version written; only filled when bulk_upsert(..., versions=True)
    versions: dict[tuple[str, str], int] = field(default_factory=dict)
    # writes left undone because they would have moved a stored resource to another person
    refused_moves: list[RefusedMove] = field(default_factory=list)

    def merge(self, other: BulkResult) -> None:
        self.created.update(other.created)
        self.updated.update(other.updated)
        self.unchanged += other.unchanged
        self.refused_moves += other.refused_moves


@dataclass(frozen=True)
class RefusedMove:
    """A write of a stored resource under another person than its own: not done (a write
    never moves data from one person to another; the registry corrects identities)."""

    type: str
    id: str
    owner: int
    asked: int


def new_id() -> str:
    return str(uuid.uuid4())


def id_for_source_key(resource_type: str, source_key: str) -> str:
    """Deterministic resource id of a source record (idempotent re-ingest).

    Equal to ``str(uuid.uuid5(NAMESPACE, f"{resource_type}|{source_key}"))``, computed without
    the UUID object (faster; ingestion derives ~20 ids per visit)."""
    name = f"{resource_type}|{source_key}".encode()
    b = bytearray(sha1(_NS_BYTES + name, usedforsecurity=False).digest()[:16])
    b[6] = (b[6] & 0x0F) | 0x50  # version 5
    b[8] = (b[8] & 0x3F) | 0x80  # RFC 4122 variant
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _with_meta(body: dict[str, Any], rid: str, version: int, at: datetime) -> dict[str, Any]:
    meta = dict(body.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = at.isoformat().replace("+00:00", "Z")
    out = dict(body)
    out["id"] = rid
    out["meta"] = meta
    return out


def content(body: dict[str, Any]) -> dict[str, Any]:
    """The body without the server-assigned meta.versionId/lastUpdated (and an empty meta).

    Same as the SQL function ``resource_content``: equal content means the same version."""
    meta = body.get("meta")
    if meta is None:
        return body
    rest = {k: v for k, v in meta.items() if k not in SERVER_META}
    out = {k: v for k, v in body.items() if k != "meta"}
    if rest:
        out["meta"] = rest
    return out


_COLUMNS = "type, id, version, last_updated, body, person_id, deleted"
_CURRENT = _COLUMNS + ", sensitivity"


def _row(r: Sequence[Any]) -> Stored:
    return Stored(
        type=r[0],
        id=r[1],
        version=r[2],
        last_updated=r[3],
        body=r[4],
        person_id=r[5],
        deleted=r[6],
        sensitivity=r[7] if len(r) > 7 else None,
    )


def _now(conn: psycopg.Connection[Any]) -> datetime:
    # statement time of the transaction: all writes of one transaction share it
    return conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]


class _Key:
    """Where one resource lives: its person's partition (the locator says which). ``where``
    takes the named parameters ``args``."""

    __slots__ = ("args", "person_id", "where")

    def __init__(self, rtype: str, rid: str, person_id: int | None) -> None:
        self.person_id = person_id
        self.args: dict[str, Any] = {"kp": person_id, "kt": rtype, "ki": rid}
        # one hash partition, or the no-person one
        who = "person_id IS NULL" if person_id is None else "person_id = %(kp)s"
        self.where = f"{who} AND type = %(kt)s AND id = %(ki)s"


def _locate(
    conn: psycopg.Connection[Any], rtype: str, rid: str, *, lock: bool = False
) -> _Key | None:
    """The resource's place from the locator (None: never stored). ``lock``: hold its locator
    row until commit (writers of one resource take turns there)."""
    row = conn.execute(
        "SELECT person_id FROM resource_locator WHERE type = %s AND id = %s"
        + (" FOR UPDATE" if lock else ""),
        (rtype, rid),
    ).fetchone()
    return None if row is None else _Key(rtype, rid, row[0])


def read(conn: psycopg.Connection[Any], rtype: str, rid: str) -> Stored:
    """Current version; raises NotFound or Gone."""
    key = _locate(conn, rtype, rid)
    row = (
        None
        if key is None
        else conn.execute(f"SELECT {_CURRENT} FROM resource WHERE {key.where}", key.args).fetchone()
    )
    if row is None:
        raise NotFound(f"{rtype}/{rid}")
    stored = _row(row)
    if stored.deleted:
        raise Gone(f"{rtype}/{rid}")
    return stored


def vread(conn: psycopg.Connection[Any], rtype: str, rid: str, version: int) -> Stored:
    """A given version (current or earlier)."""
    for stored in history(conn, rtype, rid):
        if stored.version == version:
            return stored
    raise NotFound(f"{rtype}/{rid}/_history/{version}")


def history(conn: psycopg.Connection[Any], rtype: str, rid: str) -> list[Stored]:
    """All versions, newest first, each with its own person and sensitivity label (earlier
    versions keep no label column: theirs is read from their body by the one rule); raises
    NotFound if the resource never existed. Versions live in their resource's partition."""
    key = _locate(conn, rtype, rid)
    rows = (
        []
        if key is None
        else conn.execute(
            f"""SELECT {_CURRENT} FROM resource WHERE {key.where}
                UNION ALL
                SELECT {_COLUMNS}, NULL FROM resource_history WHERE {key.where}
                ORDER BY version DESC""",
            key.args,
        ).fetchall()
    )
    if not rows:
        raise NotFound(f"{rtype}/{rid}")
    versions = [_row(r) for r in rows]
    for v in versions:
        v.sensitivity = v.sensitivity or sensitivity_of(v.body)
    return versions


def _insert_history(conn: psycopg.Connection[Any], key: _Key) -> None:
    conn.execute(
        f"""INSERT INTO resource_history (type, id, version, person_id, last_updated, deleted, body)
            SELECT type, id, version, person_id, last_updated, deleted, body
            FROM resource WHERE {key.where}""",
        key.args,
    )


def _attach(conn: psycopg.Connection[Any], rtype: str, rid: str, person_id: int) -> None:
    """A resource stored with no person gets one (the only move the store makes: out of the
    no-person partition, never from one person to another): its earlier versions and its
    locator follow; the current row moves with its update."""
    conn.execute(
        """UPDATE resource_history SET person_id = %s
           WHERE person_id IS NULL AND type = %s AND id = %s""",
        (person_id, rtype, rid),
    )
    conn.execute(
        "UPDATE resource_locator SET person_id = %s WHERE type = %s AND id = %s",
        (person_id, rtype, rid),
    )


def save(
    conn: psycopg.Connection[Any],
    body: dict[str, Any],
    *,
    rid: str | None = None,
    if_match: int | None = None,
    person_id: int | None = None,
    source_key: str | None = None,
    source_unit: str | None = None,
    sensitivity: str | None = None,
) -> tuple[Stored, bool]:
    """Create (no id / unknown id) or update (known id) one resource. Returns (stored, created).

    An update whose content equals the current version is a no-op (same version). A stored
    resource stays under the person it was written under (the API refuses a write that names
    another person; one since merged into the named person is the same): ``person_id`` only
    gives a person to a resource that had none."""
    rtype = body["resourceType"]
    rid = rid or body.get("id") or new_id()
    key = _locate(conn, rtype, rid, lock=True)
    current = (
        None
        if key is None
        else conn.execute(f"SELECT {_COLUMNS} FROM resource WHERE {key.where}", key.args).fetchone()
    )
    cur = _row(current) if current else None
    if key is not None and cur is None:  # located, its rows gone (deleted by hand): anew
        conn.execute("DELETE FROM resource_locator WHERE type = %s AND id = %s", (rtype, rid))
        key = None
    if if_match is not None and (cur is None or cur.version != if_match or cur.deleted):
        have = "none" if cur is None else str(cur.version)
        raise VersionConflict(f"{rtype}/{rid}: If-Match version {if_match}, current is {have}")
    asked = person_id  # the person the change is about, for the listeners
    if cur is not None and cur.person_id is not None:
        person_id = cur.person_id
    same = cur is not None and content({**body, "id": rid}) == content(cur.body)
    if cur and not cur.deleted and same and person_id == cur.person_id:
        return cur, False
    at = _now(conn)
    version = (cur.version + 1) if cur else 1
    full = _with_meta(body, rid, version, at)
    params = {
        "type": rtype,
        "id": rid,
        "version": version,
        "person_id": person_id,
        "codes": extract.codes(full),
        "effective": extract.effective(full),
        "terms": extract.terms(full),
        "source_unit": source_unit,
        "source_key": source_key,
        "sensitivity": sensitivity,
        "at": at,
        "body": Jsonb(full, dumps=_dumps),
    }
    if cur and key is not None:
        _insert_history(conn, key)
        if cur.person_id is None and person_id is not None:
            _attach(conn, rtype, rid, person_id)
        unit = conn.execute(
            f"""UPDATE resource SET version = %(version)s, person_id = %(person_id)s,
                 codes = %(codes)s, effective = %(effective)s, terms = %(terms)s,
                 source_unit = coalesce(%(source_unit)s, source_unit),
                 source_key = coalesce(%(source_key)s, source_key),
                 sensitivity = %(sensitivity)s, deleted = false, last_updated = %(at)s,
                 body = %(body)s
               WHERE {key.where} RETURNING source_unit""",
            params | key.args,
        ).fetchone()
        source_unit = unit[0] if unit else source_unit
    else:
        conn.execute(
            """INSERT INTO resource_locator (type, id, person_id)
               VALUES (%(type)s, %(id)s, %(person_id)s)""",
            params,
        )
        conn.execute(
            """INSERT INTO resource (type, id, version, person_id, codes, effective, terms,
                 source_unit, source_key, sensitivity, last_updated, body)
               VALUES (%(type)s, %(id)s, %(version)s, %(person_id)s, %(codes)s, %(effective)s,
                 %(terms)s, %(source_unit)s, %(source_key)s, %(sensitivity)s, %(at)s, %(body)s)""",
            params,
        )
    stored = Stored(rtype, rid, version, at, full, person_id, sensitivity=sensitivity)
    action = "update" if cur else "create"
    who = person_id if asked is None else asked
    events.publish(conn, [events.Change(rtype, rid, version, who, action, source_unit)])
    return stored, cur is None


def delete(conn: psycopg.Connection[Any], rtype: str, rid: str) -> bool:
    """Mark deleted (a new version); earlier versions stay readable. False if absent."""
    key = _locate(conn, rtype, rid, lock=True)
    cur = (
        None
        if key is None
        else conn.execute(f"SELECT {_COLUMNS} FROM resource WHERE {key.where}", key.args).fetchone()
    )
    if key is None or cur is None or cur[6]:
        return False
    _insert_history(conn, key)
    at = _now(conn)
    unit = conn.execute(
        f"""UPDATE resource SET version = version + 1, deleted = true, last_updated = %(at)s,
              body = jsonb_set(body, '{{meta,versionId}}', to_jsonb((version + 1)::text))
            WHERE {key.where} RETURNING source_unit""",
        {"at": at, **key.args},
    ).fetchone()
    change = events.Change(rtype, rid, cur[2] + 1, cur[5], "delete", unit[0] if unit else None)
    events.publish(conn, [change])
    return True


@dataclass(frozen=True)
class Owner:
    """Whose a stored resource is (the person it was written under), and its label."""

    person_id: int | None
    sensitivity: str | None
    deleted: bool


# One index probe of the locator per asked key. As a join, PostgreSQL hashes the key list and
# reads the whole locator once it holds a few thousand rows (2 ms per 100 keys at 11,000 rows,
# growing with the store); OFFSET 0 keeps the subquery a probe per key.
_PROBE = """CROSS JOIN LATERAL (SELECT l.person_id FROM resource_locator l
                       WHERE l.type = k.type AND l.id = k.id OFFSET 0) l"""


def _located(
    conn: psycopg.Connection[Any], keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int | None]:
    """The person of each stored resource among ``keys`` (the locator; None: no person)."""
    if not keys:
        return {}
    rows = conn.execute(
        f"SELECT k.type, k.id, l.person_id FROM unnest(%s::text[], %s::text[]) AS k(type, id) {_PROBE}",
        ([k[0] for k in keys], [k[1] for k in keys]),
    ).fetchall()
    return {(t, i): p for t, i, p in rows}


@dataclass(frozen=True)
class Located:
    """The locator's answer for ``keys``, read in the caller's transaction: the person of each
    stored one (None: no person), and the transaction's time. A writer that asked it first
    (the FHIR bulk writer, for the owners) hands it to ``bulk_upsert``, which then does not
    ask again."""

    keys: frozenset[tuple[str, str]]
    persons: dict[tuple[str, str], int | None]
    at: datetime


def locate_many(conn: psycopg.Connection[Any], keys: Iterable[tuple[str, str]]) -> Located:
    """Where each of ``keys`` is stored (one probe of the locator per key) and ``now()``, in one
    round trip. Keys whose id cannot be sent as a joined list (``splittable``) are not asked and
    not in ``Located.keys``."""
    asked = [k for k in dict.fromkeys(keys) if splittable(k[1])]
    row = conn.execute(
        f"""SELECT now(), coalesce(array_agg(k.type), '{{}}'), coalesce(array_agg(k.id), '{{}}'),
                   coalesce(array_agg(l.person_id), '{{}}')
            FROM unnest({SPLIT}, {SPLIT}) AS k(type, id) {_PROBE}""",
        (joined(k[0] for k in asked), joined(k[1] for k in asked)),
    ).fetchone()
    assert row is not None
    persons = dict(zip(zip(row[1], row[2], strict=True), row[3], strict=True))
    return Located(frozenset(asked), persons, row[0])


def _current(
    conn: psycopg.Connection[Any], located: dict[tuple[str, str], int | None], columns: str
) -> list[tuple[Any, ...]]:
    """``columns`` of the current rows of located resources: each read in its person's
    partition (and the no-person one)."""
    owned = [(k, p) for k, p in located.items() if p is not None]
    loose = [k for k, p in located.items() if p is None]
    if not located:
        return []
    return conn.execute(
        f"""SELECT {columns} FROM resource
            WHERE person_id = ANY(%s)
              AND (person_id, type, id) IN (SELECT * FROM unnest(%s::bigint[], %s::text[], %s::text[]))
            UNION ALL
            SELECT {columns} FROM resource
            WHERE person_id IS NULL
              AND (type, id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))""".encode(),
        (
            sorted({p for _, p in owned}),
            [p for _, p in owned],
            [k[0] for k, _ in owned],
            [k[1] for k, _ in owned],
            [k[0] for k in loose],
            [k[1] for k in loose],
        ),
    ).fetchall()


def owners(
    conn: psycopg.Connection[Any],
    keys: Sequence[tuple[str, str]],
    located: Located | None = None,
) -> dict[tuple[str, str], Owner]:
    """The owner of each stored resource among ``keys`` (type, id), deleted ones included.
    ``located``: the locator's answer the caller already has (keys it did not ask are asked)."""
    wanted = set(keys)
    where = {k: p for k, p in located.persons.items() if k in wanted} if located else {}
    rest = [k for k in keys if located is None or k not in located.keys]
    where |= _located(conn, rest)
    rows = _current(conn, where, "type, id, person_id, sensitivity, deleted")
    return {(t, i): Owner(p, s, d) for t, i, p, s, d in rows}


def person_of(conn: psycopg.Connection[Any], patient_id: str) -> int | None:
    """person_id of a Patient resource (None if unknown)."""
    row = conn.execute(
        "SELECT person_id FROM resource_locator WHERE type = 'Patient' AND id = %s", (patient_id,)
    ).fetchone()
    return row[0] if row else None


def persons_of_patients(
    conn: psycopg.Connection[Any], patient_ids: Sequence[str]
) -> dict[str, int]:
    """The person each stored Patient among ``patient_ids`` was written under (unknown ones and
    those with no person are left out)."""
    rows = conn.execute(
        """SELECT id, person_id FROM resource_locator
           WHERE type = 'Patient' AND id = ANY(%s) AND person_id IS NOT NULL""",
        (list(patient_ids),),
    ).fetchall()
    return {str(i): int(p) for i, p in rows}


def everything(
    conn: psycopg.Connection[Any],
    person_id: int | Collection[int],
    types: Iterable[str] | None = None,
) -> list[Stored]:
    """Every current resource of a person (oldest first), optionally of some types only.

    ``person_id``: one id, or the ids a survivor's data is stored under (merges never move
    rows; the registry's ``merged_ids``). One id reads one partition."""
    return [_row(r) for r in conn.execute(*everything_query(person_id, types)).fetchall()]


def everything_query(
    person_id: int | Collection[int], types: Iterable[str] | None = None
) -> tuple[bytes, list[Any]]:
    """The statement and parameters of ``everything`` (the book's query)."""
    ids = [person_id] if isinstance(person_id, int) else sorted(set(person_id))
    # One statement text per shape, not one with optional filters: PostgreSQL keeps a generic
    # plan for each (a "type list or NULL" parameter made it re-plan every call, ~0.1 ms), and
    # with ``person_id = %s`` that plan reads one partition.
    who = "person_id = %s" if len(ids) == 1 else "person_id = ANY(%s)"
    args: list[Any] = [ids[0] if len(ids) == 1 else ids]
    of_types = ""
    if types:
        of_types = " AND type = ANY(%s)"
        args.append(list(types))
    sql = f"""SELECT {_CURRENT} FROM resource WHERE {who} AND NOT deleted{of_types}
              ORDER BY effective NULLS FIRST, type, id"""
    return sql.encode(), args


def refresh_statistics(conn: psycopg.Connection[Any]) -> None:
    """Refresh the planner's statistics of the store after a bulk load. Autovacuum does it
    too, but later; until then PostgreSQL may read a person's book with a plan made for a
    smaller table (measured at 1 M persons: 20 ms instead of 0.7 ms)."""
    conn.execute("ANALYZE resource")
    conn.execute("ANALYZE resource_locator")


def _dumps(obj: Any) -> str:
    return orjson.dumps(obj).decode()


# --- bulk path ------------------------------------------------------------------------------
# Rows that may update stored resources wait here for the set-based upsert; same columns and
# COPY format as ``resource`` itself.
_STAGE = """CREATE TEMP TABLE IF NOT EXISTS resource_rows (
    type text, id text, version integer, person_id bigint, codes text[],
    effective timestamptz, terms text, source_unit text, source_key text, sensitivity text,
    last_updated timestamptz, body jsonb,
    owner bigint, located boolean NOT NULL DEFAULT false  -- from the locator
    ) ON COMMIT DELETE ROWS"""
_NEW_COLUMNS = (
    "type, id, version, person_id, codes, effective, terms, source_unit, source_key,"
    " sensitivity, last_updated, body"
)


def bulk_upsert(
    conn: psycopg.Connection[Any],
    items: Sequence[NewResource],
    *,
    versions: bool = False,
    located: Located | None = None,
) -> BulkResult:
    """Write many resources at once (idempotent by source_key).

    Resources not stored yet (by the locator) are copied straight into the locator and
    ``resource`` (version 1); the others go through a staging table and set-based statements:
    a changed body becomes a new version with the old one moved to history, an identical body
    is counted as unchanged and not written. ``located``: the locator's answer for these keys,
    read earlier in this transaction (``locate_many``); asked again if it misses one.
    """
    result = BulkResult()
    if not items:
        return result
    latest: dict[tuple[str, str], NewResource] = {}
    for item in items:
        rtype = item.body["resourceType"]
        rid = item.body.get("id") or (
            id_for_source_key(rtype, item.source_key) if item.source_key else new_id()
        )
        latest[(rtype, rid)] = item  # a key twice in one batch: the last one wins
    result.unchanged += len(items) - len(latest)
    keys = list(latest)
    asked = [k for k in keys if splittable(k[1])]
    if located is None or not located.keys.issuperset(asked):
        located = locate_many(conn, asked)
    at, known = located.at, {k for k in asked if k in located.persons}
    kept = {k for k in known if latest[k].create_only}  # stored, and to be left as they are
    result.unchanged += len(kept)
    known -= kept
    # an id holding the list separator (not a valid FHIR id) goes through the upsert, which
    # works whether it is stored or not
    known.update(k for k in keys if not splittable(k[1]))
    # key order: two writers with overlapping new keys wait on each other in the same order
    # (then one starts over) instead of deadlocking
    fresh = sorted(k for k in keys if k not in known and k not in kept)
    changes: list[events.Change] = []
    stamp = at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if fresh and not _copy_new(conn, _copy_rows(latest, fresh, stamp), latest, fresh, result,
                               changes):  # fmt: skip
        # Another writer stored some of them meanwhile (committed: we waited for it). Nothing
        # was written yet: start over, the existence check now sees them.
        return bulk_upsert(conn, items, versions=versions)  # located anew
    if known:
        upsert = sorted(k for k in keys if k in known)
        _upsert(conn, _copy_rows(latest, upsert, stamp), len(upsert), result, changes)
    events.publish(conn, changes)
    if versions:
        result.versions = {(c.type, c.id): c.version for c in changes}
        missing = [key for key in latest if key not in result.versions]
        if missing:
            for rtype, rid, version in _current(conn, _located(conn, missing), "type, id, version"):
                result.versions[(rtype, rid)] = version
    return result


def _copy_rows(
    latest: dict[tuple[str, str], NewResource], keys: list[tuple[str, str]], stamp: str
) -> bytes:
    """COPY text rows (``_NEW_COLUMNS``) of these resources as version 1 stamped ``stamp``."""
    lines = []
    for rtype, rid in keys:
        item = latest[(rtype, rid)]
        rendered = item.rendered or prerender({**item.body, "id": rid}, None)
        row = finish_line(rtype, rid, rendered, person_id=item.person_id, version="1",
                          source_unit=item.source_unit, source_key=item.source_key,
                          sensitivity=item.sensitivity, at=stamp)  # fmt: skip
        lines.append(row)
    return b"".join(lines)


def _locator_rows(latest: dict[tuple[str, str], NewResource], keys: list[tuple[str, str]]) -> bytes:
    """COPY text rows (type, id, person_id) of the locator."""
    lines = []
    for rtype, rid in keys:
        pid = latest[(rtype, rid)].person_id
        person = "\\N" if pid is None else str(int(pid))
        lines.append(f"{text(rtype)}\t{text(rid)}\t{person}\n")
    return "".join(lines).encode()


def _copy_new(
    conn: psycopg.Connection[Any],
    rows: bytes,
    latest: dict[tuple[str, str], NewResource],
    fresh: list[tuple[str, str]],
    result: BulkResult,
    changes: list[events.Change],
) -> bool:
    """COPY resources not stored yet into the locator, then into ``resource`` (each row to its
    person's partition). False (and nothing written) if a concurrent writer stored one of them
    meanwhile (the locator's key)."""
    try:
        with conn.transaction():
            with conn.cursor().copy(
                "COPY resource_locator (type, id, person_id) FROM STDIN"
            ) as copy:
                copy.write(_locator_rows(latest, fresh))
            with conn.cursor().copy(f"COPY resource ({_NEW_COLUMNS}) FROM STDIN") as copy:
                copy.write(rows)
    except psycopg.errors.UniqueViolation:
        return False
    for rtype, rid in fresh:
        result.created[rtype] += 1
        item = latest[(rtype, rid)]
        changes.append(events.Change(rtype, rid, 1, item.person_id, "create", item.source_unit))
    return True


# The stored rows a staged row may change, joined in their partitions: under the person the
# locator names (``owner``), or in the no-person partition.
_STAGED_ROWS = """(SELECT r.*, s.person_id AS asked, s.body AS new_body
   FROM resource_rows s JOIN resource r
     ON r.person_id = s.owner AND r.type = s.type AND r.id = s.id
  UNION ALL
  SELECT r.*, s.person_id, s.body
   FROM resource_rows s JOIN resource r
     ON r.person_id IS NULL AND s.owner IS NULL AND s.located AND r.type = s.type AND r.id = s.id)"""
# A new version where the content changed, the resource was deleted, or it gets a person.
_CHANGED = """(x.deleted OR resource_content(x.body) IS DISTINCT FROM resource_content(x.new_body)
       OR (x.person_id IS NULL AND x.asked IS NOT NULL))"""


def _upsert(
    conn: psycopg.Connection[Any],
    rows: bytes,
    count: int,
    result: BulkResult,
    changes: list[events.Change],
) -> None:
    """Staging table + set-based statements for ``count`` resources that may exist already:
    a new version where the content changed (or a resource with no person gets one), nothing
    where it did not. A stored row stays under the person it was written under."""
    conn.execute(_STAGE)
    conn.execute("TRUNCATE resource_rows")
    with conn.cursor().copy(f"COPY resource_rows ({_NEW_COLUMNS}) FROM STDIN") as copy:
        copy.write(rows)
    # Where each lives, its locator row locked in key order (no deadlock between writers).
    conn.execute(
        """UPDATE resource_rows s SET owner = l.person_id, located = true
           FROM (SELECT l.type, l.id, l.person_id FROM resource_locator l
                 WHERE (l.type, l.id) IN (SELECT type, id FROM resource_rows)
                 ORDER BY l.type, l.id FOR UPDATE) l
           WHERE l.type = s.type AND l.id = s.id"""
    )
    # A stored resource never goes to another person (one merged into the asked person is the
    # same): such rows are left as they are and reported (the caller holds the record back;
    # the registry corrects identities).
    result.refused_moves += [
        RefusedMove(*row)
        for row in conn.execute(
            """DELETE FROM resource_rows
               WHERE owner <> person_id AND person_survivor(owner) <> person_id
               RETURNING type, id, owner, person_id"""
        )
    ]
    # Not stored after all (an id the existence check could not send): new, as in _copy_new.
    fresh = conn.execute(
        """INSERT INTO resource_locator (type, id, person_id)
           SELECT type, id, person_id FROM resource_rows WHERE NOT located ORDER BY type, id
           ON CONFLICT DO NOTHING RETURNING type, id"""
    ).fetchall()
    if fresh:
        written = conn.execute(
            f"""INSERT INTO resource ({_NEW_COLUMNS}) SELECT {_NEW_COLUMNS} FROM resource_rows
                WHERE NOT located AND (type, id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))
                RETURNING type, id, version, person_id, source_unit""",
            ([t for t, _ in fresh], [i for _, i in fresh]),
        ).fetchall()
        _note(written, result, changes)
    # Each staged row finds its stored row by index in its one partition (a nested loop: the
    # planner, not knowing that each probe reads one partition, would otherwise sort or hash
    # every partition of the store for a batch of a few thousand rows).
    prev = conn.execute(
        "SELECT current_setting('enable_hashjoin'), current_setting('enable_mergejoin')"
    ).fetchone()
    conn.execute(
        "SELECT set_config('enable_hashjoin', 'off', true), set_config('enable_mergejoin', 'off', true)"
    )
    # Earlier versions of rows about to change go to history first, in their partition; a
    # resource getting a person takes its history along.
    conn.execute(
        f"""INSERT INTO resource_history (type, id, version, person_id, last_updated, deleted, body)
            SELECT x.type, x.id, x.version, coalesce(x.person_id, x.asked), x.last_updated,
                   x.deleted, x.body
            FROM {_STAGED_ROWS} x WHERE {_CHANGED}"""
    )
    conn.execute(
        """UPDATE resource_history h SET person_id = s.person_id FROM resource_rows s
           WHERE h.person_id IS NULL AND h.type = s.type AND h.id = s.id
             AND s.located AND s.owner IS NULL AND s.person_id IS NOT NULL"""
    )
    conn.execute(
        """UPDATE resource_locator l SET person_id = s.person_id FROM resource_rows s
           WHERE l.type = s.type AND l.id = s.id
             AND s.located AND s.owner IS NULL AND s.person_id IS NOT NULL"""
    )
    update = """UPDATE resource r SET
              version = r.version + 1, person_id = {person},
              codes = s.codes, effective = s.effective, terms = s.terms,
              source_unit = s.source_unit, source_key = s.source_key,
              sensitivity = s.sensitivity, deleted = false, last_updated = s.last_updated,
              body = jsonb_set(s.body, '{{meta,versionId}}', to_jsonb((r.version + 1)::text))
            FROM resource_rows s
            WHERE {where} AND r.type = s.type AND r.id = s.id
              AND (r.deleted OR resource_content(r.body) IS DISTINCT FROM resource_content(s.body)
                   OR (r.person_id IS NULL AND s.person_id IS NOT NULL))
            RETURNING r.type, r.id, r.version, coalesce(s.person_id, r.person_id), r.source_unit"""
    written = conn.execute(
        update.format(person="r.person_id", where="r.person_id = s.owner").encode()
    ).fetchall()
    # no person yet: the row moves to the person's partition if it gets one
    written += conn.execute(
        update.format(
            person="s.person_id", where="r.person_id IS NULL AND s.located AND s.owner IS NULL"
        ).encode()
    ).fetchall()
    _note(written, result, changes)
    result.unchanged += count - len(written) - len(fresh)
    conn.execute(
        "SELECT set_config('enable_hashjoin', %s, true), set_config('enable_mergejoin', %s, true)",
        prev,
    )


def _note(written: list[tuple[Any, ...]], result: BulkResult, changes: list[events.Change]) -> None:
    for rtype, rid, version, person_id, unit in written:
        (result.created if version == 1 else result.updated)[rtype] += 1
        action = "create" if version == 1 else "update"
        changes.append(events.Change(rtype, rid, version, person_id, action, unit))
