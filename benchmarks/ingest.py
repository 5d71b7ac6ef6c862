"""Benchmark of ingestion (for ``hssk bench ingest``): visits/s, doses/s, persons/s, memory.

A synthetic province is generated, then loaded into a fresh embedded PostgreSQL (or the one at
``url``): registers (persons/s including linking), the immunization registry (doses/s) and the
HIS hồ sơ files (visits/s with all their lines). Memory is shown flat in file size by streaming
one envelope of N and of 4·N visits and comparing the peak RSS growth of each.
"""

from __future__ import annotations

import cProfile
import io
import itertools
import pstats
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import orjson
import psutil

from hssk.db import Database, open_database
from hssk.ingest import jobstore, kinds, runner, stream
from hssk.ingest.map_xml130 import map_hoso
from hssk.ingest.xmlparse import build_envelope, decode_hoso, iter_hoso
from tests.factories.samples import visit


@contextmanager
def _peak_rss() -> Iterator[dict[str, float]]:
    """Peak RSS (this process and its workers) while the block runs, sampled every 20 ms."""
    proc = psutil.Process()
    out = {"start_mb": proc.memory_info().rss / 2**20, "peak_mb": 0.0}
    stop = threading.Event()

    def total() -> float:
        rss = proc.memory_info().rss
        for child in proc.children(recursive=True):
            with suppress(psutil.Error):
                rss += child.memory_info().rss
        return rss / 2**20

    def watch() -> None:
        while not stop.wait(0.02):
            out["peak_mb"] = max(out["peak_mb"], total())

    out["peak_mb"] = total()
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    try:
        yield out
    finally:
        stop.set()
        t.join()
        out["growth_mb"] = out["peak_mb"] - out["start_mb"]


def _tree_cpu(proc: psutil.Process | None) -> float:
    """CPU seconds used so far by a process and its (live and reaped) children."""
    if proc is None:
        return 0.0
    total = 0.0
    with suppress(psutil.Error):
        t = proc.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in proc.children(recursive=True):
            with suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system
    return total


_postgres: psutil.Process | None = None  # the embedded server, when the bench started one


def _timed(
    fn: Callable[[], jobstore.Summary],
) -> tuple[jobstore.Summary, float, float, dict[str, float]]:
    """Run ``fn``; wall seconds, peak RSS and CPU seconds (this process tree, and the embedded
    PostgreSQL when there is one). CPU time is what the machine's load does not distort much:
    on a shared machine it says what the path costs; wall time says what it got."""
    me = psutil.Process()
    cpu0, pg0 = _tree_cpu(me), _tree_cpu(_postgres)
    with _peak_rss() as mem:
        t0 = time.perf_counter()
        s = fn()
        secs = time.perf_counter() - t0
    cpu = {"hssk": round(_tree_cpu(me) - cpu0, 2)}
    if _postgres is not None:
        cpu["postgres"] = round(_tree_cpu(_postgres) - pg0, 2)
    return s, secs, mem["peak_mb"], cpu


def _cpu_figures(cpu: dict[str, float], n: int, what: str) -> dict[str, Any]:
    total = sum(cpu.values())
    return {
        "cpu_seconds": cpu,
        f"cpu_ms_per_{what}": round(total / n * 1000, 3) if n else None,
        # what 2 cores could do if both were busy with this path and nothing else
        f"{what}s_per_s_bound_2_cores": round(n / (total / 2), 1) if total else None,
    }


