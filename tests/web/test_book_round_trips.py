"""Round trips to the database per book API request, counted on the wire (libpq's trace of the
one connection the app may use), so that a change adding one shows here. Each request is
still decided by the policy and audited."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from psycopg import pq

from hssk.access import Actor
from hssk.access import accounts as acc
from hssk.access.tokens import issue
from hssk.app import create_app
from hssk.db import Database, open_database
from hssk.kernel.config import load_settings
from hssk.web.demo import Family

PARTNER_UNIT = "VNEID-RT"

# A partner: the decision, the golden record with its merged ids, the resources; the audit
# event: BEGIN with the chain lock and head, then the insert with COMMIT (pipelined).
PARTNER_READS, AUDIT_WRITE = 3, 2
# The citizen's own book reads their own entries and their children too.
OWN_READS = PARTNER_READS + 2


@pytest.fixture
def one_connection(db: Database) -> Iterator[Database]:
    """The store through a pool of one connection: every statement of a request is on it."""
    settings = replace(load_settings(), pool_min=1, pool_max=1)
    single = open_database(settings, url=db.url, run_migrations=False)
    yield single
    single.close()


@contextmanager
def wire(database: Database) -> Iterator[list[str]]:
    """The frontend's messages on the pool's connection while the block runs (simple queries
    and the Syncs of the extended protocol: one round trip each)."""
    sent: list[str] = []
    with tempfile.TemporaryFile() as out:
        with database.connection() as conn:
            conn.pgconn.trace(out.fileno())
            conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            yield sent
        finally:
            with database.connection() as conn:
                conn.pgconn.untrace()
            out.seek(0)
            sent.extend(_round_trips(out.read().decode(errors="replace")))


def _round_trips(trace: str) -> list[str]:
    """The statements of each round trip in a libpq trace: a simple query, or what was bound
    before a Sync (a prepared statement by the text its Parse gave)."""
    texts: dict[str, str] = {}
    trips: list[str] = []
    pending: list[str] = []
    for message in re.split(r"^(?=[FB]\t\d+\t)", trace, flags=re.MULTILINE):
        if not message.startswith("F\t"):  # the backend's answers
            continue
        _, _, kind, *rest = message.rstrip("\n").split("\t", 3)  # a text may span lines
        quoted = re.findall(r'"((?:[^"]|"")*)"', rest[0]) if rest else []
        if kind == "Query":
            trips.append(" ".join(quoted[0].split())[:70])
        elif kind == "Parse":
            texts[quoted[0]] = " ".join(quoted[1].split())[:70]
        elif kind == "Bind":
            pending.append(texts.get(quoted[1], "?"))
        elif kind == "Sync":
            trips.append(" | ".join(pending))
            pending = []
    return trips


def _audited(database: Database, actor: str, person_id: int) -> list[tuple[str, str]]:
    with database.connection() as conn:
        rows = conn.execute(
            "SELECT outcome, detail->>'view' FROM audit_event WHERE actor = %s AND person_id = %s",
            (actor, person_id),
        ).fetchall()
    return [(r[0], r[1]) for r in rows]


def _get(database: Database, path: str, actor: Actor) -> tuple[int, list[str]]:
    app = create_app(load_settings(), database)
    headers = {"Authorization": f"Bearer {issue(load_settings(), actor)}"}
    with TestClient(app) as client:
        assert client.get(path, headers=headers).status_code == 200  # warm: caches, plans
        with wire(database) as sent:
            status = client.get(path, headers=headers).status_code
    return status, sent


def test_a_partners_book_takes_five_round_trips_and_is_audited(
    one_connection: Database, family: Family
) -> None:
    with one_connection.connection() as conn:
        acc.create_unit(conn, PARTNER_UNIT, "external", "VNeID (round trips)")
    partner = Actor("rt-partner", "system", unit_id=PARTNER_UNIT,
                    scopes=frozenset({"system/*.read"}), client="vneid")  # fmt: skip
    status, sent = _get(one_connection, f"/api/v1/book/{family.mother}?v=1", partner)
    assert status == 200
    assert len(sent) == PARTNER_READS + AUDIT_WRITE, sent
    assert _audited(one_connection, "rt-partner", family.mother) == [("allow", "health-book")] * 2


def test_a_citizens_own_book_takes_seven_round_trips_and_is_audited(
    one_connection: Database, family: Family
) -> None:
    with one_connection.connection() as conn:
        account = acc.find_account(conn, f"citizen.{family.mother}")
    assert account is not None
    citizen = account.actor()
    status, sent = _get(one_connection, "/api/v1/me/book?v=1", citizen)
    assert status == 200
    assert len(sent) == OWN_READS + AUDIT_WRITE, sent
    assert ("allow", "health-book") in _audited(one_connection, citizen.account_id, family.mother)
