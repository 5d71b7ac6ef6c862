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
        """SMART-style scope check: ``context/Type.mode`` with ``*`` wildcards (mode read/write;
        SMART v2 letters too: ``r``/``s`` read, ``c``/``u``/``d`` write, e.g. ``.rs``)."""
        for scope in self.scopes:
            ctx, _, rest = scope.partition("/")
            rtype, _, m = rest.partition(".")
            if ctx == context and rtype in ("*", resource_type) and mode_covers(m, mode):
                return True
        return False


_V2_LETTERS = {"read": frozenset("rs"), "write": frozenset("cud")}


def mode_covers(granted: str, mode: str) -> bool:
    """Whether a scope's mode part (``read``, ``write``, ``*`` or SMART v2 ``cruds``) covers
    ``mode`` (read or write)."""
    if granted in ("*", mode):
        return True
    if granted in ("read", "write") or not granted or not set(granted) <= set("cruds"):
        return False
    return bool(set(granted) & _V2_LETTERS.get(mode, frozenset()))


ANONYMOUS = Actor(account_id="anonymous", kind="anonymous")
# The platform itself (CLI commands run by an operator on the server).
PLATFORM = Actor(
    account_id="platform", kind="system", scopes=frozenset({"system/*.*"}), client="hssk-cli"
)
