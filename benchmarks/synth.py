"""Benchmark of the generator: throughput and peak memory (for ``hssk bench``)."""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil

from hssk.synth.generate import generate


def run_bench(
    persons: int = 20_000,
    out: Path | None = None,
    province: str = "01",
    seed: int = 1,
    size: int | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Generate ``persons`` (or ``size``) residents into ``out``; return time, records/s, peak RSS.

    Without ``out`` a temporary directory is used and removed afterwards.
    """
    persons = size or persons
    if out is None:
        tmp = Path(tempfile.mkdtemp(prefix="hssk-synth-bench-"))
        try:
            return run_bench(persons, tmp, province, seed, workers=workers)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    proc = psutil.Process()
    peak = proc.memory_info().rss
    stop = threading.Event()

    def rss() -> int:  # this process and its worker processes
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):  # a worker that just ended
                total += child.memory_info().rss
        return total

    def watch() -> None:  # sample RSS: ru_maxrss would include earlier work in this process
        nonlocal peak
        while not stop.wait(0.05):
            peak = max(peak, rss())

    start_rss = peak
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    t0 = time.perf_counter()
    try:
        manifest = generate(Path(out), persons, province, seed, workers=workers)
    finally:
        stop.set()
        watcher.join()
    seconds = time.perf_counter() - t0
    records = manifest.counts["source_records"]
    return {
        "persons": persons,
        "workers": workers,
        "seconds": round(seconds, 2),
        "source_records": records,
        "records_per_second": round(records / seconds, 1),
        "persons_per_second": round(persons / seconds, 1),
        "his_files": manifest.entry("his").files + manifest.entry("checkin").files,
        "peak_rss_mb": round(peak / 2**20, 1),  # sum over the processes
        "rss_growth_mb": round((peak - start_rss) / 2**20, 1),
    }
