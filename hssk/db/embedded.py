"""The embedded PostgreSQL (``pgserver`` wheel), used when no HSSK_DATABASE_URL is given."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def start_embedded(data_dir: Path, *, stop_on_exit: bool = True) -> tuple[str, Any]:
    """Start (or attach to) the embedded server whose files live in ``data_dir/pg``.

    The same directory is reused across restarts, so data is kept. When several processes
    share it (server + a CLI ingest), pgserver keeps it running until the last one exits.
    Returns the connection URI and the server handle.
    """
    import warnings

    # platformdirs warns when XDG_RUNTIME_DIR is unset (servers, CI); pgserver copes.
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    import pgserver  # imported lazily: it is only needed for the embedded mode

    pgdata = data_dir / "pg"
    pgdata.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop" if stop_on_exit else None)
    return server.get_uri(), server
