"""``hssk bench hanoi --size N``: a synthetic Hà Nội at N persons, loaded stage by stage, then
the supervision pages and ``/metrics`` measured while the data sits there.

Run from the checkout (``python -m hssk bench hanoi --size 200000 --out DIR``): the bench
lives outside the product package. Stages (generate, each feed in the order a province loads
them, completeness) are recorded in ``DIR/stages.json`` when done; a run that is stopped
(even by kill -9) continues with the first stage not done, and a feed loaded again is
idempotent (source keys). The data lives in ``DIR`` (feeds in ``DIR/feeds``, the embedded
PostgreSQL in ``DIR/pg``); without ``--out`` a temporary directory is used and removed.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hssk.db import Database

# (stage, ingest kind, feed path under DIR/feeds), in the order a province loads them
FEEDS = (
    ("facilities", "facilities", "facilities.csv"),
    ("population", "population", "population"),
    ("insurance", "insurance", "insurance"),
    ("immunization", "immunization", "immunization"),
    ("checkin", "xml130", "checkin"),
    ("his", "xml130", "his"),
    ("station", "station", "station"),
)

# What the dashboard read before the rollups (hssk/monitor/metrics.py up to this change): a
# join of every person of the area with presence and completeness. Kept to measure before/after.
_SCAN_BEFORE = """
SELECT {group}, count(*), count(*) FILTER (WHERE r.person_id IS NOT NULL),
  count(*) FILTER (WHERE p.verification <> 'unverified' OR p.cccd_verified),
  count(*) FILTER (WHERE p.verification = 'verified' OR p.cccd_verified),
  count(DISTINCT p.household_id), count(*) FILTER (WHERE p.deceased_at IS NOT NULL),
  count(*) FILTER (WHERE p.bhyt IS NOT NULL), count(*) FILTER (WHERE p.cccd IS NOT NULL),
  count(*) FILTER (WHERE p.birth_date > current_date - 2191),
  count(*) FILTER (WHERE p.birth_date > current_date - 2191
                   AND (p.cccd IS NOT NULL OR p.health_id IS NOT NULL)),
  avg(c.filled::float8 / nullif(c.total, 0))
FROM person p
LEFT JOIN record_presence r ON r.person_id = p.id
LEFT JOIN completeness c ON c.person_id = p.id AND c.catalog = 'hanoi-73'
WHERE p.merged_into IS NULL AND p.province_code = '01' GROUP BY 1"""
_DISTRIBUTION_BEFORE = """
SELECT least(floor(c.filled::float8 / nullif(c.total, 0) * 10)::int, 9), count(*)
FROM completeness c JOIN person p ON p.id = c.person_id
WHERE c.catalog = 'hanoi-73' AND p.merged_into IS NULL AND p.province_code = '01' GROUP BY 1"""


# Kinds the batch first-load path takes (``--initial``): the registers and immunizations.
INITIAL_KINDS = ("population", "insurance", "immunization")


def _initial_load(db: Database, kind: str, path: Path) -> int:
    """Load one feed with the batch first-load path; the records it took."""
    # a plain import: a checkout without the batch path fails here, loudly
    from hssk.ingest.initial import load

    return int(load(db, kind, [path]).records)


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    fn()  # warm the caches once
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    qs = statistics.quantiles(samples, n=20, method="inclusive") if runs > 1 else samples * 19
    return {"p50_ms": round(statistics.median(samples) * 1000, 1),
            "p95_ms": round(qs[18] * 1000, 1)}  # fmt: skip


class Stages:
    """Completed stages and their figures, in ``DIR/stages.json`` (written after each)."""

    def __init__(self, path: Path):
        self.path = path
        self.done: dict[str, dict[str, Any]] = (
            json.loads(path.read_text("utf-8")) if path.exists() else {}
        )

    def run(self, name: str, fn: Callable[[], int], **about: str) -> dict[str, Any]:
        """Run stage ``name`` unless done; ``fn`` returns the records it handled; ``about``
        is kept with the figures (which load path the stage took)."""
        if name not in self.done:
            t = time.perf_counter()
            records = fn()
            seconds = time.perf_counter() - t
            self.done[name] = {
                "seconds": round(seconds, 1),
                "records": records,
                "records_per_s": round(records / seconds, 1) if seconds else 0.0,
                "peak_rss_mb": _peak_rss_mb(),
                **about,
            }
            self._save()
        return self.done[name]

    def record(self, name: str, fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Take measure ``name`` unless taken: ``fn`` returns its figures."""
        if name not in self.done:
            self.done[name] = fn()
            self._save()
        return self.done[name]

    def _save(self) -> None:
        # written aside and renamed: a kill -9 mid-write leaves the previous file whole
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.done, indent=1, ensure_ascii=False), "utf-8")
        tmp.replace(self.path)


