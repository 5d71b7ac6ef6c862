"""Access control: actors, tokens, the policy, and the audit trail.

Public API used by other components:

* ``authorize(conn, actor, action, resource_type, person_id=None, *, sensitivity, purpose)``
  → ``Decision(allowed, basis, reason)``; ``authorize_many`` (one query for many persons);
  ``area_of(conn, actor)`` (what aggregates a supervisor or station may cover);
* ``audit(conn, actor, action, *, outcome, basis, purpose, resource_type, resource_id,
  person_id, detail)`` — buffered per API request, written after it, hash-chained;
* ``hssk.access.signing.verify_submission(conn, unit_id, payload, signature)`` and
  ``sign_document(settings, payload)``; ``hssk.access.relations.link_guardian(...)``.
"""

from hssk.access.actor import ANONYMOUS, PLATFORM, Actor
from hssk.access.audit import record as audit
from hssk.access.policy import Area, Decision, area_of, authorize, authorize_many

__all__ = [
    "ANONYMOUS",
    "PLATFORM",
    "Actor",
    "Area",
    "Decision",
    "area_of",
    "audit",
    "authorize",
    "authorize_many",
]
