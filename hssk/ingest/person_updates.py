"""What sources say about the person itself (deaths, households), applied to the golden
record: the registry decides (``mark_deceased_many``, ``move_households``), this module audits
what changed, and tells the record store's listeners of deaths (partner feeds re-send the
person's Patient).

Ingest jobs and the commune-station forms both come through here.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import psycopg

from hssk.access import Actor
from hssk.access.audit import PersonEvent, record_persons
from hssk.records import events
from hssk.registry import (
    Death,
    DeathAmendment,
    DeathOutcome,
    HouseholdMove,
    Refusal,
    amend_death,
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
    changed, upgraded = out.changed, set(out.upgraded)
    audits = [
        PersonEvent(d.person_id, "Patient", str(d.person_id),
                    {"died_at": d.moment.isoformat(), "source": d.source,
                     "source_ref": d.source_ref, "upgraded": d in upgraded})
        for d in changed
    ]  # fmt: skip
    record_persons(conn, actor, "death-record", audits, outcome="allow", basis=basis)
    # partner feeds re-send the person's Patient (now with deceasedDateTime)
    events.publish(
        conn,
        [
            events.Change("Patient", str(pid), 0, pid, "update", source_unit)
            for pid in sorted({d.person_id for d in changed})
        ],
    )
    return out


def record_amendment(
    conn: psycopg.Connection[Any],
    actor: Actor,
    amendment: DeathAmendment,
    *,
    basis: str,
    today: date | None = None,
) -> Refusal | None:
    """Correct a recorded date of death (registry), audited as ``death-amend`` with the old
    and new day and the reason, and published like a death; why not, or None."""
    change = amend_death(conn, amendment, today=today)
    if isinstance(change, Refusal):
        return change
    old, new = change
    pid = amendment.person_id
    detail = {"died_on_before": old.isoformat(), "died_on": new.isoformat(),
              "reason": amendment.reason, "source_ref": amendment.ref}  # fmt: skip
    record_persons(conn, actor, "death-amend", [PersonEvent(pid, "Patient", str(pid), detail)],
                   outcome="allow", basis=basis)  # fmt: skip
    events.publish(conn, [events.Change("Patient", str(pid), 0, pid, "update",
                                        actor.unit_id)])  # fmt: skip
    return None


def record_households(
    conn: psycopg.Connection[Any], actor: Actor, moves: Sequence[HouseholdMove], *, basis: str
) -> list[HouseholdMove]:
    """Apply household entries; each person whose household changed is audited as
    ``household-change`` (like the registry's other demographic changes, it is not published:
    completeness sees it by ``mark_stale``). Returns the entries that changed something."""
    changed = move_households(conn, moves)
    audits = [
        PersonEvent(m.person_id, "Patient", str(m.person_id),
                    {"household": m.code, "action": m.action})
        for m in changed
    ]  # fmt: skip
    record_persons(conn, actor, "household-change", audits, outcome="allow", basis=basis)
    return changed
