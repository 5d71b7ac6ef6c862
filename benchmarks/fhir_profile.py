"""Where a FHIR transaction bundle's time goes, in-process (no server, one thread).

``python -m benchmarks.fhir_profile [BUNDLES] [ENTRIES]`` posts the bundles of ``hssk bench
fhir`` (1 Patient + N-1 Observations) through the same path as ``POST /fhir`` (the request's
connection, the Bundle check, ``transaction.process`` with the API's writers, the commit and
the audit flush) on a fresh embedded PostgreSQL, then prints:

- CPU per bundle of this process and of PostgreSQL (all its processes): unlike wall time, it
  barely moves when the machine is shared;
- each SQL statement's calls and wall time per bundle (a timing cursor: psycopg has none, and
  the embedded server has no pg_stat_statements);
- the cumulative CPU of the transaction path's phases (cProfile on CPU time).
"""

from __future__ import annotations

import cProfile
import os
import pstats
import random
import re
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
import psutil
import psycopg
from psycopg_pool import ConnectionPool

from benchmarks.cli import _bundle
from hssk import wiring
from hssk.access.actor import Actor
from hssk.api import fhir, transaction
from hssk.api.deps import get_conn
from hssk.db import Database, open_database
from hssk.db.database import _configure
from hssk.db.embedded import stop_embedded
from hssk.kernel.config import load_settings
from hssk.records.validate import validate

# statement (first 110 characters) -> [calls, seconds]
STATEMENTS: dict[str, list[float]] = defaultdict(lambda: [0, 0.0])
_SPACE = re.compile(r"\s+")

# (label, file suffix, function name): the phases of the transaction path
PHASES = (
    ("validation of the entries", "api/transaction.py", "_parse_entries"),
    ("references rewritten", "api/transaction.py", "_rewrite"),
    ("bulk writer (all below)", "api/fhir.py", "write_many"),
    ("  locator asked", "records/store.py", "locate_many"),
    ("  persons linked (registry)", "registry/link.py", "link_many"),
    ("  authorized", "access/policy.py", "authorize"),
    ("  bulk_upsert", "records/store.py", "bulk_upsert"),
    ("    rows rendered", "records/store.py", "_copy_rows"),
    ("    COPY locator + resource", "records/store.py", "_copy_new"),
    ("    listeners (outbox, completeness)", "records/events.py", "publish"),
    ("commit and audit flush", "api/deps.py", "get_conn"),
)


def _key(query: Any) -> str:
    text = query.decode() if isinstance(query, bytes) else str(query)
    return _SPACE.sub(" ", text).strip()[:110]


def _add(key: str, started: float) -> None:
    entry = STATEMENTS[key]
    entry[0] += 1
    entry[1] += time.perf_counter() - started


class TimedCursor(psycopg.Cursor[Any]):
    """A cursor that adds each statement's wall time to ``STATEMENTS``."""

    def execute(self, query: Any, params: Any = None, **kw: Any) -> Any:  # type: ignore[override]
        t = time.perf_counter()
        try:
            return super().execute(query, params, **kw)
        finally:
            _add(_key(query), t)

    @contextmanager
    def copy(self, statement: Any, params: Any = None, **kw: Any) -> Iterator[Any]:  # type: ignore[override]
        t = time.perf_counter()
        try:
            with super().copy(statement, params, **kw) as cp:
                yield cp
        finally:
            _add(_key(statement), t)


def _postgres_cpu(db: Database) -> float:
    """CPU seconds of every process of the embedded server so far."""
    with db.connection() as conn:
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
    assert row is not None
    postmaster = psutil.Process(row[0]).parent()
    if postmaster is None:
        raise RuntimeError("the database backend has no parent process: not a local server")
    total = 0.0
    for p in [postmaster, *postmaster.children()]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:  # a backend that ended meanwhile
            continue
    return total


def _post(db: Database, actor: Actor, raw: bytes) -> None:
    """What ``POST /fhir`` does with a transaction Bundle, without HTTP."""
    gen = get_conn(db)
    conn = next(gen)
    bundle = orjson.loads(raw)
    shell = {**bundle, "entry": [{k: v for k, v in e.items() if k != "resource"}
                                 for e in bundle["entry"]]}  # fmt: skip
    validate(shell, "Bundle")

    def no_search(*_: Any) -> Any:
        raise AssertionError("the bench bundles hold no searches")

    with conn.transaction():
        transaction.process(conn, bundle, write=fhir._writer(actor),
                            write_many=fhir._bulk_writer(actor), delete=fhir._deleter(actor),
                            search=no_search, get=no_search)  # fmt: skip
    next(gen, None)  # commit, audit flush


def run(bundles: int = 50, entries: int = 100, warmup: int = 10) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="hssk-fhir-profile-"))
    os.environ["HSSK_DATA_DIR"] = str(tmp)
    os.environ.pop("HSSK_DATABASE_URL", None)
    wiring.start()
    db = open_database(load_settings())
    db.pool.close()  # the same pool with the timing cursor
    db.pool = ConnectionPool(db.url, min_size=1, max_size=2, configure=_configure,
                             kwargs={"cursor_factory": TimedCursor}, open=True)  # fmt: skip
    actor = Actor("platform", "system", scopes=frozenset({"system/*.read", "system/*.write"}),
                  client="bench")  # fmt: skip
    rng = random.Random(42)
    raws = [orjson.dumps(_bundle(rng, entries)) for _ in range(warmup + 2 * bundles)]
    try:
        for raw in raws[:warmup]:
            _post(db, actor, raw)
        STATEMENTS.clear()
        pg0, py0, t0 = _postgres_cpu(db), time.process_time(), time.perf_counter()
        for raw in raws[warmup : warmup + bundles]:
            _post(db, actor, raw)
        wall = time.perf_counter() - t0
        py, pg = time.process_time() - py0, _postgres_cpu(db) - pg0
        print(f"{bundles} bundles of {entries}: {wall / bundles * 1000:.1f} ms per bundle "
              f"({bundles * entries / wall:.0f} resources/s, one thread)")  # fmt: skip
        print(f"CPU per bundle: this process {py / bundles * 1000:.1f} ms, "
              f"PostgreSQL {pg / bundles * 1000:.1f} ms")  # fmt: skip
        print("\nSQL per bundle: calls, wall ms (round trip included)")
        for k, (n, s) in sorted(STATEMENTS.items(), key=lambda kv: -kv[1][1]):
            print(f"{n / bundles:6.1f} {s / bundles * 1000:7.2f}  {k}")
        prof = cProfile.Profile(time.process_time)
        prof.enable()
        for raw in raws[warmup + bundles :]:
            _post(db, actor, raw)
        prof.disable()
        stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
        print("\nPhases, cumulative CPU per bundle under cProfile (its overhead included)")
        for label, file, name in PHASES:
            cum = sum(v[3] for (f, _, fn), v in stats.items() if f.endswith(file) and fn == name)
            print(f"{cum / bundles * 1000:8.2f} ms  {label}")
    finally:
        db.close()
        stop_embedded(tmp)


if __name__ == "__main__":
    run(*(int(a) for a in sys.argv[1:3]))
