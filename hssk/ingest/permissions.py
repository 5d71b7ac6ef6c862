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
from hssk.access.policy import NATIONAL_UNIT_KINDS
from hssk.ingest import quarantine

EVERY_FACILITY = "*"


def own_facility(conn: psycopg.Connection[Any], actor: Actor) -> str | None:
    """Facility code of the actor's unit (None when the unit is not a facility)."""
    if not actor.unit_id:
        return None
    row = conn.execute("SELECT facility_code FROM unit WHERE id = %s", (actor.unit_id,)).fetchone()
    return row[0] if row and row[0] else None


def facility_refusal(
    conn: psycopg.Connection[Any], actor: Actor, facility: str | None
) -> tuple[str, str] | None:
    """Why ``actor`` may not send a facility's records naming ``facility`` (Vietnamese,
    English), or None. Only the facility's own HIS system account sends them (a person's
    account never: it would open a treatment basis for itself), or a platform system
    (``system/*.write`` on a unit without a facility code) loading history."""
    own = own_facility(conn, actor)
    if own is None:
        if actor.kind == "system" and actor.has_scope("system", "*", "write"):
            return None
        return (
            "Tài khoản không thuộc một cơ sở khám chữa bệnh (đơn vị không có mã CSKCB): không "
            "được gửi hồ sơ hay check-in của cơ sở nào.",
            "an account whose unit has no facility code (mã CSKCB) cannot send a facility's "
            "hồ sơ or check-in; the facility's own HIS system account sends them",
        )
    if facility and facility != own:
        return (
            f"Tài khoản thuộc cơ sở {own}, không được gửi hồ sơ của cơ sở {facility}.",
            f"the account belongs to facility {own}; it cannot send facility {facility}'s hồ sơ",
        )
    if actor.kind != "system":
        return (
            f"Hồ sơ và check-in của cơ sở {own} do hệ thống HIS của cơ sở gửi (tài khoản hệ "
            "thống), không phải tài khoản cá nhân.",
            f"facility {own}'s hồ sơ and check-ins are sent by its HIS system account, not a "
            "person's account",
        )
    return None


def register_refusal(
    conn: psycopg.Connection[Any], actor: Actor, kind: str
) -> tuple[str, str] | None:
    """Why ``actor`` may not load a register (population, insurance, facilities), or None.
    Registers change everyone's identity data (the population register's phones receive
    login codes): only national and platform systems (``system/*.write`` on a unit of kind
    external or platform) load them, never a facility's HIS."""
    if actor.kind == "system" and actor.has_scope("system", "*", "write"):
        row = conn.execute("SELECT kind FROM unit WHERE id = %s", (actor.unit_id,)).fetchone()
        if actor.unit_id is None or (row is not None and row[0] in NATIONAL_UNIT_KINDS):
            return None
    return (
        "Chỉ hệ thống quốc gia hoặc của nền tảng (system/*.write) mới nạp danh mục và sổ đăng ký.",
        f"loading {kind} needs the system/*.write scope of a national or platform system "
        "(unit kind external or platform); a facility's system cannot load registers",
    )


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
