"""The ``hssk`` command. Each component contributes its own sub-commands (``<comp>/cli.py``)."""

from __future__ import annotations

import logging
import os

import typer
from rich.console import Console

from hssk import __version__
from hssk.access import audit_cli, keys_cli
from hssk.access import cli as access_cli
from hssk.access.signing_cli import verify as verify_document
from hssk.db import cli as db_cli
from hssk.ingest import cli as ingest_cli
from hssk.monitor import cli as monitor_cli
from hssk.ops import cli as ops_cli
from hssk.ops import jobs_cli
from hssk.registry import cli as registry_cli
from hssk.share import cli as share_cli
from hssk.synth import cli as synth_cli

app = typer.Typer(
    help="HSSK — nền tảng hồ sơ sức khỏe điện tử / electronic health record platform.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

# Every sub-command is imported here by name: a missing or broken one stops the command at
# start instead of vanishing from the help.
app.add_typer(db_cli.app, name="db", help="Database: migrations, status.")
app.add_typer(synth_cli.app, name="synth", help="Synthetic population and source feeds.")
app.add_typer(ingest_cli.app, name="ingest", help="Load source files into the record.")
app.add_typer(registry_cli.app, name="mpi", help="Master patient index: link, review, merge.")
app.add_typer(access_cli.app, name="access", help="Units, accounts, keys and tokens.")
app.add_typer(keys_cli.app, name="keys", help="Rotate the platform's keys (with overlap).")
app.add_typer(audit_cli.app, name="audit", help="Audit trail: verify the hash chain.")
app.add_typer(share_cli.app, name="share", help="Outbound sharing and partner simulator.")
app.add_typer(monitor_cli.app, name="report", help="Supervision reports.")
app.add_typer(jobs_cli.app, name="jobs", help="Recurring jobs: run them, list what ran.")
app.command("verify", help="Verify a document signed by the platform (offline).")(verify_document)
app.command("backup")(ops_cli.backup)
app.command("restore")(ops_cli.restore)
app.command("pitr")(ops_cli.pitr)
app.command("pitr-done")(ops_cli.pitr_done)
app.command("doctor")(ops_cli.doctor)


def _bench_app() -> typer.Typer:
    """The benchmarks (``benchmarks/``) ship with the source checkout, not with the product."""
    try:
        from benchmarks.cli import app as bench_app
    except ModuleNotFoundError as exc:
        if not (exc.name or "").startswith("benchmarks"):
            raise
        bench_app = typer.Typer(help="Benchmarks are not installed.")

        @bench_app.callback(invoke_without_command=True)
        def missing() -> None:
            Console(stderr=True).print(
                "Các bài đo hiệu năng nằm trong mã nguồn (thư mục benchmarks/): chạy từ bản "
                "checkout đã cài bằng `pip install -e .` / benchmarks live in the source "
                "checkout (benchmarks/): run them from a checkout installed with `pip install -e .`"
            )
            raise typer.Exit(2)

    return bench_app


app.add_typer(_bench_app(), name="bench", help="Benchmarks of the hot paths.")


@app.callback()
def _start() -> None:
    """Wire the process (the record store's change listeners) before any command runs."""
    from hssk import wiring

    wiring.start()


@app.command()
def version() -> None:
    """Print the version."""
    console.print(f"hssk {__version__}")


@app.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port."),
    workers: int = typer.Option(
        0, help="Worker processes; 0: one per core, at most 4 (measured best on 2 cores: 2-3)."
    ),
) -> None:
    """Start the platform (web pages, /fhir, /api/v1) on the configured database."""
    import os

    import uvicorn

    from hssk.http.logs import json_logs, uvicorn_log_config
    from hssk.http.serve import server_options
    from hssk.kernel.config import load_settings

    workers = workers or min(os.cpu_count() or 1, 4)
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(
        "hssk.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
        **server_options(load_settings()),
        log_config=uvicorn_log_config(),
        access_log=not json_logs(),
    )


@app.command()
def demo(
    persons: int = typer.Option(2000, help="Residents in the synthetic district."),
    port: int = typer.Option(8000),
    seed: int = typer.Option(7),
) -> None:
    """Fill the embedded database with a synthetic district (once), then serve on :8000."""
    from hssk.demo import prepare_demo
    from hssk.kernel.config import load_settings
    from hssk.ops.lifecycle import exit_cleanly_on_signals, release_embedded

    exit_cleanly_on_signals()
    settings = load_settings()
    try:
        prepare_demo(persons=persons, seed=seed, console=console)
        console.print(f"[bold green]HSSK:[/] http://127.0.0.1:{port}/  (FHIR: /fhir/metadata)")
        console.print("Ctrl-C dừng web và PostgreSQL nhúng / Ctrl-C stops the web and database.")
        serve(host="127.0.0.1", port=port, workers=1)
    finally:
        if not settings.database_url:
            console.print(release_embedded(settings.data_dir).message())
            # pgserver's own exit handler then finds the server stopped and logs a failed
            # 'pg_ctl stop' at length: nothing is wrong, so the user is not shown it
            logging.getLogger("pgserver").setLevel(logging.CRITICAL)


def main() -> None:  # pragma: no cover - console entry
    os.environ.setdefault("PYTHONUTF8", "1")
    app()
