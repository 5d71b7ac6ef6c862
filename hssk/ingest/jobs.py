"""Ingest jobs: read sources in order, map in a process pool, write batches with checkpoints.

Durability: each batch is written in ONE transaction together with the job's checkpoint
(records done per file) and counters, so after a crash (kill -9) ``resume`` starts exactly
after the last committed batch — nothing lost, nothing doubled (resources are also idempotent
by source key, persons by (source, record id)). A job is held by a session advisory lock, so
two processes never run the same job.
"""

from __future__ import annotations

import gc
import logging
import os
import time
from collections import Counter, defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from multiprocessing import get_context
from operator import attrgetter
from pathlib import Path
from typing import Any

import orjson
import psycopg

from hssk import registry
from hssk.access import PLATFORM, audit
from hssk.db import Database
from hssk.db.textlist import SPLIT, joined, splittable
from hssk.ingest import kinds, sources
from hssk.ingest.model import Item, Problem, Unit, attach
from hssk.ingest.person_updates import died_at, record_deaths, record_households
from hssk.records import NewResource, RefusedMove, bulk_upsert, id_for_source_key, refs
from hssk.records import refresh_statistics as refresh_store_statistics

log = logging.getLogger(__name__)

KINDS = kinds.KINDS
_LOCK_SPACE = 7_340_300


@dataclass
class Summary:
    """What a job did (also kept in ``ingest_job.counters``)."""

    job_id: int
    kind: str = ""
    status: str = "pending"
    created: Counter[str] = field(default_factory=Counter)
    updated: Counter[str] = field(default_factory=Counter)
    skipped: int = 0  # resources re-sent identical (unchanged)
    quarantined: int = 0
    records: int = 0  # source records read
    persons: int = 0  # person links made
    persons_created: int = 0
    seconds: float = 0.0
    errors: list[dict[str, Any]] = field(default_factory=list)
    checkpoint: dict[str, Any] = field(default_factory=dict)
    timings: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))

    @property
    def stored(self) -> dict[str, int]:
        return dict(sorted((self.created + self.updated).items()))

    def counters(self) -> dict[str, Any]:
        return {
            "created": dict(self.created),
            "updated": dict(self.updated),
            "skipped": self.skipped,
            "quarantined": self.quarantined,
            "records": self.records,
            "persons": self.persons,
            "persons_created": self.persons_created,
            "seconds": round(self.seconds, 3),
        }

    def load_counters(self, c: dict[str, Any]) -> None:
        self.created = Counter(c.get("created") or {})
        self.updated = Counter(c.get("updated") or {})
        self.skipped = int(c.get("skipped") or 0)
        self.quarantined = int(c.get("quarantined") or 0)
        self.records = int(c.get("records") or 0)
        self.persons = int(c.get("persons") or 0)
        self.persons_created = int(c.get("persons_created") or 0)
        self.seconds = float(c.get("seconds") or 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "kind": self.kind,
            "status": self.status,
            "stored": self.stored,
            **self.counters(),
            "errors": self.errors,
        }


class JobError(Exception):
    """The job cannot run (unknown id, already done, held by another process, bad kind)."""


# --- job rows -------------------------------------------------------------------------------
def create_job(
    conn: psycopg.Connection[Any],
    kind: str,
    paths: Sequence[str],
    *,
    unit_id: str | None = None,
    created_by: str | None = None,
) -> int:
    if kind not in KINDS:
        raise JobError(f"unknown kind '{kind}' (one of {', '.join(KINDS)})")
    row = conn.execute(
        """INSERT INTO ingest_job (kind, status, unit_id, created_by, sources, checkpoint)
           VALUES (%s, 'pending', %s, %s, %s, '{"pos": [0, 0]}') RETURNING id""",
        (kind, unit_id, created_by, orjson.dumps([str(p) for p in paths]).decode()),
    ).fetchone()
    assert row is not None
    return int(row[0])


def unfinished_jobs(conn: psycopg.Connection[Any]) -> list[int]:
    rows = conn.execute(
        "SELECT id FROM ingest_job WHERE status IN ('pending', 'running') ORDER BY id"
    ).fetchall()
    return [int(r[0]) for r in rows]


def job_summary(conn: psycopg.Connection[Any], job_id: int, *, max_errors: int = 1000) -> Summary:
    row = conn.execute(
        "SELECT kind, status, counters, checkpoint FROM ingest_job WHERE id = %s", (job_id,)
    ).fetchone()
    if row is None:
        raise JobError(f"no ingest job {job_id}")
    s = Summary(job_id=job_id, kind=row[0], status=row[1], checkpoint=row[3] or {})
    s.load_counters(row[2] or {})
    s.errors = [
        {
            "id": r[0],
            "file": r[1],
            "record": r[2],
            "element": r[3],
            "value": r[4],
            "rule": r[5],
            "reason": r[6],
            "reason_vi": r[7],
            "status": r[8],
        }
        for r in conn.execute(
            """SELECT id, file, record, element, value, rule, reason, reason_vi, status
               FROM ingest_error WHERE job_id = %s ORDER BY id LIMIT %s""",
            (job_id, max_errors),
        )
    ]
    return s


