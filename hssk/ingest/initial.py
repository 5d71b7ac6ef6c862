"""A province's first load as a batch (``hssk ingest KIND PATHS --initial``).

The online path links each batch of 5,000 records against the registry as it grows, record by
record. A first load decides set-based, and for a register a slice of up to a million distinct
records at once (``HSSK_INITIAL_SLICE_RECORDS``; the usual register is one slice, Hà Nội's ten):

Registers (population, insurance), in stages recorded in the job's checkpoint:

1. *persons*: the files are read and mapped as by the runner (the same kinds, checks and
   normalization), batch by batch; of each distinct source record only its prepared record
   is kept (what linking reads), the mapped units are dropped. Records already linked (a re-run) keep their persons; the others are joined
   set-based on their verified identifiers (CCCD, BHXH, passport, temporary card) with the
   persons already in the registry (``registry.identifier_matches``: a temporary table and a
   join); what remains is deduplicated as a whole by the batch MPI (``registry.dedup``:
   Splink on DuckDB, guarded clustering) and written by COPY (``registry.load_batch``): on an
   empty registry every cluster becomes a person; on one that holds persons (a second
   register, or the slices after the first), one record of each cluster is linked online
   (``link_many``) and the rest of its cluster follow it. One transaction per slice, which
   records the files' position after it (and, after the last, the stage's end);
2. *store*: the files are mapped again (mapping is deterministic; the persons stage normalized
   the persons and did not render the resources, this one does the reverse) by the runner's
   pipeline (``runner.run_pipeline``) and go through the ingest writer in batches (deaths,
   households, Coverage through the store's bulk write, quarantine, receipts), each batch's
   persons found
   by the source links the persons stage wrote, each batch committing with the job's
   checkpoint. Memory grows with the distinct records linking needs, not with the file.

Feeds that name persons (immunization) run the runner's pipeline (mapping processes ahead of
the writer, a checkpoint per batch) with ``link_feed`` before each batch is written: persons
found by their source link or a verified identifier (set-based) are attached, the rest is
linked online by the writer as usual, so nothing is lost and nothing is linked twice.

A kill at any point loses at most the stage or batch under way: the same command continues
the unfinished job (so does ``hssk ingest --resume``). Everything is idempotent by source
keys: a finished load run again creates nothing.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Generator, Sequence
from concurrent.futures import Future
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Unpack

import psycopg

from hssk import registry
from hssk.db import Database
from hssk.ingest import kinds, stream
from hssk.ingest.jobstore import (
    JobError,
    Progress,
    RunOptions,
    StartedJob,
    Summary,
    create_job,
    finish_job,
    save_checkpoint,
    unfinished_initial_job,
)
from hssk.ingest.model import Unit
from hssk.ingest.writer import Duplicates
from hssk.kernel.config import load_settings
from hssk.records import refresh_statistics as refresh_store_statistics
from hssk.registry.dedup import dedup

# Kinds a first load takes: the registers, and feeds whose records carry identifiers.
INITIAL_KINDS = ("population", "insurance", "immunization")
BATCH = 5_000  # records per store transaction (and per online linking call)


# Fields that repeat across a province's records (a few hundred communes, a few thousand
# family, middle and given names): one string object each instead of one per record.
# Measured on 20,000 population records (tracemalloc, what is held beyond the first 2,000):
# 3,955 bytes a record for the mapped units, 2,150 for the prepared records, 1,870 with the
# shared strings and the index by source (a tuple less per record); 1,700 measured again,
# 1,595 with the prepared record's identifiers, phone and sorted name the source record's own
# strings when equal (sharing addresses cost more in the table than it saved).
_SHARED_RECORD = ("source", "sex", "commune_code", "province_code")
_SHARED_PREPARED = (
    "sex", "birth_precision", "commune_code", "commune_code_old", "province_code",
    "family_key", "middle_key", "given_key",
)  # fmt: skip

_AS_RECORD = ("full_name", "cccd", "phone", "bhyt", "bhxh")
_NO_PROBLEMS: list[str] = []


@dataclass
class _Linking:
    """The distinct source records of a load (by source and record id) and their persons:
    only what linking reads (the prepared record, which holds the source record), not the
    mapped units. ``units``: the units with a person these records came from."""

    preps: list[registry.Prepared] = field(default_factory=list)
    index: dict[str, dict[str, int]] = field(default_factory=dict)  # source → record id → i
    person: list[int | None] = field(default_factory=list)
    units: int = 0
    shared: dict[str, str] = field(default_factory=dict)

    @property
    def recs(self) -> list[registry.SourceRecord]:
        return [p.rec for p in self.preps]

    def add(self, u: Unit) -> None:
        rec = u.person
        assert rec is not None
        self.units += 1
        ids = self.index.setdefault(rec.source, {})
        if rec.record_id in ids:  # the same record twice: the first one counts (link_many)
            return
        ids[rec.record_id] = len(self.preps)
        prep = u.prepared or registry.prepare(rec)
        self._share(rec, _SHARED_RECORD)
        self._share(prep, _SHARED_PREPARED)
        for name in _AS_RECORD:  # (equal values: the source record's string, not a copy)
            if (v := getattr(rec, name)) is not None and getattr(prep, name) == v:
                setattr(prep, name, v)
        if prep.name_sorted == prep.name_key:
            prep.name_sorted = prep.name_key
        if not prep.problems:  # (read, never added to, from here on)
            prep.problems = _NO_PROBLEMS
        self.preps.append(prep)
        self.person.append(None)

    def of(self, u: Unit) -> int | None:
        assert u.person is not None
        return self.person[self.index[u.person.source][u.person.record_id]]

    def _share(self, obj: Any, names: tuple[str, ...]) -> None:
        for name in names:
            v = getattr(obj, name)
            if v is not None:
                setattr(obj, name, self.shared.setdefault(v, v))


def load(
    db: Database,
    kind: str,
    paths: Sequence[str | Path],
    *,
    created_by: str | None = None,
    **options: Unpack[RunOptions],
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

    return run_job(db, job_id, **options)


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
    from hssk.ingest.runner import run_pipeline

    summary, kind = job.summary, job.kind
    state: dict[str, Any] = summary.checkpoint.setdefault("initial", {"stage": "persons"})
    t0 = time.perf_counter()
    steps = 0
    if state["stage"] == "persons":
        start = tuple(state.get("persons_pos") or (0, 0))
        with closing(_slices(kind, job.paths, job.known, workers, summary, start)) as parts:
            for part in parts:
                if progress:
                    progress(0, 0)
                with db.connection() as conn:
                    _link_persons(conn, part.link, summary)
                    state["slices"] = int(state.get("slices") or 0) + 1
                    state["persons_pos"] = list(part.pos)
                    if part.last:  # (the usual register, one slice: one transaction, as always)
                        _end_persons_stage(summary)
                    save_checkpoint(conn, job_id, summary)
                steps += 1
                if not part.last:
                    with db.connection() as conn:  # the next slice links online against these
                        registry.refresh_statistics(conn)
                if progress:
                    progress(0, 0)
                del part  # (not held while the next slice is read)
                if stop_after is not None and steps >= stop_after:
                    break
        if state["stage"] == "persons" and (stop_after is None or steps < stop_after):
            with db.connection() as conn:  # every slice committed: the files are done
                _end_persons_stage(summary)
                save_checkpoint(conn, job_id, summary)
    status = "running"
    if state["stage"] != "persons" and (stop_after is None or steps < stop_after):
        # Mapping is deterministic: the store stage maps the files again, batch by batch, as
        # the runner does, and holds a few batches at a time, not the file.
        status = run_pipeline(
            db, job_id, kind, job.paths, job.known, summary, workers=workers,
            batch=batch or BATCH, progress=progress,
            stop_after=None if stop_after is None else stop_after - steps,
            prelink=_StoreLinks(state), persons=False,
        )  # fmt: skip
    if status == "done":
        state["stage"] = "done"
        summary.checkpoint["pos"] = [len(job.paths), 0]
    summary.seconds += time.perf_counter() - t0
    wrote = status == "done" and summary.persons_created + summary.records > 0
    with db.connection() as conn:
        save_checkpoint(conn, job_id, summary)
        out = finish_job(conn, job_id, status, summary)
        if wrote:
            refresh_store_statistics(conn)
            registry.refresh_statistics(conn)
    if wrote:
        # (its own connection: VACUUM runs outside a transaction; the next register's updates
        # then reuse the rows this load's household moves and fills replaced)
        with db.connection() as conn:
            registry.reclaim_persons(conn)
    out.timings = summary.timings
    return out


@dataclass
class _StoreLinks:
    """The store stage's step before the writer, in each batch's transaction: every record's
    person by the source link the persons stage wrote (counted there, not again), and the
    records stored so far in the job's checkpoint."""

    state: dict[str, Any]

    def __call__(
        self, conn: psycopg.Connection[Any], kind: str, units: list[Unit], summary: Summary
    ) -> None:
        t0 = time.perf_counter()
        need = [u for u in units if u.person is not None and not u.problems]
        found = registry.linked(conn, [u.person for u in need if u.person is not None])
        for u, pid in zip(need, found, strict=True):
            if pid is not None:  # (None cannot be: the writer would link it online)
                u.person_id = pid
        self.state["done"] = int(self.state.get("done") or 0) + len(units)
        summary.timings["link-sources"] += time.perf_counter() - t0


