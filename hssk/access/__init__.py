"""Access control: actors, tokens, the policy, and the audit trail."""

from hssk.access.actor import ANONYMOUS, PLATFORM, Actor
from hssk.access.audit import record as audit
from hssk.access.policy import Decision, authorize

__all__ = ["ANONYMOUS", "PLATFORM", "Actor", "Decision", "audit", "authorize"]
