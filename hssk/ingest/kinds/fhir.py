"""FHIR R4 input (Bundle JSON or NDJSON): validate each resource, link Patients through the
registry, and store the others under ids derived from their source (idempotent re-load).

References to another resource of the same source (``Type/id``) are rewritten to the derived
ids; a reference to ``Patient/<id>`` attaches the resource to the person that Patient was
linked to (in this or an earlier load).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from hssk.ingest.kinds.base import Piece, SourceError, SourceKind, broken
from hssk.ingest.model import Item, Problem, Unit
from hssk.records import InvalidResource, id_for_source_key, validate
from hssk.registry.types import SourceRecord

SOURCE = "fhir"
MAX_JSON = 256 * 1024 * 1024  # a Bundle read whole; larger sources come as NDJSON
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


@dataclass(slots=True)
class FhirEntry:
    """One resource as JSON bytes: an NDJSON line or an entry of a Bundle."""

    path: str
    n: int
    data: bytes

    def raw(self) -> str | None:
        return self.data.decode("utf-8", "replace")

    def __reduce__(self) -> tuple[type[FhirEntry], tuple[str, int, bytes]]:
        return (FhirEntry, (self.path, self.n, self.data))  # (as csvrows.CsvRow)


def read(path: str, fi: int, skip: int) -> Iterator[Piece]:
    n = 0
    try:
        if path.endswith(".ndjson"):
            with open(path, "rb") as fh:
                for line in fh:
                    if not line.strip():
                        continue
                    n += 1
                    if n > skip:
                        yield Piece(FhirEntry(path, n, line), (fi, n))
            return
        if os.path.getsize(path) > MAX_JSON:
            raise SourceError("json.size", "Tệp JSON quá lớn, hãy dùng NDJSON.",
                              "the JSON file is too large: send NDJSON instead.")  # fmt: skip
        doc = orjson.loads(Path(path).read_bytes())
        entries = [doc]
        if isinstance(doc, dict) and doc.get("resourceType") == "Bundle":
            entries = _bundle_entries(doc)
        for res in entries:
            n += 1
            if n > skip:
                yield Piece(FhirEntry(path, n, orjson.dumps(res)), (fi, n))
    except orjson.JSONDecodeError as exc:
        yield broken(SOURCE, path, n, SourceError("json.syntax", f"JSON sai cú pháp: {exc}",
                                                  f"malformed JSON: {exc}"), fi)  # fmt: skip
    except SourceError as exc:
        yield broken(SOURCE, path, n, exc, fi)


def _bundle_entries(bundle: dict[str, Any]) -> list[Any]:
    """The resources of a bundle, with ``urn:uuid:`` references turned into ``Type/id``."""
    entries = [e for e in bundle.get("entry") or [] if isinstance(e, dict)]
    local: dict[str, str] = {}
    for n, e in enumerate(entries, 1):
        res, full = e.get("resource"), e.get("fullUrl")
        if isinstance(res, dict) and isinstance(full, str) and res.get("resourceType"):
            rid = res.get("id") or full.rsplit(":", 1)[-1].rsplit("/", 1)[-1] or str(n)
            res["id"] = str(rid)[:64]
            local[full] = f"{res['resourceType']}/{res['id']}"

    def fix(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {
                k: local.get(v, v) if k == "reference" and isinstance(v, str) else fix(v)
                for k, v in obj.items()
            }
        if isinstance(obj, list):
            return [fix(v) for v in obj]
        return obj

    return [fix(e.get("resource")) if local else e.get("resource") for e in entries]


def map_payload(payload: FhirEntry, known: frozenset[str] | None) -> list[Unit]:
    return [map_resource(payload.path, payload.n, payload.data)]


def remap(kept: str, file: str, known: frozenset[str] | None) -> Unit:
    return map_resource(file, 0, kept.encode())


KIND = SourceKind(
    SOURCE, "Tài nguyên FHIR R4 (Bundle, NDJSON)", "FHIR R4 resources (Bundle, NDJSON)", read,
    map_payload, remap, (".json", ".ndjson"), pooled=True, batch_units=2000, key_element="id",
)  # fmt: skip