def memory_flat(out_dir: Path, visits: int = 1500) -> dict[str, Any]:
    """Peak RSS growth while streaming (parse + decode + map) envelopes of N and 4·N visits."""
    res: dict[str, Any] = {}
    one = [visit(i, drugs=5, services=3, labs=5) for i in range(1, 51)]
    for n in (visits, 4 * visits):
        path = out_dir / f"envelope_{n}.xml"
        with path.open("wb") as fh:  # written in slices: the writer stays small too
            for start in range(0, n, 50):
                chunk = build_envelope("01001", one[: min(50, n - start)])
                if start:
                    chunk = chunk[chunk.index(b"<HOSO>") :]
                if start + 50 < n:
                    chunk = chunk[: chunk.rindex(b"</DANHSACHHOSO>")]
                fh.write(chunk)
        with _peak_rss() as mem:
            count = sum(1 for h in iter_hoso(str(path)) if map_hoso(decode_hoso(h)).items)
        res[f"{n}_visits"] = {
            "file_mb": round(path.stat().st_size / 2**20, 1),
            "visits": count,
            "rss_growth_mb": round(mem["growth_mb"], 1),
        }
        path.unlink()
    return res


def mapping_ceiling(feed: Path, limit: int = 5000) -> dict[str, Any]:
    """CPU per record of reading + mapping alone (one process, no database), for up to
    ``limit`` records of each feed, and the rate 2 cores could reach if mapping were all the
    path did: a ceiling that no change to linking or writing can lift. The collector runs as
    in a job (``runner.fewer_gc_passes``): with the default thresholds mapping costs ~15 % more."""
    out: dict[str, Any] = {}
    with runner.fewer_gc_passes():
        for kind, folder in _KINDS:
            out[kind] = _mapping_cost(feed / folder, kind, limit)
    return out


def _mapping_cost(folder: Path, kind: str, limit: int) -> dict[str, Any]:
    """CPU per record of reading and mapping up to ``limit`` records of one feed."""
    files = kinds.kind(kind).find([str(folder)])
    payloads = [pc.payload for pc in itertools.islice(stream.read(kind, files), limit)]
    stream.map_payloads(kind, payloads[:200], None)  # warm-up: lazy loads, caches
    t0 = time.process_time()
    n = 0  # units: a payload may be a file of several hồ sơ
    for start in range(0, len(payloads), 500):
        n += len(stream.map_payloads(kind, payloads[start : start + 500], None))
    ms = (time.process_time() - t0) / max(1, n) * 1000
    return {
        "records": n,
        "cpu_ms_per_record": round(ms, 3),
        "records_per_s_ceiling_2_cores": round(2000 / ms, 1) if ms else None,
    }


_KINDS = (("population", "population"), ("insurance", "insurance"),
          ("immunization", "immunization"), ("xml130", "his"))  # fmt: skip


def profile_mapping(feed: Path, limit: int = 300) -> str:
    """cProfile of parse + map of ``limit`` hồ sơ files (the CPU side of the visit path)."""
    files = sorted((feed / "his").rglob("*.xml"))[:limit]
    prof = cProfile.Profile()
    prof.enable()
    for f in files:
        for h in iter_hoso(str(f)):
            map_hoso(decode_hoso(h), str(f), None)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(18)
    return buf.getvalue()


def run_bench(
    out_dir: Path | None = None,
    persons: int = 5000,
    *,
    province: str = "01",
    seed: int = 1,
    workers: int | None = None,
    url: str | None = None,
    profile: bool = False,
    memory_visits: int = 1500,
) -> dict[str, Any]:
    """Generate ``persons`` residents and ingest every feed; return throughput and memory.

    ``url``: a PostgreSQL to use, with an empty HSSK database (default: a fresh embedded one
    under ``out_dir``, made anew each run). The generated feed in ``out_dir`` is kept and
    reused by later runs. Without ``out_dir`` a temporary directory is used and removed."""
    if out_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="hssk-ingest-bench-"))
        try:
            return run_bench(tmp, persons, province=province, seed=seed, workers=workers,
                             url=url, profile=profile, memory_visits=memory_visits)  # fmt: skip
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    from hssk.synth import generate

    out_dir = Path(out_dir)
    feed = out_dir / "feed"
    if _feed_params(feed) != {"persons": persons, "province": province, "seed": seed}:
        shutil.rmtree(feed, ignore_errors=True)  # another size: made again
        generate(feed, persons, province, seed)
    global _postgres
    _postgres = None
    server = None
    if url is None:
        from hssk.db.embedded import start_embedded, stop_embedded

        # Always a fresh database: on one left by an earlier run with the same --out, every
        # person would already be linked and every hồ sơ already stored (skipped as unchanged).
        stop_embedded(out_dir / "db")
        shutil.rmtree(out_dir / "db", ignore_errors=True)
        url, server = start_embedded(out_dir / "db")
        pid = server.get_pid()
        _postgres = psutil.Process(pid) if pid else None
    db: Database = open_database(url=url)
    try:
        return _run(db, feed, out_dir, workers, profile, memory_visits, persons)
    finally:
        db.close()
        if server is not None:
            server.cleanup()  # stopped now, so that the next run starts from nothing


