"""The person-keyed store spread over two PostgreSQL servers without a schema change: some
hash partitions are foreign tables (postgres_fdw) on a second server, and one person's book,
FHIR read, write, search and $everything go to that server and nowhere else.

Two clusters are started from the machine's PostgreSQL 15 (the embedded server ships no
contrib extensions): the platform's own, and the one holding the remote partitions."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient

from hssk.access.actor import Actor
from hssk.access.tokens import issue
from hssk.app import create_app
from hssk.db import Database, open_database
from hssk.kernel.config import load_settings
from hssk.records import NewResource, bulk_upsert, store
from hssk.registry import SourceRecord, link
from hssk.web.backend import book_data

pytestmark = pytest.mark.slow
BIN = Path("/usr/lib/postgresql/15/bin")
FDW = Path("/usr/share/postgresql/15/extension/postgres_fdw.control")
RUN_AS: dict[str, Any] = {"user": "postgres"} if os.geteuid() == 0 else {}
REMOTE = 1  # the hash partition (remainder) placed on the second server
MODULUS = 4


def _pg(*args: str) -> None:
    subprocess.run([str(BIN / args[0]), *args[1:]], check=True, capture_output=True,
                   timeout=120, **RUN_AS)  # fmt: skip


def _cluster(root: Path, name: str) -> str:
    """Start a cluster in ``root/name``; its URL (Unix socket in ``root``)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pgdata = root / name
    _pg("initdb", "-D", str(pgdata), "--auth=trust", "-U", "postgres", "--encoding=utf8")
    with (pgdata / "postgresql.conf").open("a") as conf:
        conf.write(f"port = {port}\nlisten_addresses = ''\nunix_socket_directories = '{root}'\n")
    _pg("pg_ctl", "-D", str(pgdata), "-w", "-l", str(root / f"{name}.log"), "start")
    return f"postgresql://postgres@/postgres?host={root}&port={port}"


