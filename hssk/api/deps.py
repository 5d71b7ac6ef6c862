"""FastAPI dependencies shared by every router: the database and the authenticated actor
(through the one gate, ``hssk.http.gate``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request

from hssk.access.actor import Actor
from hssk.access.audit import defer as audit_defer
from hssk.access.audit import flush as audit_flush
from hssk.db import Database
from hssk.http import gate
from hssk.http.gate import Unauthenticated
from hssk.kernel.config import Settings

log = logging.getLogger(__name__)


def get_database(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_conn(db: Annotated[Database, Depends(get_database)]) -> Iterator[psycopg.Connection[Any]]:
    """A pooled connection for the request; committed before the response unless an error
    escapes.

    Audit events of the request are written after its transaction ends, in a short one of
    their own: refusals stay recorded although the request rolls back (see access.audit).
    """
    with db.connection() as conn:
        audit_defer(conn)
        try:
            yield conn
        except BaseException:
            try:
                conn.rollback()
                audit_flush(conn)
            except Exception:  # keep the original error; the lost audit is logged
                log.exception("audit events of a failed request could not be written")
            raise
        else:
            conn.commit()
            audit_flush(conn)


def optional_actor(request: Request) -> Actor:
    """The caller at the API door (bearer token only), or ANONYMOUS when no credentials were
    sent; invalid ones, or a disabled account's, → 401 (hssk.http.gate)."""
    presented = gate.authenticate(request, "api")
    if presented.refused:
        raise Unauthenticated(presented.refused)
    return presented.actor


def current_actor(actor: Annotated[Actor, Depends(optional_actor)]) -> Actor:
    """The authenticated caller; 401 without valid credentials."""
    if not actor.authenticated:
        raise Unauthenticated("authentication required: send 'Authorization: Bearer <token>'")
    return actor


# scope="function": the transaction commits (and the audit events are written) before the
# response is sent. With FastAPI's default the exit code runs after sending, so a client could
# get 201 for a write whose commit then failed, or be redirected to a page that cannot see it.
Conn = Annotated[psycopg.Connection[Any], Depends(get_conn, scope="function")]
CurrentActor = Annotated[Actor, Depends(current_actor)]
OptionalActor = Annotated[Actor, Depends(optional_actor)]
