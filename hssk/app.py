"""The FastAPI application (the composition root): /fhir (FHIR R4), /api/v1, web pages, health.

Every component's router is imported here by name: a missing one stops the application at
import, never silently leaves its doors out. Around the routes, in order from the outside:
the trusted proxies' client address (only when configured), security headers, request size
limits, and the cross-site check of page forms. Authentication is ``hssk.http.gate``'s.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.routing import APIRouter
from fastapi_offline import FastAPIOffline
from starlette.responses import Response
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from hssk import __version__, wiring
from hssk.api import book as book_api
from hssk.api import errors, fhir, health, home
from hssk.api.routes import access as access_routes
from hssk.api.routes import ingest as ingest_routes
from hssk.api.routes import monitor as monitor_routes
from hssk.api.routes import share as share_routes
from hssk.db import Database, open_database
from hssk.http.csrf import CrossSiteGuard, origin_of
from hssk.http.gate import SessionRenewal
from hssk.http.headers import SecurityHeaders
from hssk.http.limits import MB, BodyLimit, Limits
from hssk.http.logs import RequestLog
from hssk.kernel.config import Settings, load_settings
from hssk.web import access_log, admin_pages, quarantine_pages, verify
from hssk.web.pages import auth as auth_pages
from hssk.web.pages import book as book_pages
from hssk.web.pages import clinic as clinic_pages
from hssk.web.pages import station as station_pages

log = logging.getLogger(__name__)

# Routing scans routes in order: the book API and the book pages (the busiest paths) come
# first; their prefixes (/api/v1/book, /api/v1/me/book, /book) and those of the other pages
# (/staff, /clinic, /station, /admin) overlap no other router's. Component routers come before the
# generic FHIR one: their fixed paths (e.g. /fhir/AuditEvent) must win over /fhir/{type}.
ROUTERS: tuple[APIRouter, ...] = (
    book_api.router,
    book_pages.router,
    auth_pages.router,
    clinic_pages.router,
    station_pages.router,
    quarantine_pages.router,
    verify.router,
    admin_pages.router,
    access_log.router,
    access_routes.router,
    ingest_routes.router,
    share_routes.router,
    monitor_routes.router,
    home.router,
)

# Server-rendered pages, authenticated by the session cookie: their forms are checked for
# cross-site origin.
PAGE_PREFIXES = ("/book", "/clinic", "/station", "/staff", "/supervision", "/admin")
# Answers holding personal data (or tokens): never stored by a browser or a cache.
PRIVATE_PREFIXES = (*PAGE_PREFIXES, "/fhir", "/api/", "/auth/")
FHIR_MAX_BODY = 50_000_000  # a transaction bundle (the FHIR router says so too)
AUTH_MAX_BODY = 64 * 1024  # unauthenticated login forms: a few fields


def _fhir_too_large(limit: int) -> Response:
    body = errors.outcome(code="too-costly", diagnostics=f"request body over {limit // MB} MB; "
                          "split the bundle / nội dung quá lớn, hãy chia nhỏ bundle")  # fmt: skip
    return errors.fhir_response(body, 413)


BODY_LIMITS = (
    BodyLimit("/fhir", FHIR_MAX_BODY, _fhir_too_large),
    BodyLimit("/auth/", AUTH_MAX_BODY),
    *ingest_routes.BODY_LIMITS,
)

DESCRIPTION = """
**HSSK** — nền tảng hồ sơ sức khỏe điện tử (electronic health record platform for Vietnam).

* `/fhir` — HL7 FHIR R4 REST API (read, `_history`, search, transaction bundles,
  `Patient/$everything`). Start with `GET /fhir/metadata`.
* `/api/v1` — platform API (ingestion jobs, accounts, consents, supervision).
* Every request for personal health data needs `Authorization: Bearer <token>` and is audited.
"""


def create_app(settings: Settings | None = None, db: Database | None = None) -> FastAPI:
    """Build the application. Without ``db`` the store is opened at start-up (and closed)."""
    settings = settings or load_settings()
    wiring.start()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = db is None
        app.state.db = db or open_database(settings)
        try:
            yield
        finally:
            if owned:
                app.state.db.close()

    # Swagger UI from the platform's own assets: /docs works on a network without internet
    app = FastAPIOffline(
        docs_url="/docs",
        redoc_url=None,
        static_url="/docs/assets",
        title="HSSK",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.settings = settings
    if db is not None:
        app.state.db = db
    errors.install(app)
    app.include_router(health.router)
    for router in ROUTERS:
        app.include_router(router)
    app.include_router(fhir.router)
    # add_middleware wraps: the last added runs first.
    app.add_middleware(CrossSiteGuard, prefixes=PAGE_PREFIXES,
                       extra_origins=(origin_of(settings.base_url),))  # fmt: skip
    app.add_middleware(Limits, max_body=settings.max_body, max_head=settings.max_header,
                       doors=BODY_LIMITS)  # fmt: skip
    app.add_middleware(SessionRenewal)
    app.add_middleware(SecurityHeaders, private_prefixes=PRIVATE_PREFIXES, https=settings.https)
    # outermost but the proxy headers: every answer, refusals included, gets its request id
    app.add_middleware(RequestLog)
    if settings.trusted_proxies:
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=list(settings.trusted_proxies))
    return app
