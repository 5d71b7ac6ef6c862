"""``hssk ingest``: load source files into the record, resume jobs, work the quarantine."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from hssk.db import Database, open_database
from hssk.ingest import initial, jobstore, kinds, quarantine, runner

app = typer.Typer(
    help="Nạp dữ liệu nguồn vào hồ sơ / load source files into the record "
    "(kinds: " + ", ".join(kinds.KINDS) + ").",
    no_args_is_help=False,
    invoke_without_command=True,
)
console = Console(stderr=True)


def _open() -> Database:
    return open_database()


def _print_summary(summary: jobstore.Summary, as_json: bool) -> None:
    if as_json:
        out = summary.to_json()
        out["errors"] = [
            {k: e[k] for k in ("file", "record", "element", "reason", "rule")}
            for e in out["errors"]
        ]
        sys.stdout.write(json.dumps(out, ensure_ascii=False) + "\n")
        return
    table = Table(title=f"Job {summary.job_id} ({summary.kind}): {summary.status}")
    table.add_column("Loại / type")
    table.add_column("Tạo mới / created", justify="right")
    table.add_column("Cập nhật / updated", justify="right")
    for rtype in sorted(set(summary.created) | set(summary.updated)):
        table.add_row(rtype, str(summary.created[rtype]), str(summary.updated[rtype]))
    console.print(table)
    console.print(
        f"Bản ghi nguồn / source records: {summary.records}  ·  "
        f"liên kết người / person links: {summary.persons}  ·  "
        f"không đổi (bỏ qua) / unchanged skipped: {summary.skipped}  ·  "
        f"cách ly / quarantined: {summary.quarantined}  ·  {summary.seconds:.1f} s"
    )
    if summary.errors:
        et = Table(title="Cách ly / quarantine (first 20)")
        for col in ("id", "record", "element", "rule", "reason"):
            et.add_column(col)
        for e in summary.errors[:20]:
            et.add_row(
                str(e["id"]),
                str(e["record"]),
                str(e["element"] or ""),
                str(e["rule"]),
                str(e["reason"])[:120],
            )
        console.print(et)


def _run(
    kind: str, paths: list[Path], as_json: bool, workers: int | None, first: bool = False
) -> None:
    db = _open()
    try:
        files = kinds.kind(kind).find([str(p) for p in paths])
        with db.connection() as conn:
            # a first load continues the unfinished one of the same files (after a kill)
            job_id = (jobstore.unfinished_initial_job(conn, kind, files) if first else None) or (
                jobstore.create_job(conn, kind, files, created_by="cli", initial=first)
            )
        if as_json:
            summary = runner.run_job(db, job_id, workers=workers)
        else:
            with Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                TextColumn(
                    "{task.completed}/{task.total} tệp/files · {task.fields[records]} bản ghi"
                ),
                TimeElapsedColumn(),
                console=console,
            ) as bar:
                task = bar.add_task(f"ingest {kind}", total=len(files), records=0)

                def progress(records: int, files_done: int) -> None:
                    bar.update(task, completed=files_done, records=records)

                summary = runner.run_job(db, job_id, workers=workers, progress=progress)
                bar.update(task, completed=len(files))
        _print_summary(summary, as_json)
    finally:
        db.close()


def _make(kind: str) -> None:
    def command(
        paths: list[Path] = typer.Argument(..., help="Files or directories."),
        as_json: bool = typer.Option(False, "--json", help="Print one JSON summary object."),
        workers: int | None = typer.Option(None, help="Mapping processes (default: the cores)."),
        first: bool = typer.Option(
            False,
            "--initial",
            help="Lần nạp đầu, theo lô / a province's first load as a batch (population, "
            "insurance, immunization; see hssk/ingest/README.md).",
        ),
    ) -> None:
        if first and kind not in initial.INITIAL_KINDS:
            console.print(f"--initial chỉ dùng cho / only for: {', '.join(initial.INITIAL_KINDS)}")
            raise typer.Exit(2)
        _run(kind, paths, as_json, workers, first)

    command.__doc__ = f"Nạp tệp {kind} / ingest {kind} files."
    app.command(kind)(command)


for _kind in kinds.KINDS:
    _make(_kind)


@app.callback()
def main(
    ctx: typer.Context,
    resume: bool = typer.Option(False, "--resume", help="Finish interrupted jobs."),
    as_json: bool = typer.Option(False, "--json", help="JSON output (with --resume)."),
) -> None:
    """Nạp dữ liệu / ingestion. ``hssk ingest --resume`` finishes interrupted jobs."""
    if not resume:
        if ctx.invoked_subcommand is None:
            console.print(ctx.get_help())
        return
    db = _open()
    try:
        summaries = runner.resume(db)
        if not summaries and not as_json:
            console.print("Không có công việc dở dang / no unfinished job.")
        for s in summaries:
            _print_summary(s, as_json)
    finally:
        db.close()
    raise typer.Exit(0)


_STATUS_VI = {
    "pending": "chờ",
    "running": "đang chạy",
    "done": "xong",
}


@app.command("jobs")
def list_jobs(
    job_id: int | None = typer.Argument(None, help="Show this job in full (counts, errors)."),
    status: str | None = typer.Option(
        None, help="pending | running | done | interrupted (running, but no process holds it)"
    ),
    kind: str | None = typer.Option(None, help="Only this kind (xml130, immunization, …)."),
    limit: int = typer.Option(20),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Công việc nạp dữ liệu / ingest jobs: status, progress, counts (newest first)."""
    db = _open()
    try:
        with db.connection() as conn:
            if job_id is not None:
                try:
                    summary = jobstore.job_summary(conn, job_id)
                except jobstore.JobError as exc:
                    console.print(
                        f"[red]Không có công việc {job_id} / {exc}[/]: xem danh sách"
                        " bằng / list them with [bold]hssk ingest jobs[/]"
                    )
                    raise typer.Exit(1) from None
                _print_summary(summary, as_json)
                return
            found = jobstore.list_jobs(conn, status=status, kind=kind, limit=limit)
    finally:
        db.close()
    if as_json:
        sys.stdout.write(json.dumps([j.to_json() for j in found], ensure_ascii=False) + "\n")
        return
    table = Table(
        title="Công việc nạp dữ liệu / ingest jobs",
        caption="tệp, bản ghi, lưu, cách ly / files done, records, stored, quarantined"
        " · chờ, đang chạy, xong, dở dang / pending, running, done, interrupted",
    )
    for col in ("id", "loại", "trạng thái", "tệp", "bản ghi", "lưu", "cách ly", "bắt đầu", "giây"):
        table.add_column(
            col, justify="left" if col in ("loại", "trạng thái", "bắt đầu") else "right"
        )
    for j in found:
        state = _STATUS_VI.get(j.status, j.status)
        if j.interrupted:
            state = "[yellow]dở dang[/]"
        started = j.started_at.astimezone().strftime("%d/%m %H:%M") if j.started_at else ""
        table.add_row(str(j.id), j.kind, state, f"{j.files_done}/{j.files}", str(j.records),
                      str(j.stored), str(j.quarantined), started, f"{j.seconds:.0f}")  # fmt: skip
    console.print(table)
    if not found:
        console.print("Chưa có công việc nào / no job yet.")
    elif any(j.interrupted for j in found):
        console.print("Công việc dở dang: chạy [bold]hssk ingest --resume[/] / interrupted jobs:"
                      " run [bold]hssk ingest --resume[/].")  # fmt: skip


