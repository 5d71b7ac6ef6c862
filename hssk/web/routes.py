"""Web pages (citizen book, clinician workspace, commune station) and the partner book API.

Every page is server-rendered in one round trip (CSS inlined, charts as inline SVG).
Vietnamese by default; ``?lang=en`` switches and is remembered in a cookie.
"""

from __future__ import annotations

import re
import uuid
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from typing import Annotated, Any
from urllib.parse import quote

import psycopg
from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hssk.access import Actor, Decision
from hssk.access.policy import looks_up_identities
from hssk.api.bodies import FormFields
from hssk.api.deps import Conn, OptionalActor, get_conn
from hssk.http import gate
from hssk.http.client import client_address
from hssk.http.gate import PageActor
from hssk.kernel import clock
from hssk.kernel.codes import ICD10
from hssk.records import save
from hssk.records.extract import effective
from hssk.web import backend, pdf, render, selfdata, station
from hssk.web.book import (
    build_book,
    concept_text,
    is_sensitive,
    ref_text,
    resource_types,
    value_text,
)
from hssk.web.forms import Form
from hssk.web.i18n import t
from hssk.web.models import SECTIONS, CatalogFields, CatalogValue, HealthBook
from hssk.web.partners import catalogs_for, sections_for
from hssk.web.safety import safety_of

router = APIRouter(include_in_schema=True)
_CCCD = re.compile(r"^\d{12}$")
_PHONE = re.compile(r"^0\d{9}$")


# async: FastAPI runs a plain-def dependency in a worker thread of its own; the book page and
# API take one thread hop only, where _in_thread admits the caller (gate.admit).
async def _book_page_caller(request: Request) -> gate.Presented:
    return gate.present(request, "page")


async def _book_api_caller(request: Request) -> gate.Presented:
    return gate.present(request, "api")


BookPageCaller = Annotated[gate.Presented, Depends(_book_page_caller)]
BookApiCaller = Annotated[gate.Presented, Depends(_book_api_caller)]


def _login_redirect(request: Request, path: str = "/book/login") -> RedirectResponse:
    """To the login page, back here afterwards; saying so when the session had expired."""
    expired = "&expired=1" if gate.session_expired(request) else ""
    return RedirectResponse(f"{path}?next={quote(str(request.url.path))}{expired}", 303)


def _today() -> date:
    return clock.today()


