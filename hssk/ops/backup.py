"""``hssk backup`` / ``hssk restore``: the database and the data dir's keys in one encrypted file.

The database is dumped by ``pg_dump`` (one consistent snapshot, any PostgreSQL ≥ 15, embedded
or not); the data dir's own files (token secret, platform signing key, audit anchors, pending
uploads) go beside it. They are copied *before* the dump starts: the audit anchors then never
name a row the dump lacks, so ``hssk audit verify`` passes after a restore. The whole is a tar
stream sealed by ``hssk.ops.sealed`` (AES-256-GCM, key from the backup passphrase).

A restore replaces the ``public`` schema in one transaction (``psql --single-transaction``):
either the backup is entirely there or nothing changed. Then pending migrations run, so an
older backup is brought up to this version, and the restore is written in the audit trail it
brought back (who, when, the backup's moment: :func:`record_restore`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from hssk import __version__
from hssk.access.actor import PLATFORM
from hssk.access.audit import operator_detail, record
from hssk.db.migrate import migrate
from hssk.ops import pgtools
from hssk.ops.sealed import SealedReader, SealedWriter

FORMAT = 1
DUMP = "database.dump"
MANIFEST = "manifest.json"
FILES = "datadir/"
# Data dir entries that are not the installation's state: the embedded cluster itself (it is
# dumped), demo sources, backups, locks.
SKIP = frozenset({"pg", "demo-feeds", "backups", "pg.start.lock"})
SUFFIX = ".hsskbak"


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why and what to do."""


@dataclass
class Manifest:
    format: int
    created_at: str
    hssk_version: str
    server_version: str
    database: str
    migrations: list[str]
    files: dict[str, str] = field(default_factory=dict)  # data dir path -> sha256

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), ensure_ascii=False, indent=1).encode()


def _state_files(data_dir: Path) -> Iterator[Path]:
    if not data_dir.is_dir():
        return
    for entry in sorted(data_dir.iterdir()):
        if entry.name in SKIP or entry.name.startswith("."):
            continue
        if entry.is_file():
            yield entry
        elif entry.is_dir():
            yield from (p for p in sorted(entry.rglob("*")) if p.is_file())


@contextlib.contextmanager
def _private_dir(near: Path) -> Iterator[Path]:
    near.mkdir(parents=True, exist_ok=True)
    path = Path(tempfile.mkdtemp(prefix=".hssk-tmp-", dir=near))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if res.returncode:
        raise BackupError(f"{what} failed ({res.returncode}): {res.stderr.strip()[-1500:]}")


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


def create_backup(url: str, data_dir: Path, out: Path, passphrase: bytes) -> tuple[Path, Manifest]:
    """Write an encrypted backup of the database at ``url`` and ``data_dir``'s state files.

    ``out`` is a directory (a timestamped file is made in it) or a file path."""
    stamp = dt.datetime.now(dt.UTC)
    if out.suffix != SUFFIX:
        out = out / f"hssk-{stamp:%Y%m%dT%H%M%SZ}{SUFFIX}"
    out.parent.mkdir(parents=True, exist_ok=True)
    files = {p: p.read_bytes() for p in _state_files(data_dir)}  # before the dump: see above
    with psycopg.connect(url) as conn:
        major = pgtools.server_major(conn)
        server_version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        migrations = [r[0] for r in conn.execute("SELECT name FROM schema_migration ORDER BY 1")]
    conninfo, env = pgtools.client_env(url)
    manifest = Manifest(
        FORMAT, stamp.isoformat(), __version__, server_version,
        psycopg.conninfo.conninfo_to_dict(url).get("dbname", "") or "", migrations,  # type: ignore[arg-type]
        {str(p.relative_to(data_dir)): hashlib.sha256(b).hexdigest() for p, b in files.items()},
    )  # fmt: skip
    partial = out.with_name(out.name + ".partial")
    with _private_dir(out.parent) as tmp:
        dump = tmp / DUMP
        _run([pgtools.program("pg_dump", major), "--format=custom", "--no-owner",
              "--no-privileges", f"--file={dump}", f"--dbname={conninfo}"], env, "pg_dump")  # fmt: skip
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as raw, SealedWriter(raw, passphrase) as sealed:
            with tarfile.open(fileobj=sealed, mode="w|") as tar:  # type: ignore[call-overload]
                _add(tar, MANIFEST, manifest.to_json())
                for path, data in files.items():
                    _add(tar, FILES + str(path.relative_to(data_dir)), data)
                tar.add(dump, DUMP)
            raw.flush()
            os.fsync(raw.fileno())
    partial.rename(out)
    return out, manifest


