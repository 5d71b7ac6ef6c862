"""`hssk demo` stops its embedded PostgreSQL when it is stopped (Ctrl-C, kill, closed terminal)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hssk.ops.lifecycle import running

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo_dir() -> Iterator[Path]:
    """One data dir for the module: the district is loaded once, later starts reuse it."""
    path = Path(tempfile.mkdtemp(prefix="hssk-demo-"))
    path.chmod(0o755)  # see tests/ops/conftest.py: data_root
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start_demo(data_dir: Path, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "HSSK_DATABASE_URL"}
    env |= {"HSSK_DATA_DIR": str(data_dir), "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "hssk", "demo", "--persons", "40", "--port", str(port)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc, port
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    pytest.fail("demo did not come up:\n" + log.read_text()[-3000:])


def _stop(proc: subprocess.Popen[bytes], sig: int) -> None:
    proc.send_signal(sig)
    proc.wait(timeout=60)


def test_demo_stops_its_database_on_hangup_terminate_and_ctrl_c(demo_dir: Path) -> None:
    data, log = demo_dir / "data", demo_dir / "demo.log"
    # A closed terminal (SIGHUP) used to kill the process without stopping the server.
    proc, _ = _start_demo(data, log)
    assert running(data)
    _stop(proc, signal.SIGHUP)
    assert not running(data), log.read_text()[-2000:]
    assert "PostgreSQL nhúng đã dừng" in log.read_text()
    # `kill` (SIGTERM): uvicorn shuts down, then the process must still run its clean-up.
    proc, _ = _start_demo(data, log)
    _stop(proc, signal.SIGTERM)
    assert not running(data), log.read_text()[-2000:]
    # A process killed earlier leaves its pid in pgserver's list: it must not keep it alive.
    proc, _ = _start_demo(data, log)
    handles = data / "pg" / ".handle_pids.json"
    dead = subprocess.Popen(["true"])
    dead.wait()
    handles.write_text(json.dumps([*json.loads(handles.read_text()), dead.pid]))
    _stop(proc, signal.SIGINT)
    assert not running(data), log.read_text()[-2000:]


def test_demo_says_when_another_process_keeps_the_database(demo_dir: Path) -> None:
    data, log = demo_dir / "data", demo_dir / "demo.log"
    proc, _ = _start_demo(data, log)
    handles = data / "pg" / ".handle_pids.json"
    handles.write_text(json.dumps([*json.loads(handles.read_text()), os.getpid()]))
    try:
        _stop(proc, signal.SIGINT)
        assert running(data)
        assert "hssk db stop" in log.read_text()
    finally:
        from hssk.db.embedded import stop_embedded

        stop_embedded(data)
    assert not running(data)
