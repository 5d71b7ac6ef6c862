"""Append-only, hash-chained audit trail of every access to personal health data."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import psycopg

from hssk.access.actor import Actor

GENESIS = "0" * 64
_CHAIN_LOCK = 7_340_002


def _digest(prev_hash: str, fields: dict[str, Any]) -> str:
    payload = orjson.dumps(fields, option=orjson.OPT_SORT_KEYS, default=str)
    return hashlib.sha256(prev_hash.encode() + payload).hexdigest()


def record(
    conn: psycopg.Connection[Any],
    actor: Actor,
    action: str,
    *,
    outcome: str,
    basis: str | None = None,
    purpose: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    person_id: int | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit event, chained to the previous one (in the caller's transaction)."""
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (_CHAIN_LOCK,))
    row = conn.execute("SELECT hash FROM audit_event ORDER BY seq DESC LIMIT 1").fetchone()
    prev = row[0] if row else GENESIS
    at = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
    fields = {
        "at": at.isoformat(),
        "actor": actor.account_id,
        "unit_id": actor.unit_id,
        "role": actor.kind,
        "basis": basis,
        "purpose": purpose,
        "action": action,
        "resource_type": resource_type,
        "resource_id": resource_id,
        "person_id": person_id,
        "outcome": outcome,
        "client": actor.client,
        "detail": detail or {},
    }
    conn.execute(
        """INSERT INTO audit_event (at, actor, unit_id, role, basis, purpose, action,
               resource_type, resource_id, person_id, outcome, client, detail, prev_hash, hash)
           VALUES (%(at)s, %(actor)s, %(unit_id)s, %(role)s, %(basis)s, %(purpose)s, %(action)s,
               %(resource_type)s, %(resource_id)s, %(person_id)s, %(outcome)s, %(client)s,
               %(detail)s, %(prev)s, %(hash)s)""",
        {
            **fields,
            "at": at,
            "detail": orjson.dumps(fields["detail"], default=str).decode(),
            "prev": prev,
            "hash": _digest(prev, fields),
        },
    )
