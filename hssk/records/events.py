"""Change notifications of the record store, delivered inside the writing transaction.

Listeners (the outbox of ``share``, the completeness counters of ``catalog``) are subscribed
explicitly when a process starts (``hssk.wiring.start``: the app, the CLI, the tests), so the
store imports none of them. Publishing before that is an error, never a silent skip: a write
that no listener saw would never reach the partners or the counters. A listener receives the
connection and the list of changes and must use set-based SQL.
"""

from __future__ import annotations

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


class NotWired(RuntimeError):
    """Records were written in a process whose listeners were never subscribed."""


_listeners: list[Listener] = []
_wired = False


def subscribe(*listeners: Listener) -> None:
    """Deliver every later change to ``listeners`` too (each once, in the order given)."""
    global _wired
    for listener in listeners:
        if not callable(listener):
            raise TypeError(f"a change listener must be callable, not {listener!r}")
        if listener not in _listeners:
            _listeners.append(listener)
    _wired = True


def listeners() -> tuple[Listener, ...]:
    return tuple(_listeners)


def publish(conn: psycopg.Connection[Any], changes: Sequence[Change]) -> None:
    """Hand ``changes`` to every listener, in the caller's transaction."""
    if not changes:
        return
    if not _wired:
        raise NotWired(
            "record changes published before the change listeners were subscribed: "
            "call hssk.wiring.start() when the process starts"
        )
    for listener in _listeners:
        listener(conn, changes)
