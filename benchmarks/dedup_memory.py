"""Peak memory of the batch deduplication per phase, in bytes per record.

    PYTHONPATH=. python -m benchmarks.dedup_memory 50000

Records come from the linkage test factory and are prepared first (the first load hands
``dedup`` its prepared records, so they are not the deduplication's). A thread samples the
process's resident memory every 10 ms; each phase's peak above the resident memory just
before ``dedup`` (after a small warm-up run that loads Splink, DuckDB and the caches) is
attributed to the phase by the timings ``dedup`` reports.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import threading
import time
from dataclasses import dataclass, field

PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


@dataclass
class Sampler:
    """Resident memory sampled in a thread: (monotonic time, bytes)."""

    samples: list[tuple[float, int]] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        while not self.stop.is_set():
            self.samples.append((time.perf_counter(), rss()))
            time.sleep(0.01)


PHASES = ("prepare", "splink", "rescore", "cluster")


def measure(n: int, seed: int = 11) -> dict[str, object]:
    from hssk.registry.dedup import dedup
    from hssk.registry.prepare import prepare
    from tests.factories.linkage import generate

    recs, _ = generate(n, seed=seed)
    preps = [prepare(r) for r in recs]
    # a small run first: the libraries' code and caches are not the records' memory
    dedup(recs[:500], prepared=preps[:500])
    gc.collect()
    base = rss()
    sampler = Sampler()
    thread = threading.Thread(target=sampler.run, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    res = dedup(recs, prepared=preps)
    sampler.stop.set()
    thread.join()
    after = rss()
    s = res.stats
    bounds, t = {}, t0
    for ph in PHASES:
        bounds[ph] = (t, t + s[f"{ph}_s"])
        t += s[f"{ph}_s"]
    per: dict[str, float] = {}
    for ph, (a, b) in bounds.items():
        inside = [m for ts, m in sampler.samples if a <= ts <= b + 0.005]
        per[ph] = round((max(inside, default=base) - base) / len(recs))
    peak = max(m for _, m in sampler.samples)
    return {
        "records": len(recs),
        "base_rss_mb": round(base / 2**20),
        "peak_bytes_per_record": per,
        "overall_peak_bytes_per_record": round((peak - base) / len(recs)),
        "kept_after_bytes_per_record": round((after - base) / len(recs)),
        "candidate_pairs": s["candidate_pairs"],
        "seconds": {ph: round(s[f"{ph}_s"], 1) for ph in PHASES},
        "load": os.getloadavg(),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("records", type=int, nargs="?", default=50_000)
    ap.add_argument("--seed", type=int, default=11)
    a = ap.parse_args()
    print(json.dumps(measure(a.records, a.seed), indent=1))


if __name__ == "__main__":
    main()
