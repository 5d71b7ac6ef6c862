"""RPO and RTO of HSSK's backups: 'hssk backup' / 'hssk restore' and point-in-time recovery.

Either on an existing embedded data dir (e.g. the one ``hssk bench hanoi --out DIR`` leaves),
which is only read — the restore goes to a scratch database, the recovery to a scratch cluster::

    python benchmarks/backup_restore.py --data /srv/bench/hanoi-1m

or on a synthetic database made on a server (persons and FHIR Observations, real indexes)::

    python benchmarks/backup_restore.py --server postgresql://127.0.0.1:5432/test \
        --persons 100000 --resources 1000000

Prints the database size, backup time and file size, restore time, and (``--data``) the
point-in-time recovery: base backup time, WAL written by the changes, unpack and replay time,
and the RPO of the WAL archiving settings shipped (``deploy/postgresql/hssk-archive.conf``),
measured: how long a change waits until its WAL segment is in the archive.
"""

from __future__ import annotations

import argparse
import os
import pwd
import re
import shutil
import subprocess
import tarfile
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from hssk.db import open_database
from hssk.db.digest import table_digests
from hssk.kernel.config import load_settings
from hssk.ops.backup import SKIP, create_backup, restore_backup
from hssk.ops.pgtools import _pgserver_bin
from hssk.ops.pitr import prepare_recovery

ARCHIVE_CONF = Path(__file__).parents[1] / "deploy" / "postgresql" / "hssk-archive.conf"
PASSPHRASE = b"bench"
MB = 2**20

FILL = """
INSERT INTO person (cccd, health_id, full_name, birth_date, sex, province_code, commune_code)
SELECT lpad(g::text, 12, '0'), lpad(g::text, 12, '0'), 'Nguyễn Văn ' || g,
       date '1950-01-01' + (g % 25000), CASE WHEN g % 2 = 0 THEN 'M' ELSE 'F' END, '01',
       lpad((g % 500)::text, 5, '0')
FROM generate_series(1, %(persons)s) g;
INSERT INTO resource (type, id, version, person_id, codes, effective, source_unit, last_updated,
                      body)
SELECT 'Observation', 'o' || g, 1, 1 + g %% %(persons)s, ARRAY['http://loinc.org|8480-6', '8480-6'],
       now() - make_interval(days => g %% 3000), '01001', now(),
       jsonb_build_object('resourceType', 'Observation', 'id', 'o' || g, 'status', 'final',
         'code', jsonb_build_object('coding', jsonb_build_array(jsonb_build_object(
            'system', 'http://loinc.org', 'code', '8480-6', 'display', 'Huyết áp tâm thu'))),
         'subject', jsonb_build_object('reference', 'Patient/mpi-' || (1 + g %% %(persons)s)),
         'effectiveDateTime', (now() - make_interval(days => g %% 3000))::text,
         'valueQuantity', jsonb_build_object('value', 100 + g %% 60, 'unit', 'mm[Hg]'))
FROM generate_series(1, %(resources)s) g;
INSERT INTO resource_locator (type, id, person_id) SELECT type, id, person_id FROM resource;
"""

# A day of changes for the recovery to replay: a share of the persons and of the resources
# rewritten (new row versions and index entries, as ingestion and edits make them).
CHANGES = """
UPDATE person SET full_name = full_name WHERE id %% %(every)s = 0;
UPDATE resource SET last_updated = last_updated WHERE person_id %% %(every)s = 0;
"""


@dataclass(frozen=True)
class BackupFigures:
    database_mb: float
    backup_s: float
    file_mb: float
    restore_s: float
    differing: list[str] | None  # tables whose rows differ after the restore (audit_event:
    # +1 row); None: not compared (--no-compare)


@dataclass(frozen=True)
class PitrFigures:
    base_backup_s: float
    base_mb: float
    wal_mb: float  # WAL the changes wrote, replayed by the recovery
    unpack_s: float
    replay_s: float
    archive_wait_s: float | None  # a change's wait until its segment was archived (the RPO
    # measured); None: archive_timeout did not switch the segment within 3 periods
    identical: bool | None
    rpo_limit_s: float


def archive_settings(path: Path = ARCHIVE_CONF) -> dict[str, str]:
    """The WAL archiving settings shipped for the server install."""
    found = re.findall(r"^(\w+)\s*=\s*(.+?)\s*$", path.read_text(), re.M)
    return {k: v.strip("'") for k, v in found}


