"""A hostile request's NUL bytes, kept in its audit event, never make the audit write fail
(PostgreSQL text and jsonb refuse NUL: on the other doors this was a 500)."""

from __future__ import annotations

from hssk.access.actor import Actor
from hssk.access.audit import record, verify_chain
from hssk.db import Database


def test_nul_in_an_audited_value_is_kept_visible(clean_db: Database) -> None:
    actor = Actor(account_id="7", kind="citizen", person_id=None, client="tests")
    with clean_db.connection() as conn:
        record(conn, actor, "search", outcome="deny", resource_id="x\x00y", purpose="a\x00",
               detail={"params": [["date", "2026\x00"]], "k\x00": "v"})  # fmt: skip
        row = conn.execute(
            "SELECT resource_id, purpose, detail FROM audit_event ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        assert row is not None
        assert row[0] == "x\ufffdy" and row[1] == "a\ufffd"
        assert row[2] == {"params": [["date", "2026\ufffd"]], "k\ufffd": "v"}
        assert verify_chain(conn).ok
