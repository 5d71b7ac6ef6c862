"""Fixtures of the operations tests."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture
def data_root() -> Iterator[Path]:
    """A directory for embedded servers outside pytest's base temp: running as root, the
    server runs as another user, and every pytest session resets that base to mode 700."""
    path = Path(tempfile.mkdtemp(prefix="hssk-ops-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)
