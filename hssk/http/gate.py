"""The one gate: what a request presents as credentials becomes an Actor here, for every door.

Doors and what each accepts (anything else is ignored, never trusted):

* ``api`` (``/fhir``, ``/api/v1``): ``Authorization: Bearer`` only. The session cookie is not
  a bearer token: a page's cookie sent along by a browser must not act on the API.
* ``page`` (server-rendered pages): the bearer header, else the session cookie.
* ``gateway`` (the insurance gateway's shapes, ``/api/qd130``…): the bearer header, else the
  gateway's ``accessToken`` header or ``token`` query parameter (what HIS clients send).

Two steps, so the hot book path needs one thread hop only: :func:`present` checks the token
(signature, expiry; CPU only, cached by ``access.tokens``) and may run on the event loop;
:func:`admit` asks whether the account is still enabled (``access.accounts``, kept until the
database announces a change) and audits every refusal, so it runs in a worker thread. A
disabled account is refused at its next request on every door, open page sessions included.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Annotated, Literal

import psycopg
from fastapi import Depends, Request
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from hssk.access.accounts import account_disabled
from hssk.access.actor import ANONYMOUS, Actor
from hssk.access.audit import record as audit_record
from hssk.access.tokens import TokenError, renewal, verify
from hssk.http.client import client_address
from hssk.http.logs import note_actor

log = logging.getLogger(__name__)

Door = Literal["api", "page", "gateway"]
COOKIE = "hssk_token"
DISABLED = "tài khoản đã bị khóa / the account is disabled"


class Unauthenticated(Exception):
    """A protected endpoint got no valid credentials (→ 401)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Presented:
    """A request's caller: ``actor`` (ANONYMOUS when nothing valid was sent) and, when the
    credentials were refused, why."""

    actor: Actor
    refused: str | None = None
    checked: bool = False  # the account's status was asked (admit)


NOBODY = Presented(ANONYMOUS, checked=True)


def credentials(request: Request, door: Door) -> str | None:
    """The token the request presents at ``door`` (None: none)."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return token.strip()
    if door == "page":
        return request.cookies.get(COOKIE) or None
    if door == "gateway":
        return request.headers.get("accesstoken") or request.query_params.get("token") or None
    return None


def present(request: Request, door: Door) -> Presented:
    """The actor of the request's token, signature and expiry checked (CPU only)."""
    token = credentials(request, door)
    if not token:
        return NOBODY
    try:
        return Presented(verify(request.app.state.settings, token))
    except TokenError as exc:
        return Presented(ANONYMOUS, f"invalid access token: {exc}")


def admit(request: Request, presented: Presented) -> Presented:
    """``presented`` with the account's status checked: a disabled account is refused. Every
    refusal is audited. May query the database: call it from a worker thread."""
    if presented.checked:
        return presented
    actor, refused = presented.actor, presented.refused
    if refused is None and account_disabled(request.app.state.db, actor.account_id):
        refused = DISABLED
    if refused is None:
        if actor.authenticated:
            note_actor(actor.kind, actor.account_id)
        return Presented(actor, checked=True)
    _audit_refusal(request, refused, actor)
    return Presented(ANONYMOUS, refused, checked=True)


def authenticate(request: Request, door: Door) -> Presented:
    """:func:`present` then :func:`admit` (from a worker thread)."""
    return admit(request, present(request, door))


def page_actor(request: Request) -> Actor:
    """The caller of a page (bearer header or session cookie): invalid or expired
    credentials, or a disabled account, mean 'not logged in' (the page sends to its login,
    saying the session expired: :func:`session_expired`). A session cookie with less than
    half its life left is renewed on the way out (sliding sessions, :class:`SessionRenewal`)."""
    presented = authenticate(request, "page")
    request.state.actor = presented.actor  # the page's menu shows what this actor may use
    cookie = request.cookies.get(COOKIE)
    if cookie and credentials(request, "page") == cookie:
        if presented.refused is not None:
            request.state.session_refused = True
        elif presented.actor.authenticated:
            _renew(request, cookie)
    return presented.actor


def session_expired(request: Request) -> bool:
    """Whether the request's session cookie was refused (expired, or its account disabled):
    the login page then says why the person must log in again."""
    return bool(getattr(request.state, "session_refused", False))


PageActor = Annotated[Actor, Depends(page_actor)]


SESSION_SECONDS = 3600  # the cookie's life; the token inside expires sooner (SESSION_TTL)
SESSION_TTL = 900  # a page session's token, renewed while in use:
RENEW_BELOW = SESSION_TTL / 2  # re-issued when less than half of its life is left
SESSION_MAX = 12 * 3600  # never renewed this long after the login: log in again
_RENEWED = "hssk_session_renewal"


def served_over_https(request: Request) -> bool:
    """Whether the site is served over HTTPS: ``HSSK_HTTPS`` when set, else the request's
    scheme (behind a trusted proxy, its X-Forwarded-Proto)."""
    https: bool | None = request.app.state.settings.https
    return request.url.scheme == "https" if https is None else https


def set_session_cookie(request: Request, response: Response, token: str) -> None:
    """The page session: HttpOnly, SameSite=Strict, Secure over HTTPS."""
    response.set_cookie(COOKIE, token, max_age=SESSION_SECONDS, path="/", httponly=True,
                        samesite="strict", secure=served_over_https(request))  # fmt: skip


def _renew(request: Request, token: str) -> None:
    """Ask :class:`SessionRenewal` to send a fresh session cookie with the response."""
    try:
        fresh = renewal(request.app.state.settings, token, ttl=SESSION_TTL,
                        renew_below=RENEW_BELOW, max_session=SESSION_MAX)  # fmt: skip
    except TokenError:
        return
    if fresh is not None:
        carrier = Response()
        set_session_cookie(request, carrier, fresh)
        request.scope.setdefault("state", {})[_RENEWED] = carrier.headers["set-cookie"].encode()


class SessionRenewal:
    """ASGI middleware: adds the renewed session cookie :func:`page_actor` asked for to the
    response (page handlers return their own responses, so a dependency cannot set it)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})

        async def send_renewed(message: Message) -> None:
            cookie = state.get(_RENEWED)
            if message["type"] == "http.response.start" and cookie:
                headers = list(message.get("headers", []))
                if not any(k == b"set-cookie" and v.startswith(COOKIE.encode() + b"=")
                           for k, v in headers):  # fmt: skip
                    message = {**message, "headers": [*headers, (b"set-cookie", cookie)]}
            await send(message)

        await self.app(scope, receive, send_renewed)


def clear_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/")


def _audit_refusal(request: Request, reason: str, actor: Actor) -> None:
    """A refused credential is an access attempt: recorded in a short transaction of its own
    (the request's may roll back)."""
    detail = {"reason": reason[:200], "path": request.url.path,
              "address": client_address(request)}  # fmt: skip
    if actor.authenticated:
        detail["account"] = actor.account_id
    try:
        with request.app.state.db.connection() as conn:
            audit_record(conn, ANONYMOUS, "authenticate", outcome="deny", basis="token",
                         detail=detail)  # fmt: skip
    except psycopg.Error:
        log.exception("could not audit a refused credential")
