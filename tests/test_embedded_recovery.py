"""The embedded PostgreSQL starts even when its recovery outlasts pgserver's 10-second start."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg

from hssk.db.embedded import start_embedded, stop_embedded

# a new process, as after a power cut: pgserver keeps the servers it started per process
RESTART = """
import sys, time
from pathlib import Path
import psycopg
from hssk.db.embedded import start_embedded
t = time.monotonic()
url, server = start_embedded(Path(sys.argv[1]), stop_on_exit=False)
took = time.monotonic() - t
with psycopg.connect(url, autocommit=True) as conn:
    print(conn.execute("SELECT v FROM kept").fetchone()[0])
    conn.execute("ALTER SYSTEM RESET restore_command")
print(round(took, 1))
"""


def test_start_waits_for_a_recovery_longer_than_pgserver_allows(tmp_path: Path) -> None:
    url, _ = start_embedded(tmp_path, stop_on_exit=False)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE kept (v text)")
        conn.execute("INSERT INTO kept VALUES ('Sở Y tế Hà Nội')")
        # a real slow start: archive recovery whose every WAL fetch takes 7 s and fails, as
        # a slow archive would (the server replays from pg_wal after each failed fetch); a
        # crash recovery of a big database is slow the same way, but needs gigabytes of WAL
        conn.execute("ALTER SYSTEM SET restore_command = 'sleep 7; exit 1'")
    assert stop_embedded(tmp_path)
    (tmp_path / "pg" / "recovery.signal").write_text("")
    try:
        out = subprocess.run(
            [sys.executable, "-c", RESTART, str(tmp_path)],
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
            capture_output=True, text=True, timeout=240,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        value, took = out.stdout.split("\n")[:2]
        assert value == "Sở Y tế Hà Nội"  # attached to the server that went on starting
        assert float(took) > 10, "the start did not outlast pgserver's own wait: nothing tested"
    finally:
        stop_embedded(tmp_path)
