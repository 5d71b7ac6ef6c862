"""Append-only, hash-chained audit trail of every access to personal health data.

Each row carries ``hash = sha256(prev_hash || canonical JSON of its fields)``: changing a
row breaks its own hash, deleting one breaks the link of the next, and the anchors written
by each verification catch a deleted tail. The database refuses UPDATE/DELETE; a superuser
who disables that trigger is still caught by :func:`verify_chain`.

Cost on the request path: inside an API request the events are buffered on the connection
(:func:`defer`) and written by :func:`flush` after the request's own transaction ended — in a
separate short transaction, so the chain lock is held for one INSERT only, and a refusal is
recorded even though the request's transaction rolls back. Elsewhere (CLI, jobs) an event is
written at once in the caller's transaction.

Storage: ``audit_event`` is partitioned by UTC month of ``at`` (migration 0405,
``hssk.db.monthly``); the chain runs across months. Rows are never deleted (the law keeps the
trail): an old month may be detached and archived whole (``docs/ops``), after a verification
that records its last row.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import json
import socket
import threading
import weakref
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psycopg

from hssk.access.actor import Actor

GENESIS = "0" * 64
_CHAIN_LOCK = 7_340_002
_COLUMNS = (
    "at", "actor", "unit_id", "role", "basis", "purpose", "action", "resource_type",
    "resource_id", "person_id", "outcome", "client", "detail",
)  # fmt: skip

# Connection → events waiting for the end of its request (see defer/flush).
_pending: weakref.WeakKeyDictionary[psycopg.Connection[Any], list[dict[str, Any]]] = (
    weakref.WeakKeyDictionary()
)


def _canonical_at(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def digest(prev_hash: str, fields: dict[str, Any]) -> str:
    """The chained hash of one event (fields as stored)."""
    canon = {k: fields.get(k) for k in _COLUMNS}
    canon["at"] = _canonical_at(fields["at"])
    canon["detail"] = fields.get("detail") or {}
    payload = orjson.dumps(canon, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(prev_hash.encode() + payload).hexdigest()


def _bigint(value: Any) -> bool:
    try:
        return -(2**63) <= int(value) < 2**63
    except (TypeError, ValueError):
        return False


def _small_int(text: str) -> int | str:
    value = int(text)
    return value if -(2**63) <= value < 2**63 else text


def _event(
    actor: Actor,
    action: str,
    outcome: str,
    basis: str | None,
    purpose: str | None,
    resource_type: str | None,
    resource_id: str | None,
    person_id: int | None,
    detail: dict[str, Any] | None,
) -> dict[str, Any]:
    # Round-trip detail through JSON now, so the hash covers exactly what jsonb will return.
    try:
        clean = orjson.loads(orjson.dumps(detail or {}, default=str))
    except TypeError:  # e.g. an integer beyond 64 bits sent by a client: keep it as text
        clean = json.loads(json.dumps(detail or {}, default=str), parse_int=_small_int)
    clean = _without_nul(clean)
    resource_id, purpose = _without_nul(resource_id), _without_nul(purpose)
    return {
        "at": datetime.now(UTC),
        "actor": actor.account_id,
        "unit_id": actor.unit_id,
        "role": ",".join(sorted(actor.roles)) or actor.kind,
        "basis": basis,
        "purpose": purpose,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "person_id": int(person_id) if person_id is not None and _bigint(person_id) else None,
        "outcome": outcome,
        "client": actor.client,
        "detail": clean,
    }


def _without_nul(value: Any) -> Any:
    """``value`` with NUL characters shown as U+FFFD: PostgreSQL text and jsonb refuse NUL, and
    a hostile request's parameters (kept in the event) must not make the audit write fail."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [_without_nul(v) for v in value]
    if isinstance(value, dict):
        return {_without_nul(k): _without_nul(v) for k, v in value.items()}
    return value


_LAST_HASH = "SELECT hash FROM audit_event ORDER BY seq DESC LIMIT 1"


