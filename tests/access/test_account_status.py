"""A disabled account's access tokens are refused at its next request in every process, not
once a per-process cache expires: the database announces each change of status (migration
0408) and each process forgets what it kept of that account."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from hssk.access import accounts
from hssk.access.tokens import issue
from hssk.app import create_app
from hssk.db import Database
from hssk.kernel.config import load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def client(clean_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(), clean_db)) as test_client:
        yield test_client


def _operator(*args: str) -> None:
    """``hssk access …`` in a process of its own, as the platform operator runs it."""
    done = subprocess.run([sys.executable, "-m", "hssk", "access", *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_disabled_account_is_refused_at_its_next_request(
    clean_db: Database, client: TestClient
) -> None:
    assert accounts.STATUS_TTL >= 30  # the statuses are kept: nothing here waits them out
    with clean_db.connection() as conn:
        accounts.create_unit(conn, "BV-TT", "hospital", "Bệnh viện trạng thái",
                             facility_code="09988")  # fmt: skip
        acc = accounts.create_account(conn, "his.tt", "system", unit_id="BV-TT",
                                      scopes=["system/*.read"])  # fmt: skip
    bearer = {"Authorization": f"Bearer {issue(load_settings(), acc.actor(), ttl=600)}"}
    assert client.get("/api/v1/me", headers=bearer).status_code == 200  # the status is kept

    _operator("disable", "his.tt", "--reason", "máy trạm bị mất")  # another process
    refused = client.get("/api/v1/me", headers=bearer)
    assert refused.status_code == 401, refused.text
    assert client.get("/api/v1/me", headers=bearer).status_code == 401  # and stays refused

    _operator("enable", "his.tt")
    assert client.get("/api/v1/me", headers=bearer).status_code == 200


def test_a_status_change_is_announced_whoever_makes_it(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        accounts.create_unit(conn, "BV-TT", "hospital", "Bệnh viện trạng thái",
                             facility_code="09988")  # fmt: skip
        acc = accounts.create_account(conn, "his.tt2", "system", unit_id="BV-TT")
    with clean_db.connection() as listener:
        listener.execute(f"LISTEN {accounts.STATUS_CHANNEL}")
        listener.commit()
        with clean_db.connection() as conn:
            conn.execute("UPDATE account SET phone = '0987000999' WHERE id = %s", (acc.id,))
            conn.commit()  # not a change of status: nothing said
            conn.execute(
                "UPDATE account SET active = false, disabled_at = now() WHERE id = %s", (acc.id,)
            )
        heard = [n.payload for n in listener.notifies(timeout=5, stop_after=1)]
    assert heard == [str(acc.id)]
