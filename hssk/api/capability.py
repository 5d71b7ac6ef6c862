"""The CapabilityStatement: generated from what the code supports, so it cannot drift."""

from __future__ import annotations

from typing import Any

from hssk import __version__
from hssk.records import search
from hssk.records.types import SUPPORTED_TYPES

_PARAM_TYPES = {
    "_id": "token", "identifier": "token", "code": "token", "status": "token", "gender": "token",
    "patient": "reference", "subject": "reference", "date": "date", "birthdate": "date",
    "name": "string", "family": "string", "given": "string", "_count": "number",
    "_offset": "number", "_lastUpdated": "date", "_tag": "token", "_security": "token",
    "_profile": "uri", "_total": "token",
}  # fmt: skip
_DOCS = {
    "patient": "Resources of a patient (Patient/id): all records of the same person are found.",
    "identifier": "system|value; CCCD / health id, BHYT, BHXH systems under https://fhir.hssk.vn/sid/",
    "date": "Prefixes eq, ne, gt, ge, lt, le, sa, eb; precision year, month, day or dateTime;"
    " without a zone, Vietnam time (UTC+7).",
    "_lastUpdated": "When the version was stored; prefixes and Vietnam time as for date.",
    "name": "Accent-insensitive word prefix (Nguyen matches Nguyễn); a full name also finds "
    "the golden records (Patient/mpi-N) of the master patient index.",
    "_id": "Resource id; Patient/mpi-N are the golden records of the master patient index.",
    "_offset": "Paging offset; follow the Bundle's next/previous links.",
}


def capability_statement(base_url: str) -> dict[str, Any]:
    """What this server implements, per resource type."""
    resources = []
    for rtype in SUPPORTED_TYPES:
        params = [
            {
                "name": p,
                "type": _PARAM_TYPES[p],
                **({"documentation": _DOCS[p]} if p in _DOCS else {}),
            }
            for p in search.allowed_params(rtype)
            if p in _PARAM_TYPES
        ]
        entry: dict[str, Any] = {
            "type": rtype,
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": True,
            "conditionalUpdate": True,
            "conditionalDelete": "multiple",
            "interaction": [
                {"code": c}
                for c in (
                    "read",
                    "vread",
                    "history-instance",
                    "search-type",
                    "create",
                    "update",
                    "delete",
                )
            ],
            "searchParam": params,
        }
        if rtype == "Patient":
            entry["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                },
                {
                    "name": "match",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-match",
                },
            ]
        resources.append(entry)
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-25",
        "publisher": "HSSK",
        "kind": "instance",
        "software": {"name": "HSSK", "version": __version__},
        "implementation": {"description": "HSSK FHIR R4 server", "url": base_url},
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "OAuth 2 bearer tokens (JWT) with SMART scopes; every access is audited.",
                },
                "resource": resources,
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
            }
        ],
    }