@dataclass
class JobInfo:
    """A job as an operator follows it: status, progress through its files, counts, times.
    ``interrupted``: marked running but no process holds it (a crash or a stopped server;
    ``hssk ingest --resume`` or a server start finishes it)."""

    id: int
    kind: str
    status: str
    unit_id: str | None
    created_by: str | None
    files: int
    files_done: int
    records: int
    stored: int
    unchanged: int
    quarantined: int
    seconds: float
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    interrupted: bool

    def to_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for k in ("created_at", "started_at", "finished_at", "heartbeat_at"):
            out[k] = out[k].isoformat() if out[k] else None
        return out


# Running, but no process holds the job's lock (``run_job``): the process died.
_INTERRUPTED = f"""j.status = 'running' AND NOT EXISTS (
    SELECT 1 FROM pg_locks l
     WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {_LOCK_SPACE}
       AND l.objid = j.id AND l.objsubid = 2
       AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()))"""

_JOB_INFO_SQL = f"""
SELECT j.id, j.kind, j.status, j.unit_id, j.created_by, jsonb_array_length(j.sources),
       j.checkpoint, j.counters, j.created_at, j.started_at, j.finished_at, j.heartbeat_at,
       {_INTERRUPTED}
  FROM ingest_job j
"""


def _job_info(row: tuple[Any, ...]) -> JobInfo:
    (jid, kind, status, unit, by, files, checkpoint, counters,
     created, started, finished, beat, interrupted) = row  # fmt: skip
    s = Summary(job_id=jid)
    s.load_counters(counters or {})
    # a finished job has read every file (a CSV job's checkpoint stays inside its last one)
    done = files if status == "done" else int(((checkpoint or {}).get("pos") or [0])[0])
    return JobInfo(jid, kind, status, unit, by, files, done, s.records, sum(s.stored.values()),
                   s.skipped, s.quarantined, s.seconds, created, started, finished, beat,
                   interrupted)  # fmt: skip


def job_info(conn: psycopg.Connection[Any], job_id: int) -> JobInfo | None:
    """One job's status and progress (None: no such job)."""
    row = conn.execute(_JOB_INFO_SQL + " WHERE j.id = %s", (job_id,)).fetchone()
    return _job_info(row) if row else None


def may_follow(info: JobInfo, *, unit_id: str | None, account_id: str) -> bool:
    """A job belongs to whoever created it and to the unit it was sent for (the rule of
    ``list_jobs``' ``unit_id`` / ``created_by`` filters, for one job)."""
    return info.created_by == account_id or (info.unit_id is not None and info.unit_id == unit_id)