def read_manifest(path: Path, passphrase: bytes) -> Manifest:
    """The manifest of a backup (checks the passphrase; reads only the start)."""
    with (
        path.open("rb") as raw,
        SealedReader(raw, passphrase) as sealed,
        tarfile.open(fileobj=sealed, mode="r|") as tar,  # type: ignore[call-overload]
    ):
        for member in tar:
            if member.name == MANIFEST:
                return Manifest(**json.loads(tar.extractfile(member).read()))  # type: ignore[union-attr]
            break
    raise BackupError(f"{path}: no manifest; not an HSSK backup")


def other_sessions(conn: psycopg.Connection[Any]) -> list[tuple[int, str]]:
    """Other sessions on this database: (pid, application name)."""
    return [
        (int(pid), str(app or "?"))
        for pid, app in conn.execute(
            "SELECT pid, application_name FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    ]


def restore_backup(
    path: Path, url: str, data_dir: Path, passphrase: bytes, *, force: bool = False
) -> Manifest:
    """Replace the database at ``url`` and the data dir's state files by the backup's.

    Refuses while other sessions use the database (stop the web and the worker first), unless
    ``force``, which ends them."""
    with psycopg.connect(url, autocommit=True) as conn:
        busy = other_sessions(conn)
        if busy and not force:
            who = ", ".join(f"{pid} ({app})" for pid, app in busy[:10])
            raise BackupError(
                f"Cơ sở dữ liệu đang được dùng bởi {who}: dừng hssk-web và hssk-worker trước, "
                f"hoặc dùng --force / the database is in use by {who}: stop hssk-web and "
                "hssk-worker first (systemctl stop hssk-web hssk-worker), or pass --force"
            )
        if busy:
            conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        major = pgtools.server_major(conn)
    conninfo, env = pgtools.client_env(url)
    with _private_dir(data_dir) as tmp:
        manifest = _unpack(path, passphrase, tmp)
        if manifest.format > FORMAT:
            raise BackupError(f"backup format {manifest.format} is newer than this HSSK")
        script = subprocess.Popen(
            [pgtools.program("pg_restore", major), "--no-owner", "--no-privileges",
             "--file=-", str(tmp / DUMP)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        )  # fmt: skip
        psql = subprocess.run(
            [pgtools.program("psql", major), "--no-psqlrc", "--quiet", "--single-transaction",
             "--set=ON_ERROR_STOP=1", f"--dbname={conninfo}",
             "--command=DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;",
             "--file=-"],
            stdin=script.stdout, capture_output=True, text=True, env=env, check=False,
        )  # fmt: skip
        assert script.stdout is not None
        script.stdout.close()
        _, err = script.communicate()
        if script.returncode:
            raise BackupError(f"pg_restore failed: {err.decode(errors='replace')[-1500:]}")
        if psql.returncode:
            raise BackupError(f"restore failed, nothing changed: {psql.stderr.strip()[-1500:]}")
        _put_files(tmp / "datadir", data_dir)
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn)  # an older backup: bring it to this version
        record_restore(conn, "backup", manifest.created_at, {"file": path.name,
                       "hssk_version": manifest.hssk_version})  # fmt: skip
    return manifest


def record_restore(
    conn: psycopg.Connection[Any], method: str, point: str, detail: dict[str, Any]
) -> None:
    """Write a restore in the restored database's audit trail: who (the operating-system
    account and host running the command), when (the event's time) and to what point in time."""
    with conn.transaction():  # the chain lock holds until the event is in
        record(conn, PLATFORM, "restore", outcome="allow", basis="operator",
               detail={"method": method, "point_in_time": point, **operator_detail(), **detail})  # fmt: skip


def _unpack(path: Path, passphrase: bytes, into: Path) -> Manifest:
    with (
        path.open("rb") as raw,
        SealedReader(raw, passphrase) as sealed,
        tarfile.open(fileobj=sealed, mode="r|") as tar,  # type: ignore[call-overload]
    ):
        tar.extractall(into, filter="data")
    return Manifest(**json.loads((into / MANIFEST).read_bytes()))


def _put_files(src: Path, data_dir: Path) -> None:
    """Put the backup's state files in place (mode 600), keeping a differing current file
    beside it as ``<name>.before-restore``."""
    if not src.is_dir():
        return
    for path in (p for p in src.rglob("*") if p.is_file()):
        target = data_dir / path.relative_to(src)
        target.parent.mkdir(parents=True, exist_ok=True)
        data = path.read_bytes()
        if target.exists() and target.read_bytes() != data:
            shutil.copy2(target, target.with_name(target.name + ".before-restore"))
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        target.chmod(0o600)
