"""The partner book API: a person's health book for partner apps (VNeID, the city app) and
for citizens' own apps, and the record as the fields of a catalog.

FastAPI tries routes in order (each miss costs a regex match): ``hssk.app`` mounts this
router first, and its two busiest routes come first in it.
"""

from __future__ import annotations

from typing import Annotated, Any

import psycopg
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from hssk.access import Actor
from hssk.api.deps import Conn, OptionalActor
from hssk.catalog import bundle as catalog_bundle
from hssk.catalog import catalogs as catalog_registry
from hssk.web import backend
from hssk.web.models import SECTIONS, CatalogFields, CatalogValue, HealthBook
from hssk.web.partners import catalogs_for, sections_for
from hssk.web.reading import BookApiCaller, in_thread, load_book, problem

router = APIRouter()


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
    return await in_thread(request, _api_book, caller, person_id, v, api=True)


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
        return problem(status, "a citizen token is required")
    return await in_thread(request, _api_book, caller, person_id, v, api=True)


def _api_book(conn: psycopg.Connection[Any], actor: Actor, person_id: int, v: int) -> Response:
    if v != 1:
        return problem(400, f"unsupported book version {v}; this server serves v=1")
    if not actor.authenticated:
        return problem(401, "authentication required: send 'Authorization: Bearer <token>'")
    own = actor.kind == "citizen"
    book, decision = load_book(
        conn,
        actor,
        person_id,
        sections=None if own else sections_for(actor.client),
        include_sensitive=own,
    )
    if book is None:
        return problem(403 if decision.basis == "deny" else 404, decision.reason)
    return Response(book.model_dump_json(), media_type="application/json")


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
    if not actor.authenticated:
        return problem(401, "authentication required: send 'Authorization: Bearer <token>'")
    if actor.kind == "system" and catalog not in catalogs_for(actor.client):
        return problem(403, f"catalog {catalog!r} is not in the field set of {actor.client!r}")
    try:
        cat = catalog_registry.get(catalog)
    except KeyError as exc:
        return problem(404, str(exc.args[0]))
    decision = backend.decide(conn, actor, person_id, action="read")
    backend.record_access(conn, actor, "read", person_id, decision, detail={"catalog": catalog})
    if not decision.allowed:
        conn.commit()
        return problem(403, decision.reason)
    bundle = catalog_bundle.bundles(conn, [person_id]).get(person_id)
    if bundle is None:
        return problem(404, f"no person {person_id}")
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
