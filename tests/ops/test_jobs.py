"""Recurring jobs: one run per period whatever the number of runners, failures recorded and
retried, dead runners' jobs taken over, retention, and the CLI's listing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from typing import Any

from typer.testing import CliRunner

from hssk.cli import app
from hssk.db import Database
from hssk.ops import jobs
from hssk.ops.jobs import Task
from hssk.ops.tasks import retention


def _counting(name: str, calls: list[str], *, fail: bool = False, sleep: float = 0.0) -> Task:
    def run(_db: Database) -> dict[str, Any]:
        calls.append(name)
        time.sleep(sleep)
        if fail:
            raise RuntimeError("đối tác không trả lời / partner down")
        return {"n": len(calls)}

    return Task(name, 3600, run, "test")


def test_concurrent_runners_run_a_due_job_once(clean_db: Database) -> None:
    calls: list[str] = []
    tasks = [_counting("a", calls, sleep=0.3), _counting("b", calls, sleep=0.3)]
    with clean_db.connection() as conn:
        jobs.sync_schedule(conn, tasks)
    results: list[list[jobs.RunResult]] = []
    runners = [
        threading.Thread(target=lambda i=i: results.append(jobs.run_due(clean_db, tasks, f"w{i}")))
        for i in range(4)
    ]
    for t in runners:
        t.start()
    for t in runners:
        t.join()
    assert sorted(calls) == ["a", "b"]
    assert jobs.run_due(clean_db, tasks) == []  # next run is an hour away
    with clean_db.connection() as conn:
        runs = jobs.history(conn)
    assert sorted(r["name"] for r in runs) == ["a", "b"]
    assert all(r["status"] == "done" and r["seconds"] >= 0.3 for r in runs)


def test_a_failed_job_is_recorded_and_retried_sooner_then_reset(clean_db: Database) -> None:
    calls: list[str] = []
    bad = _counting("bad", calls, fail=True)
    with clean_db.connection() as conn:
        jobs.sync_schedule(conn, [bad])
    (r,) = jobs.run_due(clean_db, [bad])
    assert not r.ok and "partner down" in (r.error or "")
    with clean_db.connection() as conn:
        (failed,) = jobs.history(conn, failed=True)
        assert failed["name"] == "bad" and "RuntimeError" in failed["error"]
        (s,) = jobs.schedule(conn)
        assert s.failures == 1 and s.last_status == "failed" and s.running_since is None
        (delay,) = conn.execute(
            "SELECT extract(epoch FROM next_run - now()) FROM job_schedule"
        ).fetchone()  # type: ignore[misc]
        assert 0 < delay <= jobs.RETRY_FIRST_S + 1  # not an hour
        assert jobs.run_now(conn, "bad") and not jobs.run_now(conn, "nothing")
    good = Task("bad", 3600, lambda _db: {"ok": 1}, "test")
    (r,) = jobs.run_due(clean_db, [good])
    assert r.ok
    with clean_db.connection() as conn:
        assert jobs.schedule(conn)[0].failures == 0


def test_a_job_held_by_a_dead_runner_is_taken_over_after_its_lease(clean_db: Database) -> None:
    calls: list[str] = []
    task = _counting("long", calls)
    with clean_db.connection() as conn:
        jobs.sync_schedule(conn, [task])
        assert jobs.claim(conn, ["long"], "dead-host:1") == "long"
        conn.execute("UPDATE job_schedule SET next_run = now()")  # due again, still held
    assert jobs.run_due(clean_db, [task]) == []
    with clean_db.connection() as conn:
        conn.execute("UPDATE job_schedule SET running_since = now() - interval '2 hours'")
    assert [r.name for r in jobs.run_due(clean_db, [task])] == ["long"]


def test_retention_deletes_old_delivered_events_only(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        conn.execute(
            """INSERT INTO outbox (partner, person_id, idempotency_key, status, delivered_at)
               VALUES ('p', 1, 'old', 'delivered', now() - interval '100 days'),
                      ('p', 2, 'new', 'delivered', now() - interval '1 day'),
                      ('p', 3, 'dead', 'dead', NULL),
                      ('p', 4, 'pending', 'pending', NULL)"""
        )
    assert retention(clean_db)["outbox_deleted"] == 1
    with clean_db.connection() as conn:
        keys = {r[0] for r in conn.execute("SELECT idempotency_key FROM outbox")}
    assert keys == {"new", "dead", "pending"}


def test_cli_runs_the_platform_jobs_and_lists_them(clean_db: Database) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["jobs", "run", "--once", "--job", "retention", "--job", "db.analyze"])
    assert out.exit_code == 0, out.output
    listing = runner.invoke(app, ["jobs", "list"])
    assert listing.exit_code == 0 and "retention" in listing.output and "done" in listing.output
    status = runner.invoke(app, ["jobs", "status"])
    assert status.exit_code == 0 and "outbox" in status.output
    assert runner.invoke(app, ["jobs", "run", "--once", "--job", "nope"]).exit_code != 0


def test_metrics_show_failing_and_overdue_jobs(clean_db: Database) -> None:
    from hssk.monitor import prom

    bad = _counting("bad", [], fail=True)
    with clean_db.connection() as conn:
        jobs.sync_schedule(conn, [bad])
    jobs.run_due(clean_db, [bad])
    with clean_db.connection() as conn:
        conn.execute("UPDATE job_schedule SET next_run = now() - interval '10 minutes'")
        text = prom.render(conn)
    assert 'hssk_job_consecutive_failures{job="bad"} 1.0' in text
    overdue = next(
        ln for ln in text.splitlines() if ln.startswith('hssk_job_overdue_seconds{job="bad"}')
    )
    assert float(overdue.split()[-1]) >= 600


def test_the_grafana_dashboard_reads_metrics_the_platform_exposes(clean_db: Database) -> None:
    import json
    import re
    from pathlib import Path

    from hssk.monitor import prom

    with clean_db.connection() as conn:
        jobs.sync_schedule(conn, [_counting("a", [])])
    jobs.run_due(clean_db, [_counting("a", [])])
    with clean_db.connection() as conn:
        exposed = set(re.findall(r"^# TYPE (\w+) ", prom.render(conn), re.M))
    dashboard = Path(__file__).parents[2] / "deploy" / "grafana" / "hssk-dashboard.json"
    exprs = [t["expr"] for p in json.loads(dashboard.read_text())["panels"] for t in p["targets"]]
    used = {name for e in exprs for name in re.findall(r"\bhssk_\w+", e)}
    assert used and used <= exposed, used - exposed


def test_the_runner_writes_json_lines_like_the_web_server(clean_db: Database) -> None:
    env = {**os.environ, "HSSK_LOG_FORMAT": "json"}
    out = subprocess.run(
        [sys.executable, "-m", "hssk", "jobs", "run", "--once", "--job", "retention"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    lines = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    (ran,) = [ln for ln in lines if ln.get("job") == "retention"]
    with clean_db.connection() as conn:
        (run_id,) = conn.execute("SELECT max(id) FROM job_run WHERE name = 'retention'").fetchone()  # type: ignore[misc]
    assert ran["request_id"] == f"job-{run_id}" and ran["status"] == "done"
    assert ran["level"] == "info" and ran["ts"].endswith("+00:00") and ran["seconds"] >= 0