def run_bench(
    persons: int = 200_000,
    out: Path | None = None,
    *,
    visit_rate: float = 0.1,
    seed: int = 1,
    runs: int = 20,
    score_persons: int | None = None,
    initial: bool = False,
    serve: bool = True,
    clients: int = 16,
    seconds: float = 15.0,
    gen_workers: int = 2,
    skip_feeds: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Load a synthetic Hà Nội of ``persons`` residents stage by stage, then measure.

    ``score_persons``: score the completeness of that many persons only (the first ones
    queued; the rest stay queued), when the machine has no time for everyone.
    ``initial``: load the registers and immunizations with the batch first-load path
    (``hssk ingest KIND --initial``) instead of the daily feeds' path. ``serve``: measure a
    running server too (:mod:`benchmarks.hanoi_serve`, ``clients`` clients for ``seconds``).
    ``gen_workers``: processes generating the feeds (the files are the same bytes).
    ``skip_feeds``: feed stages (names of ``FEEDS``) not loaded, when the machine has no time
    for them; the result names them, the data measured then lacks those records."""
    unknown = set(skip_feeds) - {name for name, _, _ in FEEDS}
    if unknown:
        raise ValueError(f"no feed stage {sorted(unknown)}; the stages are "
                         f"{', '.join(name for name, _, _ in FEEDS)}")  # fmt: skip
    if out is None:
        tmp = Path(tempfile.mkdtemp(prefix="hssk-hanoi-bench-"))
        try:
            return run_bench(persons, tmp, visit_rate=visit_rate, seed=seed, runs=runs,
                             score_persons=score_persons, initial=initial, serve=serve,
                             clients=clients, seconds=seconds,
                             gen_workers=gen_workers, skip_feeds=skip_feeds)  # fmt: skip
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    from hssk.catalog import completeness
    from hssk.db import open_database
    from hssk.db.embedded import start_embedded, stop_embedded
    from hssk.ingest.runner import ingest
    from hssk.kernel.config import load_settings
    from hssk.monitor import rollups
    from hssk.synth import generate

    out.mkdir(parents=True, exist_ok=True)
    feeds = out / "feeds"
    stages = Stages(out / "stages.json")
    os.environ["HSSK_DATA_DIR"] = str(out)
    url, server = start_embedded(out)
    db = open_database(load_settings(), url=url)
    result: dict[str, Any] = {"persons": persons, "visit_rate": visit_rate, "data": str(out),
                              "score_persons": score_persons, "initial": initial,
                              "skipped_feeds": list(skip_feeds)}  # fmt: skip
    try:

        def gen() -> int:
            shutil.rmtree(feeds, ignore_errors=True)  # a stopped generation starts again
            manifest = generate(feeds, persons, province="01", seed=seed, visit_rate=visit_rate,
                                workers=gen_workers)  # fmt: skip
            return manifest.counts.get("source_records", 0)

        stages.run("generate", gen)
        for name, kind, rel in FEEDS:
            if (feeds / rel).exists() and name not in skip_feeds:

                def load(kind: str = kind, rel: str = rel) -> int:
                    if initial and kind in INITIAL_KINDS:
                        return _initial_load(db, kind, feeds / rel)
                    return ingest(db, kind, [feeds / rel]).records

                batch = initial and kind in INITIAL_KINDS
                stages.run(name, load, path="initial" if batch else "daily")

        def score() -> int:
            if score_persons is None:  # everyone: the full rescoring, by ranges of ids
                n = completeness.rescore_all(db, chunk=2000, compact=rollups.compact).persons
            else:  # a sample: the queue's job, the first ones queued
                n = completeness.run(
                    db,
                    batch=500,
                    max_batches=max(1, score_persons // 500),
                    compact=rollups.compact,
                ).persons
            with db.connection() as conn:
                rollups.compact(conn)
                conn.execute("ANALYZE")
            return n

        stages.run("completeness", score)
        result["stages"] = stages.done
        result.update(measure(db, runs))
        if serve:
            from benchmarks.hanoi_serve import measure_serving

            result["serving"] = measure_serving(
                db,
                url,
                out,
                Stages(out / "serving.json"),
                clients=clients,
                seconds=seconds,
                seed=seed,
            )
        result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        db.close()
        server.cleanup()
        # a run killed before this one leaves pgserver's count of users behind: the server
        # would outlive the bench (a later run starts it again)
        stop_embedded(out)
    return result


def measure(db: Database, runs: int = 20) -> dict[str, Any]:
    """Time every supervision page and /metrics on the loaded data (p50/p95), the pre-rollup
    summary on the same data, bytes per person and resource; check the rollups."""
    from hssk.catalog import completeness
    from hssk.catalog.areas import old_district_of
    from hssk.monitor import areas, metrics, prom, rollups

    result: dict[str, Any] = {}
    with db.connection() as conn:
        province = areas.province("01")
        commune_code, commune_old = conn.execute(
            """SELECT commune_code, commune_code_old FROM person WHERE commune_code_old
               IS NOT NULL GROUP BY 1, 2 ORDER BY count(*) DESC LIMIT 1"""
        ).fetchone() or ("00004", "00004")
        district = areas.district_old(old_district_of(commune_old) or "001", "01")
        commune = areas.commune(commune_code, commune_old, "01")
        pages: dict[str, Callable[[], Any]] = {
            "summary_province": lambda: metrics.summary(conn, province),
            "communes_province": lambda: metrics.coverage(conn, province, by="commune"),
            "districts_province": lambda: metrics.coverage(conn, province, by="district_old"),
            "facilities_province": lambda: metrics.facilities(conn, province),
            "trend_province": lambda: metrics.trend(conn, province),
            "completeness_communes": lambda: completeness.aggregate(
                conn, "hanoi-73", "commune", province.persons()
            ),
            "summary_district": lambda: metrics.summary(conn, district),
            "summary_commune": lambda: metrics.summary(conn, commune),
            "metrics_endpoint": lambda: prom.render(conn),
        }
        result["supervision"] = {name: _timed(fn, runs) for name, fn in pages.items()}

        def summary_before() -> None:  # the three reads of metrics.summary before
            conn.execute(_SCAN_BEFORE.format(group="NULL::text").encode()).fetchall()
            conn.execute(_DISTRIBUTION_BEFORE.encode()).fetchall()
            metrics.facilities(conn, province, with_missing=False)

        result["before_summary_province"] = _timed(summary_before, max(3, runs // 4))
        result["before_scan_province"] = _timed(
            lambda: conn.execute(_SCAN_BEFORE.format(group="NULL::text").encode()).fetchall(),
            max(3, runs // 4),
        )
        result["before_scan_by_commune"] = _timed(
            lambda: conn.execute(_SCAN_BEFORE.format(group="p.commune_code").encode()).fetchall(),
            max(3, runs // 4),
        )
        counts = conn.execute(
            """SELECT (SELECT count(*) FROM person), (SELECT count(*) FROM resource),
                      pg_database_size(current_database())"""
        ).fetchone()
        assert counts is not None
        result["registry_persons"], result["resources"], size = counts
        result["bytes_per_person"] = round(size / max(counts[0], 1))
        result["bytes_per_resource"] = round(size / max(counts[1], 1))
        t = time.perf_counter()
        result["rollups_equal_recomputation"] = rollups.check(conn) == {}
        result["rollup_check_s"] = round(time.perf_counter() - t, 1)
    return result
