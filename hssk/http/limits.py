"""Request size limits: the head (request line and headers) and the body, per door.

A body is refused by its ``Content-Length`` before anything is read, and a body sent without
one is counted as it arrives and refused when it passes the limit, so no endpoint (the
unauthenticated ``/auth/otp`` included) ever holds more than its door allows. The JSON and
form doors share ``HSSK_MAX_BODY``; the FHIR bundle, the upload and the gateway doors declare
their own larger limits, and may answer in their own format (the gateway's code 1001).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MB = 1024**2


def too_large(limit: int) -> Response:
    """The default answer: a JSON problem, in Vietnamese and English."""
    mb = f"{limit / MB:g} MB" if limit >= MB else f"{limit // 1024} KB"
    body = {"status": 413, "detail": f"Nội dung yêu cầu quá lớn (tối đa {mb}). / "
            f"Request body too large (at most {mb}); send less or split it."}  # fmt: skip
    return Response(orjson.dumps(body), 413, media_type="application/json")


def head_too_large(limit: int) -> Response:
    body = {"status": 431, "detail": f"Phần đầu yêu cầu quá lớn (tối đa {limit // 1024} KB). / "
            f"Request headers too large (at most {limit // 1024} KB)."}  # fmt: skip
    return Response(orjson.dumps(body), 431, media_type="application/json")


@dataclass(frozen=True)
class BodyLimit:
    """Requests whose path starts with ``prefix`` may send ``max_bytes``; ``answer`` builds
    the refusal (given the limit)."""

    prefix: str
    max_bytes: int
    answer: Callable[[int], Response] = too_large


class BodyTooLarge(Exception):
    """Raised from ``receive`` when the body passes its limit (the middleware answers)."""


class Limits:
    """ASGI middleware enforcing the head limit and each door's body limit."""

    def __init__(
        self, app: ASGIApp, *, max_body: int, max_head: int, doors: Sequence[BodyLimit] = ()
    ) -> None:
        self.app = app
        self.default = BodyLimit("", max_body)
        self.max_head = max_head
        # longest prefix first: /api/v1/ingest/ before a shorter /api/ one
        self.doors = sorted(doors, key=lambda d: len(d.prefix), reverse=True)

    def door(self, path: str) -> BodyLimit:
        for d in self.doors:
            if path.startswith(d.prefix):
                return d
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        length: int | None = None
        chunked = False
        for name, value in scope["headers"]:
            head += len(name) + len(value) + 4
            if name == b"content-length":
                length = int(value) if value.isdigit() else None
            elif name == b"transfer-encoding":
                chunked = True
        if head > self.max_head:
            await head_too_large(self.max_head)(scope, receive, send)
            return
        if length is None and not chunked:  # no body (the server delivers none)
            await self.app(scope, receive, send)
            return
        door = self.door(scope["path"])
        if length is not None and length > door.max_bytes:
            await door.answer(door.max_bytes)(scope, receive, send)
            return
        if length is not None and not chunked:  # the server delivers no more than announced
            await self.app(scope, receive, send)
            return
        await self._counted(scope, receive, send, door)

    async def _counted(self, scope: Scope, receive: Receive, send: Send, door: BodyLimit) -> None:
        """Run the app counting the body; past the limit its answer replaces the app's."""
        seen = 0
        exceeded = False
        started = False

        async def counting_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > door.max_bytes:
                    exceeded = True
                    raise BodyTooLarge()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:
                return  # the app's reaction to the aborted read (a 400, an error page)
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await door.answer(door.max_bytes)(scope, receive, send)
