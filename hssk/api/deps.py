"""FastAPI dependencies shared by every router: the database and the authenticated actor."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Annotated, Any

import psycopg
from fastapi import Depends, Request

from hssk.access.accounts import account_disabled
from hssk.access.actor import ANONYMOUS, Actor
from hssk.access.audit import defer as audit_defer
from hssk.access.audit import flush as audit_flush
from hssk.access.audit import record as audit_record
from hssk.access.tokens import TokenError, verify
from hssk.db import Database
from hssk.kernel.config import Settings
from hssk.ops.logs import note_actor

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


class Unauthenticated(Exception):
    """Raised when a protected endpoint gets no valid credentials (→ 401)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() == "bearer" and token:
        return token.strip()
    cookie = request.cookies.get("hssk_token")
    return cookie or None


def optional_actor(request: Request) -> Actor:
    """The caller, or ANONYMOUS when no credentials were sent (invalid ones → 401)."""
    token = _bearer(request)
    if not token:
        return ANONYMOUS
    try:
        actor = verify(get_settings(request), token)
    except TokenError as exc:
        _audit_bad_token(request, str(exc))
        raise Unauthenticated(f"invalid access token: {exc}") from exc
    if account_disabled(get_database(request), actor.account_id):
        _audit_bad_token(request, f"account {actor.account_id} is disabled")
        raise Unauthenticated("tài khoản đã bị khóa / the account is disabled")
    note_actor(actor.kind, actor.account_id)
    return actor


def _audit_bad_token(request: Request, reason: str) -> None:
    """A refused token is an access attempt: record it (own short transaction)."""
    client = request.client.host if request.client else None
    try:
        with get_database(request).connection() as conn:
            audit_record(
                conn,
                ANONYMOUS,
                "authenticate",
                outcome="deny",
                basis="token",
                detail={"reason": reason[:200], "path": request.url.path, "address": client},
            )
    except psycopg.Error:
        log.exception("could not audit a refused token")


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
