"""Validation of FHIR R4 resources with ``fhir.resources`` (its R4B models; R5 is the default)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from hssk.records.types import R4_ONLY_TYPES

_ID = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
# fhir.resources looks the type of a resource inside another (contained, a Bundle's entries)
# up by this key, and lets the KeyError of an unknown one escape its validation
_INNER_TYPE = re.compile(r"^R4B?\.(\w+)Type$")


@dataclass(frozen=True)
class Issue:
    """One problem: FHIRPath-like location of the element, and why it is wrong: ``message``
    in English (logs, ingestion problems); ``msg_id`` and ``params`` name the API's message
    (its Vietnamese and English texts: ``hssk.api.messages``)."""

    element: str
    message: str
    code: str  # OperationOutcome issue type
    msg_id: str
    params: dict[str, str] = field(default_factory=dict)


# Errors of the FHIR models that mean "a required element is missing": pydantic's own, and
# fhir.resources' check of elements required unless an extension stands in for them.
_MISSING = frozenset({"missing", "model_field_validation.missing"})


class InvalidResource(Exception):
    """The resource does not conform to FHIR R4; ``issues`` say where and why."""

    def __init__(self, issues: list[Issue]):
        self.issues = issues
        super().__init__("; ".join(f"{i.element}: {i.message}" for i in issues))


@lru_cache(maxsize=256)
def _model(resource_type: str) -> Any:
    return get_fhir_model_class(resource_type)


def _location(resource_type: str, loc: tuple[Any, ...]) -> str:
    path = resource_type
    for part in loc:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path


def _refused(element: str, message: str, code: str, msg_id: str, **params: str) -> InvalidResource:
    """A resource with this one problem."""
    return InvalidResource([Issue(element, message, code, msg_id, params)])


def validate(body: Any, expected_type: str | None = None) -> dict[str, Any]:
    """Check ``body`` is a valid FHIR R4 resource (of ``expected_type``); return it unchanged."""
    if not isinstance(body, dict):
        raise _refused("(root)", "a FHIR resource must be a JSON object", "structure",
                       "resource-not-object")  # fmt: skip
    rtype = body.get("resourceType")
    if not isinstance(rtype, str) or not rtype:
        raise _refused("resourceType", "resourceType is missing", "required",
                       "resource-type-missing")  # fmt: skip
    if expected_type and rtype != expected_type:
        raise _refused("resourceType", f"expected {expected_type}, got {rtype}", "invalid",
                       "resource-type-expected", expected=expected_type, got=rtype)  # fmt: skip
    try:
        model = None if rtype in R4_ONLY_TYPES else _model(rtype)
    except (KeyError, ValueError, AttributeError):
        raise _refused("resourceType", f"'{rtype}' is not a FHIR R4 resource type",
                       "not-supported", "resource-type-unknown", type=rtype) from None  # fmt: skip
    rid = body.get("id")
    if rid is not None and (not isinstance(rid, str) or not _ID.match(rid)):
        raise _refused(f"{rtype}.id", "id must be 1–64 characters of A–Z, a–z, 0–9, '-' or '.'",
                       "invalid", "resource-id-format")  # fmt: skip
    if model is None:  # an R4 type the R4B models replaced: its shape is checked, not its content
        return body
    try:
        model.model_validate(body)
    except ValidationError as exc:
        issues = []
        for err in exc.errors()[:50]:
            where = _location(rtype, tuple(err.get("loc", ())))
            msg = str(err.get("msg", "invalid"))
            code = "required" if err.get("type") == "missing" else "invalid"
            if err.get("type") == "extra_forbidden":
                msg = "unknown element (not part of this resource in FHIR R4)"
                issues.append(Issue(where, msg, code, "element-unknown"))
            elif err.get("type") in _MISSING:
                issues.append(Issue(where, msg, code, "element-required"))
            else:  # the model's own words are the detail
                issues.append(Issue(where, msg, code, "element-invalid", {"detail": msg}))
        raise InvalidResource(issues) from None
    except (ValueError, TypeError) as exc:
        raise _refused(rtype, str(exc), "invalid", "element-invalid", detail=str(exc)) from None
    except KeyError as exc:
        inner = _INNER_TYPE.match(str(exc.args[0]) if exc.args else "")
        if inner is None:
            raise
        raise _refused(rtype, f"'{inner[1]}' (inside) is not a FHIR R4 resource type",
                       "not-supported", "resource-type-unknown", type=inner[1]) from None  # fmt: skip
    return body
