"""The clinician's workspace: search by identity or name, a person's timeline (with the lawful
basis asked for first), and the referral and re-examination forms."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hssk.access import Actor
from hssk.api.bodies import FormFields
from hssk.api.deps import Conn
from hssk.catalog.terms import chapter_vi, name_vi
from hssk.http.gate import PageActor
from hssk.kernel import clock
from hssk.kernel import identifiers as ids
from hssk.kernel.codes import ICD10, LOINC
from hssk.records import save
from hssk.records.extract import effective
from hssk.web import backend, render, station
from hssk.web.book import concept_text, is_sensitive, ref_text, value_text
from hssk.web.forms import Form
from hssk.web.i18n import t
from hssk.web.pages.guards import staff, staff_post
from hssk.web.safety import safety_of

router = APIRouter(include_in_schema=False)


@router.get("/clinic", include_in_schema=False, response_class=HTMLResponse)
def clinic_search(
    request: Request,
    conn: Conn,
    actor: PageActor,
    cccd: str = "",
    bhyt: str = "",
    name: str = "",
    birth: str = "",
) -> Response:
    if (redirect := staff(request, actor)) is not None:
        return redirect
    lang = render.lang_of(request)
    values = {"cccd": cccd, "bhyt": bhyt, "name": name, "birth": birth}
    searched = any(v.strip() for v in values.values())
    results: list[backend.Found] = []
    errors: dict[str, str] = {}
    if searched:
        if not (cccd.strip() or bhyt.strip() or name.strip()):
            errors["cccd"] = t("need_criteria", lang)
        else:
            birth_iso = _birth_param(birth)
            results = backend.find(
                conn,
                cccd=cccd.strip() or None,
                bhyt=bhyt.strip() or None,
                name=name.strip() or None,
                birth_date=birth_iso,
            )
            backend.record_search(
                conn,
                actor,
                [f.person.id for f in results],
                {"criteria": [k for k, v in values.items() if v], "results": len(results)},
            )
    return render.page(
        request,
        "clinic_search.html",
        results=results,
        values=values,
        searched=searched,
        errors=errors,
        name_only=bool(name.strip()) and not (cccd.strip() or bhyt.strip() or birth.strip()),
        nav="clinic",
    )


def _birth_param(text: str) -> str | None:
    text = text.strip()
    if not text:
        return None
    if re.fullmatch(r"\d{4}", text):
        return text
    m = re.fullmatch(r"(\d{1,2})/(\d{1,2})/(\d{4})", text)
    if m:
        return f"{m.group(3)}-{int(m.group(2)):02d}-{int(m.group(1)):02d}"
    return text


@router.get("/clinic/p/{person_id}", include_in_schema=False, response_class=HTMLResponse)
def clinic_record(
    person_id: int, request: Request, conn: Conn, actor: PageActor, saved: str | None = None
) -> Response:
    if (redirect := staff(request, actor)) is not None:
        return redirect
    lang = render.lang_of(request)
    view = backend.person(conn, person_id)
    if view is None:
        return render.page(request, "error.html", message=t("not_found", lang), status=404)
    decision = backend.decide(conn, actor, person_id, purpose="treatment")
    backend.record_access(conn, actor, "read", person_id, decision, detail={"view": "timeline"})
    if not decision.allowed:
        return render.page(
            request, "clinic_basis.html", person=view, decision=decision, nav="clinic"
        )
    resources = backend.records_of(conn, view.id)
    include_sensitive = backend.decide(
        conn, actor, person_id, purpose="treatment", sensitivity="HIV"
    ).allowed
    keys = {facility_key(ref) for r in resources for ref in _refs(r.body)}
    units = backend.unit_names(conn, {k for k in keys if k})
    items = timeline(
        resources, actor, backend.unit_name(conn, actor.unit_id), include_sensitive, units
    )
    reuse = [i for i in items if i["reuse"]]
    return render.page(
        request,
        "clinic_record.html",
        person=view,
        decision=decision,
        items=items,
        reuse=reuse,
        safety=safety_of(resources, include_sensitive),
        saved=saved,
        nav="clinic",
    )


_CONCEPTS = ("code", "reasonCode", "vaccineCode", "medicationCodeableConcept", "type")
_FACILITY_KEYS = ("serviceProvider", "performer", "requester", "location")


def _named(body: dict[str, Any]) -> tuple[str, str | None]:
    """What a resource is about, in Vietnamese, and its code (shown small): a LOINC test by the
    catalog's name (records often carry the English display), a diagnosis by the record's own
    text, else the catalog's name of its ICD-10 code, its display, or its chapter."""
    for key in _CONCEPTS:
        concept = body.get(key)
        concept = concept[0] if isinstance(concept, list) and concept else concept
        if not isinstance(concept, dict):
            continue
        for c in concept.get("coding") or ():
            system, code = c.get("system"), c.get("code")
            if system == LOINC and code:
                name = name_vi(LOINC, code) or concept_text(concept) or code
                return name, f"LOINC {code}"
            if system == ICD10 and code:
                name = (concept.get("text") or name_vi(ICD10, code) or concept_text(concept)
                        or code)  # fmt: skip
                shown = (chapter_vi(code) or code) if name == code else name
                return str(shown), f"ICD-10 {code}"
        if text := concept_text(concept):
            return text, None
    return str(body.get("description") or ""), None


