"""``hssk db``: migrations and status of the store."""

from __future__ import annotations

import typer
from rich.console import Console

from hssk.db import open_database
from hssk.db.migrate import discover

app = typer.Typer(no_args_is_help=True)
console = Console()


@app.command()
def migrate() -> None:
    """Apply pending migrations (also done on every start)."""
    db = open_database()
    with db.connection() as conn:
        rows = conn.execute("SELECT version, name, applied_at FROM schema_migration ORDER BY 1")
        for version, name, at in rows:
            console.print(f"{version}  {name}  [dim]{at:%Y-%m-%d %H:%M}[/]")
    db.close()


@app.command()
def status() -> None:
    """Show where the data lives and how many rows the main tables hold."""
    db = open_database()
    console.print(f"database: {db.url}")
    console.print(f"migrations shipped: {len(discover())}")
    with db.connection() as conn:
        for table in ("person", "resource", "resource_history", "audit_event", "ingest_job"):
            (n,) = conn.execute(f"SELECT count(*) FROM {table}").fetchone() or (0,)
            console.print(f"{table:>18}: {n:,}")
    db.close()


@app.command()
def stop() -> None:
    """Stop the embedded PostgreSQL of HSSK_DATA_DIR now (even if a process still holds it)."""
    from hssk.db.embedded import stop_embedded
    from hssk.kernel.config import load_settings

    stopped = stop_embedded(load_settings().data_dir)
    console.print("stopped" if stopped else "the embedded PostgreSQL was not running")


@app.command()
def upgrade(
    dry_run: bool = typer.Option(False, "--plan", help="Only show what would run."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask before long migrations."),
) -> None:
    """Nâng cấp CSDL / upgrade a database made by an earlier version: shows the pending
    migrations (and which work through big tables), applies them, checks no table lost rows."""
    import psycopg

    from hssk.db import upgrade as up

    db = open_database(run_migrations=False)
    url = db.url
    db.close()
    with psycopg.connect(url, autocommit=True) as conn:
        steps = up.plan(conn)
    if not steps:
        console.print("[green]CSDL đã mới nhất[/] / the database is up to date.")
        return
    for step in steps:
        mark = " [cyan](trực tuyến / online)[/]" if step.online else ""
        console.print(f"  {step.migration.name}{mark}")
        for h in step.heavy:
            if step.online:
                console.print(
                    f"    [cyan]lâu, trực tuyến / long, online:[/] {h.does} {h.table} "
                    f"(~{h.rows:,} rows): ghi vẫn chạy / writes go on; dừng giữa chừng thì chạy "
                    "lại để tiếp tục / if stopped, run again to resume"
                )
            else:
                console.print(
                    f"    [yellow]lâu / long:[/] {h.does} {h.table} (~{h.rows:,} rows): ghi vào "
                    "bảng phải chờ / writes to it wait; dừng nạp dữ liệu / stop ingestion first"
                )
    if dry_run:
        return
    if any(s.blocking for s in steps) and not yes:
        typer.confirm("Chạy ngay? / run now?", abort=True)
    outcome = up.upgrade(url)
    console.print(f"{len(outcome.applied)} migrations applied in {outcome.seconds:.1f} s")
    for table, n in outcome.dropped.items():
        console.print(
            f"[yellow]{table}: bảng bị migration xóa / dropped by a migration[/] ({n:,} rows)"
        )
    if outcome.lost:
        for table, (a, b) in outcome.lost.items():
            console.print(f"[red]{table}: {a:,} → {b:,} rows[/]")
        console.print("[red]Mất dữ liệu / rows lost[/]: khôi phục bản sao lưu / restore the backup")
        raise typer.Exit(1)
    console.print("[green]Không bảng nào mất dòng[/] / no table lost rows.")
