"""Security headers on every response, and ``Cache-Control: no-store`` on personal data.

Pages are server-rendered with inline CSS and no script, so the content policy allows the
site's own resources and inline styles only; no page may be framed. Answers under the
personal-data prefixes are never stored by a browser or a shared cache (a handler's own
``Cache-Control`` is kept). HSTS is sent when the site is served over HTTPS.
"""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self'; script-src 'self'; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'"
)
# The API explorer (/docs) runs Swagger UI from the platform's own assets (/docs/assets),
# started by an inline script.
DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; frame-ancestors 'none'"
)
HSTS = "max-age=31536000; includeSubDomains"
_COMMON = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
)


class SecurityHeaders:
    """ASGI middleware adding the headers (those a handler set itself are left alone)."""

    def __init__(
        self, app: ASGIApp, *, private_prefixes: Sequence[str], https: bool | None
    ) -> None:
        self.app = app
        self.private = tuple(private_prefixes)
        self.https = https
        page = [*_COMMON, (b"content-security-policy", CSP.encode())]
        docs = [*_COMMON, (b"content-security-policy", DOCS_CSP.encode())]
        no_store = [(b"cache-control", b"no-store"), (b"pragma", b"no-cache")]
        hsts = [(b"strict-transport-security", HSTS.encode())]
        # (docs, private, https) → the headers to add: built once, not per request
        self.sets = {
            (d, p, h): (docs if d else page) + (no_store if p else []) + (hsts if h else [])
            for d in (False, True)
            for p in (False, True)
            for h in (False, True)
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        docs = path == "/docs" or path.startswith("/docs/")
        https = self.https if self.https is not None else scope["scheme"] == "https"
        extra = self.sets[docs, path.startswith(self.private), https]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # ASGI header names are lower-case; a header the handler set is kept
                headers = list(message.get("headers", ()))
                present = {name for name, _ in headers}
                headers.extend(h for h in extra if h[0] not in present)
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
