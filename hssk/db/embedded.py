"""The embedded PostgreSQL (``pgserver`` wheel), used when no HSSK_DATABASE_URL is given."""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import Any

TUNED_MARKER = "hssk-tuned"


def settings_for(ram_bytes: int) -> dict[str, str]:
    """Server settings for HSSK's load on a machine with ``ram_bytes`` of memory.

    PostgreSQL's defaults (128 MB of shared buffers, a checkpoint every 1 GB of WAL) suit a
    laptop; loading records writes indexes at random places, and after each checkpoint every
    first change of a page logs the whole 8 kB page. Fewer checkpoints and a cache sized to
    the machine cut that write volume."""
    mb = ram_bytes // 2**20
    shared = max(128, min(mb // 8, 2048))
    return {
        "shared_buffers": f"{shared}MB",
        "effective_cache_size": f"{max(512, mb // 2)}MB",
        "max_wal_size": "4GB",
        "checkpoint_timeout": "15min",
        "work_mem": "16MB",
        "maintenance_work_mem": f"{max(64, min(mb // 32, 1024))}MB",
    }


def start_embedded(data_dir: Path, *, stop_on_exit: bool = True) -> tuple[str, Any]:
    """Start (or attach to) the embedded server whose files live in ``data_dir/pg``.

    The same directory is reused across restarts, so data is kept. When several processes
    share it (server + a CLI ingest), pgserver keeps it running until the last one exits.
    A new data directory is tuned once (``settings_for``), then the server restarts to apply
    it. Returns the connection URI and the server handle.
    """
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); pgserver copes.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver  # imported lazily: it is only needed for the embedded mode

    pgdata = data_dir / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    mode = "stop" if stop_on_exit else None
    # Processes starting together (uvicorn workers) take turns here: the first one tunes a new
    # directory and restarts the server before any other has connected to it.
    with (data_dir / "pg.start.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        server = pgserver.get_server(pgdata, cleanup_mode=mode)
        if not (pgdata / TUNED_MARKER).exists():
            _tune(server, pgdata)
            server.cleanup()  # stops it: nobody else has attached yet (the lock) ...
            server = pgserver.get_server(pgdata, cleanup_mode=mode)  # ... and starts it again
    return server.get_uri(), server


def _tune(server: Any, pgdata: Path) -> None:
    import psutil
    import psycopg

    with psycopg.connect(server.get_uri(), autocommit=True) as conn:
        for name, value in settings_for(psutil.virtual_memory().total).items():
            conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
    (pgdata / TUNED_MARKER).write_text("settings applied by hssk.db.embedded\n")


def stop_embedded(data_dir: Path) -> bool:
    """Stop the embedded server of ``data_dir`` now, whoever still holds it (benchmarks whose
    server subprocesses were terminated leave pgserver's user count behind). False if it was
    not running."""
    import os

    from pgserver import _commands  # pgserver's pg_ctl wrapper: the right binary and user

    pgdata = data_dir / "pg"
    if not (pgdata / "postmaster.pid").exists():
        return False
    user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs postgres as this user
    _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)  # type: ignore[attr-defined]
    return True
