"""The platform's recurring jobs (what ``hssk jobs run`` runs), each a thin call into the
component that owns the work."""

from __future__ import annotations

import os
from typing import Any

from hssk.db import Database
from hssk.ops.jobs import Task

MINUTE, HOUR, DAY = 60, 3600, 86400


def _env_days(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def deliver_outbox(db: Database) -> dict[str, Any]:
    """Send what is due to the national systems until nothing is (at most 25 s a round)."""
    from hssk.share.worker import run

    stats = run(db, until_idle=True, max_seconds=25)
    return {"delivered": stats.delivered, "retried": stats.retried, "dead": stats.dead}


def completeness(db: Database) -> dict[str, Any]:
    """Score the completeness of persons whose record changed."""
    from hssk.catalog import completeness as comp
    from hssk.monitor import rollups

    result = comp.run(db, compact=rollups.compact)
    return {"persons": result.persons, "compacted": result.compacted}


def quality_lists(db: Database) -> dict[str, Any]:
    """Data-quality lists for commune staff (conflicting ids, duplicates, …)."""
    from hssk.monitor import quality

    with db.connection() as conn:
        return dict(quality.run(conn))


def daily_snapshot(db: Database) -> dict[str, Any]:
    """Today's key shares per area, for the supervision trend charts."""
    from hssk.monitor import areas, metrics

    with db.connection() as conn:
        keys = metrics.snapshot_area_keys(conn)
        for key in keys:
            metrics.snapshot(conn, areas.parse(key))
    return {"areas": len(keys)}


def compact_rollups(db: Database) -> dict[str, Any]:
    """Fold the supervision rollups' deltas into one row per cell: every write appends deltas,
    and a dashboard sums all of them (a register load leaves tens of thousands)."""
    from hssk.monitor import rollups

    with db.connection() as conn:
        return {"rows_before": rollups.delta_rows(conn), "rows_after": rollups.compact(conn)}


def verify_audit(db: Database) -> dict[str, Any]:
    """Check the audit chain since the last anchor; a broken chain fails the job (and
    ``hssk doctor`` reports the failed run)."""
    from hssk.access.audit import verify_chain
    from hssk.access.audit_cli import ANCHOR_FILE
    from hssk.kernel.config import load_settings

    anchor_file = load_settings().data_dir / ANCHOR_FILE
    with db.connection() as conn:
        report = verify_chain(conn, since_anchor=True, anchor_file=anchor_file)
    if not report.ok:
        raise RuntimeError(f"audit chain broken at seq {report.first_bad_seq}: {report.reason}")
    return {"checked": report.checked, "last_seq": report.last_seq}


def retention(db: Database) -> dict[str, Any]:
    """Remove delivered outbox events and job runs past their retention (days, from
    HSSK_OUTBOX_RETENTION_DAYS, default 30, as ``hssk share purge``, and
    HSSK_JOB_RETENTION_DAYS, default 30: outbox delivery alone records 2,880 runs a day).
    Past months of the outbox holding only such events are dropped whole, the rest deleted in
    batches (``share.outbox.purge``). Dead-lettered events stay until someone replays or
    discards them."""
    from hssk.kernel.config import load_settings
    from hssk.share import outbox

    outbox_days = load_settings().outbox_retention_days
    job_days = _env_days("HSSK_JOB_RETENTION_DAYS", 30)
    events = outbox.purge_all(db, outbox_days)
    with db.connection() as conn:
        runs = conn.execute(
            """DELETE FROM job_run WHERE status <> 'running'
               AND started_at < now() - make_interval(days => %s)""",
            (job_days,),
        ).rowcount
    return {"outbox_deleted": events, "job_runs_deleted": runs}


# The append-only logs partitioned by month (hssk.db.monthly): audit, outbox, ingest receipts.
LOGS = ("audit_event", "outbox", "ingest_receipt")


def log_partitions(db: Database) -> dict[str, Any]:
    """Make the month partitions of the logs ahead (this month and the next two) and move the
    rows a default partition took (a month the job had not made) into their months."""
    from hssk.db import monthly

    made: dict[str, Any] = {}
    for table in LOGS:
        with db.connection() as conn:
            moved = monthly.stray_rows(conn, table)
            made[table] = monthly.ensure(conn, table)
            if moved:
                made[f"{table}_moved"] = moved
    return made


def refresh_statistics(db: Database) -> dict[str, Any]:
    """ANALYZE: fresh planner statistics after the day's loads."""
    with db.pool.connection() as conn:
        conn.autocommit = True
        conn.execute("ANALYZE")
        conn.autocommit = False
    return {}


TASKS: tuple[Task, ...] = (
    Task("outbox.deliver", 30, deliver_outbox, "gửi sự kiện ra hệ thống quốc gia / deliver the outbox", lease_s=120),
    Task("completeness", 15 * MINUTE, completeness, "tính độ đầy đủ hồ sơ / record completeness"),
    Task("monitor.compact", HOUR, compact_rollups, "gộp số liệu giám sát / compact the supervision rollups"),
    Task("audit.verify", HOUR, verify_audit, "kiểm tra chuỗi nhật ký / verify the audit chain"),
    Task("quality.lists", DAY, quality_lists, "danh sách chất lượng dữ liệu / data-quality lists"),
    Task("monitor.snapshot", DAY, daily_snapshot, "số liệu giám sát hằng ngày / daily snapshot"),
    Task("db.analyze", DAY, refresh_statistics, "cập nhật thống kê CSDL / planner statistics"),
    Task("retention", DAY, retention, "xóa sự kiện đã gửi quá hạn / outbox and job-run retention"),
    Task("logs.partitions", DAY, log_partitions, "tạo phân vùng tháng của nhật ký / month partitions of the logs"),
)  # fmt: skip
