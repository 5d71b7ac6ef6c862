"""What the pages of several audiences share: who may see a page, and where to log in."""

from __future__ import annotations

from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from hssk.access import Actor
from hssk.access.policy import looks_up_identities
from hssk.http import gate
from hssk.web import render
from hssk.web.i18n import t

# The prefix of a field carried through the staff login (a form an expired session interrupted)
CARRY = "carry:"


def login_redirect(request: Request, path: str = "/book/login") -> RedirectResponse:
    """To the login page, back here afterwards; saying so when the session had expired."""
    expired = "&expired=1" if gate.session_expired(request) else ""
    return RedirectResponse(f"{path}?next={quote(str(request.url.path))}{expired}", 303)


def safe_next(nxt: str, default: str = "/book") -> str:
    # only local paths: never redirect a freshly logged-in user to another site
    return nxt if nxt.startswith("/") and not nxt.startswith("//") else default


def citizen(request: Request, actor: Actor) -> Response | None:
    """None for a logged-in citizen, else the way to the citizen login."""
    if actor.kind != "citizen" or actor.person_id is None:
        return login_redirect(request)
    return None


def _is_staff(actor: Actor) -> bool:
    return actor.authenticated and actor.kind in ("clinician", "staff")


def staff(request: Request, actor: Actor) -> Response | None:
    """The clinician and station pages look persons up by identity: clinical roles only."""
    if not _is_staff(actor):
        return login_redirect(request, "/staff/login")
    if not looks_up_identities(actor):
        return render.page(request, "error.html", message=t("forbidden", render.lang_of(request)),
                           reason=t("clinical_only", render.lang_of(request)), status=403)  # fmt: skip
    return None


def staff_post(request: Request, actor: Actor, posted: dict[str, str]) -> Response | None:
    """:func:`staff` for a form's POST: when the session has expired, the login page comes
    back with what was typed carried along (hidden fields), to be sent on after logging in."""
    if _is_staff(actor):
        return staff(request, actor)
    return relogin_keeping(request, posted)


def relogin_keeping(request: Request, posted: dict[str, str]) -> Response:
    """The staff login page for a form whose session expired, what was typed carried along."""
    return render.page(request, "staff_login.html", next=request.url.path, carry=posted,
                       notice=t("session_expired_form", render.lang_of(request)),
                       status=401)  # fmt: skip


def not_found(request: Request) -> Response:
    return render.page(
        request, "error.html", message=t("not_found", render.lang_of(request)), status=404
    )
