"""A handler that takes a database connection is a plain ``def``: FastAPI runs it in its thread
pool. An ``async def`` one would run every query (and a password check) on the event loop,
stalling every other request meanwhile."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from hssk.api import fhir, health
from hssk.api.deps import get_conn, get_database
from hssk.app import ROUTERS

# Page handlers of hssk.web that still read their form on the event loop; the split of the
# pages by audience makes them plain def (this set may only shrink).
STILL_ASYNC = {"hssk.web.routes.login_submit", "hssk.web.routes.staff_login_submit"}
BLOCKING: set[Callable[..., Any]] = {get_conn, get_database}


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any] | None]:
    for dep in dependant.dependencies:
        yield dep.call
        yield from _calls(dep)


def test_handlers_with_a_connection_are_plain_def() -> None:
    async_with_db = set()
    checked = 0
    routes = [r for router in (*ROUTERS, fhir.router, health.router) for r in router.routes]
    for route in routes:
        if not isinstance(route, APIRoute) or not BLOCKING & set(_calls(route.dependant)):
            continue
        checked += 1
        if inspect.iscoroutinefunction(route.endpoint):
            async_with_db.add(f"{route.endpoint.__module__}.{route.endpoint.__name__}")
    assert checked > 50  # the walk found the handlers
    assert async_with_db <= STILL_ASYNC, sorted(async_with_db - STILL_ASYNC)
