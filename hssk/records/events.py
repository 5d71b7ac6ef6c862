"""Change notifications of the record store, delivered inside the writing transaction.

Listeners (the outbox of ``share``, the completeness counters of ``catalog``) are named here
and loaded lazily, so the store does not import them and a component that is absent is skipped.
A listener receives the connection and the list of changes and must use set-based SQL.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass(frozen=True)
class Change:
    type: str
    id: str
    version: int
    person_id: int | None
    action: str  # create, update, delete
    source_unit: str | None = None  # the facility that sent it (supervision counters)


Listener = Callable[[psycopg.Connection[Any], Sequence[Change]], None]

LISTENERS = (
    "hssk.share.outbox:on_records_changed",
    "hssk.catalog.completeness:on_records_changed",
)
_loaded: list[Listener] | None = None


def _listeners() -> list[Listener]:
    global _loaded
    if _loaded is None:
        found: list[Listener] = []
        for spec in LISTENERS:
            module, _, name = spec.partition(":")
            try:
                found.append(getattr(importlib.import_module(module), name))
            except (ModuleNotFoundError, AttributeError):
                continue
        _loaded = found
    return _loaded


def publish(conn: psycopg.Connection[Any], changes: Sequence[Change]) -> None:
    """Hand ``changes`` to every listener, in the caller's transaction."""
    if not changes:
        return
    for listener in _listeners():
        listener(conn, changes)
