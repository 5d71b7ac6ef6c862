"""A province's first load as a batch (``hssk ingest KIND PATHS --initial``).

The online path links each batch of 5,000 records against the registry as it grows. A first
load knows the whole file at once, so it decides the whole file at once:

1. *map*: the files are read and mapped as by the runner (worker processes; the same kinds,
   checks and normalization), and held in memory;
2. *persons*: records already linked (a re-run) keep their persons; the others are joined
   set-based on their verified identifiers (CCCD, BHXH, passport, temporary card) with the
   persons already in the registry; what remains of a register is deduplicated as a whole by
   the batch MPI (``registry.dedup``: Splink on DuckDB, guarded clustering) and written by
   COPY (``registry.load_batch``): on an empty registry every cluster becomes a person; on one
   that holds persons, one record of each cluster is linked online (``link_many``) and the
   rest of the cluster follow it. Feeds that only name persons (immunization) link what the
   identifiers did not resolve through the online path. One transaction, which records the
   stage's end in the job's checkpoint;
3. *store*: the mapped records are written by the ingest writer in batches (deaths, households,
   resources through the store's bulk write, quarantine, receipts), each batch committing with
   the job's checkpoint.

A kill at any point loses at most the stage or batch under way: running the same command
again continues the unfinished job (``runner.resume`` too). Everything is idempotent by source
keys: a finished load run again creates nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from hssk import registry
from hssk.db import Database
from hssk.ingest import kinds, stream
from hssk.ingest.jobstore import (
    JobError,
    StartedJob,
    Summary,
    create_job,
    finish_job,
    save_checkpoint,
    unfinished_initial_job,
)
from hssk.ingest.model import Unit
from hssk.ingest.writer import Duplicates, write_units
from hssk.records import refresh_statistics as refresh_store_statistics
from hssk.registry.dedup import dedup

# Kinds a first load takes: the registers, and feeds whose records carry identifiers.
INITIAL_KINDS = ("population", "insurance", "immunization")
BATCH = 5_000  # records per store transaction (and per online linking call)

Progress = Callable[[int, int], None]  # (records done in this run, files done), as the runner's


@dataclass
class _Linking:
    """The distinct source records of a load (by source and record id) and their persons."""

    recs: list[registry.SourceRecord] = field(default_factory=list)
    preps: list[registry.Prepared] = field(default_factory=list)
    index: dict[tuple[str, str], int] = field(default_factory=dict)
    person: list[int | None] = field(default_factory=list)

    def add(self, u: Unit) -> None:
        rec = u.person
        assert rec is not None
        key = (rec.source, rec.record_id)
        if key not in self.index:  # the same record twice: the first one counts (link_many)
            self.index[key] = len(self.recs)
            self.recs.append(rec)
            self.preps.append(u.prepared or registry.prepare(rec))
            self.person.append(None)

    def of(self, u: Unit) -> int | None:
        assert u.person is not None
        return self.person[self.index[(u.person.source, u.person.record_id)]]


def load(
    db: Database,
    kind: str,
    paths: Sequence[str | Path],
    *,
    workers: int | None = None,
    batch: int | None = None,
    progress: Progress | None = None,
    created_by: str | None = None,
) -> Summary:
    """First load of ``paths`` (files or directories) of ``kind`` as a batch; continues the
    unfinished first load of the same files if there is one. Returns the job's summary."""
    if kind not in INITIAL_KINDS:
        raise JobError(f"a first load takes {', '.join(INITIAL_KINDS)}, not '{kind}'")
    files = kinds.kind(kind).find([str(p) for p in paths])
    with db.connection() as conn:
        job_id = unfinished_initial_job(conn, kind, files)
        if job_id is None:
            job_id = create_job(conn, kind, files, created_by=created_by, initial=True)
    from hssk.ingest.runner import run_job  # (the runner hands initial jobs back to run_started)

    return run_job(db, job_id, workers=workers, batch=batch, progress=progress)


def run_started(
    db: Database,
    job_id: int,
    job: StartedJob,
    *,
    workers: int | None = None,
    batch: int | None = None,
    progress: Progress | None = None,
    stop_after: int | None = None,
) -> Summary:
    """Run a first-load job marked running (by ``runner.run_job``, which holds its lock) from
    the stage its checkpoint names. ``stop_after``: stop after that many committed steps
    (the persons stage is one, each store batch another). ``batch``: records per store
    transaction (default ``BATCH``)."""
    size = batch or BATCH
    summary, kind = job.summary, job.kind
    state: dict[str, Any] = summary.checkpoint.setdefault("initial", {"stage": "persons"})
    t0 = time.perf_counter()
    units = _map_all(kind, job.paths, job.known, workers, summary)
    files = len(job.paths)
    if progress:
        progress(0, 0)
    steps = 0
    with db.connection() as conn:
        link = _link_persons(conn, kind, units, summary, count=state["stage"] == "persons")
        if state["stage"] == "persons":
            state.update(stage="store", done=0)
            save_checkpoint(conn, job_id, summary)
            steps += 1
    if progress:
        progress(0, 0)
    for u in units:
        if u.person is not None and not u.problems:
            u.person_id = link.of(u)
        u.prepared = None  # (its work is done: memory)
    status = "done"
    for start in range(int(state.get("done") or 0), len(units), size):
        if stop_after is not None and steps >= stop_after:
            status = "running"
            break
        part = units[start : start + size]
        t1 = time.perf_counter()
        with db.connection() as conn:
            # (as the runner: the batch and its checkpoint commit together; the job's end
            # commits synchronously, which makes every earlier batch durable)
            conn.execute("SET LOCAL synchronous_commit = off")
            write_units(conn, job_id, kind, part, summary, files=files)
            state["done"] = start + len(part)
            save_checkpoint(conn, job_id, summary)
        summary.timings["store"] += time.perf_counter() - t1
        steps += 1
        if progress:
            progress(state["done"], files if state["done"] == len(units) else 0)
    if status == "done":
        state["stage"] = "done"
        summary.checkpoint["pos"] = [files, 0]
    summary.seconds += time.perf_counter() - t0
    with db.connection() as conn:
        out = finish_job(conn, job_id, status, summary)
        if status == "done" and summary.persons_created + summary.records:
            refresh_store_statistics(conn)
            registry.refresh_statistics(conn)
    out.timings = summary.timings
    return out


