"""Who is on the other end of the connection, and which proxies may say otherwise.

The connecting address is the client, unless it is one of the configured proxies
(``HSSK_TRUSTED_PROXIES``, none by default): only then is its ``X-Forwarded-For`` believed.
Throttling and the audit trail key on this address, so a client must not choose it.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection


def client_address(request: HTTPConnection) -> str | None:
    """The client's address (after the trusted proxies' headers, if any, were applied)."""
    return request.client.host if request.client else None
