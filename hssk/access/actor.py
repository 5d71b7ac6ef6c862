"""Who is asking: the authenticated actor behind a request or a command."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Actor:
    """An authenticated account (or the anonymous caller)."""

    account_id: str
    kind: str  # staff, clinician, citizen, system, anonymous
    unit_id: str | None = None
    roles: frozenset[str] = field(default_factory=frozenset)
    scopes: frozenset[str] = field(default_factory=frozenset)
    person_id: int | None = None
    client: str | None = None

    @property
    def authenticated(self) -> bool:
        return self.kind != "anonymous"

    def has_scope(self, context: str, resource_type: str, mode: str) -> bool:
        """SMART-style scope check: ``context/Type.mode`` with ``*`` wildcards (mode read/write)."""
        for scope in self.scopes:
            ctx, _, rest = scope.partition("/")
            rtype, _, m = rest.partition(".")
            if ctx == context and rtype in ("*", resource_type) and m in ("*", mode):
                return True
        return False


ANONYMOUS = Actor(account_id="anonymous", kind="anonymous")
# The platform itself (CLI commands run by an operator on the server).
PLATFORM = Actor(
    account_id="platform", kind="system", scopes=frozenset({"system/*.*"}), client="hssk-cli"
)
