"""The citizen's access log (``/book/access-log``) in plain words: who (name and role), which
unit, why (the basis, an emergency explained), what (read, wrote, downloaded…), when (Vietnam
time). The citizen's own reads are folded into one line per day.

The audit trail (``access.audit``) keeps codes; this module only words them. Whose log a
citizen may see (their own, their children's) is ``access.consent.person_for``'s rule, the
one ``/api/v1/me/access-log`` follows.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hssk.access import consent
from hssk.access.audit import AuditRow, search
from hssk.access.policy import READ_ACTIONS, WRITE_ACTIONS
from hssk.api.deps import Conn
from hssk.http import gate
from hssk.http.gate import PageActor
from hssk.kernel import clock
from hssk.web import backend, render
from hssk.web.i18n import STRINGS, t

router = APIRouter(include_in_schema=False)
SHOWN = 300  # events read per page (before the citizen's own reads are folded)
_ROLE_ORDER = ("clinician", "station", "supervisor", "admin", "auditor")
# the citizen's own looks at the book, folded per day (a download stays a line of its own)
FOLDED = READ_ACTIONS - {"export"}


@dataclass(frozen=True)
class Line:
    """One line of the log as the citizen reads it."""

    at: datetime  # Vietnam time
    who: str
    role: str | None
    unit: str | None
    what: str
    why: str | None
    refused: bool
    emergency: bool
    reason: str | None  # an emergency's written reason
    write: bool
    folded: int = 0  # >0: the citizen's own reads of that day, counted


def lines(rows: Iterable[AuditRow], me: str, lang: str) -> list[Line]:
    """The log's lines, newest first: the citizen's (``me``, an account id) own reads of
    the same Vietnam day become one line."""
    out: list[Line] = []
    own_day: dict[date, int] = {}  # day → index of its folded line in ``out``
    for r in rows:
        at = clock.to_vn(r.at)
        mine = r.actor == me
        if mine and r.action in FOLDED and r.outcome == "allow":
            day = at.date()
            if day in own_day:
                i = own_day[day]
                out[i] = _fold(out[i], lang)
                continue
            own_day[day] = len(out)
            out.append(Line(at, t("log_you", lang), None, None, t("log_own_read", lang),
                            None, False, False, None, False, 1))  # fmt: skip
            continue
        out.append(_line(r, at, mine, lang))
    return out


def _fold(line: Line, lang: str) -> Line:
    n = line.folded + 1
    return Line(line.at, line.who, None, None, t("log_own_reads", lang, n=n), None, False, False,
                None, False, n)  # fmt: skip


def _line(r: AuditRow, at: datetime, mine: bool, lang: str) -> Line:
    emergency = r.basis == "break-glass" or r.action == "break-glass"
    reason = r.detail.get("reason") if r.action == "break-glass" else None
    return Line(
        at=at,
        who=t("log_you", lang) if mine else _who(r, lang),
        role=None if mine else _role(r.role, lang),
        unit=r.unit_name or r.unit_id,
        what=_what(r.action, r.resource_type, lang),
        why=_why(r.basis, lang),
        refused=r.outcome != "allow",
        emergency=emergency,
        reason=str(reason) if reason else None,
        write=r.action in WRITE_ACTIONS,
    )


def _who(r: AuditRow, lang: str) -> str:
    if r.actor_name:
        return r.actor_name
    if r.actor == "platform":
        return t("log_platform", lang)
    if r.client:  # a unit's software
        return r.client
    return t("log_unknown", lang)


def _role(role: str | None, lang: str) -> str | None:
    """The audit row's roles (or account kind) as one word: the main role first."""
    if not role:
        return None
    parts = role.split(",")
    main = next((p for p in _ROLE_ORDER if p in parts), parts[0])
    key = f"logrole_{main}"
    return t(key, lang) if key in STRINGS else None


def _what(action: str, resource_type: str | None, lang: str) -> str:
    key = f"act_{action}"
    text = t(key, lang) if key in STRINGS else t("act_other", lang, code=action)
    what = f"what_{resource_type}"
    if action in WRITE_ACTIONS and resource_type and resource_type != "Patient" and what in STRINGS:
        text = f"{text}: {t(what, lang)}"
    return text


def _why(basis: str | None, lang: str) -> str | None:
    if not basis:
        return None
    key = f"why_{basis}"
    return t(key, lang) if key in STRINGS else basis


# --- the page -----------------------------------------------------------------------------


@router.get("/book/access-log", response_class=HTMLResponse)
def access_log_page(
    request: Request,
    conn: Conn,
    actor: PageActor,
    p: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> Response:
    """The signed-in citizen's log, or (``p``) a child's they are guardian of."""
    if actor.kind != "citizen" or actor.person_id is None:
        expired = "&expired=1" if gate.session_expired(request) else ""
        return RedirectResponse(f"/book/login?next=/book/access-log{expired}", 303)
    lang = render.lang_of(request)
    try:
        person_id = consent.person_for(conn, actor, p)
    except consent.Refused as exc:
        return render.page(request, "error.html", message=t("forbidden", lang), reason=exc.reason,
                           status=exc.status, nav="log")  # fmt: skip
    children = backend.children(conn, actor)
    rows = search(conn, person_ids=[person_id], limit=SHOWN)
    return render.page(
        request, "access_log.html", nav="log", lines=lines(rows, actor.account_id, lang),
        children=children, shown=person_id, me=actor.person_id,
        child_name=next((c.name for c in children if c.person_id == person_id), None),
    )  # fmt: skip