@pytest.fixture
def two_servers() -> Iterator[tuple[str, str]]:
    if not (BIN / "initdb").exists() or not FDW.exists():
        pytest.skip(f"PostgreSQL 15 server binaries ({BIN}) or postgres_fdw ({FDW}) not installed")
    root = Path(tempfile.mkdtemp(prefix="hssk-fdw-"))
    root.chmod(0o755)
    if RUN_AS:
        pw = pwd.getpwnam(RUN_AS["user"])
        os.chown(root, pw.pw_uid, pw.pw_gid)
    started, urls = [], []
    try:
        for name in ("main", "shard"):
            urls.append(_cluster(root, name))
            started.append(root / name)
        yield urls[0], urls[1]
    finally:
        for pgdata in started:
            _pg("pg_ctl", "-D", str(pgdata), "-w", "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _distribute(main: str, shard: str) -> None:
    """Make partition REMOTE of both person-keyed tables a foreign table on ``shard``."""
    info = psycopg.conninfo.conninfo_to_dict(shard)
    with psycopg.connect(main, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION postgres_fdw")
        conn.execute(
            "CREATE SERVER shard FOREIGN DATA WRAPPER postgres_fdw"
            f" OPTIONS (host '{info['host']}', port '{info['port']}', dbname 'postgres')"
        )
        conn.execute("CREATE USER MAPPING FOR CURRENT_USER SERVER shard OPTIONS (user 'postgres')")
        for table in ("resource", "resource_history"):
            part = f"{table}_p{REMOTE:02d}"
            # the same table, made on the shard from the main server's definition
            cols = conn.execute(
                """SELECT string_agg(format('%%I %%s', attname, format_type(atttypid, atttypmod))
                                     || CASE WHEN attnotnull THEN ' NOT NULL' ELSE '' END, ', '
                                     ORDER BY attnum)
                   FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0
                     AND NOT attisdropped""",
                (part,),
            ).fetchone()[0]  # type: ignore[index]
            with psycopg.connect(shard, autocommit=True) as remote:
                remote.execute(f"CREATE TABLE {part} ({cols})".encode())
                remote.execute(f"CREATE INDEX ON {part} (person_id, type, id)".encode())
            conn.execute(f"ALTER TABLE {table}_by_person DETACH PARTITION {part}".encode())
            conn.execute(f"DROP TABLE {part}".encode())
            conn.execute(
                f"""CREATE FOREIGN TABLE {part} PARTITION OF {table}_by_person
                    FOR VALUES WITH (MODULUS {MODULUS}, REMAINDER {REMOTE})
                    SERVER shard OPTIONS (table_name '{part}')""".encode()
            )


def _remote_person(conn: Any) -> tuple[int, int]:
    """Two persons: one whose partition is on the shard, one kept on the main server."""
    ids = [
        link(
            conn,
            SourceRecord(
                "population",
                str(i),
                f"Mai Thị {n}",
                f"19{60 + i}-02-03",
                "F",
                cccd=f"0013600000{i:02d}",
            ),
        ).person_id
        for i, n in enumerate(("Lan", "Huệ", "Cúc", "Đào", "Mận", "Sen", "Quế", "Thu"))
    ]
    where = {
        pid: conn.execute(
            "SELECT satisfies_hash_partition('resource_by_person'::regclass, %s, %s, %s::bigint)",
            (MODULUS, REMOTE, pid),
        ).fetchone()[0]
        for pid in ids
    }
    remote = [p for p in ids if where[p]]
    local = [p for p in ids if not where[p]]
    assert remote and local, "eight persons all hashed to one side"
    return remote[0], local[0]


def _obs(person: int, value: float) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        "subject": {"reference": f"Patient/mpi-{person}"},
        "effectiveDateTime": "2025-03-04T08:00:00+07:00",
        "valueQuantity": {"value": value, "unit": "mmHg"},
    }


def _on(url: str, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(sql.encode(), args).fetchall()


def test_a_persons_data_lives_and_is_served_on_the_other_server(
    two_servers: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    main, shard = two_servers
    monkeypatch.setenv("HSSK_STORE_PARTITIONS", str(MODULUS))
    db: Database = open_database(load_settings(), url=main)
    try:
        _distribute(main, shard)
        with db.connection() as conn:
            conn.execute("INSERT INTO unit (id, kind, name) VALUES ('BHXH-VN', 'external', 'BHXH')")
            far, near = _remote_person(conn)
        system = Actor(account_id="test-system", kind="system", unit_id="BHXH-VN",
                       scopes=frozenset({"system/*.read", "system/*.write"}), client="tests")  # fmt: skip
        headers = {"Authorization": f"Bearer {issue(load_settings(), system)}"}
        with TestClient(create_app(load_settings(), db)) as client:
            # FHIR writes: a create, then an update (its first version goes to history)
            made = client.post("/fhir/Observation", json=_obs(far, 130), headers=headers)
            assert made.status_code == 201, made.text
            rid = made.json()["id"]
            body = made.json() | {"valueQuantity": {"value": 135, "unit": "mmHg"}}
            r = client.put(f"/fhir/Observation/{rid}", json=body, headers=headers)
            assert r.status_code == 200 and r.json()["meta"]["versionId"] == "2", r.text
            assert client.post("/fhir/Observation", json=_obs(near, 90), headers=headers).is_success
            # the ingestion path: COPY of new rows and the set-based update of stored ones
            with db.connection() as conn:
                for value in (140, 141):
                    res = bulk_upsert(conn, [NewResource(_obs(far, value), person_id=far,
                                                         source_key=f"dose-{far}")])  # fmt: skip
                    assert sum(res.created.values()) + sum(res.updated.values()) == 1

            # the rows are on the shard, none of that person's on the main server
            assert _on(shard, "SELECT count(*) FROM resource_p01 WHERE person_id = %s", far) == [
                (2,)
            ]
            assert _on(shard, "SELECT count(*) FROM resource_history_p01 WHERE person_id = %s",
                       far) == [(2,)]  # fmt: skip
            local = _on(main, """SELECT count(*) FROM resource r JOIN pg_class c ON c.oid = r.tableoid
                                 WHERE c.relkind = 'r' AND r.person_id = %s""", far)  # fmt: skip
            assert local == [(0,)]
            assert _on(shard, "SELECT count(*) FROM resource_p01 WHERE person_id = %s", near) == [
                (0,)
            ]

            # FHIR read, vread, search and $everything are answered from the shard
            r = client.get(f"/fhir/Observation/{rid}", headers=headers)
            assert r.status_code == 200 and r.json()["valueQuantity"]["value"] == 135
            assert client.get(f"/fhir/Observation/{rid}/_history/1", headers=headers).json()[
                "valueQuantity"]["value"] == 130  # fmt: skip
            found = client.get(f"/fhir/Observation?patient=mpi-{far}", headers=headers).json()
            assert found["total"] == 2
            every = client.get(f"/fhir/Patient/mpi-{far}/$everything", headers=headers).json()
            values = sorted(e["resource"]["valueQuantity"]["value"] for e in every["entry"]
                            if e["resource"]["resourceType"] == "Observation")  # fmt: skip
            assert values == [135, 141]
        with db.connection() as conn:
            book = book_data(conn, far, self_entries=False)
            assert book is not None and len(book.resources) == 2
            # the book's query reads the foreign partition only
            sql, args = store.everything_query([far])
            plan = "\n".join(r[0] for r in conn.execute(b"EXPLAIN (VERBOSE) " + sql, args))
            assert "Foreign Scan on public.resource_p01" in plan, plan
            assert "resource_p00" not in plan and "resource_none" not in plan, plan
            sql, args = store.everything_query([near])
            plan = "\n".join(r[0] for r in conn.execute(b"EXPLAIN " + sql, args))
            assert "Foreign Scan" not in plan, plan
    finally:
        db.close()
