"""Fixtures of the web tests: the demo family in the test database and the app on a real port."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import uvicorn

from hssk.app import create_app
from hssk.db import Database
from hssk.kernel.config import load_settings
from hssk.web.demo import Family, seed_family


@dataclass(frozen=True)
class Server:
    url: str
    family: Family
    db: Database


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# Module scope: other components' tests may empty every table (clean_db) between modules;
# seeding is idempotent and quick, so each module gets its family back.
@pytest.fixture(scope="module")
def family(db: Database) -> Family:
    with db.connection() as conn:
        return seed_family(conn, tag="web")


@pytest.fixture(scope="module")
def server(db: Database, family: Family) -> Iterator[Server]:
    """The whole application (every component's router) served by uvicorn in a thread."""
    app = create_app(load_settings(), db=db)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    yield Server(f"http://127.0.0.1:{port}", family, db)
    srv.should_exit = True
    thread.join(timeout=10)