def list_jobs(
    conn: psycopg.Connection[Any],
    *,
    status: str | None = None,
    kind: str | None = None,
    unit_id: str | None = None,
    created_by: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> list[JobInfo]:
    """Jobs, newest first. ``unit_id`` / ``created_by`` (both given: either matches) keep a
    facility's own; ``status`` 'interrupted' lists running jobs that no process holds."""
    where, params = [], []
    if status == "interrupted":
        where.append(_INTERRUPTED)
    elif status:
        where.append("j.status = %s")
        params.append(status)
    if kind:
        where.append("j.kind = %s")
        params.append(kind)
    owners = [("j.unit_id = %s", unit_id), ("j.created_by = %s", created_by)]
    owned = [(clause, value) for clause, value in owners if value is not None]
    if owned:
        where.append("(" + " OR ".join(clause for clause, _ in owned) + ")")
        params.extend(value for _, value in owned)
    sql = _JOB_INFO_SQL + (" WHERE " + " AND ".join(where) if where else "")
    rows = conn.execute(sql + " ORDER BY j.id DESC LIMIT %s OFFSET %s", (*params, limit, offset))
    return [_job_info(r) for r in rows]


def known_facilities(conn: psycopg.Connection[Any]) -> frozenset[str]:
    rows = conn.execute("SELECT facility_code FROM unit WHERE facility_code IS NOT NULL")
    return frozenset(r[0] for r in rows)


# --- mapping in workers ---------------------------------------------------------------------
def _map_task(
    kind: str, payloads: list[tuple[Any, ...]], known: frozenset[str] | None
) -> list[Unit]:
    return sources.map_payloads(kind, payloads, known)


def _chunks(it: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for x in it:
        batch.append(x)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# --- writing a batch ------------------------------------------------------------------------
def _new_receipt() -> dict[str, Any]:
    return {
        "records": 0,
        "stored": 0,
        "unchanged": 0,
        "quarantined": 0,
        "first": None,
        "last": None,
        "file": "",
    }


@dataclass
class _Batch:
    errors: list[tuple[Unit, Problem, str | None]] = field(default_factory=list)
    notes: list[tuple[Unit, Problem, str | None]] = field(default_factory=list)  # kept, stored
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def receipt(self, unit: Unit) -> dict[str, Any]:
        r = self.receipts.setdefault(unit.facility or "", _new_receipt())
        r["file"] = r["file"] or unit.file
        return r


def write_units(
    conn: psycopg.Connection[Any],
    job_id: int | None,
    kind: str,
    units: list[Unit],
    summary: Summary,
    *,
    files: int = 0,
    linked: Callable[[], None] | None = None,
) -> list[Unit]:
    """Link, store and quarantine one batch (in the caller's transaction). Returns the units
    that were stored. ``linked``: called once the batch's persons are linked, before anything
    is stored (a job commits there, which releases the link lock)."""
    b = _Batch()
    good: list[Unit] = []
    for u in units:
        r = b.receipt(u)
        r["records"] += 1
        if u.visit_date:
            r["first"] = min(filter(None, (r["first"], u.visit_date)))
            r["last"] = max(filter(None, (r["last"], u.visit_date)))
        if u.problems:
            b.errors.append((u, u.problems[0], u.raw))
            continue
        good.append(u)
        for prob, raw in u.row_problems:
            b.errors.append((u, prob, raw))
        b.notes += [(u, w, None) for w in u.warnings]
    t0 = time.perf_counter()
    if kind == "facilities":
        n = sources.write_facilities(conn, good)
        if n:
            summary.created["unit"] += n
        summary.skipped += len(good) - n
    else:
        good = _skip_unchanged(conn, kind, good, b, summary)
        _link(conn, good, b, summary)
        if linked is not None:
            linked()
        t1 = time.perf_counter()
        summary.timings["link"] += t1 - t0
        good = _deaths(conn, [u for u in good if not u.problems], b)
        _households(conn, good)
        _store(conn, good, b, summary)
        _remember(conn, kind, good)
        summary.timings["store"] += time.perf_counter() - t1
    t2 = time.perf_counter()
    _quarantine(conn, job_id, kind, b)
    summary.quarantined += len(b.errors)
    summary.records += len(units)
    if job_id is not None:
        _receipts(conn, job_id, kind, b, files)
    summary.timings["quarantine+receipts"] += time.perf_counter() - t2
    return good


def _skip_unchanged(
    conn: psycopg.Connection[Any], kind: str, good: list[Unit], b: _Batch, summary: Summary
) -> list[Unit]:
    """Drop units whose content is identical to what was stored last time (nothing to do)."""
    keyed = {f"{kind}|{u.key}": u for u in good if u.digest}
    if not keyed:
        return good
    rows = conn.execute(
        f"SELECT key, digest FROM ingest_digest WHERE key = ANY({SPLIT})", (joined(keyed),)
    ).fetchall()
    same = {k for k, d in rows if keyed[k].digest == d}
    out = []
    for u in good:
        if u.digest and f"{kind}|{u.key}" in same:
            summary.skipped += len(u.items)
            b.receipt(u)["unchanged"] += len(u.items)
        else:
            out.append(u)
    return out


def _remember(conn: psycopg.Connection[Any], kind: str, stored: list[Unit]) -> None:
    """Record the digests of the units just stored (same transaction as the data)."""
    pairs = {f"{kind}|{u.key}": u.digest for u in stored if u.digest and not u.problems}
    # a key holding the list separator is not remembered: its next send is simply rewritten
    pairs = {k: d for k, d in pairs.items() if splittable(k)}
    if not pairs:
        return
    conn.execute(
        f"""INSERT INTO ingest_digest (key, digest)
            SELECT * FROM unnest({SPLIT}, {SPLIT})
            ON CONFLICT (key) DO UPDATE SET digest = excluded.digest, updated_at = now()
            WHERE ingest_digest.digest IS DISTINCT FROM excluded.digest""",
        (joined(pairs), joined(pairs.values())),  # type: ignore[arg-type]
    )


def _store(conn: psycopg.Connection[Any], good: list[Unit], b: _Batch, summary: Summary) -> None:
    items: list[NewResource] = []
    per_fac: Counter[str] = Counter()
    unit_of: dict[tuple[str, str], Unit] = {}
    for u in good:
        for it in u.items:
            item = _resource(u, it)
            items.append(item)
            rtype = item.body["resourceType"]
            rid = item.body.get("id") or id_for_source_key(rtype, item.source_key or "")
            unit_of[(rtype, rid)] = u
            per_fac[u.facility or ""] += 1
    if not items:
        return
    res = bulk_upsert(conn, items)
    _note_refused_moves(res.refused_moves, unit_of, b)
    summary.created.update(res.created)
    summary.updated.update(res.updated)
    summary.skipped += res.unchanged
    changed = sum(res.created.values()) + sum(res.updated.values())
    total = sum(per_fac.values())
    for fac, n in per_fac.items():  # a batch is mostly one facility: share by item count
        b.receipts[fac]["stored"] += round(changed * n / total)
        b.receipts[fac]["unchanged"] += round(res.unchanged * n / total)


def _note_refused_moves(
    moves: list[RefusedMove], unit_of: dict[tuple[str, str], Unit], b: _Batch
) -> None:
    """A re-sent record now naming another person leaves what is stored with its person; the
    record is noted (shown to the facility) with what it asked (rule record.moved)."""
    noted: set[int] = set()
    for m in moves:
        u = unit_of[(m.type, m.id)]
        if id(u) in noted:
            continue
        noted.add(id(u))
        b.notes.append((u, Problem(
            "record.moved", f"{m.type}/{m.id}", None,
            f"already stored for another person (#{m.owner}); sent now for #{m.asked}: left "
            "with its person. If the patient was wrong, ask the Department to correct the "
            "person in the registry",
            f"đã lưu cho một người khác (#{m.owner}); lần gửi này ghi cho #{m.asked}: giữ "
            "nguyên. Nếu nhầm người bệnh, đề nghị Sở Y tế sửa thông tin người trong sổ đăng ký",
        ), u.raw))  # fmt: skip


def _resource(u: Unit, it: Item) -> NewResource:
    pid: int | None = None
    if it.who == "main":
        pid = u.person_id
    elif it.who and it.who.startswith("newborn:"):
        pid = u.newborn_ids.get(int(it.who.split(":")[1]))
    body = attach(it.body, pid) if pid is not None and it.rendered is None else it.body
    # a check-in (only_new) never reopens a visit already on record
    return NewResource(
        body, pid, it.source_key, u.facility, it.sensitivity, u.only_new, it.rendered
    )


def _link(conn: psycopg.Connection[Any], good: list[Unit], b: _Batch, summary: Summary) -> None:
    need = [u for u in good if u.person is not None and u.person_id is None]
    # The same source record repeats (a child's doses): link each distinct one once.
    first: dict[tuple[Any, ...], Unit] = {}
    for u in need:
        first.setdefault(_record_key(u.person), u)
    unique = [u.person for u in first.values() if u.person is not None]
    results = registry.link_many(conn, unique, [u.prepared for u in first.values()])
    by_key = {_record_key(r): res for r, res in zip(unique, results, strict=True)}
    for u in need:
        u.person_id = by_key[_record_key(u.person)].person_id
        summary.persons += 1
    summary.persons_created += sum(int(r.created) for r in results)
    _resolve_known(conn, good, b)
    babies: list[tuple[Unit, int, registry.SourceRecord]] = []
    for u in good:
        for n, nb in enumerate(u.newborns):
            babies.append((u, n, replace(nb, mother_person_id=u.person_id)))
    if babies:
        res = registry.link_many(conn, [nb for _, _, nb in babies])
        for (u, n, _), r in zip(babies, res, strict=True):
            u.newborn_ids[n] = r.person_id
            summary.persons += 1
            summary.persons_created += int(r.created)


_RECORD_FIELDS = attrgetter(*(f.name for f in fields(registry.SourceRecord)))


def _record_key(rec: registry.SourceRecord | None) -> tuple[Any, ...]:
    assert rec is not None
    return _RECORD_FIELDS(rec)  # type: ignore[no-any-return]


def _resolve_golden(conn: psycopg.Connection[Any], good: list[Unit]) -> None:
    """A resource referring to ``Patient/mpi-N`` belongs to person N (its survivor if merged);
    an N with no person is left to the source lookup, which reports it unknown."""
    golden = [
        (u, n)
        for u in good
        if u.person_id is None
        and u.person_source
        and (n := refs.golden_id(u.person_source[1])) is not None
    ]
    if not golden:
        return
    survivors = registry.resolve_many(conn, {n for _, n in golden})
    for u, n in golden:
        u.person_id = survivors.get(n)


def _resolve_known(conn: psycopg.Connection[Any], good: list[Unit], b: _Batch) -> None:
    """Units whose person is known from earlier loads: a FHIR resource pointing at a Patient
    of the same source or at a golden record (``Patient/mpi-N``, as HSSK serves and writes
    them), or detail lines re-sent without their visit header (the person is the one of the
    visit's Encounter)."""
    _resolve_golden(conn, good)
    by_source = [u for u in good if u.person_id is None and u.person_source]
    if by_source:
        rows = conn.execute(
            "SELECT source, source_record_id, person_id FROM person_source"
            " WHERE (source, source_record_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            (
                [u.person_source[0] for u in by_source if u.person_source],
                [u.person_source[1] for u in by_source if u.person_source],
            ),
        ).fetchall()
        found = {(r[0], r[1]): r[2] for r in rows}
        for u in by_source:
            assert u.person_source is not None
            pid = found.get(u.person_source)
            if pid is None:
                _fail(
                    u,
                    b,
                    Problem(
                        "patient.unknown",
                        "subject",
                        u.person_source[1],
                        f"Patient/{u.person_source[1]} is not known: send the Patient first.",
                        f"Chưa có Patient/{u.person_source[1]}: cần gửi Patient trước.",
                    ),
                )
            else:
                u.person_id = int(pid)
    orphans = [
        u
        for u in good
        if u.person_id is None
        and not u.person_source
        and u.kind == "xml130"
        and any(i.who == "main" for i in u.items)
    ]
    if orphans:
        keys = {id_for_source_key("Encounter", f"{u.key}|XML1"): u for u in orphans}
        rows = conn.execute(
            "SELECT id, person_id FROM resource WHERE type = 'Encounter' AND id = ANY(%s)",
            (list(keys),),
        ).fetchall()
        # the survivor of the person the encounter was written under (merges move no rows)
        survivors = registry.resolve_many(conn, {r[1] for r in rows if r[1] is not None})
        enc = {r[0]: survivors.get(r[1], r[1]) for r in rows}
        for rid, u in keys.items():
            if enc.get(rid) is not None:
                u.person_id = int(enc[rid])
            else:
                _fail(
                    u,
                    b,
                    Problem(
                        "encounter.unknown",
                        "MA_LK",
                        u.key,
                        f"no visit {u.key} is on record: send the hồ sơ with its XML1 first.",
                        f"Chưa có lượt khám {u.key}: cần gửi hồ sơ kèm XML1 trước.",
                    ),
                )


def _fail(u: Unit, b: _Batch, p: Problem) -> None:
    u.problems.append(p)
    b.errors.append((u, p, u.raw))


def _deaths(conn: psycopg.Connection[Any], good: list[Unit], b: _Batch) -> list[Unit]:
    """Record the batch's deaths on the persons (before anything is stored: a unit whose
    death the registry refuses is held back whole). Returns the units still good."""
    by_report: dict[tuple[str, str], Unit] = {}
    reports: list[registry.Death] = []
    for u in good:
        if u.deceased_at and u.person_id and kinds.kind(u.kind).death_element:
            by_report[(u.kind, u.key)] = u
            reports.append(registry.Death(u.person_id, died_at(u.deceased_at), u.kind, u.key))
    if not reports:
        return good
    out = record_deaths(conn, PLATFORM, reports, basis="ingest-job")
    for r in out.refused:
        u = by_report[(r.death.source, r.death.source_ref)]
        element = kinds.kind(u.kind).death_element
        _fail(u, b, Problem(r.rule, element, u.deceased_at, r.en, r.vi))
    return [u for u in good if not u.problems]


def _households(conn: psycopg.Connection[Any], good: list[Unit]) -> None:
    """Households the batch's registers and stations list, applied to the persons."""
    moves = [
        registry.HouseholdMove(u.person_id, u.household.code, u.household.action)
        for u in good
        if u.household and u.person_id
    ]
    if moves:
        record_households(conn, PLATFORM, moves, basis="ingest-job")


def _quarantine(conn: psycopg.Connection[Any], job_id: int | None, kind: str, b: _Batch) -> None:
    """The batch's quarantined records, and the notes on records stored all the same (status
    'noted': e.g. a table read as UTF-8 against its declaration)."""
    if not b.errors and not b.notes:
        return
    rows = [(e, "quarantined") for e in b.errors] + [(n, "noted") for n in b.notes]
    with conn.cursor().copy(
        "COPY ingest_error (job_id, file, record, element, value, rule, reason, reason_vi, raw,"
        " kind, facility, status) FROM STDIN"
    ) as copy:
        for (u, p, raw), status in rows:
            others = [q for q in u.problems if q is not p]
            reason = p.reason + (
                "" if not others else " | " + "; ".join(q.reason for q in others[:9])
            )
            vi = p.vi + ("" if not others else " | " + "; ".join(q.vi for q in others[:9] if q.vi))
            copy.write_row(
                (
                    job_id,
                    u.file,
                    u.key,
                    p.element,
                    _nul(p.value),
                    p.rule,
                    _nul(reason[:4000]),
                    _nul(vi[:4000]) or None,
                    _nul(raw),
                    kind,
                    u.facility,
                    status,
                )
            )
            if status == "quarantined":
                b.receipt(u)["quarantined"] += 1


def _nul(text: str | None) -> str | None:
    return text.replace("\x00", "\\u0000") if text else text


def _receipts(conn: psycopg.Connection[Any], job_id: int, kind: str, b: _Batch, files: int) -> None:
    """Add this batch's counts to the job's per-facility receipts (one set-based statement)."""
    if not b.receipts:
        return
    facs = sorted(b.receipts)
    col = [[b.receipts[f][k] for f in facs] for k in
           ("file", "first", "last", "records", "stored", "unchanged", "quarantined")]  # fmt: skip
    conn.execute(
        """INSERT INTO ingest_receipt AS x (job_id, kind, facility, file, files, first_visit,
               last_visit, records, stored, unchanged, quarantined)
           SELECT %s, %s, f, fl, %s, fv, lv, r, s, u, q
           FROM unnest(%s::text[], %s::text[], %s::date[], %s::date[], %s::int[], %s::int[],
                       %s::int[], %s::int[]) AS t(f, fl, fv, lv, r, s, u, q)
           ON CONFLICT (job_id, facility) DO UPDATE SET
             first_visit = LEAST(x.first_visit, excluded.first_visit),
             last_visit = GREATEST(x.last_visit, excluded.last_visit),
             files = GREATEST(x.files, excluded.files),
             records = x.records + excluded.records, stored = x.stored + excluded.stored,
             unchanged = x.unchanged + excluded.unchanged,
             quarantined = x.quarantined + excluded.quarantined, updated_at = now()""",
        (job_id, kind, files, facs, *col),
    )


def _checkpoint(conn: psycopg.Connection[Any], job_id: int, summary: Summary) -> None:
    conn.execute(
        "UPDATE ingest_job SET checkpoint = %s, counters = %s, heartbeat_at = now() WHERE id = %s",
        (
            orjson.dumps(summary.checkpoint).decode(),
            orjson.dumps(summary.counters()).decode(),
            job_id,
        ),
    )


# --- running --------------------------------------------------------------------------------
Progress = Callable[[int, int], None]  # (records done in this run, files done)


# Kinds mapped in worker processes (kinds.SourceKind.pooled). Registers are not: their cost is
# the linking, which runs in the writer, so a pool only adds the pickling (measured: 20 k rows
# 3.1 s → 3.4 s).


def _pool_size(workers: int | None, paths: Sequence[str], kind: str = "xml130") -> int:
    """Mapping processes: one core stays with the writer (and PostgreSQL), the others map.
    Measured on 2 cores: one mapping process takes 4,206 hồ sơ from 8.1 s to 4.5 s and
    75,578 doses from 14.8 s to 10.7 s, once the collector no longer rescans the process while
    results are unpickled (``fewer_gc_passes``). Sources under 2 MB are mapped in process
    (starting workers costs more).

    Hồ sơ files get a mapping process per core: parsing, mapping and rendering the rows of a
    visit (0.85 ms) cost more than linking and writing it, so one mapping process left the
    writer waiting. Measured on 2 cores, 27,937 visits: 755–920 visits/s with one process,
    971–1,046 with two."""
    if workers is not None:
        return max(0, workers)
    cores = os.cpu_count() or 1
    if cores < 2 or not kinds.kind(kind).pooled:
        return 0
    total = 0
    for p in paths:
        total += Path(p).stat().st_size if Path(p).exists() else 0
        if total >= 2_000_000:
            return cores if kind == "xml130" else cores - 1
    return 0


def _audit_job(conn: psycopg.Connection[Any], job_id: int, status: str, out: Summary) -> None:
    """Loading records changes personal health data: one audit event per job run, with counts
    (the job row says who created it; per-record detail stays in the job and the quarantine)."""
    row = conn.execute(
        "SELECT kind, created_by FROM ingest_job WHERE id = %s", (job_id,)
    ).fetchone()
    kind, created_by = (row[0], row[1]) if row else (None, None)
    audit(conn, PLATFORM, "ingest-run", outcome="allow", basis="ingest-job",
          detail={"job": job_id, "kind": kind, "status": status, "created_by": created_by,
                  "stored": dict(out.stored), "quarantined": out.quarantined})  # fmt: skip


def run_job(
    db: Database,
    job_id: int,
    *,
    workers: int | None = None,
    batch: int | None = None,
    progress: Progress | None = None,
    stop_after: int | None = None,
    start_method: str = "fork",
) -> Summary:
    """Run (or resume) a job to its end. ``workers``: mapping processes (0 = in this process;
    default: the cores, for sources over 2 MB). ``stop_after``: stop after that many batches
    (tests simulate an interruption with it). ``start_method``: 'forkserver' inside a
    multi-threaded server."""
    # A connection of its own (not from the pool): the session lock dies with the process.
    with psycopg.connect(db.url, autocommit=True) as lock_conn:
        got = lock_conn.execute(
            "SELECT pg_try_advisory_lock(%s, %s)", (_LOCK_SPACE, job_id)
        ).fetchone()
        if not got or not got[0]:
            raise JobError(f"job {job_id} is being run by another process")
        try:
            with fewer_gc_passes():
                return _run_locked(db, job_id, workers, batch, progress, stop_after, start_method)
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_LOCK_SPACE, job_id))


