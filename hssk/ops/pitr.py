"""Point-in-time recovery of a PostgreSQL server from a base backup and archived WAL.

The server install archives WAL (``archive_command`` copies each segment to an archive
directory) and takes base backups with ``pg_basebackup -Ft -X stream`` (docs/ops, section
5.2). ``prepare_recovery`` lays out a new data directory from them that, once PostgreSQL
starts on it, replays the archive up to a moment and opens for writes there.
"""

from __future__ import annotations

import os
import tarfile
from datetime import datetime
from pathlib import Path

SIGNAL = "recovery.signal"


def _tar(base: Path, stem: str) -> Path | None:
    for name in (f"{stem}.tar", f"{stem}.tar.gz", f"{stem}.tar.lz4", f"{stem}.tar.zst"):
        if (base / name).exists():
            return base / name
    return None


def prepare_recovery(base: Path, wal_archive: Path, target: datetime, pgdata: Path) -> None:
    """Unpack the base backup in ``base`` (``base.tar[.gz]`` and ``pg_wal.tar[.gz]``) into the
    empty or new ``pgdata`` and configure recovery to ``target`` (an aware datetime) with WAL
    from ``wal_archive``. Run it as the user PostgreSQL runs as; start the server afterwards."""
    if target.tzinfo is None:
        raise ValueError("the target time needs its time zone, e.g. 2026-12-06T10:15:00+07:00")
    main = _tar(base, "base")
    if main is None or main.suffix not in (".tar", ".gz"):
        raise FileNotFoundError(f"{base}: no base.tar or base.tar.gz (pg_basebackup -Ft [-z])")
    if pgdata.exists() and any(pgdata.iterdir()):
        raise FileExistsError(f"{pgdata} is not empty: move the damaged cluster aside first")
    pgdata.mkdir(mode=0o700, parents=True, exist_ok=True)
    with tarfile.open(main) as tar:
        tar.extractall(pgdata, filter="tar")
    wal = _tar(base, "pg_wal")
    if wal is not None:
        with tarfile.open(wal) as tar:
            tar.extractall(pgdata / "pg_wal", filter="tar")
    archive = str(wal_archive).replace("'", "''")
    settings = (
        "\n# point-in-time recovery (hssk pitr)\n"
        f'restore_command = \'cp "{archive}/%f" "%p"\'\n'
        f"recovery_target_time = '{target.isoformat()}'\n"
        "recovery_target_action = 'promote'\n"
    )
    with (pgdata / "postgresql.auto.conf").open("a") as conf:
        conf.write(settings)
    (pgdata / SIGNAL).touch()
    os.chmod(pgdata, 0o700)
