"""What sources say about the person itself (deaths, households), applied to the golden
record: the registry decides (``mark_deceased_many``, ``move_households``), this module audits
what changed and tells the record store's listeners (partner feeds re-send the person's
Patient, completeness is recomputed).

Ingest jobs and the commune-station forms both come through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import psycopg

from hssk.access import Actor, audit
from hssk.records import events
from hssk.registry import (
    Death,
    DeathOutcome,
    HouseholdMove,
    mark_deceased_many,
    move_households,
)


def died_at(text: str) -> date | datetime:
    """A mapped death time ('YYYY-MM-DD' or an ISO date-time) as a date or a datetime."""
    return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text[:10])


def record_deaths(
    conn: psycopg.Connection[Any],
    actor: Actor,
    deaths: Sequence[Death],
    *,
    basis: str,
    source_unit: str | None = None,
    today: date | None = None,
) -> DeathOutcome:
    """Record ``deaths`` (in the caller's transaction); every change is audited as
    ``death-record`` and published as an update of the person's Patient."""
    out = mark_deceased_many(conn, deaths, today=today)
    changed = out.changed
    for d in changed:
        audit(conn, actor, "death-record", outcome="allow", basis=basis,
              resource_type="Patient", resource_id=str(d.person_id), person_id=d.person_id,
              detail={"died_at": d.moment.isoformat(), "source": d.source,
                      "source_ref": d.source_ref,
                      "upgraded": d in out.upgraded})  # fmt: skip
    _publish(conn, {d.person_id for d in changed}, source_unit)
    return out


def record_households(
    conn: psycopg.Connection[Any],
    actor: Actor,
    moves: Sequence[HouseholdMove],
    *,
    basis: str,
    source_unit: str | None = None,
) -> list[int]:
    """Apply household entries; each person whose household changed is audited as
    ``household-change`` and published. Returns those persons."""
    changed = move_households(conn, moves)
    if changed:
        by_person = {m.person_id: m for m in moves}
        for pid in changed:
            mv = by_person.get(pid)
            audit(conn, actor, "household-change", outcome="allow", basis=basis,
                  resource_type="Patient", resource_id=str(pid), person_id=pid,
                  detail={"household": mv.code, "action": mv.action} if mv else None)  # fmt: skip
    _publish(conn, set(changed), source_unit)
    return changed


def _publish(conn: psycopg.Connection[Any], persons: set[int], source_unit: str | None) -> None:
    """The person's Patient changed: partner feeds and completeness follow."""
    events.publish(
        conn,
        [
            events.Change("Patient", str(pid), 0, pid, "update", source_unit)
            for pid in sorted(persons)
        ],
    )
