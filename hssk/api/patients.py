"""Patient resources ↔ the master patient index: which person a Patient resource belongs to."""

from __future__ import annotations

from typing import Any

import psycopg

from hssk import identifiers
from hssk.registry import SourceRecord, link

_KIND_BY_SYSTEM = {
    identifiers.CCCD: "cccd",
    identifiers.HEALTH_ID: "cccd",
    identifiers.PASSPORT: "passport",
    identifiers.BHXH: "bhxh",
    identifiers.BHYT: "bhyt",
    identifiers.TEMP_CARD: "temp_card",
}
_SEX = {"male": "M", "female": "F", "other": "U", "unknown": "U"}


def source_record(body: dict[str, Any], record_id: str, source: str = "fhir") -> SourceRecord:
    """The demographics of a FHIR Patient, as the registry takes them."""
    rec = SourceRecord(source=source, record_id=record_id)
    names = body.get("name") or []
    if names and isinstance(names[0], dict):
        n = names[0]
        rec.full_name = n.get("text") or " ".join(
            [*([n["family"]] if n.get("family") else []), *(n.get("given") or [])]
        )
    rec.birth_date = body.get("birthDate")
    rec.sex = _SEX.get(str(body.get("gender")))
    for ident in body.get("identifier") or []:
        kind = _KIND_BY_SYSTEM.get(str(ident.get("system")))
        if kind and ident.get("value"):
            setattr(rec, kind, str(ident["value"]))
    for tel in body.get("telecom") or []:
        if tel.get("system") == "phone" and tel.get("value"):
            rec.phone = str(tel["value"])
            break
    addresses = body.get("address") or []
    if addresses and isinstance(addresses[0], dict):
        a = addresses[0]
        rec.address = a.get("text") or ", ".join(
            [*(a.get("line") or []), *[a[k] for k in ("district", "city", "state") if a.get(k)]]
        )
    return rec


def person_for_patient(conn: psycopg.Connection[Any], body: dict[str, Any], rid: str) -> int:
    """Link a Patient resource to its person (an existing one, or a new one)."""
    return link(conn, source_record(body, rid)).person_id
