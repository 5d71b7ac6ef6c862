"""The FastAPI application: /fhir (FHIR R4), /api/v1 (platform), web pages, health checks.

Components contribute routers (``hssk/<comp>/routes.py`` exposing ``router``); they are
mounted here in a fixed order, and a component that is not present is skipped.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from hssk import __version__
from hssk.api import errors, fhir, health
from hssk.db import Database, open_database
from hssk.kernel.config import Settings, load_settings
from hssk.ops.logs import RequestLog

log = logging.getLogger(__name__)

# Routing scans routes in order: the web router (the book API and pages, the busiest paths)
# comes first; its prefixes (/book, /clinic, /station, /staff, /api/v1/book, /api/v1/me/book)
# overlap no other router's.
ROUTERS = (
    "hssk.web.routes",
    "hssk.web.quarantine_pages",
    "hssk.access.routes",
    "hssk.ingest.routes",
    "hssk.registry.routes",
    "hssk.share.routes",
    "hssk.monitor.routes",
    "hssk.api.home",
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

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        owned = db is None
        app.state.db = db or open_database(settings)
        try:
            yield
        finally:
            if owned:
                app.state.db.close()

    app = FastAPI(
        title="HSSK",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.settings = settings
    if db is not None:
        app.state.db = db
    errors.install(app)
    app.add_middleware(RequestLog)
    app.include_router(health.router)
    # Component routers first: their fixed paths (e.g. /fhir/AuditEvent, /fhir/Patient/$match)
    # must win over the generic /fhir/{type} routes.
    for module in ROUTERS:
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        app.include_router(mod.router)
    app.include_router(fhir.router)
    return app
