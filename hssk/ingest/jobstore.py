"""The job store: ingest jobs as rows (kind, files, status, checkpoint, counters), what a job
did (``Summary``), and how operators list and follow them.

A job is held by a session advisory lock in ``LOCK_SPACE`` while it runs (``runner.run_job``):
a job marked running that no process holds was interrupted.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any, TypedDict

import orjson
import psycopg

from hssk.access import PLATFORM, audit
from hssk.ingest import kinds

LOCK_SPACE = 7_340_300

Progress = Callable[[int, int], None]  # (records done in this run, files done)


class RunOptions(TypedDict, total=False):
    """How a job of files is run, whichever way it starts (``runner.ingest``,
    ``initial.load``, as ``runner.run_job`` takes them): one list, so they cannot drift."""

    workers: int | None  # mapping processes (0: in this process; default: by size)
    batch: int | None  # records per store transaction (default: the kind's)
    progress: Progress | None


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
    initial: bool = False,
) -> int:
    """A pending job. ``initial``: a first load as a batch (``ingest.initial``), whose
    checkpoint names its stage."""
    if kind not in kinds.KINDS:
        raise JobError(f"unknown kind '{kind}' (one of {', '.join(kinds.KINDS)})")
    checkpoint: dict[str, Any] = {"pos": [0, 0]}
    if initial:
        checkpoint["initial"] = {"stage": "persons"}
    row = conn.execute(
        """INSERT INTO ingest_job (kind, status, unit_id, created_by, sources, checkpoint)
           VALUES (%s, 'pending', %s, %s, %s, %s) RETURNING id""",
        (
            kind,
            unit_id,
            created_by,
            orjson.dumps([str(p) for p in paths]).decode(),
            orjson.dumps(checkpoint).decode(),
        ),
    ).fetchone()
    assert row is not None
    return int(row[0])


def unfinished_jobs(conn: psycopg.Connection[Any]) -> list[int]:
    rows = conn.execute(
        "SELECT id FROM ingest_job WHERE status IN ('pending', 'running') ORDER BY id"
    ).fetchall()
    return [int(r[0]) for r in rows]


def unfinished_initial_job(
    conn: psycopg.Connection[Any], kind: str, paths: Sequence[str]
) -> int | None:
    """The newest unfinished first load of the same kind and files (running it again
    continues it), or None."""
    row = conn.execute(
        """SELECT id FROM ingest_job
            WHERE kind = %s AND sources = %s::jsonb AND status IN ('pending', 'running')
              AND checkpoint ? 'initial' ORDER BY id DESC LIMIT 1""",
        (kind, orjson.dumps([str(p) for p in paths]).decode()),
    ).fetchone()
    return int(row[0]) if row else None


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
     WHERE l.locktype = 'advisory' AND l.granted AND l.classid = {LOCK_SPACE}
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


def save_checkpoint(conn: psycopg.Connection[Any], job_id: int, summary: Summary) -> None:
    conn.execute(
        "UPDATE ingest_job SET checkpoint = %s, counters = %s, heartbeat_at = now() WHERE id = %s",
        (
            orjson.dumps(summary.checkpoint).decode(),
            orjson.dumps(summary.counters()).decode(),
            job_id,
        ),
    )


def _audit_run(conn: psycopg.Connection[Any], job_id: int, status: str, out: Summary) -> None:
    """Loading records changes personal health data: one audit event per job run, with counts
    (the job row says who created it; per-record detail stays in the job and the quarantine)."""
    row = conn.execute(
        "SELECT kind, created_by FROM ingest_job WHERE id = %s", (job_id,)
    ).fetchone()
    kind, created_by = (row[0], row[1]) if row else (None, None)
    audit(conn, PLATFORM, "ingest-run", outcome="allow", basis="ingest-job",
          detail={"job": job_id, "kind": kind, "status": status, "created_by": created_by,
                  "stored": dict(out.stored), "quarantined": out.quarantined})  # fmt: skip


@dataclass
class StartedJob:
    """A job marked running: what the runner needs of its row."""

    kind: str
    paths: list[str]
    summary: Summary  # its counters and checkpoint so far
    known: frozenset[str] | None  # the facilities its records may name (None: not checked)


def start_job(conn: psycopg.Connection[Any], job_id: int) -> StartedJob | None:
    """Mark a job running (None: it is done already); JobError if there is no such job."""
    row = conn.execute(
        "SELECT kind, status, sources, checkpoint, counters FROM ingest_job WHERE id = %s",
        (job_id,),
    ).fetchone()
    if row is None:
        raise JobError(f"no ingest job {job_id}")
    kind, status, paths, cp, counters = row
    if status == "done":
        return None
    summary = Summary(job_id=job_id, kind=kind, status=status, checkpoint=cp or {})
    summary.load_counters(counters or {})
    conn.execute(
        "UPDATE ingest_job SET status = 'running', started_at = coalesce(started_at, now()),"
        " heartbeat_at = now() WHERE id = %s",
        (job_id,),
    )
    return StartedJob(kind, paths, summary, _job_facilities(conn, job_id, kind))


def _job_facilities(conn: psycopg.Connection[Any], job_id: int, kind: str) -> frozenset[str] | None:
    """The facilities a job's records may name: the registered ones, and of them only the
    sender's own when a facility sent the job."""
    if not kinds.kind(kind).checks_facility:
        return None
    known = known_facilities(conn)
    own = conn.execute(
        "SELECT u.facility_code FROM ingest_job j JOIN unit u ON u.id = j.unit_id"
        " WHERE j.id = %s AND u.facility_code IS NOT NULL",
        (job_id,),
    ).fetchone()
    return known & {own[0]} if own else known


def finish_job(
    conn: psycopg.Connection[Any], job_id: int, status: str, summary: Summary
) -> Summary:
    """Record where a run ended ('done', or 'running' when it stopped early), audited; the
    job's summary as stored."""
    conn.execute(
        "UPDATE ingest_job SET status = %s, counters = %s, heartbeat_at = now(),"
        " finished_at = CASE WHEN %s = 'done' THEN now() END WHERE id = %s",
        (status, orjson.dumps(summary.counters()).decode(), status, job_id),
    )
    out = job_summary(conn, job_id)
    _audit_run(conn, job_id, status, out)
    return out
