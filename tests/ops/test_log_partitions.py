"""The append-only logs partitioned by UTC month: a month-bounded audit query reads one
partition, the daily job makes months ahead and empties the default partitions (which keep
rows of months not made yet), the outbox retention drops a whole delivered month, and the
upgrade of unpartitioned logs keeps every row, id, sequence, trigger and the audit chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner

from hssk.access.actor import Actor
from hssk.access.audit import _event, _recent_last_hash, _write, record, verify_chain
from hssk.cli import app
from hssk.db import Database, monthly, online
from hssk.db.digest import columns, table_digests
from hssk.db.migrate import discover, migrate
from hssk.monitor import rollups
from hssk.ops.doctor import OK, WARN, check_log_partitions
from hssk.ops.tasks import LOGS, log_partitions
from hssk.share import outbox

NEW = {"0001", "0304", "0405", "0543"}  # the migrations that partition the logs
PLATFORM = Actor(account_id="platform", kind="system", roles=frozenset({"platform"}))


def _month(at: datetime, shift: int = 0) -> datetime:
    """The start of ``at``'s UTC month, ``shift`` months on."""
    n = at.year * 12 + at.month - 1 + shift
    return datetime(n // 12, n % 12 + 1, 1, tzinfo=UTC)


def _now(conn: psycopg.Connection[Any]) -> datetime:
    return conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index,no-any-return]


def _scanned(conn: psycopg.Connection[Any], query: str) -> set[str]:
    """The tables a query's plan reads."""
    (plan,) = conn.execute(f"EXPLAIN (FORMAT JSON) {query}".encode()).fetchone()  # type: ignore[misc]
    found: set[str] = set()

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node:
            found.add(node["Relation Name"])
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return found


def _events(months_ago: list[int], now: datetime) -> list[dict[str, Any]]:
    """Audit events dated in earlier months (as a platform running since then wrote them)."""
    out = []
    for i, back in enumerate(months_ago):
        ev = _event(PLATFORM, "read", "allow", "treatment", None, "Patient", str(i), i + 1,
                          {"n": i})  # fmt: skip
        ev["at"] = _month(now, -back) + timedelta(days=3, minutes=i)
        out.append(ev)
    return out


