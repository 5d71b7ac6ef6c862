"""Time 'hssk backup' and 'hssk restore' on a synthetic database of a chosen size.

    python benchmarks/backup_restore.py --server postgresql://127.0.0.1:5432/test \
        --persons 100000 --resources 1000000

Makes a fresh database on the server, fills it with SQL (persons and FHIR Observations like
a book's, with the real indexes), backs it up, restores it, prints sizes and seconds, drops it.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from hssk.db import open_database
from hssk.db.digest import table_digests
from hssk.kernel.config import load_settings
from hssk.ops.backup import create_backup, restore_backup

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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--server", required=True, help="URL of a PostgreSQL server (admin).")
    ap.add_argument("--persons", type=int, default=100_000)
    ap.add_argument("--resources", type=int, default=1_000_000)
    args = ap.parse_args()
    name = f"hssk_bench_backup_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(args.server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = psycopg.conninfo.make_conninfo(args.server, dbname=name)
    try:
        db = open_database(load_settings(), url=url)
        t0 = time.perf_counter()
        with db.connection() as conn:
            conn.execute(FILL.replace("%(persons)s", str(args.persons)).replace(
                "%(resources)s", str(args.resources)).replace("%%", "%"))  # fmt: skip
            conn.execute("ANALYZE")
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]  # type: ignore[index]
        print(f"filled in {time.perf_counter() - t0:.0f} s: {size / 2**20:,.0f} MB")
        with db.connection() as conn:
            before = table_digests(conn)
        db.close()
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "data"
            data.mkdir()
            t0 = time.perf_counter()
            path, _ = create_backup(url, data, Path(tmp) / "b.hsskbak", b"bench")
            t_backup = time.perf_counter() - t0
            t0 = time.perf_counter()
            restore_backup(path, url, data, b"bench")
            t_restore = time.perf_counter() - t0
            file_mb = path.stat().st_size / 2**20
        with psycopg.connect(url) as conn:
            same = table_digests(conn) == before
        print(f"database {size / 2**20:,.0f} MB -> backup file {file_mb:,.0f} MB; "
              f"backup {t_backup:.0f} s, restore {t_restore:.0f} s; identical after: {same}")  # fmt: skip
    finally:
        with psycopg.connect(args.server, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
