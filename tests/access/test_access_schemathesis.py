"""Schemathesis against the OpenAPI schema of the access endpoints: no 500, and nothing but
the public authentication endpoints answers 2xx without credentials."""

from __future__ import annotations

import re
from typing import Any

import pytest
import schemathesis
from access_world import World
from hypothesis import HealthCheck, given, settings

from hssk.app import create_app
from hssk.kernel.config import load_settings

ACCESS_PATHS = r"^/(auth/|\.well-known/|api/v1/(me|accounts|units|break-glass|guardianships))"
PUBLIC = re.compile(r"^/(auth/|\.well-known/)")


@pytest.fixture(scope="module")
def access_api(world: World) -> schemathesis.BaseSchema:
    app = create_app(load_settings(), world.db)
    return schemathesis.openapi.from_asgi("/openapi.json", app).include(path_regex=ACCESS_PATHS)


_SETTINGS = settings(
    max_examples=10,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    derandomize=True,
    database=None,
)


def _operations(api: schemathesis.BaseSchema) -> list[Any]:
    ops = [result.ok() for result in api.get_all_operations()]
    assert len(ops) >= 15, "the access endpoints are in the schema"
    return ops


def test_anonymous_gets_no_data_and_no_500(access_api: schemathesis.BaseSchema) -> None:
    for op in _operations(access_api):

        @given(case=op.as_strategy())
        @_SETTINGS
        def run(case: schemathesis.Case) -> None:
            resp = case.call()
            where = f"{case.method} {case.formatted_path}"
            assert resp.status_code < 500, f"{where}: {resp.text[:300]}"
            if not PUBLIC.match(case.path):
                assert resp.status_code in (400, 401, 404, 405, 422), (
                    f"{where} answered {resp.status_code} without a token"
                )

        run()


def test_citizen_causes_no_500(access_api: schemathesis.BaseSchema, world: World) -> None:
    headers = world.headers("citizen")
    for op in _operations(access_api):

        @given(case=op.as_strategy())
        @_SETTINGS
        def run(case: schemathesis.Case) -> None:
            resp = case.call(headers=headers)
            assert resp.status_code < 500, f"{case.method} {case.formatted_path}: {resp.text[:300]}"

        run()
