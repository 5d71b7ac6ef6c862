"""How the HTTP server runs the application (``hssk serve``, the benchmarks' servers).

uvicorn by default believes ``X-Forwarded-For`` from the loopback address: anything on the
machine could then choose the client address that throttling and the audit trail record.
The application applies ``HSSK_TRUSTED_PROXIES`` itself (``hssk.app``), so the server's
own proxy handling is off. The request head is bounded by the server too (h11 refuses an
incomplete head past ``HSSK_MAX_HEADER``; the application checks every head whatever the
parser).

A worker process answers the supervisor's health check within ``timeout_worker_healthcheck``
seconds or is killed and started again; uvicorn's 5 s is shorter than a worker takes to import
the application on a busy server (seen: workers killed in a loop, none ever serving), so the
supervisor waits 30 s.
"""

from __future__ import annotations

from typing import Any

from hssk.kernel.config import Settings


def server_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of ``uvicorn.run``/``uvicorn.Config`` for this installation."""
    return {
        "proxy_headers": False,
        "server_header": False,
        "h11_max_incomplete_event_size": settings.max_header,
        "timeout_worker_healthcheck": 30,
    }