@contextmanager
def fewer_gc_passes() -> Iterator[None]:
    """A job allocates millions of short-lived dicts (parsed rows, FHIR bodies): with the
    default thresholds the cyclic collector runs every 700 allocations and rescans the
    process's long-lived objects. Measured: unpickling a batch from the mapping workers
    1.8 s → 0.4 s per 4,000 visits. Memory stays bounded (the job holds a few batches)."""
    before = gc.get_threshold()
    gc.set_threshold(100_000, 50, 100)
    try:
        yield
    finally:
        gc.set_threshold(*before)


def _run_locked(
    db: Database,
    job_id: int,
    workers: int | None,
    batch: int | None,
    progress: Progress | None,
    stop_after: int | None,
    start_method: str = "fork",
) -> Summary:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT kind, status, sources, checkpoint, counters FROM ingest_job WHERE id = %s",
            (job_id,),
        ).fetchone()
        if row is None:
            raise JobError(f"no ingest job {job_id}")
        kind, status, paths, cp, counters = row
        summary = Summary(job_id=job_id, kind=kind, status=status, checkpoint=cp or {})
        summary.load_counters(counters or {})
        if status == "done":
            return job_summary(conn, job_id)
        conn.execute(
            "UPDATE ingest_job SET status = 'running', started_at = coalesce(started_at, now()),"
            " heartbeat_at = now() WHERE id = %s",
            (job_id,),
        )
        known = known_facilities(conn) if kinds.kind(kind).checks_facility else None
        own = conn.execute(
            "SELECT u.facility_code FROM ingest_job j JOIN unit u ON u.id = j.unit_id"
            " WHERE j.id = %s AND u.facility_code IS NOT NULL",
            (job_id,),
        ).fetchone()
        if own and known is not None:  # a facility sends its own data only
            known = known & {own[0]}
    changed_before = _changed(summary)
    t0 = time.perf_counter()
    size = batch or kinds.kind(kind).batch_units
    start = tuple(summary.checkpoint.get("pos") or (0, 0))
    nworkers = _pool_size(workers, paths[start[0] :], kind)
    # Without mapping processes, a mapping thread still overlaps the database a little: it
    # maps the next batch while the writer waits for PostgreSQL (psycopg releases the GIL).
    # Measured on 2 cores: 18,771 insurance rows 4.84 s → 4.63 s, 75,578 doses 10.8 → 10.2 s.
    pool: Executor = (
        ProcessPoolExecutor(nworkers, mp_context=get_context(start_method))
        if nworkers > 0
        else ThreadPoolExecutor(1, thread_name_prefix="hssk-ingest-map")
    )
    window: deque[tuple[Future[list[Unit]], tuple[int, int]]] = deque()
    batches = 0
    records = 0

    dedup = _Duplicates()

    def drain(limit: int) -> None:
        nonlocal batches, records
        while len(window) > limit:
            fut, pos = window.popleft()
            t0 = time.perf_counter()
            units = fut.result()
            t1 = time.perf_counter()
            summary.timings["wait-for-mapping"] += t1 - t0
            dedup.check(kind, units)
            with db.connection() as conn:
                # Not waiting for the WAL flush of each batch is safe here: a batch and its
                # checkpoint commit together, so a crash that loses the last batches loses
                # their checkpoint too and the resume redoes them; the job's final status
                # commits synchronously, which makes every earlier batch durable.
                conn.execute("SET LOCAL synchronous_commit = off")

                def linked() -> None:
                    # The links commit first, which releases the link lock: other jobs link
                    # while this one stores (it held the lock through the store, so concurrent
                    # jobs ran one at a time). Linking is idempotent per source record: a crash
                    # between the two commits only links the same records again on resume.
                    conn.commit()
                    conn.execute("SET LOCAL synchronous_commit = off")

                write_units(conn, job_id, kind, units, summary, files=pos[0] - start[0],
                            linked=linked)  # fmt: skip
                summary.checkpoint["pos"] = list(pos)
                _checkpoint(conn, job_id, summary)
                t2 = time.perf_counter()
            summary.timings["commit"] += time.perf_counter() - t2
            summary.timings["write"] += t2 - t1
            batches += 1
            records += len(units)
            if progress:
                progress(records, pos[0])
            if stop_after is not None and batches >= stop_after:
                raise _Stop()

    try:
        for pieces in _chunks(sources.read(kind, paths, (int(start[0]), int(start[1]))), size):
            payloads = [pc.payload for pc in pieces]
            pos = pieces[-1].pos
            t_submit = time.perf_counter()
            window.append((pool.submit(_map_task, kind, payloads, known), pos))
            summary.timings["read+submit"] += time.perf_counter() - t_submit
            drain(2 * max(1, nworkers))
        drain(0)
        status = "done"
    except _Stop:
        status = "running"
    finally:
        pool.shutdown(cancel_futures=True)
    summary.seconds += time.perf_counter() - t0
    with db.connection() as conn:
        conn.execute(
            "UPDATE ingest_job SET status = %s, counters = %s, heartbeat_at = now(),"
            " finished_at = CASE WHEN %s = 'done' THEN now() END WHERE id = %s",
            (status, orjson.dumps(summary.counters()).decode(), status, job_id),
        )
        out = job_summary(conn, job_id)
        _audit_job(conn, job_id, status, out)
    if _changed(summary) - changed_before >= ANALYZE_AFTER:
        with db.connection() as conn:
            refresh_store_statistics(conn)
            registry.refresh_statistics(conn)
    out.timings = defaultdict(float, {k: round(v, 3) for k, v in summary.timings.items()})
    return out


