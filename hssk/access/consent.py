"""A citizen's consents, the children whose book they hold, and clinicians' declared
emergencies: the rules and their audit events, called by the API and by the pages alike."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import psycopg

from hssk.access import accounts, relations
from hssk.access.actor import Actor
from hssk.access.audit import record as audit
from hssk.access.policy import ROLE_CLINICIAN, break_glass_duration
from hssk.kernel import clock

MAX_DAYS = 3650


class Refused(Exception):
    """The request is not allowed (``status`` 403) or names what does not exist (400/404)."""

    def __init__(self, status: int, reason: str):
        self.status, self.reason = status, reason
        super().__init__(reason)


def _refuse(conn: psycopg.Connection[Any], actor: Actor, action: str, reason: str,
            **what: Any) -> Refused:  # fmt: skip
    """Audit a refusal; the 403 to raise."""
    audit(conn, actor, action, outcome="deny", basis="deny", detail={"reason": reason, **what})
    return Refused(403, f"không được phép / forbidden: {reason}")


def my_persons(conn: psycopg.Connection[Any], actor: Actor) -> set[int]:
    """The citizen and the children they are currently guardian of."""
    if actor.kind != "citizen" or actor.person_id is None:
        return set()
    return {actor.person_id, *relations.children_of(conn, actor.person_id)}


def person_for(conn: psycopg.Connection[Any], actor: Actor, person_id: int | None) -> int:
    """The citizen's own person, or the child named (refused and audited otherwise)."""
    target = person_id if person_id is not None else actor.person_id
    if target is None or target not in my_persons(conn, actor):
        raise _refuse(conn, actor, "me", "only your own record or your children's",
                      person_id=person_id)  # fmt: skip
    return target


@dataclass(frozen=True)
class Child:
    person_id: int
    name: str | None
    birth_date: date | None


def children(conn: psycopg.Connection[Any], actor: Actor) -> list[Child]:
    """Children whose book this citizen holds (valid guardianship, under 18), eldest first
    (one read)."""
    if actor.kind != "citizen" or actor.person_id is None:
        return []
    out: dict[int, Child] = {}  # a child may be linked twice (two guardianship rows)
    for pid, name, born in relations.children_named(conn, actor.person_id):
        if pid != actor.person_id:
            out.setdefault(pid, Child(pid, name, born))
    return list(out.values())


@dataclass(frozen=True)
class Consent:
    id: int
    person_id: int
    grantee_account: int | None
    grantee_unit: str | None
    categories: list[str]
    purpose: str | None
    start: datetime
    end: datetime | None
    revoked_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {"id": self.id, "person_id": self.person_id,
                "grantee_account": self.grantee_account, "grantee_unit": self.grantee_unit,
                "categories": self.categories, "purpose": self.purpose, "start": self.start,
                "end": self.end, "revoked_at": self.revoked_at}  # fmt: skip


_COLS = """id, grantor_person, grantee_account, grantee_unit, categories, purpose,
    period_start, period_end, revoked_at"""


def consents(conn: psycopg.Connection[Any], actor: Actor) -> list[Consent]:
    """Consents the citizen (or their children) gave, newest first."""
    rows = conn.execute(
        f"SELECT {_COLS} FROM consent WHERE grantor_person = ANY(%s) ORDER BY id DESC",
        (sorted(my_persons(conn, actor)),),
    ).fetchall()
    return [Consent(*r) for r in rows]


def end_of_day(day: date) -> datetime:
    """The instant a Vietnam calendar day ends (a consent 'until 31/12' holds all that day)."""
    return datetime.combine(day + timedelta(days=1), time(0), tzinfo=clock.VN)


