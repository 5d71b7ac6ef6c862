"""The embedded PostgreSQL keeps its data across a stop and a start in the same directory."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
from hssk.config import load_settings
from hssk.db import open_database
from hssk.records import save, read
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