def _mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / MB


def _compare(before: dict[str, tuple[int, str]], url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        after = table_digests(conn)
    return sorted(t for t in before.keys() | after.keys() if before.get(t) != after.get(t))


def backup_and_restore(
    url: str, state_dir: Path, restore_url: str, work: Path, compare: bool
) -> BackupFigures:
    """'hssk backup' of ``url`` (with the state files of ``state_dir``), then 'hssk restore'
    of the file into the database at ``restore_url``."""
    with psycopg.connect(url) as conn:
        size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
        before = table_digests(conn) if compare else {}
    t0 = time.perf_counter()
    path, _ = create_backup(url, state_dir, work / "b.hsskbak", PASSPHRASE)
    backup_s = time.perf_counter() - t0
    restored = work / "restored-data"
    restored.mkdir()
    t0 = time.perf_counter()
    restore_backup(path, restore_url, restored, PASSPHRASE)
    restore_s = time.perf_counter() - t0
    differing = _compare(before, restore_url) if compare else None
    return BackupFigures(size / MB, backup_s, path.stat().st_size / MB, restore_s, differing)


# --- point-in-time recovery on a scratch copy of an embedded cluster --------------------------

RUN_AS: dict[str, Any] = {"user": "pgserver"} if os.geteuid() == 0 else {}


def _own(path: Path) -> None:
    if RUN_AS:  # as root, pgserver runs PostgreSQL as its own user
        pw = pwd.getpwnam("pgserver")
        for p in [path, *path.rglob("*")]:
            os.chown(p, pw.pw_uid, pw.pw_gid)


def _pg(*args: str, timeout: float = 3600) -> None:
    subprocess.run([str(_pgserver_bin() / args[0]), *args[1:]], check=True, capture_output=True,
                   timeout=timeout, **RUN_AS)  # fmt: skip


@contextmanager
def _cluster(pgdata: Path, root: Path, port: int, log: Path) -> Iterator[str]:
    _pg("pg_ctl", "-D", str(pgdata), "-w", "-t", "3600", "-l", str(log), "start")
    try:
        yield f"postgresql://postgres@/postgres?host={root}&port={port}"
    finally:
        if (pgdata / "postmaster.pid").exists():
            _pg("pg_ctl", "-D", str(pgdata), "-w", "-t", "600", "-m", "fast", "stop")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_archived(conn: psycopg.Connection[Any], wal: Path, timeout: float) -> float | None:
    """Seconds until the segment holding the last change is in the archive, with no forced
    switch (the shipped archive_timeout decides); None when it is not there after ``timeout``,
    then the segment is switched by hand so that the recovery can go on."""
    (segment,) = conn.execute("SELECT pg_walfile_name(pg_current_wal_lsn())").fetchone()  # type: ignore[misc]
    t0 = time.monotonic()
    waited: float | None = None
    while not (wal / segment).exists():
        if waited is None and time.monotonic() - t0 > timeout:
            waited = -1.0
            conn.execute("SELECT pg_switch_wal()")
        if time.monotonic() - t0 > timeout + 600:
            raise TimeoutError(f"WAL segment {segment} not archived even after pg_switch_wal()")
        time.sleep(0.2)
    return None if waited is not None else time.monotonic() - t0


def point_in_time_recovery(source_url: str, dbname: str, work: Path, every: int,
                           compare: bool, rpo_wait: float | None) -> PitrFigures:  # fmt: skip
    """Base backup of the source, a scratch cluster from it archiving WAL with the shipped
    settings, a day of changes, a moment, one more change, then recovery to the moment."""
    root = work / "pitr"
    root.mkdir(mode=0o755)
    (root / "wal").mkdir()
    _own(root)
    host = psycopg.conninfo.conninfo_to_dict(source_url)
    t0 = time.perf_counter()
    subprocess.run(
        [str(_pgserver_bin() / "pg_basebackup"), "-h", str(host.get("host", "")), "-p",
         str(host.get("port", 5432)), "-U", str(host.get("user", "postgres")), "-D",
         str(root / "base"), "-Ft", "-X", "stream", "-c", "fast"],
        check=True, capture_output=True, timeout=3 * 3600,
    )  # fmt: skip
    base_s, base_mb = time.perf_counter() - t0, _mb(root / "base")
    # the scratch cluster: the source's files, archiving as a server install does
    copy = root / "copy"
    copy.mkdir(mode=0o700)
    for name, into in (("base.tar", copy), ("pg_wal.tar", copy / "pg_wal")):
        with tarfile.open(root / "base" / name) as tar:
            tar.extractall(into, filter="tar")
    port = _free_port()
    own_socket = f"\nport = {port}\nlisten_addresses = ''\nunix_socket_directories = '{root}'\n"
    shipped = archive_settings()
    command = shipped["archive_command"].replace("/var/backups/pg/wal", str(root / "wal"))
    with (copy / "postgresql.auto.conf").open("a") as conf:
        conf.write(f"{own_socket}wal_level = {shipped['wal_level']}\narchive_mode = {shipped['archive_mode']}\n"
                   f"archive_command = '{command}'\n"
                   f"archive_timeout = {shipped['archive_timeout']}\n")  # fmt: skip
    _own(root)
    with _cluster(copy, root, port, root / "copy.log") as admin:
        url = psycopg.conninfo.make_conninfo(admin, dbname=dbname)
        with psycopg.connect(url, autocommit=True) as conn:
            # a freshly started server's timed WAL switch waits for its first checkpoint
            # (runbook 5.2): without this, archive_timeout did not act for minutes
            conn.execute("CHECKPOINT")
            (start,) = conn.execute("SELECT pg_current_wal_lsn()").fetchone()  # type: ignore[misc]
            conn.execute(CHANGES.replace("%(every)s", str(every)).replace("%%", "%"))
            (wal_bytes,) = conn.execute(
                "SELECT pg_current_wal_lsn() - %s::pg_lsn", (start,)
            ).fetchone()  # type: ignore[misc]
            wanted = table_digests(conn) if compare else {}
            (moment,) = conn.execute("SELECT clock_timestamp()").fetchone()  # type: ignore[misc]
            time.sleep(1.0)
            conn.execute("DELETE FROM resource_locator WHERE person_id % 7 = 0")  # the damage
            limit = rpo_wait if rpo_wait is not None else 3 * float(shipped["archive_timeout"]) + 30
            archive_wait = _wait_archived(conn, root / "wal", limit)
    # the damaged copy has done its part; at a million persons keeping it beside the base
    # backup and the recovered cluster needed more disk than the machine had
    shutil.rmtree(copy)
    assert isinstance(moment, datetime)
    t0 = time.perf_counter()
    prepare_recovery(root / "base", root / "wal", moment, root / "recovered")
    unpack_s = time.perf_counter() - t0
    with (root / "recovered" / "postgresql.auto.conf").open("a") as conf:
        conf.write(own_socket)  # not the source's port and socket: it still runs
    _own(root / "recovered")
    t0 = time.perf_counter()
    with _cluster(root / "recovered", root, port, root / "recovered.log") as admin:
        url = psycopg.conninfo.make_conninfo(admin, dbname=dbname)
        with psycopg.connect(url, autocommit=True) as conn:
            while conn.execute("SELECT pg_is_in_recovery()").fetchone() == (True,):
                time.sleep(0.2)
            replay_s = time.perf_counter() - t0
            identical = table_digests(conn) == wanted if compare else None
    return PitrFigures(base_s, base_mb, float(wal_bytes) / MB, unpack_s, replay_s, archive_wait,
                       identical, limit)  # fmt: skip


def _state_dir(data: Path, into: Path) -> Path:
    """The data dir's own files (keys, secrets, anchors), not the cluster nor bench feeds."""
    into.mkdir()
    for entry in data.iterdir():
        if entry.is_file() and entry.name not in SKIP | {"stages.json"}:
            shutil.copy2(entry, into / entry.name)
    return into


def run_on_data(
    data: Path, every: int, compare: bool, pitr: bool, rpo_wait: float | None = None
) -> None:
    from hssk.db.embedded import start_embedded

    url, server = start_embedded(data)
    scratch = f"hssk_bench_restore_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{scratch}"')
    restore_url = psycopg.conninfo.make_conninfo(url, dbname=scratch)
    try:
        with tempfile.TemporaryDirectory(dir=data.parent, prefix=".hssk-bench-") as tmp:
            work = Path(tmp)
            work.chmod(0o755)
            figures = backup_and_restore(url, _state_dir(data, work / "state"), restore_url,
                                         work, compare)  # fmt: skip
            _print_backup(figures)
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
            # free the backup's disk before the recovery drill copies the cluster twice
            shutil.rmtree(work / "restored-data")
            (work / "b.hsskbak").unlink(missing_ok=True)
            if pitr:
                dbname = str(psycopg.conninfo.conninfo_to_dict(url).get("dbname", "postgres"))
                _print_pitr(point_in_time_recovery(url, dbname, work, every, compare, rpo_wait))
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
        server.cleanup()


def run_synthetic(server_url: str, persons: int, resources: int) -> None:
    name = f"hssk_bench_backup_{uuid.uuid4().hex[:6]}"
    scratch = f"{name}_restored"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
        conn.execute(f'CREATE DATABASE "{scratch}"')
    url = psycopg.conninfo.make_conninfo(server_url, dbname=name)
    try:
        db = open_database(load_settings(), url=url)
        t0 = time.perf_counter()
        with db.connection() as conn:
            conn.execute(FILL.replace("%(persons)s", str(persons)).replace(
                "%(resources)s", str(resources)).replace("%%", "%"))  # fmt: skip
            conn.execute("ANALYZE")
        db.close()
        print(f"filled in {time.perf_counter() - t0:.0f} s")
        with tempfile.TemporaryDirectory() as tmp:
            state = Path(tmp) / "state"
            state.mkdir()
            _print_backup(backup_and_restore(
                url, state, psycopg.conninfo.make_conninfo(server_url, dbname=scratch),
                Path(tmp), compare=True))  # fmt: skip
    finally:
        with psycopg.connect(server_url, autocommit=True) as conn:
            for db_name in (name, scratch):
                conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def _print_backup(f: BackupFigures) -> None:
    print(f"database {f.database_mb:,.0f} MB -> backup file {f.file_mb:,.0f} MB; "
          f"backup {f.backup_s:.1f} s, restore {f.restore_s:.1f} s (RTO of a nightly backup); "
          + ("tables not compared (--no-compare)" if f.differing is None else
             f"tables differing after restore: {', '.join(f.differing) or 'none'} "
             "(audit_event holds the restore's own event)"))  # fmt: skip


def _print_pitr(f: PitrFigures) -> None:
    shipped = archive_settings()
    print(f"PITR: base backup {f.base_backup_s:.1f} s ({f.base_mb:,.0f} MB); changes wrote "
          f"{f.wal_mb:,.0f} MB of WAL; unpack {f.unpack_s:.1f} s, replay to the moment "
          f"{f.replay_s:.1f} s (RTO = unpack + replay); identical at the moment: {f.identical}")  # fmt: skip
    timeout = shipped["archive_timeout"]
    if f.archive_wait_s is None:
        print(f"RPO: the shipped archive_timeout = {timeout} s did NOT switch the WAL segment "
              f"within {f.rpo_limit_s:.0f} s on this machine (switched by hand); check that the "
              "server's archiver runs and pg_stat_archiver.last_archived_time advances")  # fmt: skip
    else:
        print(f"RPO with the shipped settings (archive_timeout = {timeout} s): a change waited "
              f"{f.archive_wait_s:.0f} s until its WAL segment was archived")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = ap.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="An existing embedded data dir (only read).")
    source.add_argument("--server", help="URL of a PostgreSQL server (admin): synthetic data.")
    ap.add_argument("--persons", type=int, default=100_000, help="--server: persons made.")
    ap.add_argument("--resources", type=int, default=1_000_000, help="--server: resources made.")
    ap.add_argument("--change-every", type=int, default=20,
                    help="--data: the recovery replays a change of every Nth person (5%%).")  # fmt: skip
    ap.add_argument("--no-compare", action="store_true", help="Skip the table digests (faster).")
    ap.add_argument("--no-pitr", action="store_true", help="--data: backup and restore only.")
    ap.add_argument("--rpo-wait", type=float, default=None,
                    help="--data: seconds to wait for archive_timeout to archive a change "
                    "(default 3 x archive_timeout + 30).")  # fmt: skip
    args = ap.parse_args()
    if args.data:
        if not (args.data / "pg" / "PG_VERSION").exists():
            ap.error(f"{args.data} has no embedded cluster (pg/PG_VERSION)")
        run_on_data(args.data.resolve(), args.change_every, not args.no_compare, not args.no_pitr,
                    args.rpo_wait)  # fmt: skip
    else:
        run_synthetic(args.server, args.persons, args.resources)


if __name__ == "__main__":
    main()