def grant(
    conn: psycopg.Connection[Any],
    actor: Actor,
    *,
    person_id: int | None = None,
    grantee_account: int | None = None,
    grantee_unit: str | None = None,
    categories: list[str] | None = None,
    purpose: str | None = "treatment",
    until: date | None = None,
    days: int | None = None,
) -> Consent:
    """A consent of the citizen (or their child) to one account or unit, until the end of the
    Vietnam day ``until`` (or for ``days``; default a year). Audited."""
    target = person_for(conn, actor, person_id)
    if (grantee_account is None) == (grantee_unit is None):
        raise Refused(400, "name exactly one grantee: grantee_account or grantee_unit")
    if (
        grantee_unit
        and not conn.execute("SELECT 1 FROM unit WHERE id = %s", (grantee_unit,)).fetchone()
    ):
        raise Refused(400, f"unit {grantee_unit!r} does not exist")
    if grantee_account and accounts.get_account(conn, grantee_account) is None:
        raise Refused(400, f"account {grantee_account} does not exist")
    now = clock.now()
    end = end_of_day(until) if until else now + timedelta(days=days or 365)
    if end <= now or end > now + timedelta(days=MAX_DAYS + 1):
        raise Refused(400, f"the end must be after today and within {MAX_DAYS} days")
    cats = sorted(set(categories or ["*"]))
    row = conn.execute(
        f"""INSERT INTO consent (grantor_person, grantee_account, grantee_unit, categories,
                purpose, period_end, granted_by)
            VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING {_COLS}""",
        (target, grantee_account, grantee_unit, cats, purpose, end, actor.account_id),
    ).fetchone()
    assert row is not None
    detail = {"grantee_account": grantee_account, "grantee_unit": grantee_unit,
              "categories": cats, "purpose": purpose, "end": end.isoformat()}  # fmt: skip
    audit(conn, actor, "consent-grant", outcome="allow", basis="own-record", person_id=target,
          resource_type="Consent", resource_id=str(row[0]), detail=detail)  # fmt: skip
    return Consent(*row)


def revoke(conn: psycopg.Connection[Any], actor: Actor, consent_id: int) -> Consent:
    """End a consent now (someone else's looks like a missing one: 404). Audited."""
    row = conn.execute(
        f"""UPDATE consent SET revoked_at = now(), revoked_by = %s
            WHERE id = %s AND grantor_person = ANY(%s) AND revoked_at IS NULL
            RETURNING {_COLS}""",
        (actor.account_id, consent_id, sorted(my_persons(conn, actor))),
    ).fetchone()
    if row is None:
        audit(conn, actor, "consent-revoke", outcome="deny", basis="deny",
              resource_type="Consent", resource_id=str(consent_id))  # fmt: skip
        raise Refused(404, f"no active consent {consent_id} of yours")
    audit(conn, actor, "consent-revoke", outcome="allow", basis="own-record", person_id=row[1],
          resource_type="Consent", resource_id=str(consent_id))  # fmt: skip
    return Consent(*row)


MIN_REASON = 20


@dataclass(frozen=True)
class Emergency:
    id: int
    person_id: int
    expires_at: datetime


def declare_emergency(
    conn: psycopg.Connection[Any], actor: Actor, person_id: int, reason: str
) -> Emergency:
    """A clinician's break-glass access with a written reason (reads and hand-on letters,
    ``policy.EMERGENCY_WRITABLE``; reviewed later)."""
    if not (actor.kind == "clinician" or ROLE_CLINICIAN in actor.roles):
        raise _refuse(conn, actor, "break-glass", "only clinicians may declare an emergency")
    if len(reason.strip()) < MIN_REASON:
        raise Refused(400, f"write the reason in at least {MIN_REASON} characters")
    if not conn.execute("SELECT 1 FROM person WHERE id = %s", (person_id,)).fetchone():
        raise Refused(404, f"no person {person_id}")
    row = conn.execute(
        """INSERT INTO break_glass (account_id, unit_id, person_id, reason, expires_at)
           VALUES (%s, %s, %s, %s, now() + %s) RETURNING id, expires_at""",
        (actor.account_id, actor.unit_id, person_id, reason, break_glass_duration()),
    ).fetchone()
    assert row is not None
    audit(conn, actor, "break-glass", outcome="allow", basis="break-glass",
          person_id=person_id, detail={"reason": reason, "id": row[0]})  # fmt: skip
    return Emergency(row[0], person_id, row[1])
