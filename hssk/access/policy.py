"""The one authorization policy every endpoint asks (deny unless a rule allows).

Rules (design §5), in the order they are tried; the first that allows names the basis:

* ``own-record`` — a citizen and their own book;
* ``guardian`` — a citizen and the book of a child they are guardian of (until 18, or the end
  date of the guardianship);
* ``encounter`` — a clinician (or a facility system) of a facility whose own HIS system
  account wrote an Encounter of the person for that facility's code (``resource.source_unit``
  and ``serviceProvider`` both name it; never a body claim alone): open and checked in less
  than ``HSSK_CHECKIN_HOURS`` (24) ago (an inpatient stay: ``HSSK_ADMISSION_HOURS``, 60
  days), or finished less than the grace period ago
  (``HSSK_ENCOUNTER_GRACE_HOURS``, 72);
* ``area`` — commune-station staff and the persons living in their commune;
* ``consent`` — an active consent of the person naming the account or its unit;
* ``break-glass`` — a clinician who declared an emergency with a written reason (reads, and
  the referral and re-examination letters of ``EMERGENCY_WRITABLE``; flagged for review);
* ``scope`` — system clients of national systems within their SMART scopes;
* ``role`` — auditors on the audit trail, supervisors on aggregates.

Sensitive categories (HIV, mental health, ...) are only covered by own-record, guardian and a
consent that names the category. Every human token must also carry a scope covering the
request (``patient/…`` for citizens, ``user/…`` for staff): a token never widens an account.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import psycopg

from hssk.access.actor import Actor

READ_ACTIONS = frozenset({"read", "vread", "search", "history", "export", "everything"})
WRITE_ACTIONS = frozenset({"create", "update", "delete", "patch", "write", "transaction"})
AGGREGATE = "aggregate"

ROLE_CLINICIAN = "clinician"
ROLE_STATION = "station"
ROLE_SUPERVISOR = "supervisor"
ROLE_ADMIN = "admin"
ROLE_AUDITOR = "auditor"
ROLES = frozenset({ROLE_CLINICIAN, ROLE_STATION, ROLE_SUPERVISOR, ROLE_ADMIN, ROLE_AUDITOR})

# Reference data without personal health information: any authenticated caller may read it.
REFERENCE_TYPES = frozenset(
    {"Organization", "Practitioner", "Location", "ValueSet", "CodeSystem", "CapabilityStatement"}
)
# What a citizen may add to their own (or their child's) book themselves.
CITIZEN_WRITABLE = frozenset({"Observation", "FamilyMemberHistory", "AllergyIntolerance"})
# What a clinician may write under a declared emergency: the letters that hand the patient on
# (referral, re-examination appointment). The rest of the record stays read-only.
EMERGENCY_WRITABLE = frozenset({"ServiceRequest", "Appointment"})
# Units whose system clients speak for a national system (scopes suffice, no treating link).
NATIONAL_UNIT_KINDS = frozenset({"external", "platform"})
# Units that give care under a facility code (mã CSKCB): their own HIS system account opens
# the encounter basis for their staff.
FACILITY_UNIT_KINDS = frozenset({"hospital", "polyclinic", "clinic", "station", "district_centre"})
OPEN_ENCOUNTER_STATUSES = ("planned", "arrived", "triaged", "in-progress", "onleave")
AUDIT_TYPE = "AuditEvent"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    basis: str  # the rule that allowed it (own-record, guardian, ...) or 'deny'
    reason: str

    def __bool__(self) -> bool:
        return self.allowed


def _hours(name: str, default: float) -> timedelta:
    raw = os.environ.get(name)
    return timedelta(hours=float(raw) if raw else default)


def encounter_grace() -> timedelta:
    """How long after discharge the treating facility keeps access."""
    return _hours("HSSK_ENCOUNTER_GRACE_HOURS", 72)


def checkin_hours() -> timedelta:
    """How long an open encounter (a check-in without a visit yet) grants access."""
    return _hours("HSSK_CHECKIN_HOURS", 24)


def admission_hours() -> timedelta:
    """How long an open inpatient stay (class IMP) grants access: a hospital sends the hồ sơ
    at discharge, so an admission stays open for its whole length (60 days at most)."""
    return _hours("HSSK_ADMISSION_HOURS", 24 * 60)


def break_glass_duration() -> timedelta:
    """How long a declared emergency opens a record."""
    return _hours("HSSK_BREAK_GLASS_HOURS", 4)


def mode_of(action: str) -> str | None:
    """'read', 'write' or 'aggregate' for an action; None for an unknown action."""
    if action in READ_ACTIONS:
        return "read"
    if action in WRITE_ACTIONS:
        return "write"
    if action == AGGREGATE:
        return AGGREGATE
    return None


@dataclass(frozen=True)
class UnitInfo:
    id: str
    kind: str
    facility_code: str | None
    commune_code: str | None
    commune_code_old: str | None
    province_code: str | None
    active: bool


def unit_info(conn: psycopg.Connection[Any], unit_id: str | None) -> UnitInfo | None:
    if not unit_id:
        return None
    row = conn.execute(
        """SELECT id, kind, facility_code, commune_code, commune_code_old, province_code, active
           FROM unit WHERE id = %s""",
        (unit_id,),
    ).fetchone()
    return UnitInfo(*row) if row else None


# One round trip per decision (or per page of search results): the caller's unit and, for
# each person, every fact a rule may need. Subqueries the actor's kind cannot use are
# switched off by constant flags written into the text (see _facts_sql), not sent as
# parameters, and one person is a scalar, not an array: the generic plan of each variant is
# then as cheap as a custom one, so PostgreSQL keeps it instead of planning this query again
# on every call (planning cost twice the execution).
_FACTS_SQL = """
WITH u AS (SELECT id, kind, facility_code, commune_code, commune_code_old, active
           FROM unit WHERE id = %(unit)s),
