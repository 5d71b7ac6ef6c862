"""Errors as FHIR OperationOutcome: what is wrong, where, and how to fix it — never a bare 500."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from hssk.api.deps import Unauthenticated
from hssk.records import Gone, InvalidResource, NotFound, VersionConflict

log = logging.getLogger(__name__)
FHIR_JSON = "application/fhir+json"


class FhirError(Exception):
    """An error to answer with an OperationOutcome and an HTTP status."""

    def __init__(self, status: int, code: str, diagnostics: str, expression: str | None = None):
        self.status = status
        self.code = code
        self.diagnostics = diagnostics
        self.expression = expression
        super().__init__(diagnostics)


class Forbidden(FhirError):
    def __init__(self, reason: str):
        super().__init__(403, "forbidden", f"access denied: {reason}")


def outcome(
    issues: list[dict[str, Any]] | None = None,
    *,
    severity: str = "error",
    code: str = "processing",
    diagnostics: str = "",
    expression: str | None = None,
) -> dict[str, Any]:
    """An OperationOutcome resource."""
    if issues is None:
        issue: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
        if expression:
            issue["expression"] = [expression]
        issues = [issue]
    return {"resourceType": "OperationOutcome", "issue": issues}


class FhirJSONResponse(JSONResponse):
    """JSON encoded with orjson (several times faster than the standard library)."""

    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


def fhir_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> Response:
    return FhirJSONResponse(body, status_code=status, headers=headers)


def invalid_outcome(exc: InvalidResource) -> dict[str, Any]:
    return outcome(
        [
            {
                "severity": "error",
                "code": i.code,
                "diagnostics": f"{i.element}: {i.message}",
                "expression": [i.element],
            }
            for i in exc.issues
        ]
    )


def install(app: FastAPI) -> None:
    """Register handlers that turn every known failure into an OperationOutcome."""

    @app.exception_handler(FhirError)
    async def _fhir(_: Request, exc: FhirError) -> Response:
        return fhir_response(
            outcome(code=exc.code, diagnostics=exc.diagnostics, expression=exc.expression),
            exc.status,
        )

    @app.exception_handler(Unauthenticated)
    async def _unauth(_: Request, exc: Unauthenticated) -> Response:
        return fhir_response(
            outcome(code="login", diagnostics=exc.reason), 401, {"WWW-Authenticate": "Bearer"}
        )

    @app.exception_handler(InvalidResource)
    async def _invalid(_: Request, exc: InvalidResource) -> Response:
        return fhir_response(invalid_outcome(exc), 400)

    @app.exception_handler(NotFound)
    async def _missing(_: Request, exc: NotFound) -> Response:
        return fhir_response(outcome(code="not-found", diagnostics=f"{exc} does not exist"), 404)

    @app.exception_handler(Gone)
    async def _gone(_: Request, exc: Gone) -> Response:
        return fhir_response(outcome(code="deleted", diagnostics=f"{exc} was deleted"), 410)

    @app.exception_handler(VersionConflict)
    async def _conflict(_: Request, exc: VersionConflict) -> Response:
        return fhir_response(outcome(code="conflict", diagnostics=str(exc)), 412)

    @app.exception_handler(RequestValidationError)
    async def _request(_: Request, exc: RequestValidationError) -> Response:
        issues = [
            {
                "severity": "error",
                "code": "invalid",
                "diagnostics": f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}",
            }
            for e in exc.errors()[:20]
        ]
        return fhir_response(outcome(issues), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported", 401: "login", 403: "forbidden"}
        return fhir_response(
            outcome(code=code.get(exc.status_code, "processing"), diagnostics=str(exc.detail)),
            exc.status_code,
        )

    @app.exception_handler(psycopg.DataError)
    async def _data(_: Request, exc: psycopg.DataError) -> Response:
        # e.g. NUL characters or a number out of range in user input: the input is wrong
        return fhir_response(
            outcome(
                code="invalid",
                diagnostics="the request holds a value the store cannot keep (such as a NUL "
                f"character \\u0000 or an out-of-range number); remove it and retry ({exc.sqlstate})",
            ),
            400,
        )

    @app.exception_handler(RecursionError)
    async def _deep(_: Request, exc: RecursionError) -> Response:
        # input nested deeper than a parser or validator can follow (the FHIR API refuses
        # such bodies up front; this keeps every other door from answering 500)
        return fhir_response(
            outcome(code="structure", diagnostics="the request is nested too deeply to be "
                    "processed; flatten it (at most 64 levels of objects and arrays)"),
            400,
        )  # fmt: skip

    @app.exception_handler(Exception)
    async def _unexpected(_: Request, exc: Exception) -> Response:
        log.exception("unexpected error")
        return fhir_response(
            outcome(code="exception", diagnostics="internal error; the incident was logged"), 500
        )
