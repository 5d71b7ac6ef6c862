"""The one authorization policy every endpoint asks (deny unless a rule allows)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from hssk.access.actor import Actor


@dataclass(frozen=True)
class Decision:
    allowed: bool
    basis: str  # the rule that allowed it (own-record, scope, ...) or 'deny'
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def authorize(
    conn: psycopg.Connection[Any] | None,
    actor: Actor,
    action: str,
    resource_type: str,
    person_id: int | None = None,
    *,
    sensitivity: str | None = None,
    purpose: str | None = None,
) -> Decision:
    """May ``actor`` do ``action`` (read, search, write, export) on this data?"""
    if not actor.authenticated:
        return Decision(False, "deny", "authentication required")
    mode = "read" if action in ("read", "search", "export", "history") else "write"
    if actor.kind == "system" and actor.has_scope("system", resource_type, mode):
        if sensitivity and not actor.has_scope("system", "Sensitive", "read"):
            return Decision(False, "deny", f"sensitive category {sensitivity} needs consent")
        return Decision(True, "system-scope", f"system/{resource_type}.{mode}")
    own = actor.kind == "citizen" and person_id is not None and actor.person_id == person_id
    if own and mode == "read" and actor.has_scope("patient", resource_type, "read"):
        return Decision(True, "own-record", "the record is the citizen's own")
    return Decision(False, "deny", f"no rule allows {actor.kind} to {action} {resource_type}")
