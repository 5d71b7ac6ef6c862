"""Recurring jobs on the platform's own PostgreSQL: a schedule row per job, claimed with
``FOR UPDATE SKIP LOCKED`` so that any number of runners (``hssk jobs run`` under systemd, on
one or several hosts) run each job once per period, and a ``job_run`` row per run (what ran,
when, how long, what failed: ``hssk jobs list``).

A claim moves the job's next run one period ahead before it starts, so a runner that dies
mid-run does not block it: after ``lease_s`` another runner takes it again. A failed run is
retried sooner (30 s, doubling, at most the period).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from hssk.db import Database
from hssk.http.logs import request_id

log = logging.getLogger(__name__)
RETRY_FIRST_S = 30


@dataclass(frozen=True)
class Task:
    """One recurring job: ``run`` does the work and returns counters to record."""

    name: str
    every_s: int
    run: Callable[[Database], dict[str, Any]]
    doc: str
    lease_s: int = 3600


@dataclass(frozen=True)
class RunResult:
    name: str
    ok: bool
    seconds: float
    result: dict[str, Any] | None
    error: str | None


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def sync_schedule(conn: psycopg.Connection[Any], tasks: Sequence[Task]) -> None:
    """Make sure every task has its schedule row (a new one is due now); keep next runs."""
    with conn.cursor() as cur:
        cur.executemany(
            """INSERT INTO job_schedule (name, every_s, lease_s) VALUES (%s, %s, %s)
               ON CONFLICT (name) DO UPDATE SET every_s = EXCLUDED.every_s,
                 lease_s = EXCLUDED.lease_s""",
            [(t.name, t.every_s, t.lease_s) for t in tasks],
        )


def claim(conn: psycopg.Connection[Any], names: Sequence[str], worker: str) -> str | None:
    """Take one due job no other runner holds; None when nothing is due."""
    row = conn.execute(
        """UPDATE job_schedule SET running_since = now(), running_by = %s,
                  next_run = now() + make_interval(secs => every_s)
           WHERE name = (
               SELECT name FROM job_schedule
               WHERE enabled AND name = ANY(%s) AND next_run <= now()
                 AND (running_since IS NULL
                      OR running_since < now() - make_interval(secs => lease_s))
               ORDER BY next_run LIMIT 1 FOR UPDATE SKIP LOCKED)
           RETURNING name""",
        (worker, list(names)),
    ).fetchone()
    return str(row[0]) if row else None


def run_task(db: Database, task: Task, worker: str) -> RunResult:
    """Run a claimed task and record the run (a failure is recorded, not raised)."""
    with db.connection() as conn:
        row = conn.execute(
            "INSERT INTO job_run (name, worker) VALUES (%s, %s) RETURNING id", (task.name, worker)
        ).fetchone()
    run_id = row[0] if row else None
    # every line logged while the job runs carries the run's id, as a request's lines do
    token = request_id.set(f"job-{run_id}")
    t0 = time.perf_counter()
    result: dict[str, Any] | None = None
    error: str | None = None
    try:
        result = task.run(db)
    except Exception as exc:  # a job's failure is data: recorded, retried, listed
        error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
        log.exception("job %s failed", task.name, extra={"job": task.name})
    finally:
        request_id.reset(token)
    seconds = time.perf_counter() - t0
    with db.connection() as conn:
        conn.execute(
            """UPDATE job_run SET status = %s, finished_at = now(), result = %s, error = %s
               WHERE id = %s""",
            ("failed" if error else "done", Jsonb(result) if result is not None else None,
             error, run_id),
        )  # fmt: skip
        if error:
            conn.execute(
                """UPDATE job_schedule SET running_since = NULL, running_by = NULL,
                     failures = failures + 1,
                     next_run = now() + make_interval(secs => least(every_s,
                         %s * power(2, least(failures, 16))))
                   WHERE name = %s""",
                (RETRY_FIRST_S, task.name),
            )
        else:
            conn.execute(
                """UPDATE job_schedule SET running_since = NULL, running_by = NULL, failures = 0
                   WHERE name = %s""",
                (task.name,),
            )
    log.info("job %s %s in %.1f s", task.name, "done" if error is None else "FAILED", seconds,
             extra={"job": task.name, "status": "failed" if error else "done",
                    "seconds": round(seconds, 3), "request_id": f"job-{run_id}"})  # fmt: skip
    return RunResult(task.name, error is None, seconds, result, error)


def run_due(db: Database, tasks: Sequence[Task], worker: str | None = None) -> list[RunResult]:
    """Run every job that is due now, one after the other; return what ran."""
    worker = worker or worker_id()
    by_name = {t.name: t for t in tasks}
    done: list[RunResult] = []
    while True:
        with db.connection() as conn:
            name = claim(conn, list(by_name), worker)
        if name is None:
            return done
        done.append(run_task(db, by_name[name], worker))


def run_forever(
    db: Database, tasks: Sequence[Task], stop: threading.Event, poll_s: float = 5.0
) -> None:
    """The runner's loop: run what is due, sleep, until ``stop`` is set."""
    with db.connection() as conn:
        sync_schedule(conn, tasks)
    worker = worker_id()
    log.info("job runner %s: %d jobs", worker, len(tasks))
    while not stop.is_set():
        run_due(db, tasks, worker)  # each run logs its own line
        stop.wait(poll_s)


def run_now(conn: psycopg.Connection[Any], name: str) -> bool:
    """Make a job due at once (the runner picks it up); False if there is no such job."""
    cur = conn.execute("UPDATE job_schedule SET next_run = now() WHERE name = %s", (name,))
    return cur.rowcount == 1


def history(
    conn: psycopg.Connection[Any], name: str | None = None, failed: bool = False, limit: int = 50
) -> list[dict[str, Any]]:
    """Recent runs, newest first."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            """SELECT id, name, status, worker, started_at, finished_at,
                      extract(epoch FROM coalesce(finished_at, now()) - started_at) AS seconds,
                      result, error
               FROM job_run
               WHERE (%(name)s::text IS NULL OR name = %(name)s)
                 AND (NOT %(failed)s OR status = 'failed')
               ORDER BY started_at DESC, id DESC LIMIT %(limit)s""",
            {"name": name, "failed": failed, "limit": limit},
        ).fetchall()


@dataclass(frozen=True)
class Schedule:
    name: str
    every_s: int
    next_run: datetime
    running_since: datetime | None
    failures: int
    last_status: str | None
    last_finished: datetime | None


def schedule(conn: psycopg.Connection[Any]) -> list[Schedule]:
    """Each job's schedule and its last finished run."""
    rows = conn.execute(
        """SELECT s.name, s.every_s, s.next_run, s.running_since, s.failures,
                  r.status, r.finished_at
           FROM job_schedule s
           LEFT JOIN LATERAL (SELECT status, finished_at FROM job_run
                              WHERE name = s.name AND status <> 'running'
                              ORDER BY started_at DESC LIMIT 1) r ON true
           ORDER BY s.name"""
    ).fetchall()
    return [Schedule(*r) for r in rows]
