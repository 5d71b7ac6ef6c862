"""The staff menu: only the entries the signed-in person may use (no link answering 403).

Each entry asks the rule its pages ask: the clinical pages ``policy.looks_up_identities``,
the admin console ``access.admin.is_admin``, supervision the supervisor role, held-back
records ``ingest.permissions`` (writing staff of a unit).
"""

from __future__ import annotations

from dataclasses import dataclass

from hssk.access import Actor
from hssk.access.admin import is_admin
from hssk.access.policy import ROLE_ADMIN, ROLE_AUDITOR, ROLE_SUPERVISOR, looks_up_identities
from hssk.ingest.permissions import can_write

# the page groups (a template's ``nav``) that show the staff menu
STAFF_NAVS = ("clinic", "station", "quarantine", "admin")


@dataclass(frozen=True)
class Entry:
    href: str
    label: str  # an i18n key
    group: str  # the ``nav`` of its pages (the current group is marked)


CLINICAL = (
    Entry("/clinic", "search_person", "clinic"),
    Entry("/station/checkup", "station_checkup", "station"),
    Entry("/station/household", "station_household", "station"),
    Entry("/station/death", "station_death", "station"),
)
QUARANTINE = (Entry("/staff/quarantine", "quarantine", "quarantine"),)
# roles that neither give care nor send records: their holders fix no held-back record
_OFFICE_ROLES = frozenset({ROLE_ADMIN, ROLE_SUPERVISOR, ROLE_AUDITOR})
ADMIN = (
    Entry("/admin", "admin_home", "admin"),
    Entry("/admin/units", "admin_units", "admin"),
    Entry("/admin/accounts", "admin_accounts", "admin"),
    Entry("/admin/keys", "admin_keys", "admin"),
)
SUPERVISION = (Entry("/supervision", "supervision", "supervision"),)


def staff_menu(actor: Actor | None) -> list[Entry]:
    """The entries ``actor`` may use, in the order shown."""
    if actor is None or not actor.authenticated or actor.kind == "citizen":
        return []
    out: list[Entry] = []
    if is_admin(actor):
        out += ADMIN
    if looks_up_identities(actor):
        out += CLINICAL
    # held-back records: a facility's staff who write records (ingest.permissions.error_scope
    # also needs the unit's facility code, which only the page itself reads)
    office_only = bool(actor.roles) and actor.roles <= _OFFICE_ROLES
    if can_write(actor) and actor.unit_id and not office_only:
        out += QUARANTINE
    if ROLE_SUPERVISOR in actor.roles:
        out += SUPERVISION
    return out


def current(entries: list[Entry], path: str) -> str | None:
    """The entry a page at ``path`` belongs to (the longest matching href)."""
    hits = [e.href for e in entries if path == e.href or path.startswith(e.href + "/")]
    return max(hits, key=len) if hits else None


def home(actor: Actor) -> str:
    """Where a member of staff lands after logging in: the admin console for administrators,
    the clinical workspace for clinical staff, supervision for supervisors."""
    entries = staff_menu(actor)
    return entries[0].href if entries else "/clinic"
