"""Liveness and readiness probes (``/health/live``, ``/health/ready``; the older ``/healthz``,
``/readyz`` answer the same)."""

from __future__ import annotations

from functools import lru_cache

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@lru_cache(maxsize=1)
def _shipped_migrations() -> frozenset[str]:
    from hssk.db.migrate import discover

    return frozenset(m.version for m in discover())


@router.get("/health/live", summary="Liveness: the process answers")
@router.get("/healthz", summary="Liveness (older path)", include_in_schema=False)
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/health/ready", summary="Readiness: the database answers, its schema is current")
@router.get("/readyz", summary="Readiness (older path)", include_in_schema=False)
def readyz(request: Request) -> JSONResponse:
    try:
        with request.app.state.db.connection() as conn:
            applied = {r[0] for r in conn.execute("SELECT version FROM schema_migration")}
    except Exception as exc:  # any failure means not ready; say why
        return JSONResponse({"status": "unavailable", "reason": str(exc)[:200]}, status_code=503)
    pending = sorted(_shipped_migrations() - applied)
    if pending:
        reason = f"{len(pending)} migrations pending: run 'hssk db migrate'"
        return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503)
    return JSONResponse({"status": "ready"})
