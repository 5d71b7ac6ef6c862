"""The common FHIR R4 search parameters of each resource type, from the specification's
definitions as data (``data/search_params_r4.json``, rebuilt by ``data/make_search_params``).

Which of ``identifier``, ``patient``, ``subject``, ``date``, ``code`` and ``status`` a type has,
and the elements each reads. The store's own extraction (``types.SUBJECT_PATHS``,
``CODE_PATHS``, ``DATE_PATHS``) comes first where it is more specific (a Condition's date is its
onset, which R4 calls ``onset-date``); the definitions fill in every other type.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from hssk.records.types import CLINICAL_TYPES, CODE_PATHS, DATE_PATHS

_FILE = Path(__file__).parent / "data" / "search_params_r4.json"
# Parameters of every type (FHIR R4 "Parameters for all resources" and the result controls).
ALL_TYPES = ("_id", "_lastUpdated", "_tag", "_profile", "_security", "_count", "_offset",
             "_total", "_format", "_summary")  # fmt: skip


@cache
def _spec() -> dict[str, dict[str, dict[str, Any]]]:
    data: dict[str, dict[str, dict[str, Any]]] = json.loads(_FILE.read_text())
    return data


def paths(rtype: str, param: str) -> tuple[str, ...]:
    """The elements (dotted paths) parameter ``param`` reads in ``rtype`` per R4, or ()."""
    entry = _spec().get(rtype, {}).get(param)
    return tuple(entry["paths"]) if entry else ()


def code_paths(rtype: str) -> tuple[str, ...]:
    """Elements feeding the ``codes`` column: the store's own, else R4's ``code``."""
    return CODE_PATHS.get(rtype) or paths(rtype, "code")


def date_paths(rtype: str) -> tuple[str, ...]:
    """Elements feeding the ``effective`` column: the store's own, else R4's ``date``."""
    return DATE_PATHS.get(rtype) or paths(rtype, "date")


@cache
def common(rtype: str) -> frozenset[str]:
    """The common parameters ``rtype`` has: R4's, and those the store's extraction adds."""
    have = set(_spec().get(rtype, {}))
    if rtype in CLINICAL_TYPES:  # the store links them to their person: either name works
        have |= {"patient", "subject"}
    if rtype in DATE_PATHS and rtype != "Patient":
        have.add("date")
    if rtype in CODE_PATHS:
        have.add("code")
    return frozenset(have)
