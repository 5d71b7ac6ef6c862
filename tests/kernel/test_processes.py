"""Worker processes are forked only until thread pools (DuckDB, Arrow) have run here."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from hssk.kernel import processes

_AFTER_DEDUP = """
from hssk.kernel import processes
from hssk.registry.dedup import dedup
from tests.factories.linkage import generate

before = processes.start_method()
dedup(generate(60, seed=2)[0])
print(before, processes.start_method())
"""


def test_a_process_that_ran_the_batch_mpi_forks_no_more() -> None:
    """DuckDB and Arrow leave native threads no ``threading`` call sees; forking then would
    copy the locks they hold into the child."""
    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", _AFTER_DEDUP], capture_output=True, text=True, check=True,
        cwd=root, timeout=300, env={**os.environ, "PYTHONPATH": str(root)},
    ).stdout.split()  # fmt: skip
    assert out == ["fork", "forkserver"]


@pytest.fixture
def pools_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(processes, "_POOLS", {"duckdb"})


def test_after_thread_pools_the_workers_come_from_a_fork_server(pools_started: None) -> None:
    from hssk.ingest import runner
    from hssk.registry.dedup import features_of_records
    from hssk.registry.link import features_of
    from hssk.registry.prepare import prepare
    from tests.factories.linkage import generate

    assert processes.start_method() == "forkserver"
    assert processes.start_method("spawn") == "spawn"
    pool = runner._mapping_pool(1, "fork")
    try:
        assert pool._mp_context.get_start_method() == "forkserver"  # type: ignore[attr-defined]
    finally:
        pool.shutdown()
    # the batch MPI's normalizing processes: the records are sent, the features the same
    recs, _ = generate(300, seed=11)
    got = features_of_records(recs, workers=2, pool_min=0, chunk=100)
    assert got.feats == [features_of(prepare(r)) for r in recs]
    assert got.columns is not None and len(got.columns) == 3
