"""Cross-site request forgery: a page's state-changing request must come from the site itself.

Pages are authenticated by a cookie the browser adds by itself, so another site could make a
logged-in user's browser post a form here. A POST/PUT/PATCH/DELETE to a page path is refused
unless the browser says it comes from this origin: ``Sec-Fetch-Site: same-origin`` (or
``none``: typed by the user), else an ``Origin`` equal to this site's. A request carrying
neither header is not from a current browser (those send ``Origin`` on every POST) and is let
through, as Go's ``net/http.CrossOriginProtection`` does: it cannot ride on a victim's cookie
(the cookie is also ``SameSite=Strict``). The API does not accept the cookie (hssk.http.gate),
so only pages need this.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MESSAGE = (
    "Yêu cầu bị từ chối: biểu mẫu phải được gửi từ chính trang HSSK (không từ trang web "
    "khác). Hãy mở lại trang và gửi lại. / Refused: the form must be sent from the HSSK site "
    "itself, not from another site. Open the page again and resend."
)


def same_origin(headers: Headers, scheme: str, extra_origins: Sequence[str] = ()) -> bool:
    """Whether a browser request comes from this site (see the module's rule)."""
    site = headers.get("sec-fetch-site")
    if site is not None:
        return site in ("same-origin", "none")
    origin = headers.get("origin")
    if origin is None:
        return True
    host = headers.get("host", "")
    return origin in (f"{scheme}://{host}", *extra_origins)


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of ``url``."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class CrossSiteGuard:
    """ASGI middleware refusing cross-site state changes to page paths (``prefixes``)."""

    def __init__(
        self, app: ASGIApp, *, prefixes: Sequence[str], extra_origins: Sequence[str] = ()
    ) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)
        self.extra_origins = tuple(extra_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in UNSAFE
            and scope["path"].startswith(self.prefixes)
            and not same_origin(Headers(scope=scope), scope["scheme"], self.extra_origins)
        ):
            await PlainTextResponse(MESSAGE + "\n", 403)(scope, receive, send)
            return
        await self.app(scope, receive, send)
