"""Schemathesis over the whole HTTP surface: no 500 anywhere, and without a token nothing but
the public endpoints (health, metadata, docs, authentication, login pages) answers with data."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from hssk.app import create_app
from hssk.db import Database
from hssk.kernel.config import load_settings

# Paths that are public by design (no personal data behind them).
PUBLIC = re.compile(
    r"^/(healthz|readyz|health/|metrics|fhir/metadata|docs|openapi\.json|auth/|\.well-known/|api/token/"
    r"|static/|$|login|dang-nhap|guide|huong-dan|lang|ngon-ngu)"
)
_SETTINGS = settings(
    max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
    database=None,
)  # fmt: skip


@pytest.fixture(scope="module")
def api(db: Database) -> Iterator[schemathesis.BaseSchema]:
    app = create_app(load_settings(), db)
    yield schemathesis.openapi.from_asgi("/openapi.json", app)


def _operations(api: schemathesis.BaseSchema) -> list[Any]:
    ops = [r.ok() for r in api.get_all_operations()]
    assert len(ops) >= 30, "the platform's endpoints are in the OpenAPI schema"
    return ops


def test_anonymous_requests_get_no_data_and_no_500(api: schemathesis.BaseSchema) -> None:
    failures: list[str] = []
    for op in _operations(api):

        @given(case=op.as_strategy())
        @_SETTINGS
        def run(case: schemathesis.Case) -> None:
            resp = case.call()
            where = f"{case.method} {case.formatted_path}"
            if resp.status_code >= 500:
                failures.append(f"{where}: {resp.status_code} {resp.text[:200]}")
            elif resp.status_code < 300 and not PUBLIC.match(case.formatted_path):
                # a 2xx without credentials must not carry personal data: pages may answer
                # with a login form (HTML), never with JSON records
                ctype = resp.headers.get("content-type", "")
                if "json" in ctype and case.formatted_path.startswith(("/fhir", "/api/v1")):
                    failures.append(f"{where}: {resp.status_code} without a token")

        run()
    assert not failures, "\n".join(failures[:20])


def test_authenticated_requests_cause_no_500(api: schemathesis.BaseSchema) -> None:
    from hssk.access.actor import Actor
    from hssk.access.tokens import issue

    actor = Actor("platform", "system", scopes=frozenset({"system/*.read", "system/*.write"}))
    headers = {"Authorization": f"Bearer {issue(load_settings(), actor)}"}
    failures: list[str] = []
    for op in _operations(api):

        @given(case=op.as_strategy())
        @_SETTINGS
        def run(case: schemathesis.Case) -> None:
            resp = case.call(headers=headers)
            if resp.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path}: {resp.text[:200]}")

        run()
    assert not failures, "\n".join(failures[:20])
