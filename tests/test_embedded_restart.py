"""The embedded PostgreSQL keeps its data across a stop and a start in the same directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from hssk.kernel.config import load_settings
from hssk.db import open_database
from hssk.records import save, read
from hssk import wiring
wiring.start()  # as every HSSK process does when it starts
db = open_database(load_settings())
with db.connection() as conn:
    if sys.argv[1] == "write":
        save(conn, {"resourceType": "Organization", "id": "syt01", "name": "Sở Y tế Hà Nội"})
    else:
        print(read(conn, "Organization", "syt01").body["name"])
db.close()
"""


def test_data_survives_restart(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "HSSK_DATABASE_URL"}
    env["HSSK_DATA_DIR"] = str(tmp_path / "data")
    # Each run is its own process: the embedded server starts, and stops when it exits.
    subprocess.run([sys.executable, "-c", SCRIPT, "write"], env=env, check=True, timeout=120)
    pidfile = tmp_path / "data" / "pg" / "postmaster.pid"
    assert not pidfile.exists(), "the embedded server should stop with its last user"
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, "read"], env=env, check=True, timeout=120,
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.stdout.strip() == "Sở Y tế Hà Nội"


TUNED = """
from hssk.kernel.config import load_settings
from hssk.db import open_database
db = open_database(load_settings())
with db.connection() as conn:
    print(*(conn.execute(f"SHOW {n}").fetchone()[0] for n in ("max_wal_size", "shared_buffers")))
db.close()
"""


def test_new_embedded_server_is_tuned_for_loading(tmp_path: Path) -> None:
    """A new data directory gets the settings for bulk loads (fewer checkpoints, a cache sized
    to the machine) from its first start on, and keeps them after a restart."""
    import psutil

    from hssk.db.embedded import settings_for

    env = {k: v for k, v in os.environ.items() if k != "HSSK_DATABASE_URL"}
    env["HSSK_DATA_DIR"] = str(tmp_path / "data")
    want = settings_for(psutil.virtual_memory().total)
    for _ in range(2):
        out = subprocess.run(
            [sys.executable, "-c", TUNED], env=env, check=True, timeout=120,
            capture_output=True, text=True,
        )  # fmt: skip
        wal, shared = out.stdout.split()
        assert wal == want["max_wal_size"]
        assert shared == want["shared_buffers"].replace("2048MB", "2GB").replace("1024MB", "1GB")


def test_settings_scale_with_memory_within_bounds() -> None:
    from hssk.db.embedded import settings_for

    small, big = settings_for(1 * 2**30), settings_for(256 * 2**30)
    assert small["shared_buffers"] == "128MB" and big["shared_buffers"] == "2048MB"
    assert small["maintenance_work_mem"] == "64MB" and big["maintenance_work_mem"] == "1024MB"


def test_stop_embedded_stops_a_server_still_held(tmp_path: Path) -> None:
    """Benchmarks stop their embedded server even when its users were terminated."""
    from hssk.db.embedded import start_embedded, stop_embedded

    start_embedded(tmp_path / "data", stop_on_exit=False)
    pidfile = tmp_path / "data" / "pg" / "postmaster.pid"
    assert pidfile.exists()
    assert stop_embedded(tmp_path / "data") is True
    assert not pidfile.exists()
    assert stop_embedded(tmp_path / "data") is False


TOGETHER = """
import sys, time
from hssk.kernel.config import load_settings
from hssk.db import open_database
db = open_database(load_settings())
for _ in range(20):  # keep using it while the other process starts (and tunes) the server
    with db.connection() as conn:
        conn.execute("SELECT 1")
    time.sleep(0.05)
db.close()
"""


def test_processes_starting_a_new_server_together_all_keep_working(tmp_path: Path) -> None:
    """Two processes (uvicorn workers) start a new embedded server at once: the one that
    tunes and restarts it does so before the other connects (a restart under a connected
    worker reset its clients' connections)."""
    env = {k: v for k, v in os.environ.items() if k != "HSSK_DATABASE_URL"}
    env["HSSK_DATA_DIR"] = str(tmp_path / "data")
    procs = [
        subprocess.Popen([sys.executable, "-c", TOGETHER], env=env, stderr=subprocess.PIPE)
        for _ in range(3)
    ]
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0, err.decode()[-2000:]
