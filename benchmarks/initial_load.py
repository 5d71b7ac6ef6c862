"""A province's first load: the batch path (``ingest.initial``) against the online path on the
same synthetic registers and immunization feed, each on a fresh embedded database.

    python -m benchmarks.initial_load --persons 20000 [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from hssk import wiring
from hssk.db import open_database
from hssk.db.embedded import start_embedded
from hssk.ingest import initial, jobstore, runner

FILES = {
    "population": "population/dan_cu.csv",
    "insurance": "insurance/bhyt.csv",
    "immunization": "immunization/tiem_chung.csv",
}


def _path(
    feed: Path, dbdir: Path, load: Callable[[Any, str, list[Path]], jobstore.Summary]
) -> dict[str, Any]:
    shutil.rmtree(dbdir, ignore_errors=True)
    url, server = start_embedded(dbdir)
    db = open_database(url=url)
    out: dict[str, Any] = {}
    try:
        runner.ingest(db, "facilities", [feed / "facilities.csv"], workers=0)
        for kind, path in FILES.items():
            t0 = time.perf_counter()
            s = load(db, kind, [feed / path])
            dt = time.perf_counter() - t0
            out[kind] = {
                "records": s.records,
                "seconds": round(dt, 2),
                "rows_per_s": round(s.records / dt, 1),
                "persons_created": s.persons_created,
                "load_average": [round(x, 2) for x in os.getloadavg()],
                "timings": {k: round(v, 2) for k, v in s.timings.items()},
            }
        with db.connection() as conn:
            row = conn.execute(
                "SELECT (SELECT count(*) FROM person WHERE merged_into IS NULL),"
                " (SELECT count(*) FROM person_source), (SELECT count(*) FROM resource),"
                " (SELECT count(*) FROM match_review)"
            ).fetchone()
        assert row is not None
        out["persons"], out["person_source"], out["resources"], out["reviews"] = row
    finally:
        db.close()
        server.cleanup()
    return out


def run_bench(persons: int = 20_000, out_dir: Path | None = None) -> dict[str, Any]:
    """Both paths on the same feed; seconds, rows/s and the load average after each kind."""
    from hssk.synth import generate

    wiring.start()
    tmp = Path(out_dir or tempfile.mkdtemp(prefix="hssk-initial-"))
    feed = tmp / "feed"
    if not (feed / "manifest.json").exists():
        generate(feed, persons, "01", 1, visit_years=0.1)
    online = _path(feed, tmp / "db-online", lambda db, k, p: runner.ingest(db, k, p))
    batch = _path(feed, tmp / "db-initial", lambda db, k, p: initial.load(db, k, p))
    return {"persons": persons, "cores": os.cpu_count(), "online": online, "initial": batch}


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--persons", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    print(orjson.dumps(run_bench(args.persons, args.out), option=orjson.OPT_INDENT_2).decode())
