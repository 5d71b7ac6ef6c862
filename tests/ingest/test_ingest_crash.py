"""kill -9 in the middle of a file, then resume: exactly the source's records, none doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from hssk.db import Database
from hssk.ingest import jobstore, runner
from tests.factories.samples import expected_counts, visit, write_feed

VISITS = 240
SCRIPT = """
import sys, time
from hssk import wiring
from hssk.db import open_database
from hssk.ingest import runner
from hssk.ingest.kinds import xml130
xml130.SMALL_FILE = 0  # stream the envelope: checkpoints fall inside the file
wiring.start()  # as every HSSK process does when it starts
db = open_database(url=sys.argv[1])  # applies any migration added since the session began
runner.run_job(db, int(sys.argv[2]), workers=int(sys.argv[3]), batch=10,
             progress=lambda records, files: time.sleep(0.15))
"""


def _state(db: Database) -> tuple[dict[str, int], int, int]:
    with db.connection() as conn:
        types = dict(conn.execute("SELECT type, count(*) FROM resource GROUP BY type").fetchall())
        persons = conn.execute("SELECT count(*) FROM person_source").fetchone()[0]
        versions = conn.execute("SELECT count(*) FROM resource_history").fetchone()[0]
    return types, persons, versions


def _start_and_kill(idb: Database, tmp_path: Path, workers: int) -> int:
    """Start an ingest of VISITS visits in a child process, kill -9 it mid-file; the job id."""
    visits = [visit(i) for i in range(1, VISITS + 1)]
    visits[7] = visit(8, NGAY_VAO="202502301000")  # one bad record: quarantined exactly once
    feed = write_feed(tmp_path / "big.xml", visits)
    with idb.connection() as conn:
        job_id = jobstore.create_job(conn, "xml130", [str(feed)])
    log = (tmp_path / "child.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, idb.url, str(job_id), str(workers)],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 60
        pos = [0, 0]
        while time.time() < deadline and pos[1] < 50:
            time.sleep(0.1)
            with idb.connection() as conn:
                pos = conn.execute(
                    "SELECT checkpoint->'pos' FROM ingest_job WHERE id = %s", (job_id,)
                ).fetchone()[0] or [0, 0]
            if proc.poll() is not None:
                log.close()
                raise AssertionError(
                    "the ingest ended before it could be killed:\n"
                    + (tmp_path / "child.log").read_text(errors="replace")[-3000:]
                )
        with idb.connection() as conn:
            alive = jobstore.job_info(conn, job_id)
        assert alive is not None and alive.status == "running" and not alive.interrupted
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
        log.close()
    return job_id


def _interrupted(idb: Database, seconds: float = 20) -> list[jobstore.JobInfo]:
    """The jobs shown interrupted, once the server has dropped the dead process's session."""
    deadline, interrupted = time.time() + seconds, []
    while time.time() < deadline and not interrupted:
        with idb.connection() as conn:
            interrupted = jobstore.list_jobs(conn, status="interrupted")
        time.sleep(0.1)
    return interrupted


def test_kill_mid_file_then_resume(idb: Database, tmp_path: Path) -> None:
    job_id = _start_and_kill(idb, tmp_path, workers=0)
    types, _, _ = _state(idb)
    assert 0 < types["Encounter"] < VISITS - 1  # killed mid-file
    # the operator sees it interrupted once the server has dropped the dead process's session
    interrupted = _interrupted(idb)
    assert [j.id for j in interrupted] == [job_id]
    assert 0 < interrupted[0].records < VISITS and interrupted[0].files == 1
    summary = runner.resume(idb, workers=0)
    assert [s.status for s in summary] == ["done"]
    types, persons, versions = _state(idb)
    want = {k: v * (VISITS - 1) for k, v in expected_counts().items()}
    assert types == want
    assert persons == VISITS - 1
    assert versions == 0  # nothing was written twice
    s = summary[0]
    assert s.records == VISITS and s.quarantined == 1
    assert s.stored == want
    with idb.connection() as conn:
        errors = conn.execute("SELECT record, rule FROM ingest_error").fetchall()
    assert errors == [("01001|LK000008", "date.impossible")]
    with idb.connection() as conn:
        done = jobstore.job_info(conn, job_id)
        assert jobstore.list_jobs(conn, status="interrupted") == []
    assert done is not None and (done.status, done.files_done, done.records) == ("done", 1, VISITS)
    assert done.quarantined == 1 and not done.interrupted


def _children_of_script(job_id: int) -> list[int]:
    """Processes still running the test's ingest script for this job (mapping processes)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if SCRIPT.encode() in argv and str(job_id).encode() in argv:
            found.append(int(pid))
    return found


def test_kill_with_mapping_processes_lets_the_job_show_interrupted(
    idb: Database, tmp_path: Path
) -> None:
    """A forked mapping process holds a copy of the runner's database socket: killing the
    runner alone must still end its session (the job shows interrupted, its lock is free),
    and the mapping processes die with it."""
    job_id = _start_and_kill(idb, tmp_path, workers=1)
    assert [j.id for j in _interrupted(idb)] == [job_id]
    deadline = time.time() + 10
    while time.time() < deadline and _children_of_script(job_id):
        time.sleep(0.1)
    assert _children_of_script(job_id) == []
    summary = runner.resume(idb, workers=0)
    assert [s.status for s in summary] == ["done"]
    types, persons, _ = _state(idb)
    assert types == {k: v * (VISITS - 1) for k, v in expected_counts().items()}
    assert persons == VISITS - 1
