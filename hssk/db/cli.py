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
    from hssk.config import load_settings
    from hssk.db.embedded import stop_embedded

    stopped = stop_embedded(load_settings().data_dir)
    console.print("stopped" if stopped else "the embedded PostgreSQL was not running")