def _end_persons_stage(summary: Summary) -> None:
    state = summary.checkpoint["initial"]
    state.update(stage="store", done=0)
    state.pop("persons_pos", None)
    summary.checkpoint["pos"] = [0, 0]  # the store stage reads the files again


@dataclass
class _Slice:
    """Distinct source records of a load to link in one transaction, the files' position
    after them, and whether the files end there."""

    link: _Linking
    pos: tuple[int, int]
    last: bool


def _slices(
    kind: str,
    paths: list[str],
    known: frozenset[str] | None,
    workers: int | None,
    summary: Summary,
    start: tuple[int, ...] = (0, 0),
) -> Generator[_Slice, None, None]:
    """The distinct source records of the files from ``start`` on, mapped as the runner maps
    them (duplicate keys in a file marked as the runner marks them), each kept as what
    linking needs, ``initial_slice_records`` at a time (the mapped units are dropped batch by
    batch). A register of a province the size of Hà Nội does not fit in memory as prepared
    records and batch MPI (~36 GB at 10.5 M): its slices are linked one after the other,
    each against the persons of those before (identifiers, then online linking of each
    cluster's first record, as for a second register)."""
    from hssk.ingest.runner import _chunks, _mapping_pool, fewer_gc_passes, pool_size

    size = max(1, load_settings().initial_slice_records)
    t0 = time.perf_counter()
    # As the online path: registers are mapped by a thread. Even with nothing else to do,
    # processes cost more in pickling than they save (measured, 20,067 population rows on 2
    # busy cores: 6.2 s with two processes, 4.1 s in a thread).
    nworkers = pool_size(workers, paths, kind)
    pool = _mapping_pool(nworkers, "fork")
    link = _Linking()
    duplicates = Duplicates()
    pending: deque[tuple[Future[list[Unit]], tuple[int, int]]] = deque()
    full: list[_Slice] = []

    def take(limit: int) -> None:
        nonlocal link
        while len(pending) > limit:
            future, pos = pending.popleft()
            units = future.result()
            duplicates.check(kind, units)
            for u in units:
                if u.person is not None and not u.problems:
                    link.add(u)
            if len(link.preps) >= size:
                full.append(_Slice(link, pos, last=False))
                link = _Linking()

    end = (int(start[0]), int(start[1]))
    try:
        with fewer_gc_passes():
            # (a slice ends at a batch's end, where the files' position is known)
            chunk = min(kinds.kind(kind).batch_units, size)
            for pieces in _chunks(stream.read(kind, paths, end), chunk):
                payloads = [pc.payload for pc in pieces]
                end = pieces[-1].pos
                # (the resources are rendered by the store stage, which maps again)
                pending.append(
                    (pool.submit(stream.map_payloads, kind, payloads, known, resources=False), end)
                )
                take(2 * max(1, nworkers))  # (a few batches ahead, as the runner)
                while full:
                    summary.timings["map"] += time.perf_counter() - t0
                    yield full.pop(0)
                    t0 = time.perf_counter()
            take(0)
    finally:
        pool.shutdown(cancel_futures=True)
    summary.timings["map"] += time.perf_counter() - t0
    yield from full
    if link.preps or not full:
        yield _Slice(link, end, last=True)


