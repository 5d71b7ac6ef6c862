"""A province's first load as a batch (``ingest.initial``) against the online path on the same
synthetic province: the same records linked and stored, persons as good against the truth,
rollups right, resumable after a kill, idempotent."""

from __future__ import annotations

import csv
import gc
import json
import os
import signal
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from hssk.db import Database
from hssk.ingest import initial, runner
from hssk.monitor import rollups
from hssk.synth import generate
from hssk.synth.errors import ErrorModel, ErrorRates
from tests.conftest import truncate_all

REGISTERS = ("population", "insurance")
FILES = {
    "population": "population/dan_cu.csv",
    "insurance": "insurance/bhyt.csv",
    "immunization": "immunization/tiem_chung.csv",
}


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("initial-feed")
    # 2,000 persons, every source with five times the default errors (typing, lost
    # diacritics, missing CCCD, duplicates within a register): the MPIs have work to do
    errors = ErrorModel.uniform(ErrorRates().scaled(5))
    generate(out, persons=2000, province="01", seed=3, visit_years=0.1, errors=errors)
    return out


@dataclass(frozen=True)
class State:
    persons: int
    sources: dict[str, int]  # person_source rows per source family
    resources: dict[str, int]
    persons_with: dict[str, int]  # persons holding a resource, per type
    deceased: int
    reviews: int
    households: int


def _state(db: Database) -> State:
    with db.connection() as conn:

        def one(sql: str) -> int:
            row = conn.execute(sql).fetchone()
            assert row is not None
            return int(row[0])

        sources: Counter[str] = Counter()
        for src, n in conn.execute("SELECT source, count(*) FROM person_source GROUP BY 1"):
            sources[src.split(":")[0]] += int(n)
        resources = dict(conn.execute("SELECT type, count(*) FROM resource GROUP BY 1").fetchall())
        persons_with = dict(
            conn.execute(
                "SELECT type, count(DISTINCT person_survivor(person_id)) FROM resource GROUP BY 1"
            ).fetchall()
        )
        return State(
            persons=one("SELECT count(*) FROM person WHERE merged_into IS NULL"),
            sources=dict(sources),
            resources=resources,
            persons_with=persons_with,
            deceased=one("SELECT count(*) FROM person WHERE deceased_at IS NOT NULL"),
            reviews=one("SELECT count(*) FROM match_review"),
            households=one("SELECT count(DISTINCT household_id) FROM person"),
        )


