"""FHIR R4 Patient view of a golden record."""

from __future__ import annotations

from typing import Any

from hssk.kernel import identifiers as ids
from hssk.registry.adminunits import commune_name
from hssk.registry.types import Person

COMMUNE_EXT = "https://fhir.hssk.vn/StructureDefinition/commune-code"
COMMUNE_OLD_EXT = "https://fhir.hssk.vn/StructureDefinition/commune-code-2024"
VERIFICATION_EXT = "https://fhir.hssk.vn/StructureDefinition/population-register-verification"
_GENDER = {"M": "male", "F": "female", "U": "unknown"}


def patient_resource(person: Person) -> dict[str, Any]:
    """Patient JSON: identifiers (systems of hssk.kernel.identifiers), name, birthDate at its precision,
    gender, telecom, address with commune codes (2025 and pre-2025), deceased, and ``link``
    (replaced-by for a merged record, replaces for the records merged into this one)."""
    res: dict[str, Any] = {"resourceType": "Patient", "id": str(person.id)}
    res["extension"] = [{"url": VERIFICATION_EXT, "valueCode": person.verification}]
    idents: list[dict[str, Any]] = []
    for kind, value in (
        ("cccd", person.cccd),
        ("cmnd", person.cmnd),
        ("passport", person.passport),
        ("eid", person.eid),
        ("bhxh", person.bhxh),
        ("bhyt", person.bhyt),
        ("the-tam", person.temp_card),
    ):
        if value:
            ident: dict[str, Any] = {"system": ids.system_for(kind), "value": value}
            if kind == "cccd":
                ident["use"] = "official"
            idents.append(ident)
    if idents:
        res["identifier"] = idents
    res["active"] = person.merged_into is None
    if person.full_name:
        words = person.full_name.split()
        name: dict[str, Any] = {"use": "official", "text": person.full_name}
        if len(words) > 1:
            name["family"] = words[0]
            name["given"] = words[1:]
        else:
            name["given"] = words
        res["name"] = [name]
    if person.phone:
        res["telecom"] = [{"system": "phone", "value": person.phone, "use": "mobile"}]
    res["gender"] = _GENDER.get(person.sex or "", "unknown")
    if person.birth_date_text:
        res["birthDate"] = person.birth_date_text
    if person.deceased_at is not None:
        res["deceasedDateTime"] = person.deceased_at.isoformat()
    if person.address or person.commune_code or person.commune_code_old:
        addr: dict[str, Any] = {"use": "home", "country": "VN"}
        if person.address:
            addr["text"] = person.address
        exts = []
        if person.commune_code:
            exts.append({"url": COMMUNE_EXT, "valueCode": person.commune_code})
            place = commune_name(person.commune_code)
            if place and "," in place:
                addr["city"], addr["state"] = (x.strip() for x in place.split(",", 1))
        if person.commune_code_old:
            exts.append({"url": COMMUNE_OLD_EXT, "valueCode": person.commune_code_old})
        if exts:
            addr["extension"] = exts
        res["address"] = [addr]
    links: list[dict[str, Any]] = []
    if person.merged_into is not None:
        links.append(
            {"other": {"reference": f"Patient/{person.merged_into}"}, "type": "replaced-by"}
        )
    for old in person.replaces:
        links.append({"other": {"reference": f"Patient/{old}"}, "type": "replaces"})
    if links:
        res["link"] = links
    return res
