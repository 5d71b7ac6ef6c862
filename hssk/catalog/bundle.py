"""The person's record as one FHIR Bundle: what catalog rules are evaluated over.

The golden record of the registry (``person``) is always rendered as a Patient, so identifiers
kept only in the registry count; Patient resources stored from sources are added beside it.
Bundles are built for many persons in two queries (batch jobs, the outbox worker).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import psycopg

from hssk.kernel import identifiers as ids
from hssk.registry import merged_ids_many

SID = "https://fhir.hssk.vn/StructureDefinition"
_PERSON_COLS = (
    "id, full_name, birth_date, birth_precision, sex, cccd, bhxh, bhyt, passport, temp_card, "
    "health_id, phone, address, province_code, commune_code, household_id, mother_id, deceased_at"
)
_GENDER = {"M": "male", "F": "female", "U": "unknown"}


def _birth(d: date | None, precision: str | None) -> str | None:
    if d is None:
        return None
    iso = d.isoformat()
    return {"Y": iso[:4], "M": iso[:7]}.get(precision or "D", iso)


def patient_from_row(row: Sequence[Any], household_code: str | None = None) -> dict[str, Any]:
    """A FHIR Patient for one ``person`` row (columns as ``_PERSON_COLS``)."""
    (pid, name, birth, precision, sex, cccd, bhxh, bhyt, passport, temp_card, health_id, phone,
     address, province, commune, household_id, mother_id, deceased) = row  # fmt: skip
    pat: dict[str, Any] = {"resourceType": "Patient", "id": f"person-{pid}"}
    idents = [
        (ids.CCCD, cccd),
        (ids.BHXH, bhxh),
        (ids.BHYT, bhyt),
        (ids.PASSPORT, passport),
        (ids.TEMP_CARD, temp_card),
    ]
    if health_id and health_id != cccd:
        idents.append((ids.HEALTH_ID, health_id))
    pat["identifier"] = [{"system": s, "value": v} for s, v in idents if v]
    if name:
        pat["name"] = [{"text": name}]
    if sex in _GENDER:
        pat["gender"] = _GENDER[sex]
    if birth := _birth(birth, precision):
        pat["birthDate"] = birth
    if phone:
        pat["telecom"] = [{"system": "phone", "value": phone}]
    addr: dict[str, Any] = {}
    if address:
        addr["text"] = address
    if province:
        addr["state"] = province
    if commune:
        addr["extension"] = [{"url": f"{SID}/commune-code", "valueString": commune}]
    if addr:
        pat["address"] = [addr]
    if household_id:
        pat["extension"] = [
            {"url": f"{SID}/household", "valueString": household_code or str(household_id)}
        ]
    if mother_id:
        pat["link"] = [{"other": {"reference": f"Patient/person-{mother_id}"}, "type": "seealso"}]
    if isinstance(deceased, datetime):
        pat["deceasedDateTime"] = deceased.isoformat()
    return pat


def bundles(
    conn: psycopg.Connection[Any],
    person_ids: Sequence[int],
    *,
    allowed_sensitivity: Sequence[str] | None = (),
) -> dict[int, dict[str, Any]]:
    """Bundles of the current record of each person (absent persons are skipped).

    Resources with a sensitivity label are left out unless their label is in
    ``allowed_sensitivity``; pass ``None`` to include everything (internal scoring only).
    """
    if not person_ids:
        return {}
    id_list = list(person_ids)
    out: dict[int, dict[str, Any]] = {}
    rows = conn.execute(
        f"""SELECT {", ".join("p." + c.strip() for c in _PERSON_COLS.split(","))}, h.code
            FROM person p LEFT JOIN household h ON h.id = p.household_id
            WHERE p.id = ANY(%s)""",
        (id_list,),
    ).fetchall()
    for row in rows:
        pat = patient_from_row(row[:-1], row[-1])
        out[row[0]] = {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": pat}]}
    include_all = allowed_sensitivity is None
    allowed = list(allowed_sensitivity or ())
    # A survivor's record is stored under its id and the ids merged into it (merges never
    # move rows); a person merged away keeps only its own.
    readers: dict[int, list[int]] = {}
    for pid, under in merged_ids_many(conn, out).items():
        for stored_under in under if under[0] == pid else [pid]:
            readers.setdefault(stored_under, []).append(pid)
    res = conn.execute(
        """SELECT person_id, body FROM resource
           WHERE person_id = ANY(%s) AND NOT deleted
             AND (%s OR sensitivity IS NULL OR sensitivity = ANY(%s))
           ORDER BY effective NULLS FIRST, type, id, person_id""",
        (sorted(readers), include_all, allowed),
    )
    for person_id, body in res:
        for pid in readers[person_id]:
            out[pid]["entry"].append({"resource": body})
    return out
