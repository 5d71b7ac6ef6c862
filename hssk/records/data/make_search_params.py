"""Rebuild ``search_params_r4.json`` from the FHIR R4 (4.0.1) search-parameter definitions.

Usage: ``python -m hssk.records.data.make_search_params search-parameters.json`` (the Bundle
published with the R4 specification, CC0). For each resource type it keeps the common
parameters the store searches (``COMMON``) as element paths: the FHIRPath expressions of
the specification reduced to dotted paths (``(X.y as Period)`` → ``yPeriod``; a choice element
named without a type → each of its typed names the R4 model knows).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

COMMON = ("identifier", "patient", "subject", "date", "code", "status")
OUT = Path(__file__).with_name("search_params_r4.json")
_AS = re.compile(r"^\(?(\w+)\.([\w.]+?)(?:\.where\(.*\))?(?: as (\w+)\)|\.as\((\w+)\))?\)?$")


def _fields(rtype: str) -> set[str] | None:
    try:
        from fhir.resources.R4B import get_fhir_model_class

        fields = get_fhir_model_class(rtype).model_fields
    except (KeyError, ValueError, AttributeError, ImportError):
        return None  # an R4 type R4B replaced
    return {f.alias or name for name, f in fields.items() if not name.endswith("__ext")}


# typed names of a choice element a date parameter reads (Age, Range, String, Timing are not
# instants the store keeps)
DATE_CHOICES = ("Date", "DateTime", "Instant", "Period")


def _paths(rtype: str, code: str, expression: str) -> list[str]:
    out: list[str] = []
    for part in expression.split(" | "):
        m = _AS.match(part.strip())
        if not m or m.group(1) != rtype:
            continue
        path, cast = m.group(2), m.group(3) or m.group(4)
        head, _, tail = path.partition(".")
        if cast:
            head += cast[0].upper() + cast[1:]
        fields = _fields(rtype)
        if fields is not None and head not in fields:  # a choice element: its typed names
            head_choices = sorted(
                f for f in fields
                if f.startswith(head) and f[len(head):][:1].isupper()
                and (code != "date" or f[len(head):] in DATE_CHOICES)
            )  # fmt: skip
            out += [f"{h}.{tail}" if tail else h for h in head_choices]
            continue
        out.append(f"{head}.{tail}" if tail else head)
    return list(dict.fromkeys(out))


def build(bundle: dict[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    table: dict[str, dict[str, dict[str, Any]]] = {}
    for entry in bundle["entry"]:
        sp = entry["resource"]
        if sp["code"] not in COMMON:
            continue
        for rtype in sp["base"]:
            paths = _paths(rtype, sp["code"], sp.get("expression", ""))
            if paths:
                table.setdefault(rtype, {})[sp["code"]] = {"type": sp["type"], "paths": paths}
    return dict(sorted(table.items()))


if __name__ == "__main__":
    data = build(json.loads(Path(sys.argv[1]).read_text()))
    OUT.write_text(json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    print(f"{OUT}: {len(data)} resource types")
