"""Fixtures of the operations tests."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from hssk.access.audit_cli import ANCHOR_FILE
from hssk.kernel.config import load_settings


@pytest.fixture
def data_root() -> Iterator[Path]:
    """A directory for embedded servers outside pytest's base temp: running as root, the
    server runs as another user, and every pytest session resets that base to mode 700."""
    path = Path(tempfile.mkdtemp(prefix="hssk-ops-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def drill_url(database_url: str) -> Iterator[str]:
    """A database of its own on the test server: a restore replaces the whole schema."""
    name = f"hssk_drill_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield psycopg.conninfo.make_conninfo(database_url, dbname=name)
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private data dir (HSSK_DATA_DIR) with its secret and an audit anchor file."""
    d = tmp_path / "data"
    d.mkdir(mode=0o700)
    monkeypatch.setenv("HSSK_DATA_DIR", str(d))
    monkeypatch.delenv("HSSK_SECRET_KEY", raising=False)
    load_settings().secret_key()  # made with mode 600
    (d / ANCHOR_FILE).write_text("{}")
    (d / ANCHOR_FILE).chmod(0o600)
    return d
