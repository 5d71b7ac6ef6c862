"""Prometheus metrics of the platform, in the text exposition format (version 0.0.4).

Written by hand (prometheus_client is not a dependency). Gauges are read from the database at
scrape time with cheap queries (row counts from trigger-kept counters, table sizes from the
planner's estimates); none carries personal data.
"""

from __future__ import annotations

from typing import Any

import psycopg

from hssk.monitor import rollups
from hssk.share import quota


def _esc(value: object) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(
        self, name: str, kind: str, help_text: str, samples: list[tuple[dict[str, Any], float]]
    ) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            lab = ",".join(f'{k}="{_esc(v)}"' for k, v in labels.items())
            self.lines.append(
                f"{name}{{{lab}}} {float(value)}" if lab else f"{name} {float(value)}"
            )

    def text(self) -> str:
        return "\n".join(self.lines) + "\n"


def _one(conn: psycopg.Connection[Any], sql: str) -> float:
    row = conn.execute(sql.encode()).fetchone()
    return float(row[0] or 0) if row else 0.0


def render(conn: psycopg.Connection[Any]) -> str:
    """The platform's metrics now."""
    ex = Exposition()
    # reltuples: an estimate that costs nothing on tables of millions of rows (a partitioned
    # table's: the sum of its leaf partitions', a plain table's its own). Joined
    # laterally: an IN (subquery) form made the planner scan pg_class per table (265 ms with
    # ~950 relations once the logs were partitioned by month; this form 3-7 ms).
    ex.metric("hssk_table_rows_estimate", "gauge", "Estimated rows per table.", [
        ({"table": r[0]}, float(r[1]))
        for r in conn.execute(
            """SELECT t.name, sum(greatest(c.reltuples, 0))
               FROM unnest(%s::text[]) AS t(name)
               CROSS JOIN LATERAL (
                 SELECT to_regclass(t.name) AS relid
                 UNION ALL SELECT relid FROM pg_partition_tree(to_regclass(t.name)) WHERE isleaf
               ) AS leaf
               JOIN pg_class c ON c.oid = leaf.relid
               WHERE c.relkind <> 'p' GROUP BY 1 ORDER BY 1""",
            (["person", "resource", "resource_history", "audit_event", "outbox", "ingest_error"],),
        )
    ])  # fmt: skip
    # row counts per label: counters kept by triggers (a scrape never counts a whole table)
    ex.metric("hssk_outbox_events", "gauge", "Outbox events per partner and status.", [
        ({"partner": p, "status": s}, n) for (p, s), n in rollups.row_counts(conn, "outbox").items()
    ])  # fmt: skip
    ex.metric(
        "hssk_outbox_oldest_pending_seconds", "gauge", "Age of the oldest undelivered event.",
        [({}, _one(conn, "SELECT extract(epoch FROM now() - min(created_at)) FROM outbox "
                         "WHERE status IN ('pending', 'sending')"))],
    )  # fmt: skip
    # per partner / channel: how long the oldest undelivered event waits, and how many are
    # past their due time (the hub's 24 h of QĐ 1551)
    lag = conn.execute(
        """SELECT partner, extract(epoch FROM now() - min(created_at)),
                  count(*) FILTER (WHERE due_at < now())
           FROM outbox WHERE status IN ('pending', 'sending') GROUP BY 1"""
    ).fetchall()
    ex.metric("hssk_outbox_lag_seconds", "gauge",
              "Age of the oldest undelivered event per partner or channel.",
              [({"partner": r[0]}, float(r[1] or 0)) for r in lag])  # fmt: skip
    ex.metric("hssk_outbox_overdue_events", "gauge",
              "Undelivered events past their due time per partner or channel.",
              [({"partner": r[0]}, float(r[2])) for r in lag])  # fmt: skip
    # the queue holds the whole registry after a register load: counted up to 10,000, the
    # planner's estimate beyond
    ex.metric("hssk_completeness_dirty_persons", "gauge", "Persons waiting for a completeness "
              "recomputation (estimated above 10,000).", [({}, _one(conn, """
        SELECT CASE WHEN n <= 10000 THEN n ELSE greatest(n, (
          SELECT reltuples FROM pg_class WHERE oid = 'catalog_dirty'::regclass)) END
        FROM (SELECT count(*) AS n FROM (SELECT 1 FROM catalog_dirty LIMIT 10001) x) c"""))])  # fmt: skip
    ex.metric("hssk_ingest_jobs", "gauge", "Ingest jobs per status.", [
        ({"status": r[0]}, r[1])
        for r in conn.execute("SELECT status, count(*) FROM ingest_job GROUP BY 1")
    ])  # fmt: skip
    ex.metric("hssk_ingest_errors", "gauge", "Quarantined records per status.", [
        ({"status": s}, n) for (s, _), n in rollups.row_counts(conn, "ingest_error").items()
    ])  # fmt: skip
    ex.metric("hssk_lookup_quota_used", "gauge", "Look-ups used today per account.", [
        ({"account": a}, used) for a, used, _ in quota.usage(conn)
    ])  # fmt: skip
    ex.metric("hssk_lookup_quota_limit", "gauge", "Daily look-up limit per account.", [
        ({"account": a}, limit) for a, _, limit in quota.usage(conn)
    ])  # fmt: skip
    ex.metric("hssk_quality_issues", "gauge", "Open data-quality findings per kind.", [
        ({"kind": k}, n) for (k, _), n in rollups.row_counts(conn, "quality_issue").items()
    ])  # fmt: skip
    ex.metric("hssk_audit_events_total", "counter", "Audit events written.", [
        ({}, _one(conn, "SELECT coalesce(max(seq), 0) FROM audit_event"))
    ])  # fmt: skip
    jobs = conn.execute(
        """SELECT s.name, s.failures, greatest(extract(epoch FROM now() - s.next_run), 0),
                  extract(epoch FROM now() - r.finished_at)
           FROM job_schedule s
           LEFT JOIN LATERAL (SELECT finished_at FROM job_run WHERE name = s.name
                              AND status = 'done' ORDER BY started_at DESC LIMIT 1) r ON true"""
    ).fetchall()
    ex.metric("hssk_job_consecutive_failures", "gauge", "Failed runs in a row per recurring job.",
              [({"job": r[0]}, r[1]) for r in jobs])  # fmt: skip
    ex.metric("hssk_job_overdue_seconds", "gauge", "How late a job's next run is (runner down?).",
              [({"job": r[0]}, r[2]) for r in jobs])  # fmt: skip
    ex.metric("hssk_job_last_success_age_seconds", "gauge", "Seconds since a job last succeeded.",
              [({"job": r[0]}, r[3]) for r in jobs if r[3] is not None])  # fmt: skip
    ex.metric("hssk_database_size_bytes", "gauge", "Size of the database.", [
        ({}, _one(conn, "SELECT pg_database_size(current_database())"))
    ])  # fmt: skip
    ex.metric("hssk_up", "gauge", "1 when the platform answers and its database too.", [({}, 1)])
    return ex.text()