def _link_persons(conn: psycopg.Connection[Any], link: _Linking, summary: Summary) -> None:
    """The person of every distinct source record of the load (see the module's docstring);
    committed with the caller's transaction."""
    t0 = time.perf_counter()
    link.person = registry.linked(conn, link.recs)
    todo = [i for i, p in enumerate(link.person) if p is None]
    created = 0
    empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM person)").fetchone()[0]  # type: ignore[index]
    if todo and not empty:
        todo = _by_identifiers(conn, link, todo)
        summary.timings["link-identifiers"] += time.perf_counter() - t0
    if todo:
        created += _dedup_and_write(conn, link, todo, empty, summary)
    summary.persons += link.units
    summary.persons_created += created
    summary.timings["link"] += time.perf_counter() - t0


def link_feed(
    conn: psycopg.Connection[Any], kind: str, units: list[Unit], summary: Summary
) -> None:
    """Before a feed's batch is written (``runner``, first loads): the persons of its records
    by their source link or a verified identifier, set-based, attached to the units; the
    writer links the others online."""
    t0 = time.perf_counter()
    link = _Linking()
    need = [u for u in units if u.person is not None and not u.problems and u.person_id is None]
    for u in need:
        link.add(u)
    link.person = registry.linked(conn, link.recs)
    todo = [i for i, p in enumerate(link.person) if p is None]
    if todo:
        _by_identifiers(conn, link, todo)
    for u in need:
        pid = link.of(u)
        if pid is not None:
            u.person_id = pid
            summary.persons += 1
    summary.timings["link-identifiers"] += time.perf_counter() - t0