def _feed_params(feed: Path) -> dict[str, Any] | None:
    """Size, province and seed of the feed already generated in ``feed`` (None: none)."""
    try:
        params = orjson.loads((feed / "manifest.json").read_bytes())["params"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return {k: params.get(k) for k in ("persons", "province", "seed")}


def _run(
    db: Database, feed: Path, out_dir: Path, workers: int | None, profile: bool,
    memory_visits: int, persons: int,
) -> dict[str, Any]:  # fmt: skip
    runner.ingest(db, "facilities", [feed / "facilities.csv"], workers=0)
    result: dict[str, Any] = {"persons": persons, "workers": workers}
    pop, t_pop, m1, c1 = _timed(
        lambda: runner.ingest(db, "population", [feed / "population"], workers=workers)
    )
    ins, t_ins, m2, c2 = _timed(
        lambda: runner.ingest(db, "insurance", [feed / "insurance"], workers=workers)
    )
    register = pop.records + ins.records
    result["register"] = {
        "records": register,
        "seconds": round(t_pop + t_ins, 2),
        "persons_per_s": round(register / (t_pop + t_ins), 1),
        "new_persons": pop.persons_created + ins.persons_created,
        "peak_rss_mb": round(max(m1, m2), 1),
        **_cpu_figures({k: c1[k] + c2[k] for k in c1}, register, "person"),
        "main_process_seconds": {
            k: round(pop.timings[k] + ins.timings[k], 3)
            for k in set(pop.timings) | set(ins.timings)
        },
    }
    imm, t_imm, m3, c3 = _timed(
        lambda: runner.ingest(db, "immunization", [feed / "immunization"], workers=workers)
    )
    result["immunization"] = {
        "doses": imm.stored.get("Immunization", 0),
        "seconds": round(t_imm, 2),
        "doses_per_s": round(imm.records / t_imm, 1),
        "quarantined": imm.quarantined,
        "peak_rss_mb": round(m3, 1),
        **_cpu_figures(c3, imm.records, "dose"),
        "main_process_seconds": dict(imm.timings),
    }
    his, t_his, m4, c4 = _timed(
        lambda: runner.ingest(db, "xml130", [feed / "his"], workers=workers)
    )
    resources = sum(his.stored.values())
    result["visits"] = {
        "visits": his.records,
        "resources": resources,
        "seconds": round(t_his, 2),
        "visits_per_s": round(his.records / t_his, 1),
        "resources_per_s": round(resources / t_his, 1),
        "quarantined": his.quarantined,
        "peak_rss_mb": round(m4, 1),
        **_cpu_figures(c4, his.records, "visit"),
        "main_process_seconds": dict(his.timings),
    }
    again, t_again, _, _ = _timed(
        lambda: runner.ingest(db, "xml130", [feed / "his"], workers=workers)
    )
    result["visits_reingest"] = {
        "seconds": round(t_again, 2),
        "visits_per_s": round(again.records / t_again, 1),
        "unchanged": again.skipped,
        "stored": sum(again.stored.values()),
    }
    result["memory_flat"] = memory_flat(out_dir, memory_visits)
    result["mapping_ceiling"] = mapping_ceiling(feed)
    if profile:
        result["profile"] = profile_mapping(feed)
    return result
