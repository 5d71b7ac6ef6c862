"""What a process wires up when it starts: the record store's change listeners.

Called by the web application (``hssk.app``), the ``hssk`` command and the tests. The
listeners are imported here, by name in code: a missing one fails at import, loudly.
"""

from __future__ import annotations

from hssk.catalog.completeness import on_records_changed as completeness_listener
from hssk.records import events
from hssk.share.outbox import on_records_changed as outbox_listener

LISTENERS: tuple[events.Listener, ...] = (outbox_listener, completeness_listener)


def start() -> None:
    """Subscribe the change listeners (idempotent)."""
    events.subscribe(*LISTENERS)
