"""``hssk bench web`` end to end on a few books: a real uvicorn process, keep-alive clients."""

from __future__ import annotations

from benchmarks.web import run_bench
from hssk.db import Database


def test_bench_serves_books_without_errors_and_reports_cpu(db: Database) -> None:
    figures = run_bench(30, concurrency=2, seconds=1.0, workers=1, warmup=0.5)
    assert figures["persons"] == 30 and figures["server_workers"] == 1
    for target in ("api_book", "page_book"):
        f = figures[target]
        assert f["requests"] > 0 and f["errors"] == 0, f
        assert 0 < f["p50_ms"] <= f["p95_ms"] <= f["p99_ms"]
        assert f["cpu_cores"]["server"] > 0 and f["cpu_cores"]["load_generator"] > 0
