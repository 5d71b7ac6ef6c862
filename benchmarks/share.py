"""``hssk bench share``: outbound delivery rate and supervision query latency.

A fresh embedded PostgreSQL (in ``out`` or a temporary directory) is filled with a synthetic
province (``tests.factories.supervision``), one partner pointing at the local simulator (a separate
process) receives every person's field set, and the dashboard queries of the Department of
Health are timed on the loaded province.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

CHUNK = 20_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pcts(samples: list[float]) -> dict[str, float]:
    if len(samples) < 2:
        return {"p50_ms": round(samples[0] * 1000, 1) if samples else 0.0, "p95_ms": 0.0}
    qs = statistics.quantiles(samples, n=20, method="inclusive")
    return {
        "p50_ms": round(statistics.median(samples) * 1000, 1),
        "p95_ms": round(qs[18] * 1000, 1),
    }


def _time(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return _pcts(samples)


def run_bench(
    persons: int = 100_000,
    size: int | None = None,
    out: Path | None = None,
    *,
    concurrency: int = 16,
    batch: int = 500,
    slow_ms: int = 0,
    fail_rate: float = 0.0,
    max_events: int | None = None,
    score_persons: int = 5_000,
    dashboard_runs: int = 10,
    seed: int = 7,
) -> dict[str, Any]:
    """Load ``persons`` (or ``size``) residents, deliver their events, time the dashboards.

    Returns load time, events/s delivered to the simulator, completeness scoring rate on a
    sample, and p50/p95 latency of the supervision queries."""
    persons = size or persons
    if out is None:
        tmp = Path(tempfile.mkdtemp(prefix="hssk-share-bench-"))
        try:
            return run_bench(persons, None, tmp, concurrency=concurrency, batch=batch,
                             slow_ms=slow_ms, fail_rate=fail_rate, max_events=max_events,
                             score_persons=score_persons, dashboard_runs=dashboard_runs,
                             seed=seed)  # fmt: skip
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    from hssk.catalog import completeness
    from hssk.catalog.completeness import rebuild_counters
    from hssk.db import open_database
    from hssk.db.embedded import start_embedded
    from hssk.kernel.config import load_settings
    from hssk.monitor import areas, metrics
    from hssk.share import partners
    from hssk.share.worker import WorkerConfig
    from hssk.share.worker import run as deliver
    from tests.factories.supervision import load_province

    out.mkdir(parents=True, exist_ok=True)
    url, server = start_embedded(out / "pg")
    os.environ["HSSK_DATA_DIR"] = str(out)
    db = open_database(load_settings(), url=url)
    port = _free_port()
    sim = subprocess.Popen(
        [sys.executable, "-m", "hssk", "share", "simulator", "--port", str(port),
         "--slow-ms", str(slow_ms), "--fail-rate", str(fail_rate), "--seed", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    result: dict[str, Any] = {"persons": persons}
    try:
        with db.connection() as conn:
            partners.sync(conn, [partners.from_dict({
                "id": "bhxh", "endpoint": f"http://127.0.0.1:{port}/bhxh", "catalog": "bhxh-80",
                "max_attempts": 20})])  # fmt: skip
        t = time.perf_counter()
        done = 0
        while done < persons:
            n = min(CHUNK, persons - done)
            with db.connection() as conn:
                load_province(conn, n, seed=seed + done, with_units=done == 0, rebuild=False)
            done += n
        with db.connection() as conn:
            rebuild_counters(conn)
        result["load_s"] = round(time.perf_counter() - t, 1)
        with db.connection() as conn:
            conn.execute("ANALYZE")
            (events,) = conn.execute("SELECT count(*) FROM outbox").fetchone()  # type: ignore[misc]
            (resources,) = conn.execute("SELECT count(*) FROM resource").fetchone()  # type: ignore[misc]
        result["resources"] = resources
        result["events_enqueued"] = events
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/_stats", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        if max_events is not None and max_events < events:
            with db.connection() as conn:  # deliver a sample: park the rest
                conn.execute(
                    "UPDATE outbox SET status = 'parked' WHERE id > "
                    "(SELECT min(id) FROM outbox) + %s", (max_events - 1,),
                )  # fmt: skip
        cfg = WorkerConfig(batch=batch, concurrency=concurrency, lease_s=120, base_delay=0.05,
                           max_delay=1.0, idle_sleep=0.05)  # fmt: skip
        stats = deliver(db, cfg, until_idle=True, max_seconds=3600)
        received = httpx.get(f"http://127.0.0.1:{port}/_stats", timeout=10).json()
        result["events_delivered"] = stats.delivered
        result["deliver_s"] = round(stats.seconds, 1)
        result["events_per_s"] = round(stats.delivered / stats.seconds, 1) if stats.seconds else 0
        result["simulator"] = received
        # completeness scoring on a sample of the dirty persons
        t = time.perf_counter()
        scored = completeness.run(
            db, batch=500, stale=False, max_batches=max(1, score_persons // 500)
        )
        result["completeness_persons_per_s"] = round(scored.persons / (time.perf_counter() - t), 1)
        province = areas.province("01")
        commune = areas.commune("00004", "00004", "01")
        with db.connection() as conn:
            result["dashboard"] = {
                "summary_province": _time(lambda: metrics.summary(conn, province), dashboard_runs),
                "communes_province": _time(
                    lambda: metrics.coverage(conn, province, by="commune"), dashboard_runs),
                "facilities_province": _time(
                    lambda: metrics.facilities(conn, province), dashboard_runs),
                "summary_commune": _time(lambda: metrics.summary(conn, commune), dashboard_runs),
                "trend_province": _time(lambda: metrics.trend(conn, province), dashboard_runs),
            }  # fmt: skip
    finally:
        sim.terminate()
        sim.wait(10)
        db.close()
        server.cleanup()
    return result
