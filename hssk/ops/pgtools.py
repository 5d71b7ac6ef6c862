"""PostgreSQL client programs (pg_dump, pg_restore, psql) matching a server.

pgserver ships PostgreSQL 16's programs with the embedded server; they read servers up to 16.
A newer server needs Debian's programs of its version (``postgresql-client-NN``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import psycopg

PGSERVER_MAJOR = 16


def _pgserver_bin() -> Path:
    import pgserver

    return Path(pgserver.__file__).parent / "pginstall" / "bin"


def server_major(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT current_setting('server_version_num')::int").fetchone()
    return int(row[0]) // 10000 if row else 0


def program(name: str, major: int) -> str:
    """The path of client program ``name`` able to work with a server of version ``major``."""
    candidates = [Path(f"/usr/lib/postgresql/{major}/bin")]
    if major <= PGSERVER_MAJOR:
        candidates.insert(0, _pgserver_bin())
    for folder in candidates:
        if (folder / name).exists():
            return str(folder / name)
    found = shutil.which(name)
    if found:
        return found
    raise FileNotFoundError(
        f"{name} cho PostgreSQL {major} không có; cài 'postgresql-client-{major}' / {name} for "
        f"PostgreSQL {major} is missing: apt-get install postgresql-client-{major}"
    )


def client_env(url: str) -> tuple[str, dict[str, str]]:
    """The connection string without its password, and an environment carrying it
    (a password on the command line shows in the process list)."""
    params = psycopg.conninfo.conninfo_to_dict(url)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password:
        env["PGPASSWORD"] = str(password)
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in params.items()}), env
