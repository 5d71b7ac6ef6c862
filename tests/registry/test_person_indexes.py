"""The login look-up by CCCD or health id reads indexes, never the whole person table."""

from __future__ import annotations

from hssk.db import Database


def test_login_lookup_by_cccd_or_health_id_uses_indexes(db: Database) -> None:
    with db.connection() as conn:
        conn.execute("SET LOCAL enable_seqscan = off")  # the plan a 10 M-row table would get
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT id FROM person WHERE (cccd = %s OR health_id = %s)"
                " AND merged_into IS NULL",
                ("001085012345", "001085012345"),
            )
        )
    assert "Seq Scan" not in plan and "person_health_id" in plan, plan
