"""``hssk backup``, ``hssk restore``: single commands registered on the main ``hssk`` app."""

from __future__ import annotations

import os
import time
from pathlib import Path

import typer
from rich.console import Console

from hssk.db import open_database
from hssk.kernel.config import load_settings

console = Console()


def _passphrase() -> bytes:
    from hssk.ops.sealed import SealError, passphrase_from_env

    try:
        return passphrase_from_env()
    except (SealError, OSError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc


def backup(
    out: Path | None = typer.Option(
        None,
        "--out",
        help="Directory (or .hsskbak file); default HSSK_BACKUP_DIR or DATA_DIR/backups.",
    ),
) -> None:
    """Sao lưu / back up the database and the data dir's keys into one encrypted file."""
    from hssk.ops.backup import BackupError, create_backup

    settings = load_settings()
    phrase = _passphrase()
    target = out or Path(os.environ.get("HSSK_BACKUP_DIR") or settings.data_dir / "backups")
    db = open_database(settings)  # starts the embedded server when there is no URL
    t0 = time.perf_counter()
    try:
        path, manifest = create_backup(db.url, settings.data_dir, target, phrase)
    except BackupError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    finally:
        db.close()
    size = path.stat().st_size / 2**20
    console.print(
        f"[green]Đã sao lưu[/] / backed up: {path} ({size:,.1f} MB, {len(manifest.files)} "
        f"data dir files, {time.perf_counter() - t0:.1f} s)"
    )


def restore(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="A .hsskbak file."),
    force: bool = typer.Option(False, help="End other sessions on the database first."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
) -> None:
    """Khôi phục / restore a backup: replaces the whole database and the data dir's keys."""
    from hssk.ops.backup import BackupError, read_manifest, restore_backup
    from hssk.ops.sealed import SealError

    settings = load_settings()
    phrase = _passphrase()
    try:
        manifest = read_manifest(file, phrase)
    except (SealError, BackupError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    console.print(
        f"backup of {manifest.created_at} (HSSK {manifest.hssk_version}, PostgreSQL "
        f"{manifest.server_version}, {len(manifest.migrations)} migrations)"
    )
    if not yes:
        typer.confirm(
            "Thay toàn bộ dữ liệu hiện tại? / replace ALL current data with this backup?",
            abort=True,
        )
    db = open_database(settings, run_migrations=False)
    url = db.url
    db.close()
    t0 = time.perf_counter()
    try:
        restore_backup(file, url, settings.data_dir, phrase, force=force)
    except (SealError, BackupError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    console.print(
        f"[green]Đã khôi phục[/] / restored in {time.perf_counter() - t0:.1f} s; "
        "kiểm tra / check: hssk audit verify && hssk doctor"
    )


def doctor(
    tls_cert: Path | None = typer.Option(
        None, "--tls-cert", envvar="HSSK_TLS_CERT", help="TLS certificate (PEM) to check."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Kiểm tra bản cài / check a running install: database, migrations, secrets, clock,
    disk, TLS certificate, jobs and outbox. Exit 1 if anything fails."""
    import json
    from dataclasses import asdict

    from hssk.ops.doctor import FAIL, run_checks

    settings = load_settings()
    url = settings.database_url
    db = None
    if not url:
        try:
            db = open_database(settings, run_migrations=False)
            url = db.url
        except Exception as exc:  # the embedded server would not start: that is the finding
            console.print(f"[red]✗ database[/] embedded PostgreSQL does not start: {exc}")
    try:
        findings = list(run_checks(settings, url, tls_cert=tls_cert))
    finally:
        if db is not None:
            db.close()
    if as_json:
        console.print_json(json.dumps([asdict(f) for f in findings], ensure_ascii=False))
    else:
        marks = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[red]✗[/]"}
        for f in findings:
            console.print(f"{marks[f.status]} [bold]{f.check}[/]: {f.vi}\n    {f.en}")
    if url is None or any(f.status == FAIL for f in findings):
        raise typer.Exit(1)


def pitr(
    base: Path = typer.Option(..., exists=True, file_okay=False, help="pg_basebackup -Ft dir."),
    wal: Path = typer.Option(..., exists=True, file_okay=False, help="WAL archive dir."),
    to: str = typer.Option(..., help="Target time with zone, e.g. 2026-12-06T10:15:00+07:00."),
    pgdata: Path = typer.Option(..., help="New (empty) PostgreSQL data directory."),
) -> None:
    """Khôi phục đến thời điểm / prepare a PostgreSQL data dir that recovers to a moment
    (run as the postgres user, then start PostgreSQL on it)."""
    from datetime import datetime

    from hssk.ops.pitr import prepare_recovery

    try:
        prepare_recovery(base, wal, datetime.fromisoformat(to), pgdata)
    except (ValueError, OSError) as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    console.print(
        f"[green]Sẵn sàng[/] / ready: start PostgreSQL on {pgdata}; it replays WAL up to {to}, "
        f"then opens for writes. Then: hssk pitr-done --to {to} --base {base} && "
        "hssk audit verify && hssk doctor"
    )


def pitr_done(
    to: str = typer.Option(..., help="The target time the recovery stopped at."),
    base: Path | None = typer.Option(None, help="The base backup it started from."),
) -> None:
    """Ghi nhật ký khôi phục / record a point-in-time recovery in the recovered database's
    audit trail (who, when, to what moment): run once PostgreSQL has opened it."""
    from datetime import datetime

    from hssk.ops.backup import record_restore

    try:
        point = datetime.fromisoformat(to)
    except ValueError as exc:
        console.print(f"[red]{exc}[/]: e.g. 2026-12-06T10:15:00+07:00")
        raise typer.Exit(1) from exc
    db = open_database(load_settings())
    try:
        with db.connection() as conn:
            record_restore(conn, "pitr", point.isoformat(), {"base": str(base) if base else None})
    finally:
        db.close()
    console.print(f"[green]Đã ghi nhật ký[/] / recorded: recovery to {point.isoformat()}")
