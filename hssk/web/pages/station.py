"""The commune health station's forms: check-ups and screening, household changes, deaths
(checked and saved by ``hssk.web.station``)."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hssk.access import Decision
from hssk.api.bodies import FormFields
from hssk.api.deps import Conn
from hssk.http.gate import PageActor
from hssk.kernel import clock
from hssk.web import backend, render, station
from hssk.web.forms import Form
from hssk.web.i18n import t
from hssk.web.pages.guards import staff, staff_post

router = APIRouter(include_in_schema=False)


STATION_FORMS = {
    "checkup": ("station_checkup", station.validate_checkup),
    "household": ("station_household", station.validate_household),
    "death": ("station_death", station.validate_death),
}


@router.get("/station", include_in_schema=False)
def station_home() -> Response:
    return RedirectResponse("/station/checkup", status_code=303)


@router.get("/station/{form_name}", include_in_schema=False, response_class=HTMLResponse)
def station_form(
    form_name: str, request: Request, actor: PageActor, saved: str | None = None
) -> Response:
    if (redirect := staff(request, actor)) is not None:
        return redirect
    if form_name not in STATION_FORMS:
        return render.page(
            request, "error.html", message=t("not_found", render.lang_of(request)), status=404
        )
    return render.page(
        request,
        "station.html",
        form_name=form_name,
        saved=saved,
        values={"date": clock.today().strftime("%d/%m/%Y")},
        **_station_ctx(),
    )


def _station_ctx() -> dict[str, Any]:
    return {
        "forms": list(STATION_FORMS),
        "checkup_kinds": station.CHECKUP_KINDS,
        "household_actions": station.HOUSEHOLD_ACTIONS,
        "measurements": station.MEASUREMENTS,
        "nav": "station",
    }


@router.post("/station/{form_name}", include_in_schema=False, response_class=HTMLResponse)
def station_submit(
    form_name: str, request: Request, conn: Conn, actor: PageActor, raw: FormFields
) -> Response:
    if (redirect := staff_post(request, actor, raw)) is not None:
        return redirect
    lang = render.lang_of(request)
    if form_name not in STATION_FORMS:
        return render.page(request, "error.html", message=t("not_found", lang), status=404)
    form, data = STATION_FORMS[form_name][1](raw, clock.today())
    person_id = None
    if form.ok:
        found = backend.find(conn, cccd=data["cccd"], limit=1)
        if not found or found[0].person.cccd != data["cccd"]:
            form.error("cccd", t("person_not_found", "vi"), t("person_not_found", "en"))
        else:
            person_id = found[0].person.id
            decision = backend.decide(conn, actor, person_id, action="write")
            if not decision.allowed:
                form.error("cccd", decision.reason, decision.reason)
    if not form.ok or person_id is None:
        return render.page(
            request,
            "station.html",
            form_name=form_name,
            errors=form.by_field(lang),
            values=raw,
            status=422,
            **_station_ctx(),
        )
    where = station.station_ref(conn, actor.unit_id)
    if form_name == "checkup":
        rid = station.save_checkup(conn, person_id, actor.unit_id, where, data, uuid.uuid4().hex)
        rtype = "Encounter"
    elif form_name == "death":
        saved = station.save_death(
            conn, actor, person_id, where, data, uuid.uuid4().hex, clock.today()
        )
        if isinstance(saved, Form):  # the registry refused it (already dead, before birth)
            return render.page(request, "station.html", form_name=form_name, values=raw,
                               errors=saved.by_field(lang), status=422, **_station_ctx())  # fmt: skip
        rtype, rid = "Observation", saved
    else:
        station.save_household(conn, actor, person_id, data)
        rtype, rid = "Patient", str(person_id)
    backend.record_access(
        conn,
        actor,
        "create",
        person_id,
        Decision(True, "station", "commune station entry"),
        resource_type=rtype,
        resource_id=rid,
    )
    return RedirectResponse(f"/station/{form_name}?saved=1", status_code=303)
