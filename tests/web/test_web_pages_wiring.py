"""The pages are split by audience and wired by name: every URL is still served, by its
audience's module; no page handler blocks the event loop; a missing page module stops the app."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute

from hssk.app import create_app

ROOT = Path(__file__).resolve().parents[2]

AUDIENCES = {
    "hssk.web.pages.auth": {
        ("GET", "/book/login"), ("POST", "/book/login"), ("GET", "/book/logout"),
        ("GET", "/staff/login"), ("POST", "/staff/login"), ("GET", "/static/resend.js"),
    },
    "hssk.web.pages.book": {
        ("GET", "/book"), ("GET", "/book/p/{person_id}"),
        ("GET", "/book/p/{person_id}/visit/{visit_id}"),
        ("GET", "/book/p/{person_id}/visit/{visit_id}.pdf"),
        ("GET", "/book/p/{person_id}/book.pdf"), ("GET", "/book/consents"),
        ("POST", "/book/consents"), ("POST", "/book/consents/{consent_id}/revoke"),
        ("GET", "/book/self"), ("POST", "/book/self/{kind}"),
        ("POST", "/book/self/entry/{entry_id}/delete"),
    },
    "hssk.web.pages.clinic": {
        ("GET", "/clinic"), ("GET", "/clinic/p/{person_id}"),
        ("POST", "/clinic/p/{person_id}/basis"), ("GET", "/clinic/p/{person_id}/referral"),
        ("GET", "/clinic/p/{person_id}/appointment"), ("POST", "/clinic/p/{person_id}/{kind}"),
    },
    "hssk.web.pages.station": {
        ("GET", "/station"), ("GET", "/station/{form_name}"), ("POST", "/station/{form_name}"),
    },
    "hssk.web.access_log": {("GET", "/book/access-log")},
    "hssk.api.book": {
        ("GET", "/api/v1/book/{person_id}"), ("GET", "/api/v1/me/book"),
        ("GET", "/api/v1/book/{person_id}/fields"), ("GET", "/api/v1/book-sections"),
    },
}  # fmt: skip
# These only present the credentials and hand the whole request to one worker thread
# (hssk.web.reading.in_thread): async on purpose, they never wait on the database themselves.
ONE_THREAD_HOP = {"my_book", "person_book", "api_book", "api_my_book"}


def _routes(routes: Any) -> Iterator[APIRoute]:
    for r in routes:
        if hasattr(r, "original_router"):  # an included router
            yield from _routes(r.original_router.routes)
        elif isinstance(r, APIRoute):
            yield r


def _served() -> dict[tuple[str, str], Any]:
    app = create_app()
    return {(m, r.path): r.endpoint for r in _routes(app.routes) for m in r.methods}


def test_every_page_url_is_served_by_its_audience_module() -> None:
    served = _served()
    for module, doors in AUDIENCES.items():
        for door in sorted(doors):
            assert door in served, f"{door} is not served"
            assert served[door].__module__ == module, (door, served[door].__module__)


def test_no_page_or_book_api_handler_blocks_the_event_loop() -> None:
    """Database calls (and the argon2 check of a staff login) run in a worker thread."""
    served = _served()
    blocking = [
        (door, fn.__name__)
        for door, fn in served.items()
        if fn.__module__ in AUDIENCES
        and inspect.iscoroutinefunction(fn)
        and fn.__name__ not in ONE_THREAD_HOP
    ]
    assert blocking == []


def test_a_missing_page_module_stops_the_app() -> None:
    code = (
        "import sys; sys.modules['hssk.web.pages.station'] = None\n"
        "from hssk.app import create_app; create_app()"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=env, cwd=ROOT, timeout=120, check=False)  # fmt: skip
    assert r.returncode != 0 and "hssk.web.pages.station" in r.stderr