def _map_all(
    kind: str,
    paths: list[str],
    known: frozenset[str] | None,
    workers: int | None,
    summary: Summary,
) -> list[Unit]:
    """Every record of the files, mapped as the runner maps them (worker processes for large
    sources), duplicate keys in a file marked as the runner marks them."""
    from hssk.ingest.runner import _chunks, _mapping_pool, fewer_gc_passes, pool_size

    t0 = time.perf_counter()
    nworkers = pool_size(workers, paths, kind)
    if workers is None and nworkers == 0 and kinds.kind(kind).register:
        # registers are mapped by a thread in the online path (their cost is the linking);
        # here normalizing every record at once is the cost, so it gets the mapping processes
        nworkers = pool_size(None, paths, "immunization")
    pool = _mapping_pool(nworkers, "fork")
    units: list[Unit] = []
    try:
        with fewer_gc_passes():
            futures = [
                pool.submit(stream.map_payloads, kind, [pc.payload for pc in pieces], known)
                for pieces in _chunks(stream.read(kind, paths), kinds.kind(kind).batch_units)
            ]
            for fut in futures:
                units.extend(fut.result())
    finally:
        pool.shutdown(cancel_futures=True)
    Duplicates().check(kind, units)
    summary.timings["map"] += time.perf_counter() - t0
    return units


def _link_persons(
    conn: psycopg.Connection[Any], kind: str, units: list[Unit], summary: Summary, *, count: bool
) -> _Linking:
    """The person of every distinct source record of the load (see the module's docstring);
    committed with the caller's transaction."""
    t0 = time.perf_counter()
    link = _Linking()
    for u in units:
        if u.person is not None and not u.problems:
            link.add(u)
    link.person = registry.linked(conn, link.recs)
    todo = [i for i, p in enumerate(link.person) if p is None]
    created = 0
    empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM person)").fetchone()[0]  # type: ignore[index]
    if todo and not empty:
        matches = registry.identifier_matches(conn, [link.preps[i] for i in todo])
        hit = [(i, m) for i, m in zip(todo, matches, strict=True) if m is not None]
        res = registry.load_batch(
            conn, [link.preps[i] for i, _ in hit], list(range(len(hit))),
            persons={k: m.person_id for k, (_, m) in enumerate(hit)},
            rules=[m.rule for _, m in hit],
        )  # fmt: skip
        for (i, _), r in zip(hit, res, strict=True):
            link.person[i] = r.person_id
        todo = [i for i, m in zip(todo, matches, strict=True) if m is None]
        summary.timings["link-identifiers"] += time.perf_counter() - t0
    if todo and kinds.kind(kind).register:
        created += _dedup_and_write(conn, link, todo, empty, summary)
    elif todo:  # feeds that name persons: what identifiers did not resolve, online
        for start in range(0, len(todo), BATCH):
            part = todo[start : start + BATCH]
            res = registry.link_many(
                conn, [link.recs[i] for i in part], [link.preps[i] for i in part]
            )
            for i, r in zip(part, res, strict=True):
                link.person[i] = r.person_id
            created += sum(r.created for r in res)
    if count:
        summary.persons += sum(1 for u in units if u.person is not None and not u.problems)
        summary.persons_created += created
    summary.timings["link"] += time.perf_counter() - t0
    return link


def _dedup_and_write(
    conn: psycopg.Connection[Any], link: _Linking, todo: list[int], empty: bool, summary: Summary
) -> int:
    """The register's records no identifier resolved, deduplicated as a whole; on an empty
    registry each cluster is a new person, else one record of each is linked online and the
    cluster follows it. Returns the persons created."""
    t0 = time.perf_counter()
    preps = [link.preps[i] for i in todo]
    d = dedup([link.recs[i] for i in todo], prepared=preps)
    summary.timings["dedup"] += time.perf_counter() - t0
    reviews = [registry.Review(a, b, p) for a, b, p in d.review_pairs]
    if empty:
        res = registry.load_batch(conn, preps, d.cluster, reviews=reviews)
        for i, r in zip(todo, res, strict=True):
            link.person[i] = r.person_id
        return sum(r.created for r in res)
    firsts = sorted(set(d.cluster))  # cluster id = its first member
    persons: dict[int, int] = {}
    created = 0
    for start in range(0, len(firsts), BATCH):
        part = firsts[start : start + BATCH]
        res = registry.link_many(conn, [link.recs[todo[k]] for k in part], [preps[k] for k in part])
        for k, r in zip(part, res, strict=True):
            persons[k] = r.person_id
            link.person[todo[k]] = r.person_id
        created += sum(r.created for r in res)
    rest = [k for k in range(len(todo)) if d.cluster[k] != k]
    if rest:
        pos = {k: n for n, k in enumerate(rest)}
        res = registry.load_batch(
            conn, [preps[k] for k in rest], [d.cluster[k] for k in rest], persons=persons,
            reviews=[registry.Review(pos[r.a], pos[r.b], r.probability) for r in reviews
                     if r.a in pos and r.b in pos],
        )  # fmt: skip
        for k, r in zip(rest, res, strict=True):
            link.person[todo[k]] = r.person_id
    return created
