"""How worker processes are started: fork only while it is safe.

Forking copies a process with only the calling thread; a lock another thread held at that
moment stays held forever in the child. The batch MPI runs DuckDB and Arrow, whose thread
pools outlive its work (12 native threads during it, 3 after, none visible to
``threading``), and a mapping process forked after two register loads in one process died at
its start (SIGSEGV in libc). Forking is cheap and shares the caller's objects, so it stays
the choice until such pools have run here; then workers come from a fork server.
"""

from __future__ import annotations

_POOLS: set[str] = set()


def thread_pools_started(owner: str) -> None:
    """Say that ``owner`` (DuckDB, Arrow, Spark's gateway) runs thread pools in this
    process from now on; later workers are not forked from it."""
    _POOLS.add(owner)


def start_method(preferred: str = "fork") -> str:
    """``preferred``, unless it is 'fork' and thread pools run here: then 'forkserver'."""
    if preferred == "fork" and _POOLS:
        return "forkserver"
    return preferred