def _facility_ref(body: dict[str, Any], rtype: str) -> Any:
    for key in _FACILITY_KEYS:
        ref = body.get(key)
        ref = ref[0] if isinstance(ref, list) and ref else ref
        if isinstance(ref, dict) and (ref.get("display") or ref.get("reference")
                                      or ref.get("identifier")):  # fmt: skip
            return ref
    if rtype == "Appointment":
        for p in body.get("participant") or ():
            actor = p.get("actor") or {}
            if str(actor.get("reference", "")).startswith("Organization"):
                return actor
    return None


def _refs(body: dict[str, Any]) -> list[Any]:
    """The references of a resource that may name a facility."""
    out: list[Any] = []
    for key in _FACILITY_KEYS:
        ref = body.get(key)
        out += ref if isinstance(ref, list) else [ref]
    out += [p.get("actor") for p in body.get("participant") or () if isinstance(p, dict)]
    return out


def facility_key(ref: Any) -> str | None:
    """The unit id or the facility code (mã CSKCB) a reference names."""
    if not isinstance(ref, dict):
        return None
    if str(ref.get("reference", "")).startswith("Organization/"):
        return str(ref["reference"]).partition("/")[2]
    ident = ref.get("identifier")
    if isinstance(ident, dict) and ident.get("system") == ids.FACILITY and ident.get("value"):
        return str(ident["value"])
    return None


def timeline(
    resources: list[Any],
    actor: Actor,
    my_unit: str | None,
    include_sensitive: bool,
    units: dict[str, backend.UnitName] | None = None,
) -> list[dict[str, Any]]:
    """The whole record as dated rows, newest first: Vietnamese names with the code shown
    small, facilities by name (``units``: by unit id or facility code); labs from other
    facilities are marked."""
    units = units or {}

    def facility_of(ref: Any) -> tuple[str | None, str | None]:
        key = facility_key(ref)
        unit = units.get(key) if key else None
        if unit is not None:
            return unit.name, unit.facility_code
        return ref_text(ref), None

    enc_fac = {
        r.id: facility_of(r.body.get("serviceProvider")) for r in resources if r.type == "Encounter"
    }
    recent = datetime.now(UTC) - timedelta(days=180)
    rows = []
    for r in resources:
        body = r.body
        if r.type == "Patient" or (not include_sensitive and is_sensitive(body)):
            continue
        when = effective(body)
        facility, facility_code = facility_of(_facility_ref(body, r.type))
        if facility is None:
            enc = (body.get("encounter") or {}).get("reference", "")
            facility, facility_code = enc_fac.get(enc.partition("/")[2], (None, None))
        summary, code = _named(body)
        value = None
        if r.type == "Observation":
            v, unit = value_text(body)
            value = f"{v} {unit or ''}".strip() if v else None
        categories = {c for cat in body.get("category") or () for c in _codes(cat)}
        is_lab = r.type == "Observation" and "laboratory" in categories
        other = bool(facility and my_unit and facility != my_unit and facility != actor.unit_id)
        rows.append(
            {
                "type": r.type,
                "id": r.id,
                "when": when,
                "summary": summary,
                "code": code,
                "value": value,
                "facility": facility,
                "facility_code": facility_code,
                "other": other,
                "lab": is_lab,
                "reuse": is_lab and other and when is not None and when >= recent,
            }
        )
    rows.sort(key=lambda x: x["when"] or datetime.min.replace(tzinfo=UTC), reverse=True)
    return rows


def _codes(concept: Any) -> list[str]:
    if not isinstance(concept, dict):
        return []
    return [str(c.get("code")) for c in concept.get("coding") or () if isinstance(c, dict)]