def _by_identifiers(conn: psycopg.Connection[Any], link: _Linking, todo: list[int]) -> list[int]:
    """Records (``todo``: indexes) whose verified identifier names one person of the
    registry, linked to it by COPY; returns the others."""
    matches = registry.identifier_matches(conn, [link.preps[i] for i in todo])
    hit = [(i, m) for i, m in zip(todo, matches, strict=True) if m is not None]
    res = registry.load_batch(
        conn, [link.preps[i] for i, _ in hit], list(range(len(hit))),
        persons={k: m.person_id for k, (_, m) in enumerate(hit)},
        rules=[m.rule for _, m in hit],
    )  # fmt: skip
    for (i, _), r in zip(hit, res, strict=True):
        link.person[i] = r.person_id
    return [i for i, m in zip(todo, matches, strict=True) if m is None]


def _dedup_and_write(
    conn: psycopg.Connection[Any], link: _Linking, todo: list[int], empty: bool, summary: Summary
) -> int:
    """The register's records no identifier resolved, deduplicated as a whole; on an empty
    registry each cluster is a new person, else one record of each is linked online and the
    cluster follows it. Returns the persons created."""
    t0 = time.perf_counter()
    preps = [link.preps[i] for i in todo]
    d = dedup([p.rec for p in preps], prepared=preps)
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
        res = registry.link_many(conn, [preps[k].rec for k in part], [preps[k] for k in part])
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
