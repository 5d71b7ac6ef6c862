"""The commune health station's forms: check-ups and screening, household changes, deaths
(checked and saved by ``hssk.web.station``)."""

from __future__ import annotations

import uuid
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hssk.access import Actor, Decision
from hssk.api.bodies import FormFields
from hssk.api.deps import Conn
from hssk.http.gate import PageActor
from hssk.kernel import clock
from hssk.web import backend, render, station
from hssk.web.book import PersonView
from hssk.web.forms import Form
from hssk.web.i18n import t
from hssk.web.pages.guards import not_found, staff, staff_post

router = APIRouter(include_in_schema=False)


STATION_FORMS = {
    "checkup": station.validate_checkup,
    "household": station.validate_household,
    "death": station.validate_death,
    # reached from a refused second death notice: the audited correction of the date of death
    "death-amend": station.validate_amendment,
}


@router.get("/station", include_in_schema=False)
def station_home() -> Response:
    return RedirectResponse("/station/checkup", status_code=303)


@router.get("/station/{form_name}", include_in_schema=False, response_class=HTMLResponse)
def station_form(
    form_name: str,
    request: Request,
    conn: Conn,
    actor: PageActor,
    saved: str | None = None,
    cccd: str = "",
) -> Response:
    if (redirect := staff(request, actor)) is not None:
        return redirect
    if form_name not in STATION_FORMS:
        return not_found(request)
    whose = None
    if saved and saved.isdigit() and _may_write(conn, actor, int(saved)):
        whose = backend.person(conn, int(saved))  # the success message names the person
    # today's date (Vietnam) as the usual answer; a correction's date is always typed
    today = "" if form_name == "death-amend" else clock.today().strftime("%d/%m/%Y")
    values = {"date": today, "cccd": cccd[:12]}
    return render.page(request, "station.html", form_name=form_name, saved=saved, whose=whose,
                       values=values, **_station_ctx())  # fmt: skip


def _station_ctx() -> dict[str, Any]:
    return {
        "checkup_kinds": station.CHECKUP_KINDS,
        "household_actions": station.HOUSEHOLD_ACTIONS,
        "measurements": station.MEASUREMENTS,
        "nav": "station",
    }


def _may_write(conn: psycopg.Connection[Any], actor: Actor, person_id: int) -> bool:
    return backend.decide(conn, actor, person_id, action="write").allowed


def _person(
    conn: psycopg.Connection[Any], actor: Actor, form: Form, cccd: str | None
) -> PersonView | None:
    """The person of the typed CCCD whose record this station may write (else an error on the
    CCCD field)."""
    if not cccd:
        return None
    found = backend.find(conn, cccd=cccd, limit=1)
    if not found or found[0].person.cccd != cccd:
        form.error("cccd", t("person_not_found", "vi"), t("person_not_found", "en"))
        return None
    decision = backend.decide(conn, actor, found[0].person.id, action="write")
    if not decision.allowed:
        form.error("cccd", decision.reason, decision.reason)
        return None
    return backend.person(conn, found[0].person.id)


@router.post("/station/{form_name}", include_in_schema=False, response_class=HTMLResponse)
def station_submit(
    form_name: str, request: Request, conn: Conn, actor: PageActor, raw: FormFields
) -> Response:
    """Check what was typed (the checks of the station CSV), show whose record it is and ask
    to confirm; save once confirmed for that person (``confirm`` = their id)."""
    if (redirect := staff_post(request, actor, raw)) is not None:
        return redirect
    lang = render.lang_of(request)
    if form_name not in STATION_FORMS:
        return not_found(request)
    today = clock.today()
    form, data = STATION_FORMS[form_name](raw, today)
    person = _person(conn, actor, form, data.get("cccd"))
    if person is not None:
        station.check_person(conn, form_name, form, data, person.id, today)
    if not form.ok or person is None:
        return _again(request, form_name, raw, form.by_field(lang), person, form.warned)
    if raw.get("confirm") != str(person.id):
        return render.page(request, "station.html", form_name=form_name, values=raw,
                           person=person, confirm=True, **_station_ctx())  # fmt: skip
    key = uuid.uuid4().hex
    where = station.station_ref(conn, actor.unit_id)
    if form_name == "checkup":
        rid = station.save_checkup(conn, person.id, actor.unit_id, where, data, key)
        rtype = "Encounter"
    elif form_name in ("death", "death-amend"):
        saved = (
            station.save_death(conn, actor, person.id, where, data, key, today)
            if form_name == "death"
            else station.save_amendment(conn, actor, person.id, data, key, today)
        )
        if isinstance(saved, Form):  # the registry refused it (already dead, before birth)
            return _again(request, form_name, raw, saved.by_field(lang), person, set())
        rtype, rid = ("Observation", saved) if saved else ("Patient", str(person.id))
    else:
        station.save_household(conn, actor, person.id, data)
        rtype, rid = "Patient", str(person.id)
    backend.record_access(
        conn,
        actor,
        "create" if form_name != "death-amend" else "update",
        person.id,
        Decision(True, "station", "commune station entry"),
        resource_type=rtype,
        resource_id=rid,
    )
    return RedirectResponse(f"/station/{form_name}?saved={person.id}", status_code=303)


def _again(
    request: Request,
    form_name: str,
    raw: dict[str, str],
    errors: dict[str, str],
    person: PersonView | None,
    warned: set[str],
) -> Response:
    """The form again with what was typed and the messages (422); the person when known."""
    return render.page(request, "station.html", form_name=form_name, errors=errors, values=raw,
                       person=person, warned=warned, status=422, **_station_ctx())  # fmt: skip
