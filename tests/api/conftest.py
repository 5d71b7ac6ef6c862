from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from hssk.access.actor import Actor
from hssk.access.tokens import issue
from hssk.app import create_app
from hssk.db import Database
from hssk.kernel.config import load_settings

NATIONAL_UNIT = "BHXH-VN"


@pytest.fixture
def client(clean_db: Database) -> Iterator[TestClient]:
    with clean_db.connection() as conn:
        conn.execute(
            "INSERT INTO unit (id, kind, name) VALUES (%s, 'external', %s)",
            (NATIONAL_UNIT, "Cơ sở dữ liệu quốc gia về bảo hiểm"),
        )
    app = create_app(load_settings(), clean_db)
    with TestClient(app) as c:
        yield c


def _token_for(actor: Actor) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue(load_settings(), actor)}"}


@pytest.fixture
def token_for() -> Callable[[Actor], dict[str, str]]:
    """Authorization headers for a given actor."""
    return _token_for


@pytest.fixture
def system_headers() -> dict[str, str]:
    """A national system client allowed to read and write everything by its scopes."""
    actor = Actor(
        account_id="test-system",
        kind="system",
        unit_id=NATIONAL_UNIT,
        scopes=frozenset({"system/*.read", "system/*.write", "system/Sensitive.read"}),
        client="tests",
    )
    return _token_for(actor)


@pytest.fixture
def platform_headers() -> dict[str, str]:
    """The platform operator (CLI/integration on the server itself): every record."""
    actor = Actor(
        account_id="platform",
        kind="system",
        scopes=frozenset({"system/*.read", "system/*.write"}),
        client="tests",
    )
    return _token_for(actor)