@router.post("/clinic/p/{person_id}/basis", include_in_schema=False, response_class=HTMLResponse)
def clinic_basis(
    person_id: int, request: Request, conn: Conn, actor: PageActor, raw: FormFields
) -> Response:
    if (redirect := staff_post(request, actor, raw)) is not None:
        return redirect
    lang = render.lang_of(request)
    view = backend.person(conn, person_id)
    if view is None:
        return render.page(request, "error.html", message=t("not_found", lang), status=404)
    kind = raw.get("basis", "")
    if kind == "emergency":
        reason = raw.get("reason", "").strip()
        if len(reason) < backend.BREAK_GLASS_MIN_REASON:
            decision = backend.decide(conn, actor, person_id, purpose="treatment")
            return render.page(
                request,
                "clinic_basis.html",
                person=view,
                decision=decision,
                errors={"reason": t("emergency_reason_required", lang)},
                values=raw,
                nav="clinic",
                status=422,
            )
        try:
            backend.open_break_glass(conn, actor, person_id, reason)
        except backend.Refused as exc:
            return render.page(
                request, "error.html", message=t("forbidden", lang), reason=str(exc), status=403
            )
    return RedirectResponse(f"/clinic/p/{person_id}", status_code=303)


def _clinic_write_guard(
    request: Request, conn: psycopg.Connection[Any], actor: Actor, person_id: int
) -> tuple[Response | None, Any]:
    if (redirect := staff(request, actor)) is not None:
        return redirect, None
    view = backend.person(conn, person_id)
    lang = render.lang_of(request)
    if view is None:
        return render.page(request, "error.html", message=t("not_found", lang), status=404), None
    decision = backend.decide(conn, actor, person_id, purpose="treatment")
    if not decision.allowed:
        return RedirectResponse(f"/clinic/p/{person_id}", status_code=303), None
    return None, view


def _banner(conn: psycopg.Connection[Any], actor: Actor, person_id: int) -> Any:
    """The safety banner of a person's form pages (a read of their record: audited)."""
    decision = backend.decide(conn, actor, person_id, purpose="treatment")
    backend.record_access(conn, actor, "read", person_id, decision, detail={"view": "safety"})
    sensitive = backend.decide(conn, actor, person_id, purpose="treatment", sensitivity="HIV")
    return safety_of(backend.records_of(conn, person_id), sensitive.allowed)


@router.get("/clinic/p/{person_id}/referral", include_in_schema=False, response_class=HTMLResponse)
def referral_form(person_id: int, request: Request, conn: Conn, actor: PageActor) -> Response:
    stop, view = _clinic_write_guard(request, conn, actor, person_id)
    if stop is not None:
        return stop
    return render.page(
        request,
        "referral.html",
        person=view,
        units=backend.units(conn, ("hospital", "polyclinic")),
        kind="referral",
        nav="clinic",
        safety=_banner(conn, actor, view.id),
    )


@router.get(
    "/clinic/p/{person_id}/appointment", include_in_schema=False, response_class=HTMLResponse
)
def appointment_form(person_id: int, request: Request, conn: Conn, actor: PageActor) -> Response:
    stop, view = _clinic_write_guard(request, conn, actor, person_id)
    if stop is not None:
        return stop
    return render.page(
        request,
        "referral.html",
        person=view,
        units=[],
        kind="appointment",
        nav="clinic",
        safety=_banner(conn, actor, view.id),
    )