# --- citizen: login -----------------------------------------------------------------------------
@router.get("/book/login", include_in_schema=False, response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return render.page(
        request, "login.html", step="identifier", next=request.query_params.get("next", "/book")
    )


@router.post("/book/login", include_in_schema=False, response_class=HTMLResponse)
async def login_submit(request: Request, conn: Conn) -> Response:
    form = await request.form()
    lang = render.lang_of(request)
    identifier = re.sub(r"[\s.\-]", "", str(form.get("identifier", "")))
    nxt = _safe_next(str(form.get("next", "/book")))
    code = "" if form.get("resend") else str(form.get("code", "")).strip()
    ctx: dict[str, Any] = {"next": nxt, "identifier": identifier}
    if not (_CCCD.match(identifier) or _PHONE.match(identifier)):
        return render.page(
            request,
            "login.html",
            step="identifier",
            errors={"identifier": t("bad_identifier", lang)},
            status=422,
            **ctx,
        )
    settings = request.app.state.settings
    address = client_address(request)
    try:
        if not code:
            sent = backend.start_login(conn, settings, identifier, address)
            return _code_step(request, sent, **ctx)
        token = backend.finish_login(conn, settings, identifier, code, address)
    except backend.LoginRefused as exc:
        sent = backend.login_code(conn, identifier)
        error = {"code" if sent else "identifier": _login_refusal(exc, lang)}
        return _code_step(request, sent, errors=error, status=422, **ctx)
    resp = RedirectResponse(nxt, status_code=303)
    gate.set_session_cookie(request, resp, token)
    return resp


def _code_step(request: Request, sent: backend.LoginCode | None, **ctx: Any) -> Response:
    """The page asking for the code: where it went (masked, never the identifier in full) and
    when a new one may be asked for."""
    if sent is None and "errors" in ctx:  # refused before any code went out
        return render.page(request, "login.html", step="identifier", **ctx)
    return render.page(
        request,
        "login.html",
        step="code",
        sent_to=sent.destination if sent else None,
        masked_identifier=_mask(ctx["identifier"]),
        resend_in=sent.resend_in if sent else 0,
        **ctx,
    )


def _login_refusal(exc: backend.LoginRefused, lang: str) -> str:
    """The login refusal's reason (from the access component) in the reader's language."""
    if exc.reason in ("throttled", "sms_limit"):
        wait = max(exc.retry_after, 1)
        at = clock.to_vn(clock.now() + timedelta(seconds=wait)).strftime("%H:%M")
        words = (t("wait_minutes", lang, m=wait // 60, s=wait % 60) if wait >= 60
                 else t("wait_seconds", lang, s=wait))  # fmt: skip
        return t(exc.reason, lang, wait=words, at=at)
    if exc.reason in ("expired_code", "code_exhausted"):
        return t(exc.reason, lang)
    if exc.attempts_left:
        return t("wrong_code_left", lang, n=exc.attempts_left)
    return t("wrong_code", lang)


def _mask(identifier: str) -> str:
    """A CCCD or phone as typed, without revealing it whole ('09••••••78')."""
    return identifier[:2] + "•" * (len(identifier) - 4) + identifier[-2:]


_SCRIPT = resources.files("hssk.web").joinpath("static/resend.js")


@router.get("/static/resend.js", include_in_schema=False)
def resend_script() -> Response:
    """The login page's countdown (the content policy allows the site's own scripts only)."""
    return Response(_SCRIPT.read_bytes(), media_type="text/javascript",
                    headers={"Cache-Control": "public, max-age=3600"})  # fmt: skip


_CARRY = "carry:"


def _safe_next(nxt: str, default: str = "/book") -> str:
    # only local paths: never redirect a freshly logged-in user to another site
    return nxt if nxt.startswith("/") and not nxt.startswith("//") else default


@router.get("/book/logout", include_in_schema=False)
def logout(staff: int = 0) -> Response:
    resp = RedirectResponse("/staff/login" if staff else "/book/login", status_code=303)
    gate.clear_session_cookie(resp)
    return resp


# --- citizen: the book --------------------------------------------------------------------------
def _load_book(
    conn: psycopg.Connection[Any],
    actor: Actor,
    person_id: int,
    *,
    sections: tuple[str, ...] | None = None,
    include_sensitive: bool = True,
    lang: str = "vi",
    action: str = "read",
    children: list[backend.Child] | None = None,
) -> tuple[HealthBook | None, Decision]:
    """Authorize, audit and assemble a person's book (None when denied or unknown).

    Three queries for a partner (decision, person, resources; the audit event is written by
    the request's group commit); the citizen's own entries and children only when shown.
    ``children``: the caller's, when the page already has them."""
    decision = backend.decide(conn, actor, person_id)
    backend.record_access(conn, actor, action, person_id, decision, detail={"view": "health-book"})
    if not decision.allowed:
        return None, decision
    data = backend.book_data(
        conn,
        person_id,
        self_entries=sections is None or "self_reported" in sections,
        # the whole book reads its sections' types too: nothing else is shown, and the
        # (person, type) index then serves every book alike
        types=resource_types(SECTIONS if sections is None else sections),
    )
    if data is None:
        return None, Decision(False, "deny", "no such person")
    if actor.person_id == data.person.id:
        kids = children if children is not None else backend.children(conn, actor)
        guardian_of = [c.person_id for c in kids]
    else:
        guardian_of = []
    book = build_book(
        data.person,
        data.resources,
        self_entries=data.self_entries,
        guardian_of=guardian_of,
        sections=sections,
        include_sensitive=include_sensitive,
        lang=lang,
    )
    return book, decision


@router.get("/book", include_in_schema=False, response_class=HTMLResponse)
async def my_book(request: Request, caller: BookPageCaller) -> Response:
    return await _in_thread(request, _my_book, caller, request)


def _my_book(conn: psycopg.Connection[Any], actor: Actor, request: Request) -> Response:
    if actor.kind != "citizen" or actor.person_id is None:
        return _login_redirect(request)
    return _book_page(request, conn, actor, actor.person_id)


@router.get("/book/p/{person_id}", include_in_schema=False, response_class=HTMLResponse)
async def person_book(person_id: int, request: Request, caller: BookPageCaller) -> Response:
    return await _in_thread(request, _person_book, caller, request, person_id)


def _person_book(
    conn: psycopg.Connection[Any], actor: Actor, request: Request, person_id: int
) -> Response:
    if not actor.authenticated:
        return _login_redirect(request)
    return _book_page(request, conn, actor, person_id)


def _book_page(
    request: Request, conn: psycopg.Connection[Any], actor: Actor, person_id: int
) -> Response:
    lang = render.lang_of(request)
    own = actor.person_id == person_id
    kids = backend.children(conn, actor) if own else []
    book, decision = _load_book(conn, actor, person_id, lang=lang, children=kids if own else None)
    if book is None:
        return render.page(
            request, "error.html", message=t("forbidden", lang), reason=decision.reason, status=403
        )
    return render.page(
        request,
        "book.html",
        book=book,
        children=kids,
        own=own,
        nav="book" if own else "children",
    )


@router.get("/book/p/{person_id}/visit/{visit_id}.pdf", include_in_schema=False)
def visit_pdf(
    person_id: int, visit_id: str, request: Request, conn: Conn, actor: PageActor
) -> Response:
    if not actor.authenticated:
        return _login_redirect(request)
    lang = render.lang_of(request)
    book, _decision = _load_book(conn, actor, person_id, lang=lang, action="export")
    if book is None or not any(v.id == visit_id for v in book.visits or []):
        return Response(
            t("forbidden" if book is None else "not_found", lang),
            status_code=403 if book is None else 404,
        )
    data = pdf.visit_pdf(book, visit_id, lang, signer=backend_signer(request))
    return _pdf_response(data, f"lan-kham-{visit_id[:8]}.pdf")


@router.get(
    "/book/p/{person_id}/visit/{visit_id}", include_in_schema=False, response_class=HTMLResponse
)
def visit_page(
    person_id: int, visit_id: str, request: Request, conn: Conn, actor: PageActor
) -> Response:
    if not actor.authenticated:
        return _login_redirect(request)
    lang = render.lang_of(request)
    book, decision = _load_book(conn, actor, person_id, lang=lang)
    if book is None:
        return render.page(
            request, "error.html", message=t("forbidden", lang), reason=decision.reason, status=403
        )
    visit = next((v for v in book.visits or [] if v.id == visit_id), None)
    if visit is None:
        return render.page(request, "error.html", message=t("not_found", lang), status=404)
    return render.page(
        request, "visit.html", book=book, visit=visit, **pdf.visit_parts(book, visit_id)
    )


@router.get("/book/p/{person_id}/book.pdf", include_in_schema=False)
def book_pdf(person_id: int, request: Request, conn: Conn, actor: PageActor) -> Response:
    if not actor.authenticated:
        return _login_redirect(request)
    lang = render.lang_of(request)
    book, _ = _load_book(conn, actor, person_id, lang=lang, action="export")
    if book is None:
        return Response(t("forbidden", lang), status_code=403)
    data = pdf.book_pdf(book, lang, signer=backend_signer(request))
    return _pdf_response(data, f"so-suc-khoe-{person_id}.pdf")


def backend_signer(request: Request) -> pdf.Signer:
    return pdf.platform_signer(request.app.state.settings)


def _pdf_response(data: bytes, name: str) -> Response:
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


# --- citizen: consents, access log, own entries -------------------------------------------------
def _citizen(request: Request, actor: Actor) -> Response | None:
    if actor.kind != "citizen" or actor.person_id is None:
        return _login_redirect(request)
    return None


@router.get("/book/consents", include_in_schema=False, response_class=HTMLResponse)
def consents_page(
    request: Request, conn: Conn, actor: PageActor, done: str | None = None
) -> Response:
    if (redirect := _citizen(request, actor)) is not None:
        return redirect
    return _consents(request, conn, actor, done=done)


@router.post("/book/consents", include_in_schema=False, response_class=HTMLResponse)
def consent_grant(request: Request, conn: Conn, actor: PageActor, raw: FormFields) -> Response:
    if (redirect := _citizen(request, actor)) is not None:
        return redirect
    assert actor.person_id is not None
    form = Form(raw)
    unit = form.text("unit", required=True, max_len=40)
    until = form.day("until", not_future=False, today=_today())
    if until is not None and until < _today():
        form.error("until", "Ngày kết thúc phải sau hôm nay.", "The end date must be after today.")
    if not form.ok or unit is None:
        return _consents(request, conn, actor, form=form)
    try:
        backend.grant_consent(conn, actor, grantee_unit=unit, until=until)
    except backend.Refused as exc:
        form.error("unit", str(exc), str(exc))
        return _consents(request, conn, actor, form=form)
    return RedirectResponse("/book/consents?done=granted", status_code=303)


def _consents(
    request: Request,
    conn: psycopg.Connection[Any],
    actor: Actor,
    *,
    form: Form | None = None,
    done: str | None = None,
) -> Response:
    """The consents page; with ``form``, the grant form again with its errors (422)."""
    errors: dict[str, Any] = {} if form is None else {
        "errors": form.by_field(render.lang_of(request)), "values": form.raw
    }  # fmt: skip
    return render.page(
        request,
        "consents.html",
        status=200 if form is None else 422,
        consents=backend.consents(conn, actor),
        units=backend.units(
            conn, ("hospital", "polyclinic", "clinic", "station", "district_centre")
        ),
        done=done,
        nav="consents",
        **errors,
    )


@router.post(
    "/book/consents/{consent_id}/revoke", include_in_schema=False, response_class=HTMLResponse
)
def consent_revoke(consent_id: int, request: Request, conn: Conn, actor: PageActor) -> Response:
    if (redirect := _citizen(request, actor)) is not None:
        return redirect
    assert actor.person_id is not None
    try:
        backend.revoke_consent(conn, actor, consent_id)
    except backend.Refused as exc:
        return render.page(
            request,
            "error.html",
            message=t("not_found", render.lang_of(request)),
            reason=str(exc),
            status=404,
        )
    return RedirectResponse("/book/consents?done=revoked", status_code=303)


@router.get("/book/access-log", include_in_schema=False, response_class=HTMLResponse)
def access_log_page(request: Request, conn: Conn, actor: PageActor) -> Response:
    if (redirect := _citizen(request, actor)) is not None:
        return redirect
    assert actor.person_id is not None
    return render.page(
        request, "access_log.html", entries=backend.access_log(conn, [actor.person_id]), nav="log"
    )


@router.get("/book/self", include_in_schema=False, response_class=HTMLResponse)
def self_page(request: Request, conn: Conn, actor: PageActor) -> Response:
    if (redirect := _citizen(request, actor)) is not None:
        return redirect
    assert actor.person_id is not None
    return _self_render(request, conn, actor.person_id)


def _self_render(
    request: Request, conn: psycopg.Connection[Any], person_id: int, **ctx: Any
) -> Response:
    return render.page(
        request,
        "self.html",
        entries=selfdata.entries(conn, person_id),
        risk_factors=selfdata.RISK_FACTORS,
        relations=selfdata.RELATIONS,
        measurements=selfdata.MEASUREMENTS,
        nav="self",
        **ctx,
    )


@router.post("/book/self/{kind}", include_in_schema=False, response_class=HTMLResponse)
def self_add(
    kind: str, request: Request, conn: Conn, actor: PageActor, raw: FormFields
) -> Response:
    if (redirect := _citizen(request, actor)) is not None:
        return redirect
    assert actor.person_id is not None
    form, data = selfdata.validate_entry(kind, raw, _today())
    if not form.ok:
        return _self_render(
            request,
            conn,
            actor.person_id,
            errors=form.by_field(render.lang_of(request)),
            values=raw,
            form_kind=kind,
            status=422,
        )
    selfdata.add_entry(conn, actor.person_id, kind, data, actor.account_id)
    return RedirectResponse("/book/self?saved=1", status_code=303)


@router.post(
    "/book/self/entry/{entry_id}/delete", include_in_schema=False, response_class=HTMLResponse
)
def self_delete(entry_id: int, request: Request, conn: Conn, actor: PageActor) -> Response:
    if (redirect := _citizen(request, actor)) is not None:
        return redirect
    assert actor.person_id is not None
    selfdata.delete_entry(conn, actor.person_id, entry_id)
    return RedirectResponse("/book/self", status_code=303)


# --- partner API --------------------------------------------------------------------------------
def _api_book(conn: psycopg.Connection[Any], actor: Actor, person_id: int, v: int) -> Response:
    if v != 1:
        return _problem(400, f"unsupported book version {v}; this server serves v=1")
    if not actor.authenticated:
        return _problem(401, "authentication required: send 'Authorization: Bearer <token>'")
    own = actor.kind == "citizen"
    book, decision = _load_book(
        conn,
        actor,
        person_id,
        sections=None if own else sections_for(actor.client),
        include_sensitive=own,
    )
    if book is None:
        return _problem(403 if decision.basis == "deny" else 404, decision.reason)
    return Response(book.model_dump_json(), media_type="application/json")


def _problem(status: int, detail: str) -> Response:
    import orjson

    return Response(
        orjson.dumps({"status": status, "detail": detail}),
        status_code=status,
        media_type="application/json",
    )


@router.get(
    "/api/v1/book/{person_id}",
    response_model=HealthBook,
    tags=["health book"],
    summary="Health book of a person (partner apps: VNeID, city app)",
    responses={401: {"description": "no credentials"}, 403: {"description": "no lawful basis"}},
)
async def api_book(
    person_id: int,
    request: Request,
    caller: BookApiCaller,
    v: Annotated[int, Query(description="book version")] = 1,
) -> Response:
    """The health book in version ``v`` (only 1 exists). A partner (system client) receives the
    sections of its field set (others are ``null``) and never sensitive categories; a citizen
    receives their own book or a child's in full. Every call is audited."""
    return await _in_thread(request, _api_book, caller, person_id, v, api=True)


@router.get(
    "/api/v1/me/book", response_model=HealthBook, tags=["health book"], summary="My health book"
)
async def api_my_book(
    request: Request,
    caller: BookApiCaller,
    v: Annotated[int, Query(description="book version")] = 1,
) -> Response:
    """The caller's own book (citizen token)."""
    person_id = caller.actor.person_id
    if person_id is None and not caller.refused:
        status = 401 if not caller.actor.authenticated else 403
        return _problem(status, "a citizen token is required")
    return await _in_thread(request, _api_book, caller, person_id, v, api=True)


async def _in_thread(
    request: Request, fn: Any, caller: gate.Presented, *args: Any, api: bool = False
) -> Response:
    """Run the read-only ``fn(conn, actor, *args)`` in one worker thread with a request
    connection, once the gate admitted the caller (refused credentials: a 401 on the API, the
    login page on pages, through ``fn`` seeing ANONYMOUS). The book API and page take one
    thread hop instead of one per dependency; audit rules of ``hssk.api.deps.get_conn``,
    which it uses.

    ``fn`` only reads, in autocommit: under READ COMMITTED each statement has its own
    snapshot inside a transaction too, so BEGIN and COMMIT would cost two round trips for
    nothing. The audit events are written as for any request (their own transaction)."""

    def work() -> Response:
        admitted = gate.admit(request, caller)
        if admitted.refused and api:
            return _problem(401, admitted.refused)
        with contextmanager(get_conn)(request.app.state.db) as conn:
            conn.autocommit = True
            try:
                result: Response = fn(conn, admitted.actor, *args)
            finally:
                conn.autocommit = False  # as the pool lends it (before get_conn's audit flush)
            return result

    return await run_in_threadpool(work)


@router.get(
    "/api/v1/book/{person_id}/fields",
    response_model=CatalogFields,
    tags=["health book"],
    summary="A person's record as the fields of a catalog (partner field sets)",
)
def api_book_fields(
    person_id: int,
    conn: Conn,
    actor: OptionalActor,
    catalog: Annotated[str, Query(description="catalog name, e.g. qd1332")],
) -> Response:
    """Values of each field of ``catalog`` (hssk.catalog rules over the person's record). A
    partner may only ask for the catalogs of its field set; sensitive data is never included."""
    from hssk.catalog import bundle as catalog_bundle
    from hssk.catalog import catalogs as catalog_registry

    if not actor.authenticated:
        return _problem(401, "authentication required: send 'Authorization: Bearer <token>'")
    if actor.kind == "system" and catalog not in catalogs_for(actor.client):
        return _problem(403, f"catalog {catalog!r} is not in the field set of {actor.client!r}")
    try:
        cat = catalog_registry.get(catalog)
    except KeyError as exc:
        return _problem(404, str(exc.args[0]))
    decision = backend.decide(conn, actor, person_id, action="read")
    backend.record_access(conn, actor, "read", person_id, decision, detail={"catalog": catalog})
    if not decision.allowed:
        conn.commit()
        return _problem(403, decision.reason)
    bundle = catalog_bundle.bundles(conn, [person_id]).get(person_id)
    if bundle is None:
        return _problem(404, f"no person {person_id}")
    values = cat.extract(bundle)
    out = CatalogFields(
        catalog=cat.name,
        version=cat.version,
        provisional=cat.provisional,
        person_id=person_id,
        fields={
            f.code: CatalogValue(label=f.label("vi"), values=values.get(f.code, []))
            for f in cat.fields
        },
    )
    return Response(out.model_dump_json(), media_type="application/json")


@router.get("/api/v1/book-sections", tags=["health book"], summary="Sections of the book, in order")
def api_sections() -> list[str]:
    return list(SECTIONS)


# --- clinician workspace ------------------------------------------------------------------------
def _is_staff(actor: Actor) -> bool:
    return actor.authenticated and actor.kind in ("clinician", "staff")


def _staff(request: Request, actor: Actor) -> Response | None:
    """The clinician and station pages look persons up by identity: clinical roles only."""
    if not _is_staff(actor):
        return _login_redirect(request, "/staff/login")
    if not looks_up_identities(actor):
        return render.page(request, "error.html", message=t("forbidden", render.lang_of(request)),
                           reason=t("clinical_only", render.lang_of(request)), status=403)  # fmt: skip
    return None


def _staff_post(request: Request, actor: Actor, posted: dict[str, str]) -> Response | None:
    """:func:`_staff` for a form's POST: when the session has expired, the login page comes
    back with what was typed carried along (hidden fields), to be sent on after logging in."""
    if _is_staff(actor):
        return _staff(request, actor)
    return render.page(request, "staff_login.html", next=request.url.path, carry=posted,
                       notice=t("session_expired_form", render.lang_of(request)),
                       status=401)  # fmt: skip


@router.get("/staff/login", include_in_schema=False, response_class=HTMLResponse)
def staff_login_page(request: Request) -> Response:
    expired = request.query_params.get("expired") == "1"
    notice = t("session_expired", render.lang_of(request)) if expired else None
    return render.page(
        request,
        "staff_login.html",
        next=_safe_next(request.query_params.get("next", "/clinic"), "/clinic"),
        notice=notice,
    )


@router.post("/staff/login", include_in_schema=False, response_class=HTMLResponse)
async def staff_login_submit(request: Request, conn: Conn) -> Response:
    raw = {k: str(v) for k, v in (await request.form()).items()}
    lang = render.lang_of(request)
    nxt = _safe_next(raw.get("next") or "/clinic", "/clinic")
    # a form an expired session interrupted, carried through the login (never the password)
    carry = {k.removeprefix(_CARRY): v for k, v in raw.items() if k.startswith(_CARRY)}
    try:
        token = backend.staff_login(
            conn,
            request.app.state.settings,
            raw.get("username", ""),
            raw.get("password", ""),
            raw.get("otp") or None,
            client_address(request),
        )
    except backend.Refused as exc:
        return render.page(
            request,
            "staff_login.html",
            errors={"password": str(exc) or t("bad_code", lang)},
            next=nxt,
            carry=carry,
            status=422,
        )
    resp: Response = RedirectResponse(nxt, status_code=303)
    if carry:  # the interrupted form, ready to be sent on with the new session
        resp = render.page(request, "resume.html", action=nxt, carry=carry)
    gate.set_session_cookie(request, resp, token)
    return resp


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
    if (redirect := _staff(request, actor)) is not None:
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
    if (redirect := _staff(request, actor)) is not None:
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
    items = timeline(resources, actor, backend.unit_name(conn, actor.unit_id), include_sensitive)
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


def timeline(
    resources: list[Any], actor: Actor, my_unit: str | None, include_sensitive: bool
) -> list[dict[str, Any]]:
    """The whole record as dated rows, newest first; labs from other facilities are marked."""
    enc_fac = {
        r.id: ref_text(r.body.get("serviceProvider")) for r in resources if r.type == "Encounter"
    }
    recent = datetime.now(UTC) - timedelta(days=180)
    rows = []
    for r in resources:
        body = r.body
        if r.type == "Patient" or (not include_sensitive and is_sensitive(body)):
            continue
        when = effective(body)
        facility = None
        for key in ("serviceProvider", "performer", "requester", "location"):
            facility = ref_text(body.get(key))
            if facility:
                break
        if facility is None and r.type == "Appointment":
            facility = next(
                (
                    ref_text(p.get("actor"))
                    for p in body.get("participant") or ()
                    if str((p.get("actor") or {}).get("reference", "")).startswith("Organization")
                ),
                None,
            )
        if facility is None:
            enc = (body.get("encounter") or {}).get("reference", "")
            facility = enc_fac.get(enc.partition("/")[2]) if enc else None
        summary = (
            concept_text(body.get("code"))
            or concept_text(body.get("reasonCode"))
            or concept_text(body.get("vaccineCode"))
            or concept_text(body.get("medicationCodeableConcept"))
            or concept_text(body.get("type"))
            or body.get("description")
            or ""
        )
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
                "value": value,
                "facility": facility,
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
    if (redirect := _staff_post(request, actor, raw)) is not None:
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
    if (redirect := _staff(request, actor)) is not None:
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
    if (relogin := _staff_post(request, actor, raw)) is not None:
        return relogin
    stop, view = _clinic_write_guard(request, conn, actor, person_id)
    if stop is not None:
        return stop
    form = Form(raw)
    my_unit = backend.unit_name(conn, actor.unit_id)
    if kind == "referral":
        to_unit = form.text("to_unit", required=True, max_len=40)
        icd = form.text("icd", required=True, max_len=10)
        if icd and not re.fullmatch(r"[A-Z][0-9]{2}(\.[0-9A-Z]{1,4})?", icd.upper()):
            form.error(
                "icd",
                f"Mã ICD-10 “{icd}” không đúng dạng; ví dụ I10 hoặc E11.9.",
                f"ICD-10 “{icd}” is malformed; e.g. I10.",
            )
        diagnosis = form.text("diagnosis", required=True, max_len=300)
        reason = form.text("reason", required=True, max_len=500)
        body: dict[str, Any] = {}
        if form.ok:
            units = dict(backend.units(conn))
            body = referral_resource(
                person_id,
                actor,
                my_unit,
                to_unit or "",
                units.get(to_unit or "", to_unit),
                (icd or "").upper(),
                diagnosis,
                reason,
            )
    else:
        day = form.day("date", required=True, not_future=False, today=_today())
        if day is not None and day <= _today():
            form.error("date", "Ngày hẹn phải sau hôm nay.", "The appointment must be after today.")
        reason = form.text("reason", required=True, max_len=500)
        if form.ok and day is not None:
            body = appointment_resource(person_id, actor, my_unit, day, reason or "")
    if not form.ok:
        return render.page(
            request,
            "referral.html",
            person=view,
            units=backend.units(conn, ("hospital", "polyclinic")) if kind == "referral" else [],
            kind=kind,
            errors=form.by_field(render.lang_of(request)),
            values=raw,
            nav="clinic",
            status=422,
            safety=_banner(conn, actor, person_id),
        )
    stored, _ = save(conn, body, person_id=person_id, source_unit=actor.unit_id)
    backend.record_access(
        conn,
        actor,
        "create",
        person_id,
        backend.decide(conn, actor, person_id, action="write", purpose="treatment"),
        resource_type=stored.type,
        resource_id=stored.id,
    )
    return RedirectResponse(f"/clinic/p/{person_id}?saved={kind}", status_code=303)


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


# --- commune station ----------------------------------------------------------------------------
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
    if (redirect := _staff(request, actor)) is not None:
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
        values={"date": _today().strftime("%d/%m/%Y")},
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
    if (redirect := _staff_post(request, actor, raw)) is not None:
        return redirect
    lang = render.lang_of(request)
    if form_name not in STATION_FORMS:
        return render.page(request, "error.html", message=t("not_found", lang), status=404)
    form, data = STATION_FORMS[form_name][1](raw, _today())
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
        saved = station.save_death(conn, actor, person_id, where, data, uuid.uuid4().hex, _today())
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


# The partner book API is the hot path and FastAPI tries routes in order (each miss costs a
# regex match): its routes first. No other route's path overlaps theirs.
_HOT_PATHS = ("/api/v1/book/{person_id}", "/api/v1/me/book")
router.routes.sort(key=lambda r: getattr(r, "path", None) not in _HOT_PATHS)
