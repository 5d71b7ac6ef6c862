"""The rescoring queue under concurrent ingest: two transactions that queue the same persons in
opposite orders (the registry's trigger, then the record counters) never wait on each other."""

from __future__ import annotations

import threading
import time

import psycopg

from hssk.catalog import completeness
from hssk.db import Database


def test_opposite_orders_of_queueing_do_not_deadlock(clean_db: Database, database_url: str) -> None:
    with clean_db.connection() as conn:
        a, b = (
            r[0]
            for r in conn.execute(
                "INSERT INTO person (full_name) VALUES ('Nguyễn Văn A'), ('Trần Thị B') RETURNING id"
            )
        )
        conn.execute("DELETE FROM catalog_dirty")
    one, two = psycopg.connect(database_url), psycopg.connect(database_url)
    errors: list[Exception] = []

    def counters(conn: psycopg.Connection, person: int) -> None:
        try:
            completeness.mark_dirty(conn, [person])  # as the record counters of the batch do
            conn.commit()
        except psycopg.Error as exc:
            errors.append(exc)
            conn.rollback()

    try:
        for conn in (one, two):
            conn.execute("SET deadlock_timeout = '100ms'")
            conn.execute("SET lock_timeout = '5s'")
        # each ingest transaction first updates its person (the trigger queues it) ...
        one.execute("UPDATE person SET phone = '0912000001' WHERE id = %s", (a,))
        two.execute("UPDATE person SET phone = '0912000002' WHERE id = %s", (b,))
        # ... then its records of the other person change
        first = threading.Thread(target=counters, args=(one, b))
        first.start()
        time.sleep(0.5)
        counters(two, a)
        first.join(10)
    finally:
        one.close()
        two.close()
    assert errors == []
    with clean_db.connection() as conn:
        queued = dict(
            conn.execute("SELECT person_id, count(*) FROM catalog_dirty GROUP BY 1").fetchall()
        )
    assert queued == {a: 2, b: 2}  # queued by each transaction, scored once
    assert completeness.run(clean_db).persons == 2
    with clean_db.connection() as conn:
        assert conn.execute("SELECT count(*) FROM catalog_dirty").fetchone() == (0,)
