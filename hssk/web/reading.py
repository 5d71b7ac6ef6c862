"""Reading a person's health book for a page or the partner API: authorize, audit, assemble.

The book page and API admit the caller and read the book in one worker thread
(:func:`in_thread`); both go through :func:`load_book`, so who may read which sections, and
what is audited, is decided once.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Annotated, Any

import orjson
import psycopg
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response

from hssk.access import Actor, Decision
from hssk.api.deps import get_conn
from hssk.http import gate
from hssk.web import backend
from hssk.web.book import build_book, resource_types
from hssk.web.models import SECTIONS, HealthBook


# async: FastAPI runs a plain-def dependency in a worker thread of its own; the book page and
# API take one thread hop only, where in_thread admits the caller (gate.admit).
async def _book_page_caller(request: Request) -> gate.Presented:
    return gate.present(request, "page")


async def _book_api_caller(request: Request) -> gate.Presented:
    return gate.present(request, "api")


BookPageCaller = Annotated[gate.Presented, Depends(_book_page_caller)]
BookApiCaller = Annotated[gate.Presented, Depends(_book_api_caller)]


def load_book(
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


def problem(status: int, detail: str) -> Response:
    """A JSON error of the book API."""
    return Response(
        orjson.dumps({"status": status, "detail": detail}),
        status_code=status,
        media_type="application/json",
    )


async def in_thread(
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
            return problem(401, admitted.refused)
        with contextmanager(get_conn)(request.app.state.db) as conn:
            conn.autocommit = True
            try:
                result: Response = fn(conn, admitted.actor, *args)
            finally:
                conn.autocommit = False  # as the pool lends it (before get_conn's audit flush)
            return result

    return await run_in_threadpool(work)
