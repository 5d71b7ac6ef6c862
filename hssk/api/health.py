"""Liveness and readiness probes."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: the database answers")
def readyz(request: Request) -> JSONResponse:
    try:
        with request.app.state.db.connection() as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # any failure means not ready; say why
        return JSONResponse({"status": "unavailable", "reason": str(exc)[:200]}, status_code=503)
    return JSONResponse({"status": "ready"})