def _recent_last_hash() -> str:
    """The head of the chain, looked for in the partitions of this month and the previous one
    only (the log is partitioned by month of ``at``: unbounded, every write would visit every
    month ever kept). The newest row is in them unless nothing was written for a month — then
    none is found there and :data:`_LAST_HASH` looks further. ``at`` is taken when an event is
    made and seq when it is written, a moment later: an event made just before the turn of a
    month and written after it is still in the previous month's partition, which is read too.
    The bound is a literal (made here, not from input) so that the planner prunes the other
    months when it plans, not each partition at run time."""
    now = datetime.now(UTC)
    since = (now.replace(day=1) - timedelta(days=1)).replace(
        day=1, hour=0, minute=0, second=0, microsecond=0
    )
    return (
        f"SELECT hash FROM audit_event WHERE at >= '{since.isoformat()}' ORDER BY seq DESC LIMIT 1"
    )


def _head(conn: psycopg.Connection[Any], found: tuple[Any, ...] | None) -> str:
    """The hash to chain after: the recent head ``found``, else the newest row of any month."""
    if found is None:
        found = conn.execute(_LAST_HASH).fetchone()
    return str(found[0]) if found else GENESIS


def _write(conn: psycopg.Connection[Any], events: list[dict[str, Any]]) -> None:
    """Chain and insert events; the caller holds (or is inside) a transaction."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CHAIN_LOCK,))
    _insert(conn, events, _head(conn, conn.execute(_recent_last_hash().encode()).fetchone()))


def _begin_locked() -> bytes:
    """BEGIN, the chain lock and the recent head in one message (simple protocol). Each
    statement still takes its own snapshot (READ COMMITTED), so the hash is read after the
    lock is held."""
    return f"BEGIN; SELECT pg_advisory_xact_lock({_CHAIN_LOCK}); {_recent_last_hash()}".encode()


def _commit_events(conn: psycopg.Connection[Any], events: list[dict[str, Any]]) -> None:
    """Chain and commit ``events`` in a transaction of their own: two round trips (see
    _begin_locked; the insert with COMMIT, pipelined) where :func:`_write` in
    ``conn.transaction()`` takes five. The group commit's writer pays them once per batch."""
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        with conn.transaction():  # not after a request (flush's callers end theirs first)
            _write(conn, events)
        if not conn.autocommit:
            conn.commit()
        return
    autocommit = conn.autocommit
    conn.autocommit = True  # this function says BEGIN and COMMIT itself
    try:
        cur = conn.execute(_begin_locked())
        cur.nextset()
        cur.nextset()
        head = _head(conn, cur.fetchone())
        if _by_copy(len(events)):  # COPY has no pipeline mode
            _insert(conn, events, head)
            conn.execute("COMMIT")
        else:
            with conn.pipeline():  # the insert and COMMIT in one round trip
                _insert(conn, events, head)
                conn.execute("COMMIT")
    except BaseException:
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE and not conn.closed:
            with contextlib.suppress(psycopg.Error):  # gone: the pool discards the connection
                conn.execute("ROLLBACK")
        raise
    finally:
        if conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE:
            conn.autocommit = autocommit


def _insert(conn: psycopg.Connection[Any], events: list[dict[str, Any]], prev: str) -> None:
    """Insert ``events`` chained after ``prev`` (the chain lock is held)."""
    rows = []
    for ev in events:
        h = digest(prev, ev)
        rows.append(
            (
                *tuple(ev[c] if c != "detail" else orjson.dumps(ev[c]).decode() for c in _COLUMNS),
                prev,
                h,
            )
        )
        prev = h
    if _by_copy(len(rows)):
        with conn.cursor().copy(
            f"COPY audit_event ({', '.join(_COLUMNS)}, prev_hash, hash) FROM STDIN"
        ) as cp:
            for row in rows:
                cp.write_row(row)
        return
    with conn.cursor() as cur:
        cur.executemany(
            f"INSERT INTO audit_event ({', '.join(_COLUMNS)}, prev_hash, hash) "
            f"VALUES ({', '.join(['%s'] * (len(_COLUMNS) + 2))})",
            rows,
        )


_COPY_FROM = 50  # events


def _by_copy(events: int) -> bool:
    """A batch of events (ingest's households and deaths) is written by COPY, 5× faster; a
    request's one or two by INSERT, which, unlike COPY, can share a pipeline with COMMIT."""
    return events >= _COPY_FROM