def _f1(db: Database, feed: Path) -> float:
    """Pairwise F1 of the registers' records against the generator's truth."""
    truth: dict[tuple[str, str], str] = {}
    with (feed / "truth/source_records.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            if r["source"] in REGISTERS:
                truth[(r["source"], r["record_id"])] = r["person_key"]
    with db.connection() as conn:
        rows = conn.execute(
            "SELECT source, source_record_id, person_survivor(person_id) FROM person_source"
            " WHERE source = ANY(%s)",
            (list(REGISTERS),),
        ).fetchall()
    pred = {(s, r): int(p) for s, r, p in rows}
    keys = [k for k in pred if k in truth]
    assert len(keys) >= 0.95 * len(truth)

    def pairs(groups: dict[Any, int]) -> int:
        return sum(n * (n - 1) // 2 for n in groups.values())

    both: dict[tuple[int, str], int] = defaultdict(int)
    by_pred: dict[int, int] = defaultdict(int)
    by_truth: dict[str, int] = defaultdict(int)
    for k in keys:
        both[(pred[k], truth[k])] += 1
        by_pred[pred[k]] += 1
        by_truth[truth[k]] += 1
    tp, p_pairs, t_pairs = pairs(both), pairs(by_pred), pairs(by_truth)
    precision, recall = tp / p_pairs, tp / t_pairs
    return 2 * precision * recall / (precision + recall)


def _facilities(db: Database, feed: Path) -> None:
    runner.ingest(db, "facilities", [feed / "facilities.csv"], workers=0)


def _online(db: Database, feed: Path) -> None:
    _facilities(db, feed)
    for kind, path in FILES.items():
        s = runner.ingest(db, kind, [feed / path], workers=0)
        assert s.status == "done"


def _initial(db: Database, feed: Path) -> dict[str, Any]:
    out = {}
    for kind, path in FILES.items():
        s = initial.load(db, kind, [feed / path])
        assert s.status == "done"
        out[kind] = s
    return out


def test_initial_load_as_online(clean_db: Database, feed: Path) -> None:
    db = clean_db
    _online(db, feed)
    online, f1_online = _state(db), _f1(db, feed)
    with db.connection() as conn:
        assert rollups.check(conn) == {}
    truncate_all(db)
    _facilities(db, feed)
    summaries = _initial(db, feed)
    batch, f1_batch = _state(db), _f1(db, feed)
    # every record linked and stored as online; persons differ only where the MPIs decide
    # differently
    assert batch.sources == online.sources
    assert batch.resources == online.resources and batch.resources["Immunization"] > 7000
    assert abs(batch.persons - online.persons) <= 0.01 * online.persons, (batch, online)
    for rtype, n in online.persons_with.items():
        assert abs(batch.persons_with[rtype] - n) <= 0.01 * n, (rtype, batch, online)
    assert batch.deceased == online.deceased > 0  # the register's deaths reached the persons
    assert batch.households == online.households
    # (measured: 0.9889 batch, 0.9881 online; 2,088 and 2,092 persons for 2,000)
    assert f1_batch >= f1_online, (f1_batch, f1_online)
    assert summaries["population"].persons_created == batch.persons - (
        summaries["insurance"].persons_created + summaries["immunization"].persons_created
    )
    # the second register linked through the registry: most of its persons were there
    assert summaries["insurance"].persons_created < 0.1 * summaries["insurance"].records
    with db.connection() as conn:
        # completeness, supervision rollups kept by the triggers through COPY
        assert rollups.check(conn) == {}

    # a finished load run again changes nothing
    again = _initial(db, feed)
    assert _state(db) == batch
    for s in again.values():
        assert s.persons_created == 0 and s.created == {} and s.updated == {}


_CHILD = """
import os, signal, sys
from hssk import wiring
from hssk.db import open_database
from hssk.ingest import initial

wiring.start()  # (as every process that stores records: the change listeners)

calls = []


def progress(records, files):
    calls.append(records)
    # 1: mapped; 2: persons committed; 3: first store batch committed
    if len(calls) == int(sys.argv[3]):
        os.kill(os.getpid(), signal.SIGKILL)


db = open_database()
initial.load(db, sys.argv[1], [sys.argv[2]], batch=1000, progress=progress)
"""


def _killed_at(kind: str, path: Path, call: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, kind, str(path), str(call)], env=env, timeout=300
    )
    assert proc.returncode == -signal.SIGKILL


def test_killed_load_resumes(clean_db: Database, feed: Path) -> None:
    db = clean_db
    _facilities(db, feed)
    _killed_at("population", feed / FILES["population"], 2)  # between the stages
    with db.connection() as conn:
        job = conn.execute(
            "SELECT id, status, checkpoint FROM ingest_job WHERE kind = 'population'"
        ).fetchone()
        assert job is not None and job[1] == "running"
        assert job[2]["initial"] == {"stage": "store", "done": 0, "slices": 1}
        persons = conn.execute("SELECT count(*) FROM person").fetchone()
        assert persons is not None and persons[0] > 1900
    s = initial.load(db, "population", [feed / FILES["population"]])
    assert s.job_id == job[0] and s.status == "done"  # the same job, continued
    _killed_at("insurance", feed / FILES["insurance"], 3)  # after the first store batch
    with db.connection() as conn:
        job = conn.execute(
            "SELECT id, checkpoint FROM ingest_job WHERE kind = 'insurance'"
        ).fetchone()
        assert job is not None
        assert job[1]["initial"] == {"stage": "store", "done": 1000, "slices": 1}
        # the store stage resumes from the runner pipeline's position, not from the start
        assert job[1]["pos"] == [0, 1000]
        stored = conn.execute("SELECT count(*) FROM resource").fetchone()
        assert stored is not None and stored[0] == 1000
    # `hssk ingest --resume` (and a server's start) finish it the same way
    (s,) = runner.resume(db)
    assert s.job_id == job[0] and s.status == "done" and s.kind == "insurance"
    s = initial.load(db, "immunization", [feed / FILES["immunization"]])
    resumed = _state(db)
    with db.connection() as conn:
        assert rollups.check(conn) == {}
    truncate_all(db)
    _facilities(db, feed)
    _initial(db, feed)
    assert _state(db) == resumed  # as an uninterrupted load


def test_registers_reuse_the_rows_they_replace(clean_db: Database, feed: Path) -> None:
    """Each person is COPYed, then updated (its household, the next register's fill): after a
    register's first load the old rows are free to reuse, so the next register's updates do
    not grow the table (measured on 20,000 persons: 15.8 MB of heap instead of 10.7 MB)."""
    db = clean_db
    _facilities(db, feed)
    pages = {}
    for kind in REGISTERS:
        assert initial.load(db, kind, [feed / FILES[kind]]).status == "done"
        with db.connection() as conn:
            # the heap's size, not the dead-row statistics: a backend's pending statistics
            # may reach the shared ones after the vacuum's
            row = conn.execute("SELECT pg_relation_size('person')").fetchone()
        assert row is not None
        pages[kind] = row[0]
    # (without the vacuum, the insurance register's updates grew the heap by half)
    assert pages["insurance"] <= 1.1 * pages["population"], pages


def test_cli_initial(clean_db: Database, feed: Path) -> None:
    from typer.testing import CliRunner

    from hssk.ingest.cli import app

    cli = CliRunner()
    refused = cli.invoke(app, ["xml130", str(feed / "his"), "--initial"])
    assert refused.exit_code == 2 and "--initial" in refused.stderr
    r = cli.invoke(app, ["population", str(feed / FILES["population"]), "--initial", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["status"] == "done" and out["persons_created"] > 1900
    with clean_db.connection() as conn:
        row = conn.execute("SELECT checkpoint FROM ingest_job WHERE id = %s", (out["job_id"],))
        checkpoint = row.fetchone()
    assert checkpoint is not None and checkpoint[0]["initial"]["stage"] == "done"


def test_initial_load_holds_batches_not_the_file(clean_db: Database, feed: Path) -> None:
    """Neither stage keeps the mapped records: the persons stage keeps what linking needs,
    the store stage maps the files again batch by batch. Counted at each progress call (after
    the persons stage's mapping, after its commit, after each store batch): the mapped units
    alive in the process."""
    from hssk.ingest.model import Unit

    db = clean_db
    _facilities(db, feed)
    gc.collect()
    alive: list[int] = []

    def progress(records: int, files: int) -> None:
        alive.append(sum(1 for o in gc.get_objects() if isinstance(o, Unit)))

    s = initial.load(db, "population", [feed / FILES["population"]], batch=100, progress=progress)
    assert s.status == "done" and s.records > 2000 and s.persons_created > 1900
    assert len(alive) >= 2 + s.records // 100  # the two stages' calls, one per store batch
    # at most the batches being mapped ahead and the one being written (a few hundred units);
    # holding the file would be every one of them
    assert max(alive) < s.records // 4, alive
    with db.connection() as conn:
        row = conn.execute("SELECT count(DISTINCT household_id) FROM person").fetchone()
    assert row is not None and row[0] > 300  # the store stage ran: households


def test_a_register_larger_than_a_slice(
    clean_db: Database, feed: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A register is linked a slice of distinct records at a time (Hà Nội's prepared records
    and batch MPI do not fit in memory at once): each slice against the persons of the slices
    before it, committed with the files' position, so a load stopped between slices continues
    with the next one. Every record is linked once; persons as in one slice, within what
    linking the later slices' clusters online changes."""
    db = clean_db
    _facilities(db, feed)
    assert initial.load(db, "population", [feed / FILES["population"]]).status == "done"
    whole = _state(db)
    truncate_all(db)
    _facilities(db, feed)
    monkeypatch.setenv("HSSK_INITIAL_SLICE_RECORDS", "700")
    first = initial.load(db, "population", [feed / FILES["population"]], stop_after=1)
    assert first.status == "running"
    with db.connection() as conn:
        row = conn.execute("SELECT checkpoint FROM ingest_job WHERE id = %s", (first.job_id,))
        checkpoint = row.fetchone()
        linked = conn.execute("SELECT count(*) FROM person_source").fetchone()
    assert checkpoint is not None and linked is not None
    state = checkpoint[0]["initial"]
    assert state["stage"] == "persons" and state["slices"] == 1 and state["persons_pos"][1] > 0
    assert 700 <= linked[0] < whole.sources["population"]
    done = initial.load(db, "population", [feed / FILES["population"]])
    assert done.status == "done" and done.job_id == first.job_id  # continued, not restarted
    sliced = _state(db)
    assert sliced.sources == whole.sources and sliced.resources == whole.resources
    assert abs(sliced.persons - whole.persons) <= 0.01 * whole.persons, (sliced, whole)
    assert sliced.households == whole.households and sliced.deceased == whole.deceased
    with db.connection() as conn:
        row = conn.execute("SELECT checkpoint FROM ingest_job WHERE id = %s", (done.job_id,))
        checkpoint = row.fetchone()
        assert rollups.check(conn) == {}
    assert checkpoint is not None
    assert checkpoint[0]["initial"]["slices"] >= 3  # (2,000 persons' records, 700 a slice)
