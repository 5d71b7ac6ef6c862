"""Extract the indexed columns (patient reference, codes, date) from a FHIR resource."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from hssk.kernel.text import fold as text_fold
from hssk.records.params import code_paths, date_paths
from hssk.records.types import SUBJECT_PATHS

_DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def _get(body: dict[str, Any], path: str) -> Any:
    cur: Any = body
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def subject_reference(body: dict[str, Any]) -> str | None:
    """The ``Patient/...`` (or ``urn:uuid:...``) reference of a clinical resource."""
    for path in SUBJECT_PATHS.get(body.get("resourceType", ""), ()):
        value = _get(body, path)
        if isinstance(value, dict) and isinstance(value.get("reference"), str):
            return str(value["reference"])
        # Account.subject, Provenance.target...: the patient among the references
        if isinstance(value, list):
            for ref in value:
                text = ref.get("reference") if isinstance(ref, dict) else None
                if isinstance(text, str) and ("Patient/" in text or text.startswith("urn:uuid:")):
                    return text
    if body.get("resourceType") == "Appointment":  # the patient is one of the participants
        for part in body.get("participant") or ():
            ref = (part or {}).get("actor", {}).get("reference") if isinstance(part, dict) else None
            if isinstance(ref, str) and "Patient/" in ref:
                return ref
    return None


def _all(node: Any, path: str) -> list[Any]:
    """Every value at ``path``, through lists on the way (FHIRPath's flattening)."""
    level = node if isinstance(node, list) else [node]
    for part in path.split("."):
        nxt: list[Any] = []
        for item in level:
            value = item.get(part) if isinstance(item, dict) else None
            nxt += value if isinstance(value, list) else [value] if value is not None else []
        level = nxt
    return level


def codes(body: dict[str, Any]) -> list[str]:
    """Search tokens for the resource's code: 'system|code' and bare 'code' for each coding
    (a CodeableConcept, a Coding, or a bare code, as R4's ``code`` parameter reads them)."""
    out: list[str] = []
    for path in code_paths(body.get("resourceType", "")):
        for value in _all(body, path):
            if isinstance(value, str):
                out.append(value)
                continue
            if not isinstance(value, dict):
                continue
            for coding in value.get("coding") or [value]:
                if not isinstance(coding, dict) or not coding.get("code"):
                    continue
                code = str(coding["code"])
                out.append(f"{coding.get('system', '')}|{code}")
                out.append(code)
    return list(dict.fromkeys(out))


def parse_fhir_datetime(text: str) -> datetime | None:
    """Lower bound of a FHIR date/dateTime/instant as an aware datetime (UTC if no zone)."""
    if not isinstance(text, str):
        return None
    try:
        if len(text) >= 11:
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return dt if dt.tzinfo else dt.replace(tzinfo=UTC)
        m = _DATE_RE.match(text)
        if not m:
            return None
        y, mo, d = int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1)
        return datetime(y, mo, d, tzinfo=UTC)
    except ValueError:
        return None


def effective(body: dict[str, Any]) -> datetime | None:
    """The resource's clinically relevant date (``params.date_paths``; a Period's start)."""
    for path in date_paths(body.get("resourceType", "")):
        value = _get(body, path)
        if isinstance(value, dict):  # a Period
            value = value.get("start") or value.get("end")
        if isinstance(value, str):
            parsed = parse_fhir_datetime(value)
            if parsed:
                return parsed
        elif isinstance(value, date):
            return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return None


def fold(text: str) -> str:
    """Accent-free lower-case text for matching Vietnamese names (đ → d)."""
    return text_fold(text).lower()


def terms(body: dict[str, Any]) -> str | None:
    """Folded search words of a resource (Patient/Organization/Practitioner names)."""
    names = body.get("name")
    if isinstance(names, str):
        return " " + fold(names)
    if not isinstance(names, list):
        return None
    words: list[str] = []
    for n in names:
        if isinstance(n, dict):
            words.extend(str(g) for g in n.get("given") or [])
            if n.get("family"):
                words.append(str(n["family"]))
            if n.get("text"):
                words.append(str(n["text"]))
    return (" " + fold(" ".join(words))) if words else None