def operator_detail() -> dict[str, str]:
    """Who runs a command on the server, for an event's detail (its actor is the platform):
    the operating-system account and the host."""
    return {"os_user": getpass.getuser(), "host": socket.gethostname()}


def record(
    conn: psycopg.Connection[Any],
    actor: Actor,
    action: str,
    *,
    outcome: str,
    basis: str | None = None,
    purpose: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    person_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit event (buffered until the end of an API request, else immediate)."""
    ev = _event(
        actor, action, outcome, basis, purpose, resource_type, resource_id, person_id, detail
    )
    buffer = _pending.get(conn)
    if buffer is not None:
        buffer.append(ev)
    else:
        _write(conn, [ev])


@dataclass(frozen=True)
class PersonEvent:
    """What differs between the events of one :func:`record_persons` call."""

    person_id: int
    resource_type: str | None = None
    resource_id: str | None = None
    detail: dict[str, Any] | None = None


def record_persons(
    conn: psycopg.Connection[Any],
    actor: Actor,
    action: str,
    events: Sequence[PersonEvent],
    *,
    outcome: str,
    basis: str | None = None,
) -> None:
    """Append one event per person in one write (a batch changing many persons' records takes
    the chain lock once, not per person); buffered in an API request like :func:`record`."""
    evs = [
        _event(actor, action, outcome, basis, None, e.resource_type, e.resource_id,
               e.person_id, e.detail)
        for e in events
    ]  # fmt: skip
    if not evs:
        return
    buffer = _pending.get(conn)
    if buffer is not None:
        buffer.extend(evs)
    else:
        _write(conn, evs)


def record_decision(
    conn: psycopg.Connection[Any],
    actor: Actor,
    action: str,
    decision: Any,
    *,
    purpose: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    person_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Audit one access the policy decided (a ``policy.Decision``): its outcome and basis,
    and for a refusal the reason."""
    extra = dict(detail or {})
    if not decision.allowed:
        extra.setdefault("reason", decision.reason)
    record(
        conn,
        actor,
        action,
        outcome="allow" if decision.allowed else "deny",
        basis=decision.basis,
        purpose=purpose,
        resource_type=resource_type,
        resource_id=resource_id,
        person_id=person_id,
        detail=extra,
    )


def defer(conn: psycopg.Connection[Any]) -> None:
    """Buffer this connection's events until :func:`flush` (called by the API per request)."""
    _pending[conn] = []


@dataclass
class _Slot:
    events: list[dict[str, Any]]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False  # woken to take over as the writer
    error: BaseException | None = None


_queue: list[_Slot] = []
_queue_lock = threading.Lock()
_writer_busy = False
_MAX_ROUNDS = 4


def flush(conn: psycopg.Connection[Any]) -> int:
    """Write the buffered events in their own transaction (after the request's ended).

    Group commit: concurrent requests of this process hand their events to one writer, which
    chains and commits them together — one chain lock and one WAL flush per batch instead of
    per request. Returns once the caller's events are committed (or raises why not)."""
    events = _pending.pop(conn, None)
    if not events:
        return 0
    global _writer_busy
    slot = _Slot(events)
    with _queue_lock:
        _queue.append(slot)
        lead = not _writer_busy
        _writer_busy = True
    if not lead:
        slot.done.wait()
        if not slot.lead:
            if slot.error is not None:
                raise RuntimeError("audit events could not be written") from slot.error
            return len(events)
    _lead(conn)
    if slot.error is not None:
        raise RuntimeError("audit events could not be written") from slot.error
    return len(events)


def _lead(conn: psycopg.Connection[Any]) -> None:
    """Write queued batches; after a few rounds hand over to a waiting request."""
    global _writer_busy
    for _ in range(_MAX_ROUNDS):
        with _queue_lock:
            batch = list(_queue)
            _queue.clear()
            if not batch:
                _writer_busy = False
                return
        try:
            _commit_events(conn, [ev for slot in batch for ev in slot.events])
        except BaseException as exc:  # every waiting request learns why
            for slot in batch:
                slot.error = exc
        for slot in batch:
            slot.done.set()
    with _queue_lock:  # still busy: a waiting request becomes the writer (its own connection)
        if _queue:
            heir = _queue[0]  # its events stay queued: it writes them first
            heir.lead = True
            heir.done.set()
        else:
            _writer_busy = False


# --- verification -----------------------------------------------------------------------


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    last_seq: int | None
    first_bad_seq: int | None = None
    reason: str | None = None


def _rows(conn: psycopg.Connection[Any], from_seq: int) -> Iterator[tuple[Any, ...]]:
    with conn.cursor(name="audit_verify") as cur:
        cur.itersize = 5000
        cur.execute(
            f"SELECT seq, {', '.join(_COLUMNS)}, prev_hash, hash FROM audit_event "
            "WHERE seq >= %s ORDER BY seq",
            (from_seq,),
        )
        yield from cur


def verify_chain(
    conn: psycopg.Connection[Any],
    *,
    anchor: bool = True,
    anchor_file: Path | None = None,
    since_anchor: bool = False,
) -> ChainReport:
    """Recompute the whole chain; report the first altered, inserted or missing row.

    Anchors (the head seen by earlier verifications) are kept in ``audit_anchor`` and, with
    ``anchor_file``, outside the database too — so emptying both tables is caught as well.
    ``since_anchor`` checks only the rows after the newest anchor (a quick daily run; the
    anchored rows are still looked up), the default walks the whole chain."""
    report = _verify(conn, anchor=anchor, since_anchor=since_anchor)
    if anchor_file is None or not report.ok:
        return report
    if anchor_file.exists():
        try:
            seen = orjson.loads(anchor_file.read_bytes())
            seq, h = int(seen["seq"]), str(seen["hash"])
        except (ValueError, KeyError, TypeError):
            return ChainReport(False, report.checked, report.last_seq, None,
                               f"anchor file {anchor_file} is unreadable")  # fmt: skip
        row = conn.execute("SELECT hash FROM audit_event WHERE seq = %s", (seq,)).fetchone()
        if row is None or row[0] != h:
            return ChainReport(False, report.checked, report.last_seq, seq,
                               "the head recorded by an earlier verification is gone or changed "
                               "(rows deleted or the table emptied)")  # fmt: skip
    if anchor and report.last_seq is not None:
        head = conn.execute(
            "SELECT hash FROM audit_event WHERE seq = %s", (report.last_seq,)
        ).fetchone()
        anchor_file.parent.mkdir(parents=True, exist_ok=True)
        anchor_file.write_bytes(
            orjson.dumps({"seq": report.last_seq, "hash": head[0] if head else ""})
        )
        anchor_file.chmod(0o600)  # with the platform's keys: private (hssk doctor checks)
    return report


def _verify(
    conn: psycopg.Connection[Any], *, anchor: bool, since_anchor: bool = False
) -> ChainReport:
    prev = GENESIS
    start = 0
    anchors = dict(conn.execute("SELECT seq, hash FROM audit_anchor").fetchall())
    if since_anchor and anchors:
        # resume at the newest anchor: earlier rows were verified then; here only the anchored
        # rows themselves are re-checked (present, same hash) — cheap index look-ups
        start = max(anchors)
        prev = anchors[start]
        rows = dict(conn.execute(
            "SELECT seq, hash FROM audit_event WHERE seq = ANY(%s)", (list(anchors),)
        ).fetchall())  # fmt: skip
        for seq, h in sorted(anchors.items()):
            if rows.get(seq) != h:
                return ChainReport(False, 0, None, seq, "an anchored row is missing or changed")
    checked = 0
    last_seq: int | None = start or None
    seen: dict[int, str] = {}
    for row in _rows(conn, start + 1 if start else 0):
        seq, *values, prev_hash, h = row
        fields = dict(zip(_COLUMNS, values, strict=True))
        if prev_hash != prev:
            why = "the previous row was deleted or altered" if checked or start else "chain start"
            return ChainReport(False, checked, last_seq, seq, f"broken link: {why}")
        if digest(prev_hash, fields) != h:
            return ChainReport(False, checked, last_seq, seq, "row content does not match its hash")
        if seq in anchors:
            seen[seq] = h
        prev, last_seq = h, seq
        checked += 1
    for seq, h in sorted(anchors.items()):
        if seq > start and seen.get(seq) != h:  # anchors up to start were checked above
            return ChainReport(
                False, checked, last_seq, seq, "an anchored row is missing (tail deleted?)"
            )
    if anchor and last_seq is not None and last_seq not in anchors:
        conn.execute("INSERT INTO audit_anchor (seq, hash) VALUES (%s, %s)", (last_seq, prev))
    return ChainReport(True, checked, last_seq)


# --- reading ----------------------------------------------------------------------------


@dataclass(frozen=True)
class AuditRow:
    seq: int
    at: datetime
    actor: str | None
    actor_name: str | None
    unit_id: str | None
    unit_name: str | None
    role: str | None
    basis: str | None
    purpose: str | None
    action: str
    resource_type: str | None
    resource_id: str | None
    person_id: int | None
    outcome: str
    client: str | None
    detail: dict[str, Any]


def search(
    conn: psycopg.Connection[Any],
    *,
    person_ids: list[int] | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    action: str | None = None,
    outcome: str | None = None,
    basis: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[AuditRow]:
    """Audit events, newest first, with the names of the actor and unit."""
    where, params = ["true"], {"limit": min(max(limit, 1), 1000), "offset": max(offset, 0)}
    filters: tuple[tuple[str, Any, str], ...] = (
        ("pids", person_ids, "e.person_id = ANY(%(pids)s)"),
        ("actor", actor, "e.actor = %(actor)s"),
        ("since", since, "e.at >= %(since)s"),
        ("until", until, "e.at < %(until)s"),
        ("action", action, "e.action = %(action)s"),
        ("outcome", outcome, "e.outcome = %(outcome)s"),
        ("basis", basis, "e.basis = %(basis)s"),
    )
    for key, value, clause in filters:
        if value is not None:
            where.append(clause)
            params[key] = value
    rows = conn.execute(
        f"""SELECT e.seq, e.at, e.actor, a.display_name, e.unit_id, u.name, e.role, e.basis,
                  e.purpose, e.action, e.resource_type, e.resource_id, e.person_id, e.outcome,
                  e.client, e.detail
           FROM audit_event e
           LEFT JOIN account a ON a.id::text = e.actor
           LEFT JOIN unit u ON u.id = e.unit_id
           WHERE {" AND ".join(where)}
           ORDER BY e.seq DESC LIMIT %(limit)s OFFSET %(offset)s""",
        params,
    ).fetchall()
    return [AuditRow(*r) for r in rows]


_FHIR_ACTION = {"create": "C", "read": "R", "vread": "R", "update": "U", "delete": "D"}
_FHIR_OUTCOME = {"allow": "0", "deny": "4", "error": "8"}


def to_fhir(row: AuditRow) -> dict[str, Any]:
    """A FHIR R4 AuditEvent for one row."""
    agent: dict[str, Any] = {
        "who": {"identifier": {"system": "urn:hssk:account", "value": row.actor or ""}},
        "requestor": True,
    }
    if row.actor_name:
        agent["who"]["display"] = row.actor_name
    if row.role:
        agent["role"] = [{"text": row.role}]
    if row.client:
        agent["name"] = row.client
    if row.purpose:
        agent["purposeOfUse"] = [{"text": row.purpose}]
    entity: list[dict[str, Any]] = []
    if row.person_id is not None:
        entity.append({"what": {"reference": f"Patient/{row.person_id}"}, "role": {"code": "1"}})
    if row.resource_type:
        ref = f"{row.resource_type}/{row.resource_id}" if row.resource_id else row.resource_type
        entity.append({"what": {"reference": ref}})
    body: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(row.seq),
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
        },
        "subtype": [{"code": row.action}],
        "action": _FHIR_ACTION.get(row.action, "E"),
        "recorded": row.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "outcome": _FHIR_OUTCOME.get(row.outcome, "8"),
        "outcomeDesc": row.basis or row.outcome,
        "agent": [agent],
        "source": {
            "observer": {"display": row.unit_name or row.unit_id or "HSSK"},
            "site": row.unit_id or "hssk",
        },
    }
    if entity:
        body["entity"] = entity
    return body