# A run that wrote this many rows refreshes the planner's statistics when it ends: ANALYZE
# costs ~0.5 s, under 2 % of such a run (autovacuum catches up with smaller ones).
ANALYZE_AFTER = 200_000


def _changed(s: Summary) -> int:
    return sum(s.created.values()) + sum(s.updated.values()) + s.persons_created


class _Duplicates:
    """Records whose key already appeared in the same file are quarantined (the first one
    counts). Keys of the current file only are kept (a hash each)."""

    def __init__(self) -> None:
        self.file = ""
        self.anonymous = "#"  # key prefix of records without a key of their own in this file
        self.seen: set[int] = set()

    def check(self, kind: str, units: list[Unit]) -> None:
        for u in units:
            if u.file != self.file:  # (a Path per record cost 8 % of the writer on doses)
                self.file, self.seen = u.file, set()
                self.anonymous = Path(u.file).name + "#"
            if u.problems or not u.key or u.key.startswith(self.anonymous):
                continue
            h = hash(u.key)
            if h not in self.seen:
                self.seen.add(h)
                continue
            u.problems.append(Problem(
                "duplicate-key", kinds.kind(kind).key_element, u.key,
                f"record key {u.key} appears more than once in {Path(u.file).name}; the first "
                "was taken, send a correction separately.",
                f"khóa {u.key} xuất hiện nhiều lần trong tệp {Path(u.file).name}; đã nhận bản "
                "đầu tiên, hãy gửi bản sửa riêng.",
            ))  # fmt: skip


class _Stop(Exception):
    pass


def ingest(
    db: Database,
    kind: str,
    paths: Sequence[str | Path],
    *,
    workers: int | None = None,
    batch: int | None = None,
    progress: Progress | None = None,
    created_by: str | None = None,
    unit_id: str | None = None,
) -> Summary:
    """Create a job for ``paths`` (files; directories are walked) and run it."""
    files = sources.expand(kind, [str(p) for p in paths])
    with db.connection() as conn:
        job_id = create_job(conn, kind, files, created_by=created_by, unit_id=unit_id)
    return run_job(db, job_id, workers=workers, batch=batch, progress=progress)


def resume(
    db: Database, *, workers: int | None = None, progress: Progress | None = None
) -> list[Summary]:
    """Finish every job left pending or running (after a crash or a restart)."""
    with db.connection() as conn:
        ids = unfinished_jobs(conn)
    out = []
    for job_id in ids:
        try:
            out.append(run_job(db, job_id, workers=workers, progress=progress))
        except JobError as exc:
            log.warning("job %s not resumed: %s", job_id, exc)
    return out
