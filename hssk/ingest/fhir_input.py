"""FHIR R4 input (Bundle JSON or NDJSON): validate each resource, link Patients through the
registry, and store the others under ids derived from their source (idempotent re-load).

References to another resource of the same source (``Type/id``) are rewritten to the derived
ids; a reference to ``Patient/<id>`` attaches the resource to the person that Patient was
linked to (in this or an earlier load).
"""

from __future__ import annotations

from typing import Any

import orjson

from hssk.ingest.model import Item, Problem, Unit
from hssk.records import InvalidResource, id_for_source_key, validate
from hssk.registry.types import SourceRecord

SOURCE = "fhir"
_SUBJECT = ("subject", "patient", "beneficiary")


def _key(rtype: str, rid: str) -> str:
    return f"{SOURCE}|{rtype}/{rid}"


def _rewrite(obj: Any) -> Any:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if (
                k == "reference"
                and isinstance(v, str)
                and v.count("/") == 1
                and not v.startswith(("http", "urn:", "Patient/"))
            ):
                rtype, rid = v.split("/")
                out[k] = f"{rtype}/{id_for_source_key(rtype, _key(rtype, rid))}"
            else:
                out[k] = _rewrite(v)
        return out
    if isinstance(obj, list):
        return [_rewrite(v) for v in obj]
    return obj


def _patient_record(body: dict[str, Any], rid: str) -> SourceRecord:
    name = (body.get("name") or [{}])[0]
    full = name.get("text") or " ".join([name.get("family", ""), *name.get("given", [])]).strip()
    ids: dict[str, str] = {}
    for ident in body.get("identifier") or []:
        system = str(ident.get("system", ""))
        for kind in ("cccd", "bhyt", "bhxh", "passport", "the-tam"):
            if system.endswith("/" + kind):
                ids[kind] = str(ident.get("value", ""))
    phone = next(
        (t.get("value") for t in body.get("telecom") or [] if t.get("system") == "phone"), None
    )
    gender = {"male": "M", "female": "F"}.get(body.get("gender", ""), "U")
    return SourceRecord(
        source=SOURCE,
        record_id=rid,
        full_name=full or None,
        birth_date=body.get("birthDate"),
        sex=gender,
        cccd=ids.get("cccd"),
        passport=ids.get("passport"),
        bhxh=ids.get("bhxh"),
        bhyt=ids.get("bhyt"),
        temp_card=ids.get("the-tam"),
        phone=phone,
    )


def map_resource(path: str, n: int, data: bytes) -> Unit:
    """One resource (JSON bytes) → a Unit."""
    unit = Unit(
        key=f"{path.rsplit('/', 1)[-1]}#{n}",
        file=path,
        kind="fhir",
        raw=data.decode("utf-8", "replace")[:1_000_000],
    )
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        unit.problems.append(
            Problem("json.syntax", None, None, f"malformed JSON: {exc}", f"JSON sai cú pháp: {exc}")
        )
        return unit
    try:
        validate(body)
    except InvalidResource as exc:
        first = exc.issues[0]
        unit.problems.append(
            Problem(
                "fhir.invalid",
                first.element,
                None,
                str(exc)[:2000],
                f"Tài nguyên FHIR không hợp lệ: {str(exc)[:2000]}",
            )
        )
        return unit
    rtype = body["resourceType"]
    rid = str(body.get("id") or n)
    unit.key = f"{rtype}/{rid}"
    if rtype == "Patient":
        unit.person = _patient_record(body, rid)
        unit.registry_only = True
        return unit
    clean = _rewrite({k: v for k, v in body.items() if k not in ("id", "meta")})
    who = None
    for el in _SUBJECT:
        ref = body.get(el)
        if isinstance(ref, dict) and str(ref.get("reference", "")).startswith("Patient/"):
            unit.person_source = (SOURCE, ref["reference"].split("/", 1)[1])
            clean.pop(el, None)
            who = "main"
    unit.items.append(Item(clean, _key(rtype, rid), who=who))
    return unit
