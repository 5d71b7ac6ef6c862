"""Who may see and handle which quarantined records (the API, the pages and the CLI agree).

Deny unless a rule allows: platform systems (``system/*.write``) handle every facility's
records; a facility's staff and HIS accounts (``user/*.write``) only those of the facility
their unit is. An account whose unit is not a facility (a department, a station) sees none:
quarantined records hold identities, and supervisors see aggregates only.
"""

from __future__ import annotations

from typing import Any

import psycopg

from hssk.access import Actor

EVERY_FACILITY = "*"


def own_facility(conn: psycopg.Connection[Any], actor: Actor) -> str | None:
    """Facility code of the actor's unit (None when the unit is not a facility)."""
    if not actor.unit_id:
        return None
    row = conn.execute("SELECT facility_code FROM unit WHERE id = %s", (actor.unit_id,)).fetchone()
    return row[0] if row and row[0] else None


def can_write(actor: Actor) -> bool:
    return actor.has_scope("system", "*", "write") or actor.has_scope("user", "*", "write")


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
