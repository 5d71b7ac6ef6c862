"""Errors as FHIR OperationOutcome: what is wrong, where, and how to fix it — never a bare 500.

Each issue carries its message id in ``details.coding`` and its text in the language the
request prefers (Vietnamese unless ``Accept-Language`` prefers English); see ``messages``."""

from __future__ import annotations

import logging
from typing import Any

import orjson
import psycopg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from hssk.api.messages import SYSTEM, Message, bilingual, lang_of, msg
from hssk.http.gate import Unauthenticated
from hssk.records import Gone, InvalidResource, Issue, NotFound, VersionConflict

log = logging.getLogger(__name__)
FHIR_JSON = "application/fhir+json"


class FhirError(Exception):
    """An error to answer with an OperationOutcome and an HTTP status."""

    def __init__(self, status: int, code: str, message: Message, expression: str | None = None):
        self.status = status
        self.code = code
        self.message = message
        self.expression = expression
        super().__init__(message.text("en"))  # logs and tracebacks in English

    def text(self, lang: str) -> str:
        return self.message.text(lang)


class Forbidden(FhirError):
    """A refusal of the access policy (its reasons are written 'Vietnamese / English')."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(403, "forbidden", msg("access-denied", reason=reason))

    def text(self, lang: str) -> str:
        return msg("access-denied", reason=bilingual(self.reason, lang)).text(lang)


def request_lang(request: Request) -> str:
    """'en' when the request's Accept-Language prefers English, else 'vi'."""
    return lang_of(request.headers.get("accept-language"))


def issue(
    code: str, message: Message, lang: str, expression: str | None = None, text: str = ""
) -> dict[str, Any]:
    """One OperationOutcome issue: the message id as a code, the text in ``lang``."""
    out: dict[str, Any] = {
        "severity": "error",
        "code": code,
        "details": {"coding": [{"system": SYSTEM, "code": message.id}]},
        "diagnostics": text or message.text(lang),
    }
    if expression:
        out["expression"] = [expression]
    return out


def error_outcome(exc: FhirError, lang: str) -> dict[str, Any]:
    return outcome([issue(exc.code, exc.message, lang, exc.expression, exc.text(lang))])


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
        one: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
        if expression:
            one["expression"] = [expression]
        issues = [one]
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


def issue_message(found: Issue) -> Message:
    """The catalogue's message for one validation issue (named where it was raised)."""
    return msg(found.msg_id, **found.params)


def invalid_outcome(exc: InvalidResource, lang: str = "vi") -> dict[str, Any]:
    return outcome(
        [
            issue(i.code, issue_message(i), lang, i.element,
                  f"{i.element}: {issue_message(i).text(lang)}")
            for i in exc.issues
        ]
    )  # fmt: skip


def install(app: FastAPI) -> None:
    """Register handlers that turn every known failure into an OperationOutcome."""

    def answer(
        request: Request, status: int, code: str, message: Message,
        headers: dict[str, str] | None = None,
    ) -> Response:  # fmt: skip
        return fhir_response(outcome([issue(code, message, request_lang(request))]), status,
                             headers)  # fmt: skip

    @app.exception_handler(FhirError)
    async def _fhir(request: Request, exc: FhirError) -> Response:
        return fhir_response(error_outcome(exc, request_lang(request)), exc.status)

    @app.exception_handler(Unauthenticated)
    async def _unauth(request: Request, exc: Unauthenticated) -> Response:
        lang = request_lang(request)
        # no credentials at all (hssk.api.deps says so in English), or credentials refused
        missing = exc.reason.startswith("authentication required")
        message = (
            msg("login-required") if missing
            else msg("login-refused", reason=bilingual(exc.reason, lang))
        )  # fmt: skip
        return answer(request, 401, "login", message, {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(InvalidResource)
    async def _invalid(request: Request, exc: InvalidResource) -> Response:
        return fhir_response(invalid_outcome(exc, request_lang(request)), 400)

    @app.exception_handler(NotFound)
    async def _missing(request: Request, exc: NotFound) -> Response:
        return answer(request, 404, "not-found", msg("not-found", ref=str(exc)))

    @app.exception_handler(Gone)
    async def _gone(request: Request, exc: Gone) -> Response:
        return answer(request, 410, "deleted", msg("gone", ref=str(exc)))

    @app.exception_handler(VersionConflict)
    async def _conflict(request: Request, exc: VersionConflict) -> Response:
        return answer(request, 412, "conflict", msg("version-conflict", detail=str(exc)))

    @app.exception_handler(RequestValidationError)
    async def _request(request: Request, exc: RequestValidationError) -> Response:
        lang = request_lang(request)
        issues = [
            issue("invalid", msg("request-invalid", detail=e.get("msg"),
                                 path=".".join(str(p) for p in e.get("loc", ()))), lang)
            for e in exc.errors()[:20]
        ]  # fmt: skip
        return fhir_response(outcome(issues), 400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not-found", 405: "not-supported", 401: "login", 403: "forbidden"}
        path = request.url.path
        if exc.status_code == 404 and exc.detail == "Not Found":  # no route at all
            message = msg("route-not-found", path=path)
        elif exc.status_code == 405:
            message = msg("method-not-allowed", method=request.method, path=path)
        else:
            message = msg("http-error", status=exc.status_code, detail=str(exc.detail))
        return answer(request, exc.status_code, code.get(exc.status_code, "processing"), message)

    @app.exception_handler(psycopg.DataError)
    async def _data(request: Request, exc: psycopg.DataError) -> Response:
        # e.g. NUL characters or a number out of range in user input: the input is wrong
        return answer(request, 400, "invalid", msg("value-unstorable", sqlstate=exc.sqlstate))

    @app.exception_handler(RecursionError)
    async def _deep(request: Request, exc: RecursionError) -> Response:
        # input nested deeper than a parser or validator can follow (the FHIR API refuses
        # such bodies up front; this keeps every other door from answering 500)
        return answer(request, 400, "structure", msg("nested-too-deep"))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unexpected error")
        return answer(request, 500, "exception", msg("internal-error"))
