"""The ``hssk`` command. Each component contributes its own sub-commands (``<comp>/cli.py``)."""

from __future__ import annotations

import importlib
import logging
import os

import typer
from rich.console import Console

from hssk import __version__

app = typer.Typer(
    help="HSSK — nền tảng hồ sơ sức khỏe điện tử / electronic health record platform.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console()

# (command name, module with a Typer `app`): components register here.
SUBCOMMANDS: tuple[tuple[str, str, str], ...] = (
    ("db", "hssk.db.cli", "Database: migrations, status."),
    ("synth", "hssk.synth.cli", "Synthetic population and source feeds."),
    ("ingest", "hssk.ingest.cli", "Load source files into the record."),
    ("mpi", "hssk.registry.cli", "Master patient index: link, review, merge."),
    ("access", "hssk.access.cli", "Units, accounts, keys and tokens."),
    ("audit", "hssk.access.audit_cli", "Audit trail: verify the hash chain."),
    ("share", "hssk.share.cli", "Outbound sharing and partner simulator."),
    ("report", "hssk.monitor.cli", "Supervision reports."),
    ("bench", "hssk.bench", "Benchmarks of the hot paths."),
)

for _name, _module, _help in SUBCOMMANDS:
    try:
        _sub = importlib.import_module(_module).app
    except ModuleNotFoundError as exc:  # component not built yet
        if exc.name != _module:
            raise
        continue
    app.add_typer(_sub, name=_name, help=_help)

# Single commands that live in component modules.
try:
    from hssk.access.signing_cli import verify as _verify

    app.command("verify", help="Verify a document signed by the platform (offline).")(_verify)
except ModuleNotFoundError:
    pass


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

    workers = workers or min(os.cpu_count() or 1, 4)
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(
        "hssk.api.app:create_app",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="info",
    )


@app.command()
def demo(
    persons: int = typer.Option(2000, help="Residents in the synthetic district."),
    port: int = typer.Option(8000),
    seed: int = typer.Option(7),
) -> None:
    """Fill the embedded database with a synthetic district (once), then serve on :8000."""
    from hssk.demo import prepare_demo

    prepare_demo(persons=persons, seed=seed, console=console)
    console.print(f"[bold green]HSSK:[/] http://127.0.0.1:{port}/  (FHIR: /fhir/metadata)")
    serve(host="127.0.0.1", port=port, workers=1)


def main() -> None:  # pragma: no cover - console entry
    os.environ.setdefault("PYTHONUTF8", "1")
    app()