def test_a_month_bounded_audit_query_reads_one_partition(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        now = _now(conn)
        monthly.ensure(conn, "audit_event", since=_month(now, -3))
        start, end = _month(now), _month(now, 1)
        read = _scanned(
            conn,
            f"SELECT seq, actor, action FROM audit_event WHERE person_id = 7 "
            f"AND at >= '{start.isoformat()}' AND at < '{end.isoformat()}'",
        )
        assert read == {f"audit_event_{start:%Y%m}"}
        # the chain's head is looked for in this month and the previous one only
        head = _scanned(conn, _recent_last_hash())
        assert f"audit_event_{_month(now, -3):%Y%m}" not in head
        assert f"audit_event_{start:%Y%m}" in head


def test_the_job_makes_months_ahead_and_empties_the_default_partitions(
    clean_db: Database,
) -> None:
    with clean_db.connection() as conn:
        now = _now(conn)
        this = f"audit_event_{_month(now):%Y%m}"
        ahead = f"outbox_{_month(now, 2):%Y%m}"
        # the job did not run for months: this month's audit partition and the outbox's last
        # one ahead are missing — rows of those months still go in, to the default partitions
        conn.execute(f"DROP TABLE {this}, {ahead}")
        record(conn, PLATFORM, "read", outcome="allow", person_id=1)
        record(conn, PLATFORM, "read", outcome="deny", person_id=2)
        conn.execute(
            "INSERT INTO outbox (partner, person_id, idempotency_key, created_at) "
            "VALUES ('bhxh', 1, 'later', %s)",
            (_month(now, 2) + timedelta(days=1),),
        )
        assert monthly.stray_rows(conn, "audit_event") == 2
        finding = check_log_partitions(conn)
        assert finding.status == WARN and "audit_event 2" in finding.en
    made = log_partitions(clean_db)
    assert made["audit_event"] == 1 and made["outbox"] == 1 and made["audit_event_moved"] == 2
    with clean_db.connection() as conn:
        assert all(monthly.stray_rows(conn, t) == 0 for t in LOGS)
        where = {r[0] for r in conn.execute("SELECT tableoid::regclass::text FROM audit_event")}
        assert where == {this}
        assert conn.execute(
            "SELECT tableoid::regclass::text FROM outbox WHERE idempotency_key = 'later'"
        ).fetchone() == (ahead,)
        for table in LOGS:  # this month and the next two, at least
            starts = {m.start for m in monthly.months(conn, table)}
            assert {_month(now, k) for k in range(3)} <= starts
        assert check_log_partitions(conn).status == OK
        # rows moved out of the default partition keep the chain
        assert verify_chain(conn, anchor=False).ok
        record(conn, PLATFORM, "read", outcome="allow", person_id=3)
        report = verify_chain(conn, anchor=False)
        assert report.ok and report.checked == 3


def test_outbox_retention_drops_a_delivered_month(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        now = _now(conn)
        old, older = _month(now, -3), _month(now, -2)
        monthly.ensure(conn, "outbox", since=old)
        for created, status, n in ((old, "delivered", 5), (older, "delivered", 3),
                                   (older, "dead", 1), (now, "delivered", 2)):  # fmt: skip
            conn.execute(
                """INSERT INTO outbox (partner, person_id, idempotency_key, status, created_at,
                                       delivered_at, subject)
                   SELECT 'gw', g, %s || g, %s, %s, %s, 'Encounter/' || g
                   FROM generate_series(1, %s) g""",
                (f"{created:%Y%m}{status}:", status, created, created, n),
            )
        conn.execute(
            "INSERT INTO outbox_key (idempotency_key, id, created_at) "
            "SELECT idempotency_key, id, created_at FROM outbox"
        )
        assert outbox.purge(conn, 30) == 5  # the whole oldest month, in one drop
        names = {m.name for m in monthly.months(conn, "outbox")}
        assert f"outbox_{old:%Y%m}" not in names
        assert f"outbox_{older:%Y%m}" in names  # a dead letter keeps its month
        assert outbox.purge(conn, 30) == 3  # there, the delivered rows are deleted
        assert outbox.purge(conn, 30) == 0
        left = dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY 1").fetchall())
        assert left == {"dead": 1, "delivered": 2}
        # the keys went with their events; the monitor's counters match a recount
        (keys,) = conn.execute("SELECT count(*) FROM outbox_key").fetchone()  # type: ignore[misc]
        assert keys == sum(left.values())
        assert rollups.check(conn) == {}


# --- upgrade ------------------------------------------------------------------------------


def _old_schema(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        migrate(conn, [m for m in discover() if m.version not in NEW], partitions=4)


def test_upgrade_keeps_every_row_id_and_the_audit_chain(
    drill_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _old_schema(drill_url)
    with psycopg.connect(drill_url, autocommit=True) as conn:
        assert conn.execute(
            "SELECT relkind FROM pg_class WHERE relname = 'audit_event'"
        ).fetchone() == ("r",)
        now = _now(conn)
        with conn.transaction():  # a chain that began months ago, and today's events
            _write(conn, _events([5, 5, 4, 2, 2, 2, 1], now))
            for i in range(5):
                record(conn, PLATFORM, "read", outcome="allow", person_id=100 + i)
        conn.execute("INSERT INTO share_partner (id, config) VALUES ('bhxh', '{}'), "
                     "('gw', '{\"channel\": \"xml130-gateway\"}')")  # fmt: skip
        conn.execute(
            """INSERT INTO outbox (partner, person_id, idempotency_key, status, payload,
                                   created_at, delivered_at, subject)
               VALUES ('bhxh', 1, 'bhxh:a', 'pending', NULL, now(), NULL, NULL),
                      ('bhxh', 2, 'bhxh:b', 'delivered', '{}', now() - interval '70 days',
                       now() - interval '69 days', NULL),
                      ('gw', 3, 'gw:Encounter/9', 'pending', NULL, now(), NULL, 'Encounter/9'),
                      ('bhxh', 4, 'bhxh:c', 'dead', '{}', now() - interval '40 days', NULL,
                       NULL)"""
        )
        conn.execute(
            """INSERT INTO ingest_receipt (job_id, kind, facility, received_at, records)
               VALUES (1, 'xml130', '01001', now() - interval '50 days', 10),
                      (2, 'xml130', '01002', now(), 4)"""
        )
        logs = ("audit_event", "outbox", "ingest_receipt")
        had = columns(conn)
        before = table_digests(conn, {t: had[t] for t in logs})
        next_ids = {t: conn.execute(f"SELECT max({c}) FROM {t}").fetchone()[0]  # type: ignore[index]
                    for t, c in (("audit_event", "seq"), ("outbox", "id"),
                                 ("ingest_receipt", "id"))}  # fmt: skip

        applied = migrate(conn)
        assert sorted(n[:4] for n in applied) == sorted(NEW)

        assert table_digests(conn, {t: had[t] for t in logs}) == before  # every row, as it was
        for table in logs:
            assert conn.execute(
                "SELECT relkind FROM pg_class WHERE relname = %s", (table,)
            ).fetchone() == ("p",)
            assert monthly.stray_rows(conn, table) == 0
        months = {r[0] for r in conn.execute("SELECT tableoid::regclass::text FROM audit_event")}
        assert len(months) == 5  # five months of events, each in its partition
        with conn.transaction():  # (a named cursor)
            assert verify_chain(conn, anchor=False).ok
        # ids go on where they stopped, the chain too
        record(conn, PLATFORM, "read", outcome="allow", person_id=200)
        (seq,) = conn.execute("SELECT max(seq) FROM audit_event").fetchone()  # type: ignore[misc]
        assert seq == next_ids["audit_event"] + 1
        # the open event still takes later changes; the visit's key still holds
        outbox.enqueue(conn, {1: 2, 5: 1})
        assert conn.execute(
            "SELECT id, changes FROM outbox WHERE partner = 'bhxh' AND person_id = 1"
        ).fetchall() == [(1, 3)]
        (new_id,) = conn.execute("SELECT id FROM outbox WHERE person_id = 5").fetchone()  # type: ignore[misc]
        assert new_id > next_ids["outbox"]
        assert conn.execute("SELECT count(*) FROM outbox_key").fetchone() == (1,)
        with pytest.raises(psycopg.errors.UniqueViolation):
            conn.execute(
                "INSERT INTO outbox_key (idempotency_key, id, created_at) "
                "VALUES ('gw:Encounter/9', 0, now())"
            )
        # the triggers came along: the audit log refuses changes, the counters count
        with pytest.raises(psycopg.errors.RaiseException):
            conn.execute("DELETE FROM audit_event WHERE seq = 1")
        assert rollups.check(conn) == {}
        # receipts: a later batch of a job adds to its receipt (the writer's ON CONFLICT)
        conn.execute(
            """INSERT INTO ingest_receipt AS x (job_id, kind, facility, received_at, records)
               SELECT job_id, kind, facility, received_at, 6 FROM ingest_receipt WHERE job_id = 2
               ON CONFLICT (job_id, facility, received_at)
               DO UPDATE SET records = x.records + excluded.records"""
        )
        assert conn.execute(
            "SELECT id, records FROM ingest_receipt WHERE job_id = 2"
        ).fetchall() == [(next_ids["ingest_receipt"], 10)]
        (rid,) = conn.execute(
            "INSERT INTO ingest_receipt (job_id, kind) VALUES (3, 'xml130') RETURNING id"
        ).fetchone()  # type: ignore[misc]
        assert rid > next_ids["ingest_receipt"]  # the sequence went on

    # hssk audit verify, as an operator runs it
    monkeypatch.setenv("HSSK_DATABASE_URL", drill_url)
    monkeypatch.setenv("HSSK_DATA_DIR", str(tmp_path))
    out = CliRunner().invoke(app, ["audit", "verify"])
    assert out.exit_code == 0, out.output
    assert "13 events" in out.output


def _step(conn: psycopg.Connection[Any], step: str) -> None:
    """Run one step of an online migration as ``hssk.db.online`` does (a batched one until
    it changes no row)."""
    if "hssk:repeat" in step:
        while conn.execute(step.encode()).rowcount > 0:
            pass
    else:
        conn.execute(step.encode())


def test_writes_during_the_online_copy_are_kept(drill_url: str) -> None:
    """The platform writes on while the rows are copied: the events appended, the outbox
    events delivered, purged or added meanwhile are all as they are in the end."""
    shipped = {m.version: m for m in discover()}
    with psycopg.connect(drill_url, autocommit=True) as conn:
        migrate(conn, [m for m in discover() if m.version not in NEW - {"0001"}], partitions=4)
        now = _now(conn)
        with conn.transaction():
            _write(conn, _events([3, 2, 1], now))
        conn.execute(
            """INSERT INTO outbox (partner, person_id, idempotency_key, status, created_at)
               SELECT 'bhxh', g, 'k' || g, 'pending', now() - make_interval(days => g)
               FROM generate_series(1, 50) g"""
        )
        steps = {v: online.steps(shipped[v].sql) for v in ("0405", "0543")}
        for v in steps:  # the new tables, and the rows copied ...
            _step(conn, steps[v][0])
            _step(conn, steps[v][1])
        # ... while the platform goes on writing to the old tables
        with conn.transaction():
            for i in range(3):
                record(conn, PLATFORM, "read", outcome="allow", person_id=300 + i)
        conn.execute(
            "UPDATE outbox SET status = 'delivered', delivered_at = now() WHERE person_id <= 10"
        )
        conn.execute("DELETE FROM outbox WHERE person_id IN (11, 12)")
        conn.execute(
            "INSERT INTO outbox (partner, person_id, idempotency_key) VALUES ('bhxh', 99, 'k99')"
        )
        expected = {
            t: table_digests(conn, {t: columns(conn)[t]})[t] for t in ("audit_event", "outbox")
        }
        for v in steps:  # indexes, then the swap
            for step in steps[v][2:]:
                _step(conn, step)
        assert {
            t: table_digests(conn, {t: columns(conn)[t]})[t] for t in ("audit_event", "outbox")
        } == expected
        assert conn.execute("SELECT to_regclass('outbox_copy_log')").fetchone() == (None,)
        assert conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE status = 'delivered') FROM outbox"
        ).fetchone() == (49, 10)
        with conn.transaction():
            report = verify_chain(conn, anchor=False)
        assert report.ok and report.checked == 6
