"""The runner: a job's files read in order, mapped in a process pool, written batch by batch
with checkpoints.

Durability: each batch is written in ONE transaction together with the job's checkpoint
(records done per file) and counters, so after a crash (kill -9) ``resume`` starts exactly
after the last committed batch — nothing lost, nothing doubled (resources are also idempotent
by source key, persons by (source, record id)). A job is held by a session advisory lock, so
two processes never run the same job.
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import signal
import stat
import sys
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor, ThreadPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Any, Unpack

import psycopg

from hssk import registry
from hssk.db import Database
from hssk.ingest import initial, kinds, stream
from hssk.ingest.jobstore import (
    LOCK_SPACE,
    JobError,
    Progress,
    RunOptions,
    Summary,
    create_job,
    finish_job,
    job_summary,
    save_checkpoint,
    start_job,
    unfinished_jobs,
)
from hssk.ingest.model import Unit
from hssk.ingest.writer import Duplicates, write_units
from hssk.kernel import processes
from hssk.records import refresh_statistics as refresh_store_statistics

log = logging.getLogger(__name__)


def _chunks(it: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for x in it:
        batch.append(x)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


# Kinds mapped in worker processes (kinds.SourceKind.pooled). Registers are not: their cost is
# the linking, which runs in the writer, so a pool only adds the pickling (measured: 20 k rows
# 3.1 s → 3.4 s).


def pool_size(workers: int | None, paths: Sequence[str], kind: str = "xml130") -> int:
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
            "SELECT pg_try_advisory_lock(%s, %s)", (LOCK_SPACE, job_id)
        ).fetchone()
        if not got or not got[0]:
            raise JobError(f"job {job_id} is being run by another process")
        try:
            with fewer_gc_passes():
                return _run_locked(db, job_id, workers, batch, progress, stop_after, start_method)
        finally:
            lock_conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_SPACE, job_id))


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
        job = start_job(conn, job_id)
        if job is None:  # already done
            return job_summary(conn, job_id)
    first_load = "initial" in job.summary.checkpoint
    if first_load and kinds.kind(job.kind).register:  # a register's first load: its stages
        return initial.run_started(
            db, job_id, job, workers=workers, batch=batch, progress=progress, stop_after=stop_after
        )
    summary, kind = job.summary, job.kind
    changed_before = _changed(summary)
    t0 = time.perf_counter()
    # a feed's first load: persons found set-based by identifiers first
    prelink = initial.link_feed if first_load else None
    status = run_pipeline(db, job_id, kind, job.paths, job.known, summary, workers=workers,
                          batch=batch, progress=progress, stop_after=stop_after,
                          start_method=start_method, prelink=prelink)  # fmt: skip
    summary.seconds += time.perf_counter() - t0
    with db.connection() as conn:
        out = finish_job(conn, job_id, status, summary)
    if _changed(summary) - changed_before >= ANALYZE_AFTER:
        with db.connection() as conn:
            refresh_store_statistics(conn)
            registry.refresh_statistics(conn)
    out.timings = defaultdict(float, {k: round(v, 3) for k, v in summary.timings.items()})
    return out


Prelink = Callable[[psycopg.Connection[Any], str, list[Unit], Summary], None]


def run_pipeline(
    db: Database,
    job_id: int,
    kind: str,
    paths: list[str],
    known: frozenset[str] | None,
    summary: Summary,
    *,
    workers: int | None = None,
    batch: int | None = None,
    progress: Progress | None = None,
    stop_after: int | None = None,
    start_method: str = "fork",
    prelink: Prelink | None = None,
    persons: bool = True,
) -> str:
    """The files from the checkpoint's position: read, mapped ahead, written batch by batch,
    each with its checkpoint. ``prelink`` runs in each batch's transaction before the writer
    (first loads). ``persons``: False when every person is linked already (a register's
    first load: not normalized again). Returns 'done', or 'running' when stopped by
    ``stop_after``."""
    size = batch or kinds.kind(kind).batch_units
    start = tuple(summary.checkpoint.get("pos") or (0, 0))
    nworkers = pool_size(workers, paths[start[0] :], kind)
    pool = _mapping_pool(nworkers, start_method)
    window = _Window(db, job_id, kind, summary, start[0], progress, stop_after)
    window.prelink = prelink
    try:
        pieces_read = stream.read(kind, paths, (int(start[0]), int(start[1])))
        for pieces in _chunks(pieces_read, size):
            payloads = [pc.payload for pc in pieces]
            t_submit = time.perf_counter()
            mapped = pool.submit(stream.map_payloads, kind, payloads, known, persons=persons)
            window.pending.append((mapped, pieces[-1].pos))
            summary.timings["read+submit"] += time.perf_counter() - t_submit
            window.drain(2 * max(1, nworkers))
        window.drain(0)
        return "done"
    except _Stop:
        return "running"
    finally:
        pool.shutdown(cancel_futures=True)


def _mapping_pool(nworkers: int, start_method: str) -> Executor:
    """Mapping processes; without them, a mapping thread still overlaps the database a
    little: it maps the next batch while the writer waits for PostgreSQL (psycopg releases the
    GIL). Measured on 2 cores: 18,771 insurance rows 4.84 s → 4.63 s, 75,578 doses 10.8 →
    10.2 s."""
    if nworkers > 0:
        start_method = processes.start_method(start_method)
        context = get_context(start_method)
        if start_method != "fork":  # a fresh interpreter inherits no socket
            return ProcessPoolExecutor(nworkers, mp_context=context)
        return ProcessPoolExecutor(
            nworkers, mp_context=context, initializer=_detach_from_runner, initargs=(os.getpid(),)
        )
    return ThreadPoolExecutor(1, thread_name_prefix="hssk-ingest-map")


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def _detach_from_runner(runner_pid: int) -> None:
    """Start of a forked mapping process. A fork inherits the runner's sockets, its database
    connection among them: were the runner killed (kill -9), the copy would keep that session
    open, and with it the job's lock, so the job would never show as interrupted and a resumed
    load would wait on its linking lock. Mapping needs no socket: each is pointed at
    /dev/null (the descriptor stays valid for the objects that own it), and the process
    dies with the runner."""
    devnull = os.open(os.devnull, os.O_RDWR)
    for name in os.listdir("/proc/self/fd") if os.path.isdir("/proc/self/fd") else ():
        fd = int(name)
        try:
            if fd != devnull and stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.dup2(devnull, fd)
        except OSError:  # the directory's own descriptor, closed by now
            continue
    os.close(devnull)
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != runner_pid:  # the runner died before the line above
        os._exit(1)


class _Window:
    """The batches being mapped, oldest first; each is written, with the job's checkpoint,
    in one transaction as soon as it is mapped."""

    def __init__(self, db: Database, job_id: int, kind: str, summary: Summary, first_file: int,
                 progress: Progress | None, stop_after: int | None) -> None:  # fmt: skip
        self.db, self.job_id, self.kind, self.summary = db, job_id, kind, summary
        self.first_file, self.progress, self.stop_after = first_file, progress, stop_after
        self.pending: deque[tuple[Future[list[Unit]], tuple[int, int]]] = deque()
        self.batches = 0
        self.records = 0
        self.duplicates = Duplicates()
        # links the batch's persons before the writer (which links the rest online)
        self.prelink: Prelink | None = None

    def drain(self, limit: int) -> None:
        """Write the mapped batches until at most ``limit`` are still pending."""
        timings = self.summary.timings
        while len(self.pending) > limit:
            fut, pos = self.pending.popleft()
            t0 = time.perf_counter()
            units = fut.result()
            timings["wait-for-mapping"] += time.perf_counter() - t0
            self._write(units, pos)
            self.batches += 1
            self.records += len(units)
            if self.progress:
                self.progress(self.records, pos[0])
            if self.stop_after is not None and self.batches >= self.stop_after:
                raise _Stop()

    def _write(self, units: list[Unit], pos: tuple[int, int]) -> None:
        t1 = time.perf_counter()
        self.duplicates.check(self.kind, units)
        with self.db.connection() as conn:
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

            if self.prelink is not None:
                self.prelink(conn, self.kind, units, self.summary)
            write_units(conn, self.job_id, self.kind, units, self.summary,
                        files=pos[0] - self.first_file, linked=linked)  # fmt: skip
            self.summary.checkpoint["pos"] = list(pos)
            save_checkpoint(conn, self.job_id, self.summary)
            t2 = time.perf_counter()
        self.summary.timings["commit"] += time.perf_counter() - t2
        self.summary.timings["write"] += t2 - t1


# A run that wrote this many rows refreshes the planner's statistics when it ends: ANALYZE
# costs ~0.5 s, under 2 % of such a run (autovacuum catches up with smaller ones).
ANALYZE_AFTER = 200_000


def _changed(s: Summary) -> int:
    return sum(s.created.values()) + sum(s.updated.values()) + s.persons_created


class _Stop(Exception):
    pass


def ingest(
    db: Database,
    kind: str,
    paths: Sequence[str | Path],
    *,
    created_by: str | None = None,
    unit_id: str | None = None,
    **options: Unpack[RunOptions],
) -> Summary:
    """Create a job for ``paths`` (files; directories are walked) and run it."""
    files = kinds.kind(kind).find([str(p) for p in paths])
    with db.connection() as conn:
        job_id = create_job(conn, kind, files, created_by=created_by, unit_id=unit_id)
    return run_job(db, job_id, **options)


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
