"""JSON logs with request ids and the acting account, and nothing personal in them.

``HSSK_LOG_FORMAT=json`` makes every log line one JSON object (journald and log collectors
read them as fields). ``RequestLog`` gives each HTTP request an id (the ``X-Request-ID`` nginx
sets, or a new one), returns it in the response, stamps every log line written while the
request runs, and writes one access line: method, path, status, duration. It replaces
uvicorn's access log, which prints query strings, and those carry CCCD numbers
(``/fhir/Patient?identifier=…|001205012345``): the path is logged without its query, and long
digit runs in it (CCCD, phone, insurance numbers) are masked.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
# Who acts in the current request. A dict set by the middleware and filled in by the
# authentication dependency: that runs in a worker thread, which sees the middleware's context
# but cannot set variables in it; it can fill the dict the middleware holds.
_acting: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "acting", default=None
)
access = logging.getLogger("hssk.access")
_GOOD_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_DIGITS = re.compile(r"\d{8,}")


def safe_path(path: str) -> str:
    """The path with long digit runs (identifiers of persons) masked."""
    return _DIGITS.sub(lambda m: "#" * len(m.group()), path)


def note_actor(kind: str, account_id: str) -> None:
    """Record the acting account for this request's log lines: kind and account number; a
    citizen's account only as 'citizen' (its number leads to a person)."""
    holder = _acting.get()
    if holder is not None:
        holder["actor"] = kind if kind == "citizen" else f"{kind}:{account_id}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, logger, message, request id."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            out["request_id"] = rid
        holder = _acting.get()
        actor = getattr(record, "actor", None) or (holder or {}).get("actor")
        if actor:
            out["actor"] = actor
        for key in ("method", "path", "status", "ms", "job", "seconds"):
            if hasattr(record, key):
                out[key] = getattr(record, key)
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(out).decode()


def json_logs() -> bool:
    return os.environ.get("HSSK_LOG_FORMAT", "").lower() == "json"


def configure_process(level: str | None = None) -> None:
    """Logging of a command's process (``hssk jobs run``): JSON lines on stderr like the web
    server's when HSSK_LOG_FORMAT=json, plain lines otherwise."""
    level = (level or os.environ.get("HSSK_LOG_LEVEL", "INFO")).upper()
    if not json_logs():
        logging.basicConfig(level=level)
        return
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level, handlers=[handler], force=True)


def uvicorn_log_config() -> dict[str, Any]:
    """Logging for ``hssk serve`` (uvicorn applies it in every worker process): uvicorn's own
    in plain mode; JSON lines on stderr for everything, without uvicorn's access log, when
    HSSK_LOG_FORMAT=json."""
    from uvicorn.config import LOGGING_CONFIG

    if not json_logs():
        return LOGGING_CONFIG
    level = os.environ.get("HSSK_LOG_LEVEL", "INFO").upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"default": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "uvicorn": {"handlers": [], "propagate": True},
            "uvicorn.access": {"handlers": [], "propagate": False, "level": "CRITICAL"},
        },
    }


class RequestLog:
    """ASGI middleware: request id in, request id out, one access line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log_access = json_logs()  # in plain mode uvicorn's access log stays

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        rid = given if _GOOD_ID.match(given) else uuid.uuid4().hex
        token = request_id.set(rid)
        holder: dict[str, str] = {}
        acting = _acting.set(holder)
        status = 500
        t0 = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if self.log_access:
                _log_access(scope, status, t0, holder.get("actor"))
            _acting.reset(acting)
            request_id.reset(token)


def _log_access(scope: Scope, status: int, t0: float, actor: str | None) -> None:
    ms = round((time.perf_counter() - t0) * 1000, 1)
    method, path = scope.get("method"), safe_path(scope.get("path", ""))
    fields = {"method": method, "path": path, "status": status, "ms": ms,
              "request_id": request_id.get(), "actor": actor}  # fmt: skip
    access.info("%s %s %s %.1f ms", method, path, status, ms, extra=fields)
