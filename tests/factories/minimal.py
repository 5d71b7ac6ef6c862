"""A minimal valid instance of any FHIR R4 resource type, built from the R4 models.

Every element the model requires is filled (and one typed name of each required choice
element), recursively, with the simplest valid value of its type; nothing else. Types that the
R4B models replaced (``records.types.R4_ONLY_TYPES``) have no model: their instance is the bare
resource, which is all R4 requires of them too.
"""

from __future__ import annotations

import types
import typing
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from hssk.records.types import R4_ONLY_TYPES

# the simplest valid value of each primitive type (by the name of its pydantic marker)
PRIMITIVES: dict[str, Any] = {
    "Code": "x", "String": "x", "Markdown": "x", "Id": "x1", "Uri": "http://example.org/x",
    "Url": "http://example.org/x", "Canonical": "http://example.org/x", "Oid": "urn:oid:1.2.3",
    "Uuid": "urn:uuid:6f1c5d2e-3b7a-4c1e-9a55-1d2f0c7b8e41", "DateTime": "2026-12-06T08:00:00+07:00",
    "Instant": "2026-12-06T08:00:00+07:00", "Date": "2026-12-06", "Time": "08:00:00",
    "Boolean": True, "Integer": 1, "UnsignedInt": 1, "PositiveInt": 1, "Decimal": 1,
    "Base64Binary": "aGk=", "Xhtml": '<div xmlns="http://www.w3.org/1999/xhtml">x</div>',
}  # fmt: skip
# complex types with a fixed smallest value (a recursive fill would leave them empty)
COMPLEX: dict[str, Any] = {
    "CodeableConcept": {"text": "x"}, "Coding": {"code": "x"}, "Reference": {"display": "x"},
    "Identifier": {"value": "x"}, "Period": {"start": "2026-12-06"}, "Quantity": {"value": 1},
    "Money": {"value": 1, "currency": "VND"}, "Attachment": {"title": "x"},
    "Narrative": {"status": "generated", "div": PRIMITIVES["Xhtml"]}, "Duration": {"value": 1},
    "Age": {"value": 1}, "Count": {"value": 1}, "Distance": {"value": 1},
    "SimpleQuantity": {"value": 1}, "Range": {"low": {"value": 1}}, "Annotation": {"text": "x"},
    "Ratio": {"numerator": {"value": 1}}, "Timing": {"event": ["2026-12-06"]},
    "ContactPoint": {"value": "x"}, "HumanName": {"text": "x"}, "Address": {"text": "x"},
    "Signature": {"type": [{"code": "x"}], "when": "2026-12-06T08:00:00+07:00",
                  "who": {"display": "x"}},
    "Expression": {"language": "text/fhirpath", "expression": "true"},
}  # fmt: skip
# choice types preferred for a required choice element, simplest first
CHOICE_ORDER = ("Boolean", "String", "CodeableConcept", "Reference", "DateTime", "Date", "Uri")


def _inner(annotation: Any) -> Any:
    """The element type of ``X | None`` and ``list[X] | None``."""
    while typing.get_origin(annotation) in (typing.Union, types.UnionType, list):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        annotation = args[0]
    return annotation


def _is_list(annotation: Any) -> bool:
    args = (annotation, *typing.get_args(annotation))
    return any(typing.get_origin(a) is list for a in args)


def _value(field: Any) -> Any:
    inner = _inner(field.annotation)
    extra = field.json_schema_extra or {}
    if typing.get_origin(inner) is typing.Annotated:
        marker = type(typing.get_args(inner)[1]).__name__
        enum = [v for v in extra.get("enum_values") or () if v != "+"]
        value = enum[0] if enum and marker == "Code" else PRIMITIVES[marker]
    elif inner in (bool, str, int):  # a primitive without a FHIR marker
        value = {bool: True, str: "x", int: 1}[inner]
    else:
        name = getattr(inner, "__name__", str(inner)).removesuffix("Type")
        value = COMPLEX.get(name) or _fill(get_fhir_model_class(name))
    return [value] if _is_list(field.annotation) else value


def _fill(model: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fields = model.model_fields
    for name, field in fields.items():
        extra = field.json_schema_extra or {}
        if name.endswith("__ext") or name in ("resource_type", "id"):
            continue
        if field.is_required() or extra.get("element_required"):
            out[field.alias or name] = _value(field)
    groups: dict[str, list[str]] = {}
    for name, field in fields.items():
        extra = field.json_schema_extra or {}
        if extra.get("one_of_many") and extra.get("one_of_many_required"):
            groups.setdefault(extra["one_of_many"], []).append(name)
    for prefix, names in groups.items():

        def rank(n: str, prefix: str = prefix) -> int:
            kind = n[len(prefix) :]
            return CHOICE_ORDER.index(kind) if kind in CHOICE_ORDER else len(CHOICE_ORDER)

        pick = min(names, key=rank)
        out[fields[pick].alias or pick] = _value(fields[pick])
    if not out:  # an element must hold something: its first primitive
        for name, field in fields.items():
            inner = _inner(field.annotation)
            if typing.get_origin(inner) is typing.Annotated and name not in ("id",):
                marker = type(typing.get_args(inner)[1]).__name__
                if marker in ("String", "Code", "Uri"):
                    out[field.alias or name] = _value(field)
                    break
    return out


def minimal_resource(rtype: str) -> dict[str, Any]:
    """The smallest valid ``rtype`` resource (a JSON dict)."""
    if rtype in R4_ONLY_TYPES:
        return {"resourceType": rtype}
    return {"resourceType": rtype, **_fill(get_fhir_model_class(rtype))}