k AS (SELECT coalesce((SELECT array_remove(ARRAY[id, facility_code], NULL) FROM u), '{}') AS ids,
             (SELECT commune_code FROM u) AS commune,
             (SELECT commune_code_old FROM u) AS commune_old,
             (SELECT facility_code FROM u WHERE kind IN ({facility_kinds})) AS fac),
a AS ({persons}),
p AS (SELECT a.asked, person_survivor(a.asked) AS pid FROM a)
SELECT p.asked, p.pid, (SELECT kind FROM u), coalesce((SELECT active FROM u), false),
  {is_citizen} AND EXISTS (
    SELECT 1 FROM guardianship g JOIN person c ON c.id = g.child_person
    WHERE g.guardian_person = %(me)s AND g.child_person = p.pid AND g.ended_at IS NULL
      AND g.valid_from <= current_date
      AND (g.valid_until IS NULL OR g.valid_until > current_date)
      AND (c.birth_date IS NULL OR c.birth_date + interval '18 years' > current_date)),
  {check_encounter} AND k.fac IS NOT NULL AND EXISTS (
    SELECT 1 FROM resource e
    WHERE e.person_id = ANY(person_merged_ids(p.pid)) AND e.type = 'Encounter' AND NOT e.deleted
      AND e.source_unit = k.fac
      AND (e.body #>> '{serviceProvider,identifier,value}' = k.fac
           OR e.body #>> '{serviceProvider,reference}' = 'Organization/' || k.fac)
      AND ((e.body ->> 'status' = ANY(%(open)s)
            AND greatest(e.last_updated, access_ts(e.body #>> '{period,start}'))
                > now() - CASE WHEN e.body #>> '{class,code}' = 'IMP' THEN %(admission)s
                               ELSE %(checkin)s END)
           OR (e.body ->> 'status' = 'finished'
               AND coalesce(access_ts(e.body #>> '{period,end}'), e.last_updated)
                   > now() - %(grace)s))),
  {check_area} AND k.commune IS NOT NULL AND EXISTS (
    SELECT 1 FROM person q WHERE q.id = p.pid
      AND (q.commune_code = k.commune OR q.commune_code_old = k.commune_old)),
  (SELECT coalesce(array_agg(DISTINCT cat), '{}') FROM consent c, unnest(c.categories) cat
    WHERE c.grantor_person = p.pid AND c.revoked_at IS NULL AND c.period_start <= now()
      AND (c.period_end IS NULL OR c.period_end > now())
      AND (c.grantee_account::text = %(account)s OR c.grantee_unit = ANY(k.ids))
      AND (c.purpose IS NULL OR %(purpose)s::text IS NULL OR c.purpose = %(purpose)s)),
  {check_glass} AND EXISTS (
    SELECT 1 FROM break_glass b WHERE b.account_id = %(account)s AND b.person_id = p.pid
      AND b.opened_at <= now() AND b.expires_at > now())
FROM p, k
"""


@functools.cache
def _facts_sql(
    one: bool, is_citizen: bool, check_encounter: bool, check_area: bool, check_glass: bool
) -> str:
    """The facts query for one person or many, its switches as SQL constants (32 texts)."""
    flags = {"is_citizen": is_citizen, "check_encounter": check_encounter,
             "check_area": check_area, "check_glass": check_glass}  # fmt: skip
    sql = _FACTS_SQL.replace(
        "{persons}",
        "SELECT %(pid)s::bigint AS asked"
        if one
        else "SELECT DISTINCT unnest(%(pids)s::bigint[]) AS asked",
    )
    for name, on in flags.items():
        sql = sql.replace("{" + name + "}", "true" if on else "false")
    kinds = ", ".join(f"'{k}'" for k in sorted(FACILITY_UNIT_KINDS))
    return sql.replace("{facility_kinds}", kinds)


@dataclass(frozen=True)
class _Facts:
    guardian: bool
    encounter: bool
    area: bool
    consent: frozenset[str]
    break_glass: bool
    # the person the facts are about: the asked id's survivor (data written under a person
    # since merged is read, and decided, as the survivor's)
    survivor: int


def _facts(
    conn: psycopg.Connection[Any],
    actor: Actor,
    person_ids: list[int],
    *,
    purpose: str | None,
    clinician: bool,
    station: bool,
) -> tuple[str | None, bool, dict[int, _Facts]]:
    """(unit kind, unit active, facts per person) in one query."""
    system = actor.kind == "system"
    sql = _facts_sql(
        one=len(person_ids) == 1,
        is_citizen=actor.kind == "citizen" and actor.person_id is not None,
        check_encounter=clinician or (system and not _national_hint(actor.unit_id)),
        check_area=station,
        check_glass=clinician,
    )
    params = {
        "unit": actor.unit_id,
        "pids": person_ids,
        "pid": person_ids[0],
        "me": actor.person_id,
        "open": list(OPEN_ENCOUNTER_STATUSES),
        "grace": encounter_grace(),
        "checkin": checkin_hours(),
        "admission": admission_hours(),
        "account": actor.account_id,
        "purpose": purpose,
    }
    rows = conn.execute(sql, params).fetchall()
    out: dict[int, _Facts] = {}
    for asked, pid, _kind, _active, guardian, enc, area, cats, glass in rows:
        out[asked] = _Facts(
            bool(guardian), bool(enc), bool(area), frozenset(cats), bool(glass), survivor=pid
        )
    kind, active = (rows[0][2], rows[0][3]) if rows else (None, False)
    if system and actor.unit_id:
        _unit_kinds[actor.unit_id] = (time.monotonic(), kind)
    return kind, bool(active), out


# Kind of a system client's unit as the last decision read it (per process, UNIT_KIND_TTL s):
# a national system's decision never looks at encounters, so its next query leaves that
# subquery out. Only a hint: every query still reads the unit's kind and state, which
# decide. Stale after a kind change, it can only drop the encounter fact for one decision
# (→ deny, never allow).
UNIT_KIND_TTL = 30.0
_unit_kinds: dict[str, tuple[float, str | None]] = {}


def _national_hint(unit_id: str | None) -> bool:
    hit = _unit_kinds.get(unit_id or "")
    if hit is None or time.monotonic() - hit[0] >= UNIT_KIND_TTL:
        return False
    return hit[1] in NATIONAL_UNIT_KINDS


def _consent_covers(cats: frozenset[str], resource_type: str, sensitivity: str | None) -> bool:
    if sensitivity:  # sensitive data needs the category named explicitly
        return sensitivity in cats or f"{resource_type}:{sensitivity}" in cats
    return "*" in cats or resource_type in cats


def _deny(reason: str) -> Decision:
    return Decision(False, "deny", reason)


def _pre(
    actor: Actor, action: str, resource_type: str, person_id: int | None
) -> tuple[Decision | None, str]:
    """Decisions that need no database; returns (decision or None, mode)."""
    if not actor.authenticated:
        return _deny("cần đăng nhập / authentication required"), ""
    mode = mode_of(action)
    if mode is None:
        return _deny(f"unknown action {action!r}"), ""
    if mode == AGGREGATE:
        if ROLE_SUPERVISOR in actor.roles or ROLE_STATION in actor.roles:
            return Decision(
                True, "area", "aggregates of the caller's area, without identities"
            ), mode
        if actor.kind == "system" and actor.has_scope("system", resource_type, "read"):
            return Decision(True, "scope", f"system/{resource_type}.read"), mode
        return _deny(
            "số liệu tổng hợp chỉ dành cho giám sát và trạm y tế / aggregates are for supervisors and station staff"
        ), mode
    if resource_type == AUDIT_TYPE:
        if mode == "read" and ROLE_AUDITOR in actor.roles:
            return Decision(True, "role", "auditor"), mode
        if (
            mode == "read"
            and actor.kind == "system"
            and "system/AuditEvent.read" in actor.scopes  # never by a wildcard
        ):
            return Decision(True, "scope", "system/AuditEvent.read"), mode
        return _deny(
            "nhật ký truy cập chỉ dành cho kiểm toán viên / the audit trail is for auditors"
        ), mode
    if resource_type in REFERENCE_TYPES and mode == "read":
        return Decision(True, "reference", "reference data, no personal information"), mode
    context = {"citizen": "patient", "system": "system"}.get(actor.kind, "user")
    if not actor.has_scope(context, resource_type, mode):
        return _deny(
            f"phạm vi token không bao gồm / token scope does not cover {context}/{resource_type}.{mode}"
        ), mode
    if person_id is None and not (actor.kind == "system" and mode == "write"):
        if actor.kind == "system" and actor.account_id == "platform":
            return Decision(True, "scope", "the platform itself"), mode
        return _deny(
            f"cần chỉ rõ một người bệnh / {action} of {resource_type} must name one person (patient=...)"
        ), mode
    return None, mode


def authorize_many(
    conn: psycopg.Connection[Any] | None,
    actor: Actor,
    action: str,
    resource_type: str,
    person_ids: Iterable[int],
    *,
    sensitivity: str | None = None,
    purpose: str | None = None,
) -> dict[int, Decision]:
    """The decision for each person (one query for all of them: use it to filter searches)."""
    pids = sorted({int(p) for p in person_ids})
    if any(not (0 < p < 2**63) for p in pids):  # not a person id at all (and not a bigint)
        bad = {p: _deny("không có người này / no such person") for p in pids if not (0 < p < 2**63)}
        good = [p for p in pids if 0 < p < 2**63]
        return bad | authorize_many(conn, actor, action, resource_type, good,
                                    sensitivity=sensitivity, purpose=purpose)  # fmt: skip
    decided, mode = _pre(actor, action, resource_type, pids[0] if pids else None)
    if decided is not None or not pids:
        base = decided or _deny("no person")
        return {p: base for p in pids}
    if conn is None:
        return {p: _deny("no database to check the rule") for p in pids}
    if actor.kind == "system" and actor.account_id == "platform":
        return {p: Decision(True, "scope", "the platform itself") for p in pids}
    clinician = actor.kind == "clinician" or ROLE_CLINICIAN in actor.roles
    station = ROLE_STATION in actor.roles
    supervisor_only = ROLE_SUPERVISOR in actor.roles and not (clinician or station)
    kind, active, facts = _facts(
        conn, actor, pids, purpose=purpose, clinician=clinician, station=station
    )
    if actor.unit_id and (kind is None or not active):
        reason = f"đơn vị {actor.unit_id} không tồn tại hoặc đã bị khóa / unit unknown or disabled"
        return {p: _deny(reason) for p in pids}
    national = actor.kind == "system" and kind in NATIONAL_UNIT_KINDS
    out: dict[int, Decision] = {}
    for pid in pids:
        f = facts[pid]
        out[pid] = _decide(actor, mode, resource_type, f.survivor, sensitivity, f, national=national,
                           clinician=clinician, station=station, supervisor_only=supervisor_only)  # fmt: skip
    return out


def _decide(
    actor: Actor,
    mode: str,
    resource_type: str,
    pid: int,
    sensitivity: str | None,
    f: _Facts,
    *,
    national: bool,
    clinician: bool,
    station: bool,
    supervisor_only: bool,
) -> Decision:
    consent = _consent_covers(f.consent, resource_type, sensitivity)
    if actor.kind == "citizen":
        return _decide_citizen(actor, mode, resource_type, pid, f, consent)
    if actor.kind == "system":
        return _decide_system(actor, mode, resource_type, sensitivity, f, consent, national)
    if supervisor_only:
        return _deny(
            "giám sát chỉ xem số liệu tổng hợp / supervisors see aggregates only, no identities"
        )
    if sensitivity:
        if consent:
            return Decision(True, "consent", f"explicit consent for {sensitivity}")
        return _needs_consent(sensitivity)
    return _decide_staff(actor, mode, resource_type, f, consent, clinician, station)


def _decide_citizen(
    actor: Actor, mode: str, resource_type: str, pid: int, f: _Facts, consent: bool
) -> Decision:
    writable = mode == "read" or resource_type in CITIZEN_WRITABLE
    if actor.person_id == pid and writable:
        return Decision(True, "own-record", "the record is the citizen's own")
    if f.guardian and writable:
        return Decision(True, "guardian", "guardian of the child")
    if consent and mode == "read":
        return Decision(True, "consent", "consent of the person")
    return _deny(
        "công dân chỉ xem sổ của mình và của con / a citizen sees only their own book and their children's"
    )


def _decide_system(
    actor: Actor, mode: str, resource_type: str, sensitivity: str | None, f: _Facts,
    consent: bool, national: bool,
) -> Decision:  # fmt: skip
    if mode == "write":
        return Decision(True, "scope", f"system/{resource_type}.write")
    if sensitivity and not consent:
        # a national programme's system (e.g. the HIV programme) may be granted the
        # explicit scope system/Sensitive.read by an administrator; nobody else
        if national and "system/Sensitive.read" in actor.scopes:  # never by a wildcard
            return Decision(True, "scope", f"system/Sensitive.read for {sensitivity}")
        return _needs_consent(sensitivity)
    if consent:
        return Decision(True, "consent", "consent of the person to the unit")
    if national:
        return Decision(True, "scope", f"system/{resource_type}.read")
    if f.encounter:
        return Decision(True, "encounter", "open encounter at the facility")
    return _deny(
        "hệ thống cơ sở y tế cần lượt khám đang mở hoặc sự đồng ý / a facility system needs an open encounter or consent"
    )


def _decide_staff(
    actor: Actor, mode: str, resource_type: str, f: _Facts, consent: bool, clinician: bool,
    station: bool,
) -> Decision:  # fmt: skip
    """Clinicians and station staff, on data that is not sensitive."""
    if clinician and f.encounter:
        return Decision(True, "encounter", "open encounter at the clinician's facility")
    if station and f.area:
        return Decision(True, "area", "resident of the station's commune")
    if consent and (mode == "read" or clinician):
        return Decision(True, "consent", "consent of the person")
    if clinician and f.break_glass and (mode == "read" or resource_type in EMERGENCY_WRITABLE):
        return Decision(True, "break-glass", "declared emergency (flagged for review)")
    if station:
        return _deny(
            "người này không cư trú tại xã của trạm / the person does not live in the station's commune"
        )
    if clinician:
        return _deny(
            "không có lượt khám đang mở, sự đồng ý hay khai báo cấp cứu / no open encounter, consent or declared emergency for this person"
        )
    return _deny(
        f"không có quy tắc nào cho phép / no rule allows {actor.kind} to {mode} {resource_type}"
    )


def _needs_consent(sensitivity: str) -> Decision:
    return _deny(
        f"dữ liệu nhạy cảm {sensitivity} cần sự đồng ý rõ ràng của người bệnh / sensitive category {sensitivity} needs the person's explicit consent"
    )


def looks_up_identities(actor: Actor) -> bool:
    """May ``actor`` look persons up by identity (patient search, a person's page, the card
    look-up)? Clinical roles only (clinicians, station staff) and systems within their
    scopes: supervisors and administrators see aggregates, never identities."""
    if actor.kind == "system":
        return True
    return actor.kind == "clinician" or bool({ROLE_CLINICIAN, ROLE_STATION} & actor.roles)


def recorded_unit(conn: psycopg.Connection[Any], actor: Actor) -> str | None:
    """The facility code a write is recorded under (``resource.source_unit``): the actor's
    own, when the actor is its facility's HIS system account (a system account of an active
    facility unit), else None. Only such writes can open an encounter basis."""
    if actor.kind != "system":
        return None
    unit = unit_info(conn, actor.unit_id)
    if unit is None or not unit.active or unit.kind not in FACILITY_UNIT_KINDS:
        return None
    return unit.facility_code


def authorize(
    conn: psycopg.Connection[Any] | None,
    actor: Actor,
    action: str,
    resource_type: str,
    person_id: int | None = None,
    *,
    sensitivity: str | None = None,
    purpose: str | None = None,
) -> Decision:
    """May ``actor`` do ``action`` (read, search, create, update, export, aggregate...) here?"""
    decided, _ = _pre(actor, action, resource_type, person_id)
    if decided is not None:
        return decided
    if person_id is None:  # a system client writing data not yet linked to a person
        return Decision(True, "scope", f"system/{resource_type}.write")
    return authorize_many(
        conn, actor, action, resource_type, [person_id], sensitivity=sensitivity, purpose=purpose
    )[int(person_id)]


@dataclass(frozen=True)
class Area:
    """What a supervisor's or station's aggregates may cover: their unit and the units below.
    ``everything`` for the Department of Health (and the platform)."""

    everything: bool
    unit_ids: tuple[str, ...] = ()
    commune_codes: tuple[str, ...] = ()
    facility_codes: tuple[str, ...] = ()


def area_of(conn: psycopg.Connection[Any], actor: Actor) -> Area | None:
    """The area for aggregates, or None when the actor may see no aggregates at all."""
    if not authorize(conn, actor, AGGREGATE, "Patient").allowed:
        return None
    if actor.kind == "system" and (actor.account_id == "platform" or not actor.unit_id):
        return Area(everything=True)
    unit = unit_info(conn, actor.unit_id)
    if unit is None:
        return None
    if unit.kind in ("department", "platform"):
        return Area(everything=True, unit_ids=(unit.id,))
    rows = conn.execute(
        """WITH RECURSIVE t AS (SELECT * FROM unit WHERE id = %s
             UNION SELECT u.* FROM unit u JOIN t ON u.parent_id = t.id)
           SELECT id, commune_code, facility_code FROM t""",
        (unit.id,),
    ).fetchall()
    return Area(
        everything=False,
        unit_ids=tuple(sorted(r[0] for r in rows)),
        commune_codes=tuple(sorted({r[1] for r in rows if r[1]})),
        facility_codes=tuple(sorted({r[2] for r in rows if r[2]})),
    )
