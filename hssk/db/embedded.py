"""The embedded PostgreSQL (``pgserver`` wheel), used when no HSSK_DATABASE_URL is given."""

from __future__ import annotations

import fcntl
import logging
import os
import subprocess
import time
from pathlib import Path
from typing import Any

TUNED_MARKER = "hssk-tuned"
RECOVERY_WAIT_S = 3 * 3600  # crash recovery of a province's database: minutes, not hours

log = logging.getLogger(__name__)


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
        server = _get_server(pgserver, pgdata, mode)
        if not (pgdata / TUNED_MARKER).exists():
            _tune(server, pgdata)
            server.cleanup()  # stops it: nobody else has attached yet (the lock) ...
            server = _get_server(pgserver, pgdata, mode)  # ... and starts it again
    return server.get_uri(), server


def _get_server(pgserver: Any, pgdata: Path, mode: str | None) -> Any:
    """pgserver's start, waiting out a long crash recovery. pgserver gives ``pg_ctl start``
    10 seconds; after a power cut or kill -9 a big database replays its WAL for longer (18 s
    for 3.7 GB of WAL at 1 M persons) and the start failed although the server went on
    recovering. Then we wait until it is ready and attach to it with a new handle (pgserver
    keeps the failed one per directory, and ``get_server`` would hand it back)."""
    try:
        return pgserver.get_server(pgdata, cleanup_mode=mode)
    except subprocess.TimeoutExpired:
        wait_until_ready(pgdata)
        return pgserver.PostgresServer(pgdata.resolve(), cleanup_mode=mode)


def wait_until_ready(pgdata: Path, limit_s: float = RECOVERY_WAIT_S) -> None:
    """Wait until the server of ``pgdata`` says it is ready (``postmaster.pid``'s status line),
    telling the operator every half minute; raise with the server log's end if it stops."""
    start = last_said = time.monotonic()
    pidfile, logfile = pgdata / "postmaster.pid", pgdata / "log"
    while True:
        lines = pidfile.read_text().splitlines() if pidfile.exists() else []
        if len(lines) >= 8 and lines[7].strip() == "ready":
            return
        running = bool(lines) and _alive(int(lines[0]))
        waited = time.monotonic() - start
        if not running or waited > limit_s:
            tail = logfile.read_text(errors="replace")[-3000:] if logfile.exists() else ""
            raise RuntimeError(
                f"PostgreSQL nhúng trong {pgdata} không khởi động được / the embedded PostgreSQL "
                f"did not start ({'stopped' if not running else f'not ready after {waited:.0f} s'})"
                f"; its log ends with:\n{tail}"
            )
        if time.monotonic() - last_said >= 30:
            log.warning("PostgreSQL đang phục hồi sau khi bị dừng đột ngột (%.0f s) / PostgreSQL "
                        "is recovering after an unclean stop (%.0f s)", waited, waited)  # fmt: skip
            last_said = time.monotonic()
        time.sleep(0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        return True
    return True


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

    from pgserver import _commands  # pgserver's pg_ctl wrapper: the right binary and user

    pgdata = data_dir / "pg"
    if not (pgdata / "postmaster.pid").exists():
        return False
    user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs postgres as this user
    _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)  # type: ignore[attr-defined]
    return True
