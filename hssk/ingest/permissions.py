"""Who may see and handle which quarantined records (the API, the pages and the CLI agree).

Deny unless a rule allows: platform systems (``system/*.write``) handle every facility's
records; a facility's staff and HIS accounts (``user/*.write``) only those of the facility
their unit is. An account whose unit is not a facility (a department, a station) sees none:
quarantined records hold identities, and supervisors see aggregates only.
"""

from __future__ import annotations

from typing import Any

import psycopg

from hssk.access import Actor, audit
from hssk.ingest import quarantine

EVERY_FACILITY = "*"


def own_facility(conn: psycopg.Connection[Any], actor: Actor) -> str | None:
    """Facility code of the actor's unit (None when the unit is not a facility)."""
    if not actor.unit_id:
        return None
    row = conn.execute("SELECT facility_code FROM unit WHERE id = %s", (actor.unit_id,)).fetchone()
    return row[0] if row and row[0] else None


def can_write(actor: Actor) -> bool:
    return actor.has_scope("system", "*", "write") or actor.has_scope("user", "*", "write")


def follows_every_job(actor: Actor) -> bool:
    """Platform systems follow every facility's ingest jobs; a reading scope is not enough
    (a job's status lists its quarantined records: identities)."""
    return actor.has_scope("system", "*", "write")


def error_scope(conn: psycopg.Connection[Any], actor: Actor) -> str | None:
    """``EVERY_FACILITY``, the one facility code whose records the actor handles, or None."""
    if actor.has_scope("system", "*", "write"):
        return EVERY_FACILITY
    if actor.has_scope("user", "*", "write"):
        return own_facility(conn, actor)
    return None


def may_handle(scope: str | None, facility: str | None) -> bool:
    """May an actor of ``scope`` see and handle a record of ``facility``?"""
    return scope == EVERY_FACILITY or (scope is not None and facility == scope)


def facility_filter(scope: str) -> str | None:
    """The ``facility`` argument of ``quarantine.list_errors`` for a (non-None) scope."""
    return None if scope == EVERY_FACILITY else scope


class NotAllowed(Exception):
    """The actor may not see or handle this quarantined record."""

    vi = "Không có quyền với bản ghi này (chỉ nhân viên của cơ sở đã gửi bản ghi)."
    en = "not allowed (only the staff of the facility that sent the record)"


def checked_record(
    conn: psycopg.Connection[Any], actor: Actor, error_id: int, action: str
) -> quarantine.QuarantinedRecord:
    """The record, if ``actor`` may handle it; the access is audited as ``action`` either way.
    Raises ``quarantine.ReplayError`` (no such record) or ``NotAllowed``."""
    rec = quarantine.get_error(conn, error_id)
    allowed = may_handle(error_scope(conn, actor), rec.facility)
    audit(conn, actor, action, outcome="allow" if allowed else "deny",
          resource_type="IngestError", resource_id=str(error_id))  # fmt: skip
    if not allowed:
        raise NotAllowed()
    return rec