@app.command("errors")
def errors(
    job: int | None = typer.Option(None, help="Only this job."),
    status: str = typer.Option(
        "quarantined", help="quarantined | replayed | discarded | noted | all"
    ),
    facility: str | None = typer.Option(None, help="Only this facility (MA_CSKCB)."),
    rule: str | None = typer.Option(None, help="Only this rule (e.g. icd10.unknown)."),
    limit: int = typer.Option(50),
    as_json: bool = typer.Option(False, "--json"),
    show_raw: int | None = typer.Option(None, "--raw", help="Print the raw content of this id."),
) -> None:
    """Liệt kê bản ghi bị cách ly / list quarantined records."""
    db = _open()
    try:
        with db.connection() as conn:
            if show_raw is not None:
                sys.stdout.write((quarantine.get_error(conn, show_raw).raw or "") + "\n")
                return
            recs = quarantine.list_errors(
                conn, job_id=job, status=None if status == "all" else status,
                facility=facility, rule=rule, limit=limit,
            )  # fmt: skip
        if as_json:
            sys.stdout.write(json.dumps([r.to_json() for r in recs], ensure_ascii=False) + "\n")
            return
        table = Table(title="Cách ly / quarantine")
        for col in ("id", "job", "file", "record", "element", "rule", "lý do / reason"):
            table.add_column(col)
        for r in recs:
            table.add_row(str(r.id), str(r.job_id or ""), Path(r.file or "").name, r.record or "",
                          r.element or "", r.rule or "", (r.reason_vi or r.reason)[:140])  # fmt: skip
        console.print(table)
    finally:
        db.close()


@app.command("replay")
def replay(
    error_id: int = typer.Argument(..., help="Quarantine id (see `hssk ingest errors`)."),
    corrected: Path | None = typer.Option(
        None, "--file", help="File holding the corrected raw record (else the stored one)."
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Phát lại bản ghi đã sửa / replay a (corrected) quarantined record."""
    db = _open()
    try:
        try:
            with db.connection() as conn:
                if corrected is not None:
                    quarantine.correct(conn, error_id, corrected.read_text("utf-8"))
            with db.connection() as conn:
                summary = quarantine.replay(conn, error_id)
        except quarantine.ReplayError as exc:
            console.print(f"[red]Không phát lại được / cannot replay:[/] {exc.vi} / {exc.reason}")
            raise typer.Exit(1) from None
        _print_summary(summary, as_json)
    finally:
        db.close()


@app.command("discard")
def discard(
    error_id: int = typer.Argument(..., help="Quarantine id (see `hssk ingest errors`)."),
    reason: str = typer.Option(..., "--reason", help="Why it must not be stored."),
) -> None:
    """Loại bỏ bản ghi bị cách ly (giữ lại kèm lý do) / discard a quarantined record."""
    db = _open()
    try:
        with db.connection() as conn:
            quarantine.discard(conn, error_id, reason, f"cli:{getpass.getuser()}")
    except quarantine.ReplayError as exc:
        console.print(f"[red]Không loại bỏ được / cannot discard:[/] {exc.vi} / {exc.reason}")
        raise typer.Exit(1) from None
    finally:
        db.close()
    console.print(f"Đã loại bỏ bản ghi {error_id} / record {error_id} discarded.")
