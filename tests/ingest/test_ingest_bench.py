"""`hssk bench ingest` runs end to end on a tiny province and reports consistent figures."""

from __future__ import annotations

from pathlib import Path

from benchmarks.ingest import run_bench


def test_bench_reports_throughput_and_cpu(tmp_path: Path) -> None:
    r = run_bench(tmp_path, persons=150, memory_visits=50)
    visits = r["visits"]
    assert visits["visits"] > 0 and visits["resources"] > visits["visits"]
    assert visits["quarantined"] == 0
    # re-sending the same files stores nothing and counts every resource as unchanged
    assert r["visits_reingest"]["stored"] == 0
    assert r["visits_reingest"]["unchanged"] == visits["resources"]
    for path, unit in (("register", "person"), ("immunization", "dose"), ("visits", "visit")):
        cpu = r[path]["cpu_seconds"]
        assert cpu["hssk"] > 0 and cpu["postgres"] >= 0
        assert r[path][f"cpu_ms_per_{unit}"] > 0
    assert r["register"]["new_persons"] >= 150
    assert {"50_visits", "200_visits"} <= set(r["memory_flat"])
    # the mapping-only ceiling maps the same records again, without the database
    ceiling = r["mapping_ceiling"]
    assert ceiling["xml130"]["records"] == visits["visits"]
    assert ceiling["immunization"]["records"] == r["immunization"]["doses"]
    registers = ceiling["population"]["records"] + ceiling["insurance"]["records"]
    assert registers == r["register"]["records"]
    for figures in ceiling.values():
        assert figures["cpu_ms_per_record"] > 0
    # a second run in the same directory reuses the feed but not the database
    again = run_bench(tmp_path, persons=150, memory_visits=50)
    assert again["register"]["new_persons"] == r["register"]["new_persons"]
    assert again["visits"]["resources"] == visits["resources"]
