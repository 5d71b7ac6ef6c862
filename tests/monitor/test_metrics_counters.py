"""/metrics reads trigger-kept counters, never counts a whole table; the outbox purge."""

from __future__ import annotations

from hssk.db import Database
from hssk.monitor import prom, rollups
from hssk.share import outbox


def _outbox(conn, partner: str, status: str, n: int, delivered_days_ago: int | None = None):
    conn.execute(
        """INSERT INTO outbox (partner, person_id, idempotency_key, status, delivered_at)
           SELECT %s, g, %s || g, %s, now() - make_interval(days => %s)
           FROM generate_series(1, %s) g""",
        (partner, f"{partner}:{status}:{delivered_days_ago}:", status, delivered_days_ago or 0, n),
    )


def test_scrape_counts_from_counters_and_they_stay_exact(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        _outbox(conn, "bhxh", "pending", 5)
        _outbox(conn, "bhxh", "delivered", 7, delivered_days_ago=40)
        _outbox(conn, "vneid", "dead", 2)
        conn.execute(
            "INSERT INTO ingest_error (reason, status) SELECT 'x', 'quarantined' "
            "FROM generate_series(1, 3)"
        )
        conn.execute("UPDATE ingest_error SET status = 'replayed' WHERE id = 1")
        conn.execute(
            "INSERT INTO quality_issue (kind, person_id) VALUES ('suspected_duplicate', 1)"
        )
        conn.execute("UPDATE outbox SET status = 'sending' WHERE partner = 'bhxh' AND id <= 2")
        statements: list[str] = []
        real = conn.execute

        def spy(query, params=None, **kw):
            statements.append(query.decode() if isinstance(query, bytes) else str(query))
            return real(query, params, **kw)

        conn.execute = spy  # type: ignore[method-assign]
        text = prom.render(conn)
        conn.execute = real  # type: ignore[method-assign]
        assert 'hssk_outbox_events{partner="bhxh",status="pending"} 3.0' in text
        assert 'hssk_outbox_events{partner="bhxh",status="sending"} 2.0' in text
        assert 'hssk_outbox_events{partner="bhxh",status="delivered"} 7.0' in text
        assert 'hssk_outbox_events{partner="vneid",status="dead"} 2.0' in text
        assert 'hssk_ingest_errors{status="quarantined"} 2.0' in text
        assert 'hssk_ingest_errors{status="replayed"} 1.0' in text
        assert 'hssk_quality_issues{kind="suspected_duplicate"} 1.0' in text
        for sql in statements:  # no scrape statement counts these tables
            flat = " ".join(sql.split()).lower()
            for table in ("outbox", "ingest_error", "quality_issue"):
                assert f"count(*) from {table}" not in flat, sql
        assert rollups.check(conn) == {}
        rollups.compact(conn)
        assert rollups.check(conn) == {}
        assert rollups.row_counts(conn, "outbox")[("bhxh", "delivered")] == 7


def test_purge_deletes_only_delivered_events_past_retention(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        _outbox(conn, "bhxh", "delivered", 6, delivered_days_ago=40)
        _outbox(conn, "bhxh", "delivered", 4, delivered_days_ago=3)
        _outbox(conn, "bhxh", "pending", 2)
        _outbox(conn, "bhxh", "dead", 1)
        assert outbox.purge(conn, 30, limit=4) == 4  # in batches
        assert outbox.purge(conn, 30) == 2
        assert outbox.purge(conn, 30) == 0
        left = dict(conn.execute("SELECT status, count(*) FROM outbox GROUP BY 1").fetchall())
        assert left == {"delivered": 4, "pending": 2, "dead": 1}
        assert rollups.row_counts(conn, "outbox")[("bhxh", "delivered")] == 4
        assert rollups.check(conn) == {}


def test_row_estimates_sum_the_leaf_partitions_of_each_table(clean_db: Database) -> None:
    """``hssk_table_rows_estimate`` is the planner's count: a partitioned table's (resource,
    spread over person partitions) is the sum of its leaves', a plain table's its own."""
    with clean_db.connection() as conn:
        conn.execute(
            "INSERT INTO person (full_name) SELECT 'Nguyễn Văn An ' || g FROM generate_series(1, 40) g"
        )
        conn.execute("ANALYZE person")
        conn.execute("ANALYZE resource")
        (person,) = conn.execute(
            "SELECT reltuples FROM pg_class WHERE oid = 'person'::regclass"
        ).fetchone()
        leaves = conn.execute(
            r"""SELECT count(*), sum(greatest(c.reltuples, 0)) FROM pg_class c
               WHERE c.relkind IN ('r', 'f') AND (c.relname LIKE 'resource\_p%' OR c.relname = 'resource_none')"""
        ).fetchone()
        text = prom.render(conn)
    rows = dict(
        line.removeprefix("hssk_table_rows_estimate").rsplit(" ", 1)
        for line in text.splitlines()
        if line.startswith("hssk_table_rows_estimate{")
    )
    assert person >= 40
    assert leaves[0] >= 2  # the store is partitioned: more than one leaf
    assert float(rows.get('{table="person"}', -1)) == person, rows
    assert float(rows['{table="resource"}']) == leaves[1], rows
