"""The citizen's pages: the health book (their own and their children's), a visit and its PDF,
the whole book as a PDF, consents, who read the record, and what the citizen adds themselves.

The book page admits the caller and reads the book in one worker thread
(``reading.in_thread``); the other handlers are plain ``def``.
"""

from __future__ import annotations

from typing import Any

import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hssk.access import Actor
from hssk.api.bodies import FormFields
from hssk.api.deps import Conn
from hssk.http.gate import PageActor
from hssk.kernel import clock
from hssk.web import backend, pdf, render, selfdata
from hssk.web.forms import Form
from hssk.web.i18n import t
from hssk.web.pages.guards import citizen, login_redirect
from hssk.web.reading import BookPageCaller, in_thread, load_book

router = APIRouter(include_in_schema=False)


@router.get("/book", include_in_schema=False, response_class=HTMLResponse)
async def my_book(request: Request, caller: BookPageCaller) -> Response:
    return await in_thread(request, _my_book, caller, request)


def _my_book(conn: psycopg.Connection[Any], actor: Actor, request: Request) -> Response:
    if actor.kind != "citizen" or actor.person_id is None:
        return login_redirect(request)
    return _book_page(request, conn, actor, actor.person_id)


@router.get("/book/p/{person_id}", include_in_schema=False, response_class=HTMLResponse)
async def person_book(person_id: int, request: Request, caller: BookPageCaller) -> Response:
    return await in_thread(request, _person_book, caller, request, person_id)


def _person_book(
    conn: psycopg.Connection[Any], actor: Actor, request: Request, person_id: int
) -> Response:
    if not actor.authenticated:
        return login_redirect(request)
    return _book_page(request, conn, actor, person_id)


def _book_page(
    request: Request, conn: psycopg.Connection[Any], actor: Actor, person_id: int
) -> Response:
    lang = render.lang_of(request)
    own = actor.person_id == person_id
    kids = backend.children(conn, actor) if own else []
    book, decision = load_book(conn, actor, person_id, lang=lang, children=kids if own else None)
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
        return login_redirect(request)
    lang = render.lang_of(request)
    book, _decision = load_book(conn, actor, person_id, lang=lang, action="export")
    if book is None or not any(v.id == visit_id for v in book.visits or []):
        return Response(
            t("forbidden" if book is None else "not_found", lang),
            status_code=403 if book is None else 404,
        )
    data = pdf.visit_pdf(book, visit_id, lang, issuer=backend_signer(request))
    return _pdf_response(data, f"lan-kham-{visit_id[:8]}.pdf")


@router.get(
    "/book/p/{person_id}/visit/{visit_id}", include_in_schema=False, response_class=HTMLResponse
)
def visit_page(
    person_id: int, visit_id: str, request: Request, conn: Conn, actor: PageActor
) -> Response:
    if not actor.authenticated:
        return login_redirect(request)
    lang = render.lang_of(request)
    book, decision = load_book(conn, actor, person_id, lang=lang)
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
        return login_redirect(request)
    lang = render.lang_of(request)
    book, _ = load_book(conn, actor, person_id, lang=lang, action="export")
    if book is None:
        return Response(t("forbidden", lang), status_code=403)
    data = pdf.book_pdf(book, lang, issuer=backend_signer(request))
    return _pdf_response(data, f"so-suc-khoe-{person_id}.pdf")


def backend_signer(request: Request) -> pdf.Issuer:
    return pdf.platform_issuer(request.app.state.settings, str(request.base_url))


def _pdf_response(data: bytes, name: str) -> Response:
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "Cache-Control": "no-store",
        },
    )


@router.get("/book/consents", include_in_schema=False, response_class=HTMLResponse)
def consents_page(
    request: Request, conn: Conn, actor: PageActor, done: str | None = None
) -> Response:
    if (redirect := citizen(request, actor)) is not None:
        return redirect
    return _consents(request, conn, actor, done=done)


@router.post("/book/consents", include_in_schema=False, response_class=HTMLResponse)
def consent_grant(request: Request, conn: Conn, actor: PageActor, raw: FormFields) -> Response:
    if (redirect := citizen(request, actor)) is not None:
        return redirect
    assert actor.person_id is not None
    form = Form(raw)
    unit = form.text("unit", required=True, max_len=40)
    until = form.day("until", not_future=False, today=clock.today())
    if until is not None and until < clock.today():
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
    if (redirect := citizen(request, actor)) is not None:
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


@router.get("/book/self", include_in_schema=False, response_class=HTMLResponse)
def self_page(request: Request, conn: Conn, actor: PageActor) -> Response:
    if (redirect := citizen(request, actor)) is not None:
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
    if (redirect := citizen(request, actor)) is not None:
        return redirect
    assert actor.person_id is not None
    form, data = selfdata.validate_entry(kind, raw, clock.today())
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
    if (redirect := citizen(request, actor)) is not None:
        return redirect
    assert actor.person_id is not None
    selfdata.delete_entry(conn, actor.person_id, entry_id)
    return RedirectResponse("/book/self", status_code=303)
