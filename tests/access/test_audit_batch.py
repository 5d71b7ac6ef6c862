"""A batch of audit events (an ingest batch's household changes) is written by COPY: the same
rows, the same chain as events written one INSERT at a time."""

from __future__ import annotations

from hssk.access.actor import Actor
from hssk.access.audit import PersonEvent, defer, flush, record_persons, verify_chain
from hssk.db import Database


def test_a_batch_of_events_keeps_the_chain(clean_db: Database) -> None:
    actor = Actor(account_id="7", kind="platform", person_id=None, client="tests")
    few = [PersonEvent(1, "Patient", "1", {"household": "H1", "action": "join"})]
    many = [
        PersonEvent(i, "Patient", str(i), {"household": f"H\t{i}\\", "note": "x\x00y", "n": i})
        for i in range(2, 202)
    ]
    with clean_db.connection() as conn:
        record_persons(conn, actor, "household-change", few, outcome="allow", basis="test")
        record_persons(conn, actor, "household-change", many, outcome="allow", basis="test")
        record_persons(conn, actor, "household-change", few, outcome="allow", basis="test")
        rows = conn.execute(
            "SELECT person_id, resource_id, detail, basis FROM audit_event"
            " WHERE action = 'household-change' ORDER BY seq"
        ).fetchall()
        assert [r[0] for r in rows] == [1, *range(2, 202), 1]
        assert rows[5][1:] == ("6", {"household": "H\t6\\", "note": "x\ufffdy", "n": 6}, "test")
        assert verify_chain(conn).ok


def test_a_group_commit_of_many_events_is_written_by_copy_outside_the_pipeline(
    clean_db: Database,
) -> None:
    """The request path's writer pipelines its insert with COMMIT; a batch large enough to be
    copied (many requests at once, or one auditing many persons) cannot be pipelined."""
    actor = Actor(account_id="7", kind="platform", person_id=None, client="tests")
    many = [PersonEvent(i, "Patient", str(i), {"n": i}) for i in range(1, 121)]
    with clean_db.connection() as conn:
        defer(conn)
        record_persons(conn, actor, "read", many, outcome="allow", basis="test")
        conn.commit()
        assert flush(conn) == 120
        (count,) = conn.execute(
            "SELECT count(*) FROM audit_event WHERE action = 'read' AND basis = 'test'"
        ).fetchone()  # type: ignore[misc]
        assert count == 120
        assert verify_chain(conn).ok
