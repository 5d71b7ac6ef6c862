"""The web layer's view of the other components (registry, access), in one place.

Pages call these functions only; each calls the owning component's public function, so a
rule (who may read, what is audited) lives in one place.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from hssk import registry
from hssk.access import Actor, Decision, audit, auth, authorize, consent
from hssk.access.audit import record_decision
from hssk.kernel import clock
from hssk.records import Stored, everything
from hssk.registry.types import Person
from hssk.web import selfdata
from hssk.web.book import PersonView
from hssk.web.models import SelfEntry


def person(conn: psycopg.Connection[Any], person_id: int) -> PersonView | None:
    """Demographics of a person (golden record, merges followed)."""
    p = registry.golden_record(conn, person_id)
    return None if p is None else _view(p)


def _view(p: Person) -> PersonView:
    return PersonView(
        id=p.id,
        full_name=p.full_name,
        birth_date=p.birth_date,
        birth_text=p.birth_date_text,
        sex=p.sex,
        health_id=p.health_id,
        cccd=p.cccd,
        bhyt=p.bhyt,
        phone=p.phone,
        address=p.address,
        commune_code=p.commune_code,
        deceased_at=p.deceased_at,
    )


@dataclass(frozen=True)
class BookData:
    """What a book is built from: demographics, clinical resources, citizen entries."""

    person: PersonView
    resources: list[Stored]
    self_entries: list[SelfEntry]


def book_data(
    conn: psycopg.Connection[Any],
    person_id: int,
    *,
    self_entries: bool,
    types: frozenset[str] | None = None,
) -> BookData | None:
    """The golden record (merges followed), its current resources (of ``types`` only, none
    read when empty; all when None) and, if asked, the citizen's own entries of a person
    (None for an unknown person).

    Two reads (``registry.golden_record_ids``: the survivor and the ids its data is stored
    under; the resources), a third for the citizen's entries. Measured: sending them in a
    psycopg pipeline costs more client CPU than it saves on loopback."""
    found = registry.golden_record_ids(conn, person_id)
    if found is None:
        return None
    survivor, under = found
    own = selfdata.entries(conn, survivor.id) if self_entries else []
    return BookData(_view(survivor), _resources(conn, under, types), own)


def _resources(
    conn: psycopg.Connection[Any], under: list[int], types: frozenset[str] | None
) -> list[Stored]:
    if types is not None and not types:
        return []  # e.g. a partner receiving administrative data only
    return everything(conn, under, sorted(types) if types is not None else None)


def records_of(
    conn: psycopg.Connection[Any], person_id: int, types: list[str] | None = None
) -> list[Stored]:
    """The current resources of a survivor: written under it or under a person merged into it
    (merges never move rows)."""
    return everything(conn, registry.merged_ids(conn, person_id), types)


@dataclass(frozen=True)
class Found:
    person: PersonView
    score: float
    grade: str


def find(
    conn: psycopg.Connection[Any],
    *,
    cccd: str | None = None,
    bhyt: str | None = None,
    name: str | None = None,
    birth_date: str | None = None,
    limit: int = 20,
) -> list[Found]:
    """Clinician search through the registry (best first, with match scores)."""
    out = []
    for c in registry.find(
        conn, cccd=cccd, bhyt=bhyt, name=name, birth_date=birth_date, limit=limit
    ):
        # a candidate never merged is its own golden record: read again only the others
        view = _view(c.person) if c.person.merged_into is None else person(conn, c.person.id)
        if view is not None:
            out.append(Found(view, c.score, c.grade))
    return out


@dataclass(frozen=True)
class Child:
    person_id: int
    name: str | None
    birth_date: Any


def children(conn: psycopg.Connection[Any], actor: Actor) -> list[Child]:
    """Children whose book this citizen holds as guardian (valid guardianship, under 18)."""
    if actor.kind != "citizen" or actor.person_id is None:
        return []
    return [Child(c.person_id, c.name, c.birth_date) for c in consent.children(conn, actor)]


def decide(
    conn: psycopg.Connection[Any],
    actor: Actor,
    person_id: int,
    *,
    action: str = "read",
    purpose: str | None = None,
    sensitivity: str | None = None,
    resource_type: str = "Patient",
) -> Decision:
    """The access policy's decision for reading (or writing) a person's record (a write:
    of ``resource_type``)."""
    return authorize(
        conn, actor, action, resource_type, person_id, purpose=purpose, sensitivity=sensitivity
    )


def record_search(
    conn: psycopg.Connection[Any], actor: Actor, persons: list[int], detail: dict[str, Any]
) -> None:
    """Audit a patient search: one event per person returned (so each citizen's access log
    shows it), each naming every person returned; one event when nothing was found."""
    detail = {**detail, "persons": persons}
    each: list[int | None] = [*persons] or [None]
    for pid in each:
        audit(conn, actor, "search", outcome="allow", basis="search", resource_type="Patient",
              person_id=pid, detail=detail)  # fmt: skip


def record_access(
    conn: psycopg.Connection[Any],
    actor: Actor,
    action: str,
    person_id: int,
    decision: Decision,
    *,
    resource_type: str = "Patient",
    resource_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    record_decision(
        conn, actor, action, decision, resource_type=resource_type,
        resource_id=resource_id, person_id=person_id, detail=detail,
    )  # fmt: skip


@dataclass(frozen=True)
class ConsentView:
    id: int
    person_id: int
    grantee: str
    categories: list[str]
    purpose: str | None
    start: datetime | None
    end: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @property
    def last_day(self) -> date | None:
        """The last Vietnam day the consent holds (it ends at the midnight after it)."""
        return clock.to_vn(self.end - timedelta(microseconds=1)).date() if self.end else None


def consents(conn: psycopg.Connection[Any], actor: Actor) -> list[ConsentView]:
    """Consents the citizen (or their children) gave, active first."""
    names = dict(units(conn))
    out = [
        ConsentView(
            id=c.id,
            person_id=c.person_id,
            grantee=names.get(c.grantee_unit or "", c.grantee_unit or f"#{c.grantee_account}"),
            categories=list(c.categories or ["*"]),
            purpose=c.purpose,
            start=c.start,
            end=c.end,
            revoked_at=c.revoked_at,
        )
        for c in consent.consents(conn, actor)
    ]
    out.sort(key=lambda c: (not c.active, -c.id))
    return out


class Refused(Exception):
    """The owning component refused the request (its message says why)."""


@contextmanager
def _refused() -> Iterator[None]:
    """The access component's refusal, with its message, as this module's."""
    try:
        yield
    except consent.Refused as exc:
        raise Refused(exc.reason) from exc


def grant_consent(
    conn: psycopg.Connection[Any], actor: Actor, *, grantee_unit: str, until: date | None
) -> int:
    """A consent to a unit until the end of the Vietnam day ``until`` (a year without one)."""
    with _refused():
        return consent.grant(conn, actor, grantee_unit=grantee_unit, until=until).id


def revoke_consent(conn: psycopg.Connection[Any], actor: Actor, consent_id: int) -> None:
    with _refused():
        consent.revoke(conn, actor, consent_id)


def units(conn: psycopg.Connection[Any], kinds: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(id, name) of active units, for pickers (consent grantee, referral destination)."""
    rows = conn.execute(
        """SELECT id, name FROM unit WHERE active AND (%s::text[] = '{}' OR kind = ANY(%s))
           ORDER BY name LIMIT 500""",
        (list(kinds), list(kinds)),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


def unit_name(conn: psycopg.Connection[Any], unit_id: str | None) -> str | None:
    if not unit_id:
        return None
    row = conn.execute("SELECT name FROM unit WHERE id = %s", (unit_id,)).fetchone()
    return row[0] if row else unit_id


@dataclass(frozen=True)
class UnitName:
    name: str
    facility_code: str | None


def unit_names(conn: psycopg.Connection[Any], keys: set[str]) -> dict[str, UnitName]:
    """Names of the units that ``keys`` name, by unit id or facility code (mã CSKCB)."""
    if not keys:
        return {}
    rows = conn.execute(
        "SELECT id, facility_code, name FROM unit WHERE id = ANY(%s) OR facility_code = ANY(%s)",
        (sorted(keys), sorted(keys)),
    ).fetchall()
    out: dict[str, UnitName] = {}
    for uid, code, name in rows:
        unit = UnitName(name, code)
        out[uid] = unit
        if code:
            out[code] = unit
    return out


BREAK_GLASS_MIN_REASON = consent.MIN_REASON


def open_break_glass(
    conn: psycopg.Connection[Any], actor: Actor, person_id: int, reason: str
) -> None:
    """Record an emergency access with its written reason (reviewed later)."""
    with _refused():
        consent.declare_emergency(conn, actor, person_id, reason)


class LoginRefused(Refused):
    """A citizen's login refused: ``reason`` (one of auth.REASONS, for the page to word),
    ``retry_after`` seconds and the code's ``attempts_left`` when known."""

    def __init__(self, exc: auth.AuthError):
        super().__init__(exc.description)
        self.reason = exc.reason or auth.WRONG_CODE
        self.retry_after, self.attempts_left = exc.retry_after, exc.attempts_left


LoginCode = auth.LoginCode


def start_login(
    conn: psycopg.Connection[Any], settings: Any, identifier: str, address: str | None
) -> LoginCode | None:
    """Send a one-time code to the citizen behind a CCCD or phone; where it went (None: no
    code, e.g. nobody has that number)."""
    try:
        return auth.request_login_code(conn, settings, identifier, address, say_limit=True)
    except auth.AuthError as exc:
        raise LoginRefused(exc) from exc


def login_code(conn: psycopg.Connection[Any], identifier: str) -> LoginCode | None:
    """The latest login code sent for ``identifier`` (its masked destination, resend time)."""
    return auth.login_code(conn, identifier)


def finish_login(
    conn: psycopg.Connection[Any], settings: Any, identifier: str, code: str, address: str | None
) -> str:
    """Check the one-time code; returns an access token (LoginRefused on a bad code)."""
    try:
        body = auth.otp_grant(
            conn, settings, identifier=identifier, code=code, scope=None, address=address
        )
    except auth.AuthError as exc:
        raise LoginRefused(exc) from exc
    return str(body["access_token"])


def staff_login(
    conn: psycopg.Connection[Any],
    settings: Any,
    username: str,
    password: str,
    otp: str | None,
    address: str | None,
) -> str:
    try:
        body = auth.password_grant(
            conn,
            settings,
            username=username,
            password=password,
            totp=otp,
            scope=None,
            address=address,
        )
    except auth.AuthError as exc:
        raise Refused(exc.description) from exc
    return str(body["access_token"])
