"""``hssk jobs``: the recurring-job runner and what it ran."""

from __future__ import annotations

import signal
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

import typer
from rich.console import Console
from rich.table import Table

from hssk.db import open_database
from hssk.http.logs import configure_process

app = typer.Typer(no_args_is_help=True, help="Tác vụ định kỳ / recurring jobs.")
console = Console()
VN = ZoneInfo("Asia/Ho_Chi_Minh")


def _vn(at: datetime | None) -> str:
    return at.astimezone(VN).strftime("%d/%m/%Y %H:%M:%S") if at else ""


@app.command("run")
def run_jobs(
    once: bool = typer.Option(False, help="Run what is due now, then exit (cron, tests)."),
    job: list[str] = typer.Option([], "--job", help="Only these jobs (default: all)."),
    poll: float = typer.Option(5.0, help="Seconds between looks at the schedule."),
) -> None:
    """Run the recurring jobs (hssk-worker.service runs this)."""
    from hssk.ops import jobs
    from hssk.ops.tasks import TASKS

    unknown = set(job) - {t.name for t in TASKS}
    if unknown:
        raise typer.BadParameter(f"unknown jobs {sorted(unknown)}; see 'hssk jobs status'")
    tasks = [t for t in TASKS if not job or t.name in job]
    configure_process()
    db = open_database()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        if once:
            with db.connection() as conn:
                jobs.sync_schedule(conn, tasks)
            results = jobs.run_due(db, tasks)
            for r in results:
                mark = "[green]OK[/]" if r.ok else f"[red]LỖI / FAILED[/] {r.error}"
                console.print(f"{r.name}: {mark} ({r.seconds:.1f} s) {r.result or ''}")
            if any(not r.ok for r in results):
                raise typer.Exit(1)
            return
        jobs.run_forever(db, tasks, stop, poll_s=poll)
    except KeyboardInterrupt:
        pass
    finally:
        db.close()


@app.command("list")
def list_runs(
    job: str | None = typer.Option(None, "--job", help="Only this job."),
    failed: bool = typer.Option(False, help="Only failed runs."),
    limit: int = typer.Option(30, min=1),
) -> None:
    """What ran, when (Vietnam time), how long, and what failed."""
    from hssk.ops import jobs

    db = open_database()
    with db.connection() as conn:
        rows = jobs.history(conn, job, failed, limit)
    db.close()
    table = Table("id", "tác vụ / job", "bắt đầu / started", "giây / s", "kết quả / status",
                  "chi tiết / detail", title="Các lần chạy / job runs")  # fmt: skip
    for r in rows:
        color = {"done": "green", "failed": "red"}.get(r["status"], "yellow")
        detail = r["error"] or ", ".join(f"{k}={v}" for k, v in (r["result"] or {}).items())
        table.add_row(str(r["id"]), r["name"], _vn(r["started_at"]), f"{r['seconds']:.1f}",
                      f"[{color}]{r['status']}[/]", detail[:120])  # fmt: skip
    console.print(table)


@app.command("status")
def status() -> None:
    """Each job: how often, when next, last outcome, failures in a row."""
    from hssk.ops import jobs
    from hssk.ops.tasks import TASKS

    db = open_database()
    with db.connection() as conn:
        jobs.sync_schedule(conn, TASKS)
        found = jobs.schedule(conn)
    db.close()
    docs = {t.name: t.doc for t in TASKS}
    table = Table("tác vụ / job", "mỗi / every", "lần tới / next", "lần trước / last", "lỗi liên tiếp / failures", "")  # fmt: skip
    for s in found:
        last = f"{s.last_status or '—'} {_vn(s.last_finished)}"
        table.add_row(s.name, f"{s.every_s} s", _vn(s.next_run), last, str(s.failures),
                      docs.get(s.name, ""))  # fmt: skip
    console.print(table)


@app.command("now")
def now(job: str = typer.Argument(..., help="Job name (see 'hssk jobs status').")) -> None:
    """Make a job due at once; the runner picks it up within seconds."""
    from hssk.ops import jobs
    from hssk.ops.tasks import TASKS

    db = open_database()
    with db.connection() as conn:
        jobs.sync_schedule(conn, TASKS)
        found = jobs.run_now(conn, job)
    db.close()
    if not found:
        console.print(f"[red]không có tác vụ / no job[/] {job}; see 'hssk jobs status'")
        raise typer.Exit(1)
    console.print(f"{job}: due now")
