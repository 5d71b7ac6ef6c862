"""Fixtures of the access tests: the synthetic world (per module) and an HTTP client."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from access_world import World, build_world
from fastapi.testclient import TestClient

from hssk.app import create_app
from hssk.db import Database
from hssk.kernel.config import load_settings


@pytest.fixture(scope="module")
def world(db: Database) -> World:
    with db.connection() as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' "
            "AND tablename <> 'schema_migration'").fetchall()]  # fmt: skip
        conn.execute(
            ("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY").encode()
        )
    return build_world(db)


@pytest.fixture(scope="module")
def client(world: World) -> Iterator[TestClient]:
    app = create_app(load_settings(), world.db)
    with TestClient(app) as c:
        yield c