@router.post("/clinic/p/{person_id}/{kind}", include_in_schema=False, response_class=HTMLResponse)
def clinic_write(
    person_id: int, kind: str, request: Request, conn: Conn, actor: PageActor, raw: FormFields
) -> Response:
    if kind not in ("referral", "appointment"):
        return render.page(
            request, "error.html", message=t("not_found", render.lang_of(request)), status=404
        )
    if (relogin := staff_post(request, actor, raw)) is not None:
        return relogin
    stop, view = _clinic_write_guard(request, conn, actor, person_id)
    if stop is not None:
        return stop
    form = Form(raw)
    my_unit = backend.unit_name(conn, actor.unit_id)
    today = clock.today()
    if view.deceased_at is not None:  # nothing is referred or booked for a deceased person
        form.error("reason", *_deceased(view.deceased_at))
    body: dict[str, Any] = {}
    if kind == "referral":
        to_unit = form.text("to_unit", required=True, max_len=40)
        diagnosis = form.text("diagnosis", required=True, max_len=300)
        icd = station.icd_field(form, diagnosis, required=True)
        reason = form.text("reason", required=True, max_len=500)
        if form.ok:
            units = dict(backend.units(conn))
            body = referral_resource(person_id, actor, my_unit, to_unit or "",
                                     units.get(to_unit or "", to_unit), icd or "", diagnosis,
                                     reason)  # fmt: skip
    else:
        day = form.day("date", required=True, not_future=False, today=today)
        if day is not None and day <= today:
            form.error("date", f"Ngày hẹn phải sau hôm nay ({today:%d/%m/%Y}).",
                       f"The appointment must be after today ({today:%d/%m/%Y}).")  # fmt: skip
        reason = form.text("reason", required=True, max_len=500)
        if form.ok and day is not None:
            body = appointment_resource(person_id, actor, my_unit, day, reason or "")
    if not form.ok or raw.get("confirm") != str(person_id):
        return render.page(
            request,
            "referral.html",
            person=view,
            units=backend.units(conn, ("hospital", "polyclinic")) if kind == "referral" else [],
            kind=kind,
            errors=form.by_field(render.lang_of(request)),
            warned=form.warned,
            confirm=form.ok,
            values=raw,
            nav="clinic",
            status=422 if not form.ok else 200,
            safety=_banner(conn, actor, person_id),
        )
    # the write's own decision (under an emergency only the letters may be written): a write
    # the policy refuses is not made, and the access log says what was done
    decision = backend.decide(conn, actor, person_id, action="write", purpose="treatment",
                              resource_type=body["resourceType"])  # fmt: skip
    if not decision.allowed:
        backend.record_access(conn, actor, "create", person_id, decision,
                              resource_type=body["resourceType"])  # fmt: skip
        return render.page(request, "error.html", message=t("forbidden", render.lang_of(request)),
                           reason=decision.reason, status=403)  # fmt: skip
    stored, _ = save(conn, body, person_id=person_id, source_unit=actor.unit_id)
    backend.record_access(
        conn,
        actor,
        "create",
        person_id,
        decision,
        resource_type=stored.type,
        resource_id=stored.id,
    )
    return RedirectResponse(f"/clinic/p/{person_id}?saved={kind}", status_code=303)


def _deceased(at: datetime) -> tuple[str, str]:
    day = at.astimezone(clock.VN).date()
    return (f"Người này đã được ghi nhận tử vong ngày {day:%d/%m/%Y}; không lập giấy chuyển "
            "tuyến hay giấy hẹn khám lại.", f"This person is recorded dead on {day:%d/%m/%Y}; "
            "no referral or appointment is written.")  # fmt: skip


def referral_resource(
    person_id: int,
    actor: Actor,
    my_unit: str | None,
    to_unit: str,
    to_name: str | None,
    icd: str,
    diagnosis: str | None,
    reason: str | None,
) -> dict[str, Any]:
    """A referral letter (giấy chuyển tuyến) as a FHIR ServiceRequest."""
    requester: dict[str, Any] = {"display": my_unit or actor.unit_id or actor.account_id}
    if actor.unit_id:
        requester["reference"] = f"Organization/{actor.unit_id}"
    return {
        "resourceType": "ServiceRequest",
        "identifier": [
            {"system": "https://fhir.hssk.vn/sid/giay-chuyen-tuyen", "value": uuid.uuid4().hex}
        ],
        "status": "active",
        "intent": "order",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://snomed.info/sct",
                        "code": "3457005",
                        "display": "Patient referral",
                    }
                ],
                "text": "Giấy chuyển tuyến",
            }
        ],
        "code": {"text": reason},
        "subject": {"reference": f"Patient/{person_id}"},
        "authoredOn": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "requester": requester,
        "performer": [{"reference": f"Organization/{to_unit}", "display": to_name or to_unit}],
        "reasonCode": [{"coding": [{"system": ICD10, "code": icd}], "text": diagnosis}],
        "note": [{"text": f"Người viết: {actor.account_id}"}],
    }


def appointment_resource(
    person_id: int, actor: Actor, my_unit: str | None, day: date, reason: str
) -> dict[str, Any]:
    """A re-examination appointment (giấy hẹn khám lại) as a FHIR Appointment."""
    facility: dict[str, Any] = {"display": my_unit or actor.unit_id or "?"}
    if actor.unit_id:
        facility["reference"] = f"Organization/{actor.unit_id}"
    return {
        "resourceType": "Appointment",
        "status": "booked",
        "description": reason,
        "serviceType": [{"text": "Khám lại"}],
        "start": f"{day.isoformat()}T08:00:00+07:00",
        "end": f"{day.isoformat()}T11:30:00+07:00",
        "created": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
        "participant": [
            {"actor": {"reference": f"Patient/{person_id}"}, "status": "accepted"},
            {"actor": facility, "status": "accepted"},
        ],
    }
