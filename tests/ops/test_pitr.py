"""Point-in-time recovery drill on a real PostgreSQL cluster with WAL archiving: base backup,
changes, a moment, damage, recovery to the moment; every table and the audit chain compare."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hssk.access import accounts
from hssk.access.audit import record, verify_chain
from hssk.access.audit_cli import ANCHOR_FILE
from hssk.db import open_database
from hssk.db.digest import table_digests
from hssk.kernel.config import load_settings
from hssk.ops.pgtools import _pgserver_bin
from hssk.ops.pitr import prepare_recovery

sys.path.insert(0, str(Path(__file__).parents[1] / "access"))
from access_world import build_world

pytestmark = pytest.mark.slow
BIN = _pgserver_bin()
DEPLOY = Path(__file__).parents[2] / "deploy"
RUN_AS: dict[str, Any] = {"user": "pgserver"} if os.geteuid() == 0 else {}


def _own(path: Path) -> None:
    if RUN_AS:
        pw = pwd.getpwnam("pgserver")
        for p in [path, *path.rglob("*")]:
            os.chown(p, pw.pw_uid, pw.pw_gid)


def _pg(*args: str) -> None:
    subprocess.run([str(BIN / args[0]), *args[1:]], check=True, capture_output=True,
                   timeout=120, **RUN_AS)  # fmt: skip


@pytest.fixture
def cluster() -> Iterator[tuple[Path, str, list[Path]]]:
    """A fresh PostgreSQL cluster archiving its WAL; yields (root, url, data dirs to stop)."""
    root = Path(tempfile.mkdtemp(prefix="hssk-pitr-"))
    root.chmod(0o755)
    (root / "wal").mkdir()
    _own(root)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    _pg("initdb", "-D", str(root / "pg"), "--auth=trust", "-U", "postgres", "--encoding=utf8")
    # the archiving settings shipped for the server install, archiving into this cluster's dir
    shipped = (DEPLOY / "postgresql" / "hssk-archive.conf").read_text()
    assert "/var/backups/pg/wal/%f" in shipped
    with (root / "pg" / "postgresql.conf").open("a") as conf:
        conf.write(
            f"port = {port}\nlisten_addresses = ''\nunix_socket_directories = '{root}'\n"
            + shipped.replace("/var/backups/pg/wal", f"{root}/wal")
        )
    running: list[Path] = [root / "pg"]
    _pg("pg_ctl", "-D", str(root / "pg"), "-w", "-l", str(root / "pg.log"), "start")
    try:
        yield root, f"postgresql://postgres@/postgres?host={root}&port={port}", running
    finally:
        for pgdata in running:
            if (pgdata / "postmaster.pid").exists():
                _pg("pg_ctl", "-D", str(pgdata), "-w", "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_recovery_to_a_moment_gives_back_that_moment(
    cluster: tuple[Path, str, list[Path]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, url, running = cluster
    data_dir = tmp_path / "data"
    monkeypatch.setenv("HSSK_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HSSK_DATABASE_URL", url)
    db = open_database(load_settings(), url=url)
    build_world(db)
    _pg("pg_basebackup", "-h", str(root), "-p", url.rsplit("=", 1)[1], "-U", "postgres",
        "-D", str(root / "base"), "-Ft", "-X", "stream", "-c", "fast")  # fmt: skip
    # After the base backup: changes the recovery must replay from the archived WAL.
    with db.connection() as conn:
        admin = accounts.find_account(conn, "quantri")
        assert admin is not None
        for n in range(3):
            record(conn, admin.actor(None), "read", outcome="allowed", person_id=n + 1)
        conn.execute(
            "UPDATE person SET phone = '0912999999' WHERE id = (SELECT min(id) FROM person)"
        )
        verify_chain(conn, anchor_file=data_dir / ANCHOR_FILE)
    with db.connection() as conn:
        wanted = table_digests(conn)
        (moment,) = conn.execute("SELECT clock_timestamp()").fetchone()  # type: ignore[misc]
    time.sleep(1.0)
    # The damage after the moment.
    with db.connection() as conn:
        conn.execute("DELETE FROM resource")
        conn.execute("UPDATE person SET full_name = 'Kẻ Giả Mạo'")
        record(conn, admin.actor(None), "export", outcome="allowed")
        assert table_digests(conn) != wanted
    with db.connection() as conn:
        (segment,) = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()  # type: ignore[misc]
    deadline = time.monotonic() + 60
    while not (root / "wal" / segment).exists():
        assert time.monotonic() < deadline, "the WAL segment was not archived"
        time.sleep(0.2)
    db.close()
    _pg("pg_ctl", "-D", str(root / "pg"), "-w", "-m", "fast", "stop")

    assert isinstance(moment, datetime)
    prepare_recovery(root / "base", root / "wal", moment, root / "pg2")
    _own(root / "pg2")
    running.append(root / "pg2")
    _pg("pg_ctl", "-D", str(root / "pg2"), "-w", "-t", "120", "-l", str(root / "pg2.log"), "start")
    deadline = time.monotonic() + 60
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,):
            assert time.monotonic() < deadline, (root / "pg2.log").read_text()[-2000:]
            time.sleep(0.2)
        assert table_digests(conn) == wanted
    env = {**os.environ, "HSSK_DATABASE_URL": url, "HSSK_DATA_DIR": str(data_dir)}
    done = subprocess.run(
        [sys.executable, "-m", "hssk", "pitr-done", "--to", moment.isoformat(), "--base",
         str(root / "base")], capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    with psycopg.connect(url) as conn:  # the recovery is in the trail: who, when, to what moment
        (detail,) = conn.execute(
            "SELECT detail FROM audit_event WHERE action = 'restore'"
        ).fetchone()  # type: ignore[misc]
    assert detail["method"] == "pitr" and detail["os_user"]
    assert datetime.fromisoformat(detail["point_in_time"]) == moment
    verified = subprocess.run(
        [sys.executable, "-m", "hssk", "audit", "verify"], capture_output=True, text=True,
        env=env, timeout=120, check=False,
    )  # fmt: skip
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_prepare_refuses_a_non_empty_directory_and_a_naive_time(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "pg").mkdir()
    (tmp_path / "pg" / "PG_VERSION").write_text("16")
    with pytest.raises(ValueError, match="time zone"):
        prepare_recovery(
            tmp_path / "base", tmp_path, datetime(2026, 12, 6, 10, 15), tmp_path / "pg"
        )
    aware = datetime.fromisoformat("2026-12-06T10:15:00+07:00")
    with pytest.raises(FileNotFoundError, match=r"base\.tar"):
        prepare_recovery(tmp_path / "base", tmp_path, aware, tmp_path / "pg")
    (tmp_path / "base" / "base.tar").write_bytes(b"")
    with pytest.raises(FileExistsError, match="not empty"):
        prepare_recovery(tmp_path / "base", tmp_path, aware, tmp_path / "pg")
