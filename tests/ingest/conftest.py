"""Fixtures of the ingest tests: registered facilities and small synthetic hồ sơ."""

from __future__ import annotations

import pytest

from hssk.db import Database
from tests.factories.samples import FACILITIES


def register_facilities(db: Database) -> None:
    with db.connection() as conn:
        for code in FACILITIES:
            conn.execute(
                "INSERT INTO unit (id, kind, name, facility_code) VALUES (%s, 'hospital', %s, %s)"
                " ON CONFLICT DO NOTHING",
                (f"F{code}", f"Bệnh viện {code}", code),
            )


@pytest.fixture
def idb(clean_db: Database) -> Database:
    """An empty database with the test facilities registered."""
    register_facilities(clean_db)
    return clean_db
