"""FHIR R4 REST API under /fhir: read, vread, _history, search, create, update, delete,
transaction/batch Bundles, ``Patient/$everything``. Every access is authorized and audited.

A write is authorized for the stored resource's current owner and label and for the new ones,
and never moves a resource to another person; every version returned is decided on its own
person and label; a bundle's GET runs the same reads as REST."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson
import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response

from hssk.access import Actor, audit, authorize
from hssk.access.audit import record_decision
from hssk.access.policy import Decision, authorize_many, recorded_unit
from hssk.api import transaction
from hssk.api.bodies import RawBody
from hssk.api.capability import capability_statement
from hssk.api.deps import Conn, CurrentActor
from hssk.api.errors import FHIR_JSON, FhirError, Forbidden, fhir_response, request_lang
from hssk.api.messages import SYSTEM, Message, msg
from hssk.kernel import identifiers
from hssk.kernel.sensitivity import sensitivity_of
from hssk.records import Stored, extract, refs, search, store
from hssk.records.types import DIRECTORY_TYPES, SUPPORTED_TYPES
from hssk.records.validate import validate
from hssk.registry import (
    find,
    get_person,
    link,
    link_many,
    match,
    merged_ids,
    patient_resource,
    resolve,
    resolve_many,
)
from hssk.registry.search import MatchInputError, record_from_patient

router = APIRouter(prefix="/fhir", tags=["FHIR R4"])
# The master patient index's golden record of person N is served as Patient/mpi-N.
GOLDEN = "mpi-"


def golden_patient(person: Any) -> dict[str, Any]:
    """The golden record as a Patient whose id and links use the ``mpi-`` prefix."""
    body = patient_resource(person)
    body["id"] = f"{GOLDEN}{person.id}"
    for link_ in body.get("link") or []:
        ref = link_.get("other", {}).get("reference", "")
        if ref.startswith("Patient/"):
            link_["other"]["reference"] = f"Patient/{GOLDEN}{ref.split('/', 1)[1]}"
    return body


def person_of_patient(conn: psycopg.Connection[Any], rid: str) -> int | None:
    """The person behind Patient/rid: a golden record (mpi-N), a stored Patient, or a bare
    person id N (what resources written before ``mpi-N`` carry); merges followed."""
    golden = golden_person_id(rid)
    if golden is not None:
        return resolve(conn, golden)
    stored = store.person_of(conn, rid)
    if stored is not None:
        return resolve(conn, stored)
    bare = refs.bare_person_id(rid)
    return resolve(conn, bare) if bare is not None else None


def golden_person_id(rid: str) -> int | None:
    """N for 'mpi-N', else None."""
    tail = rid[len(GOLDEN) :] if rid.startswith(GOLDEN) else ""
    return int(tail) if tail.isascii() and tail.isdigit() and len(tail) < 19 else None


def _check_type(rtype: str) -> None:
    if rtype not in SUPPORTED_TYPES:
        raise FhirError(404, "not-supported", msg("type-not-supported", type=rtype))


def _person_id(conn: psycopg.Connection[Any], body: dict[str, Any], rid: str) -> int | None:
    if body.get("resourceType") == "Patient":
        return link(conn, record_from_patient(body, record_id=rid)).person_id
    ref = extract.subject_reference(body)
    if not ref:
        return None
    parts = ref.split("/")
    if len(parts) >= 2 and parts[-2] == "Patient":
        return _written_person(conn, parts[-1])
    return None


def _written_person(conn: psycopg.Connection[Any], rid: str) -> int | None:
    """The person a written resource names: Patient/mpi-N (merges followed) or a stored
    Patient. A bare number is not taken as a person on a write (reads accept it for old data)."""
    golden = golden_person_id(rid)
    person = golden if golden is not None else store.person_of(conn, rid)
    return resolve(conn, person) if person is not None else None


def decide(
    conn: psycopg.Connection[Any],
    actor: Actor,
    action: str,
    rtype: str,
    person_id: int | None,
    *,
    rid: str | None = None,
    sensitivity: str | None = None,
    purpose: str | None = None,
    detail: dict[str, Any] | None = None,
) -> Decision:
    """Authorize and audit one access."""
    directory_read = rtype in DIRECTORY_TYPES and action in ("read", "search", "history")
    if directory_read and actor.authenticated:
        return Decision(True, "directory", "directory data, no personal information")
    decision = authorize(
        conn, actor, action, rtype, person_id, sensitivity=sensitivity, purpose=purpose
    )
    if person_id is not None or not decision.allowed or action not in ("read", "search"):
        record_decision(
            conn, actor, action, decision, purpose=purpose, resource_type=rtype,
            resource_id=rid, person_id=person_id, detail=detail,
        )  # fmt: skip
    return decision


def require(decision: Decision) -> str:
    """The basis of an allowed decision; raise Forbidden for a refusal (``decide`` audited it:
    the audit trail keeps the denial although the request fails)."""
    if not decision.allowed:
        raise Forbidden(decision.reason)
    return decision.basis


def _meta_headers(stored: Stored) -> dict[str, str]:
    return {
        "ETag": f'W/"{stored.version}"',
        "Last-Modified": stored.last_updated.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "Location": f"/fhir/{stored.type}/{stored.id}/_history/{stored.version}",
    }


def _json_body(raw: bytes) -> dict[str, Any]:
    """The request's JSON object (read by the ``RawBody`` dependency: the handlers that take
    one are plain ``def``, their queries run in the thread pool, not on the event loop)."""
    if len(raw) > 50_000_000:
        raise FhirError(413, "too-costly", msg("body-too-large"))
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        if "depth limit" in str(exc):  # the parser's own limit (1024): too deep, not malformed
            raise FhirError(400, "structure", msg("body-too-deep", limit=MAX_DEPTH)) from None
        raise FhirError(400, "structure", msg("body-not-json", detail=str(exc))) from None
    if not isinstance(body, dict):
        raise FhirError(400, "structure", msg("body-not-object"))
    if _deeper_than(body, MAX_DEPTH):
        raise FhirError(400, "structure", msg("body-too-deep", limit=MAX_DEPTH))
    return body


# Deeper bodies are refused before validation, whose recursion they would exhaust (a
# transaction Bundle with contained resources and nested extensions stays under 30).
MAX_DEPTH = 64


def _deeper_than(node: Any, limit: int) -> bool:
    """Whether JSON ``node`` nests objects/arrays more than ``limit`` levels (no recursion)."""
    level: list[Any] = [node]
    for _ in range(limit):
        level = [
            child
            for parent in level
            for child in (parent.values() if isinstance(parent, dict) else parent)
            if isinstance(child, dict | list)
        ]
        if not level:
            return False
    return True


# --- capability --------------------------------------------------------------------------
@router.get("/metadata", summary="CapabilityStatement: what this server implements")
def metadata(request: Request) -> Response:
    return fhir_response(capability_statement(str(request.base_url).rstrip("/") + "/fhir"))


# --- writes ------------------------------------------------------------------------------
# (type, person, sensitivity label) → ids of the resources a write touches there
WriteGroups = dict[tuple[str, int | None, str | None], list[str]]


def _authorize_writes(
    conn: psycopg.Connection[Any], actor: Actor, action: str, groups: WriteGroups
) -> None:
    """Authorize and audit each (type, person, label) group once; raise on the first refusal."""
    for (rtype, person, sens), rids in groups.items():
        many = {"resources": rids[:1000], "count": len(rids)} if len(rids) > 1 else None
        require(decide(conn, actor, action, rtype, person, rid=rids[0] if not many else None,
              sensitivity=sens, detail=many))  # fmt: skip


def _write_groups(
    rtype: str, rid: str, person: int | None, sens: str | None, owner: store.Owner | None
) -> WriteGroups:
    """What writing ``rid`` needs the right to: the new person and label and, for a stored
    resource, its current owner and label (the audit then names the current owner)."""
    groups: WriteGroups = {(rtype, person, sens): [rid]}
    if owner is not None:
        groups.setdefault((rtype, owner.person_id, owner.sensitivity), [rid])
    return groups


def _refuse_move(
    conn: psycopg.Connection[Any],
    actor: Actor,
    key: tuple[str, str],
    person: int | None,
    owner: store.Owner | None,
) -> None:
    """Refuse a write that would give a stored resource to another person (or to none): 403
    when the caller may not write the current owner's data, else 409; audited under the owner."""
    if owner is None or owner.person_id is None or owner.person_id == person:
        return
    if person is not None and resolve(conn, owner.person_id) == person:
        return  # written under a person since merged into this one: it stays where it is
    rtype, rid = key
    may = authorize(conn, actor, "write", rtype, owner.person_id, sensitivity=owner.sensitivity)
    moved = msg("move-refused", ref=f"{rtype}/{rid}")
    reason = f"{moved.text('vi')} / {moved.text('en')}" if may.allowed else may.reason
    record_decision(conn, actor, "write", Decision(False, "deny", reason), resource_type=rtype,
                    resource_id=rid, person_id=owner.person_id)  # fmt: skip
    raise FhirError(409, "business-rule", moved) if may.allowed else Forbidden(reason)


def _writer(actor: Actor) -> transaction.Writer:
    def write(
        conn: psycopg.Connection[Any], body: dict[str, Any], rid: str | None, if_match: int | None
    ) -> tuple[Stored, bool]:
        rtype = body["resourceType"]
        rid = rid or body.get("id") or store.new_id()
        owner = store.owners(conn, [(rtype, rid)]).get((rtype, rid))
        person_id = _person_id(conn, body, rid)
        sens = sensitivity_of(body)
        _refuse_move(conn, actor, (rtype, rid), person_id, owner)
        _authorize_writes(conn, actor, "write", _write_groups(rtype, rid, person_id, sens, owner))
        return store.save(
            conn,
            body,
            rid=rid,
            if_match=if_match,
            person_id=person_id,
            sensitivity=sens,
            source_unit=recorded_unit(conn, actor),
        )

    return write


def _persons_of(conn: psycopg.Connection[Any], bodies: list[dict[str, Any]]) -> list[int | None]:
    """The person of each resource: Patients linked in one registry batch, the others through
    the Patient they reference (written in the same bundle or stored)."""
    patients = [b for b in bodies if b["resourceType"] == "Patient"]
    person_by_patient: dict[str, int] = {}
    if patients:
        links = link_many(conn, [record_from_patient(b, record_id=b["id"]) for b in patients])
        person_by_patient = {b["id"]: r.person_id for b, r in zip(patients, links, strict=True)}
    refs: dict[int, str] = {}
    for i, body in enumerate(bodies):
        ref = extract.subject_reference(body) if body["resourceType"] != "Patient" else None
        parts = ref.split("/") if ref else []
        if len(parts) >= 2 and parts[-2] == "Patient":
            refs[i] = parts[-1]
    unknown = sorted({r for r in refs.values() if r not in person_by_patient})
    if unknown:
        stored = store.persons_of_patients(conn, unknown)
        survivors = resolve_many(conn, set(stored.values()))
        for pid, person in stored.items():
            person_by_patient[pid] = survivors.get(person, person)
        for rid in unknown:  # golden records: Patient/mpi-N (merges followed)
            if rid not in person_by_patient and golden_person_id(rid) is not None:
                found = _written_person(conn, rid)
                if found is not None:
                    person_by_patient[rid] = found
    return [
        person_by_patient.get(body["id"] if body["resourceType"] == "Patient" else refs.get(i, ""))
        for i, body in enumerate(bodies)
    ]


def _bulk_writer(actor: Actor) -> transaction.BulkWriter:
    """Write many resources of one transaction in a single COPY + upsert.

    Each (type, person, label) is authorized once, for the new content and for the current
    owner of stored resources, and audited as one event listing the resources written."""

    def write_many(
        conn: psycopg.Connection[Any], bodies: list[dict[str, Any]]
    ) -> list[tuple[Stored, bool]]:
        keys = [(b["resourceType"], b["id"]) for b in bodies]
        # the locator asked once for the owners and the write (and the transaction's time)
        located = store.locate_many(conn, keys)
        owners = store.owners(conn, keys, located)
        persons = _persons_of(conn, bodies)
        unit = recorded_unit(conn, actor)
        items = [
            store.NewResource(
                body, person_id=person, sensitivity=sensitivity_of(body), source_unit=unit
            )
            for body, person in zip(bodies, persons, strict=True)
        ]
        groups: WriteGroups = {}
        for (rtype, rid), item in zip(keys, items, strict=True):
            owner = owners.get((rtype, rid))
            _refuse_move(conn, actor, (rtype, rid), item.person_id, owner)
            for group in _write_groups(rtype, rid, item.person_id, item.sensitivity, owner):
                groups.setdefault(group, []).append(rid)
        _authorize_writes(conn, actor, "write", groups)
        result = store.bulk_upsert(conn, items, versions=True, located=located)
        now = located.at  # the transaction's time, as stamped on the rows
        out = []
        for key, body, item in zip(keys, bodies, items, strict=True):
            stored = Stored(key[0], key[1], result.versions[key], now, body, item.person_id)
            owner = owners.get(key)
            out.append((stored, owner is None or owner.deleted))
        return out

    return write_many


def _deleter(actor: Actor) -> transaction.Deleter:
    def delete(conn: psycopg.Connection[Any], rtype: str, rid: str) -> bool:
        try:
            cur = store.read(conn, rtype, rid)
        except (store.NotFound, store.Gone):
            return False
        groups: WriteGroups = {(rtype, cur.person_id, cur.sensitivity): [rid]}
        _authorize_writes(conn, actor, "delete", groups)
        return store.delete(conn, rtype, rid)

    return delete


@router.post("", summary="Process a transaction or batch Bundle")
def post_bundle(request: Request, conn: Conn, actor: CurrentActor, raw: RawBody) -> Response:
    bundle = _json_body(raw)
    # The Bundle shell here; each entry's resource is validated once, by the processor.
    entries = bundle.get("entry")
    shell = {**bundle, "entry": [
        {k: v for k, v in e.items() if k != "resource"} if isinstance(e, dict) else e
        for e in entries
    ]} if isinstance(entries, list) else bundle  # fmt: skip
    validate(shell, "Bundle")

    def searcher(
        c: psycopg.Connection[Any], rtype: str, params: list[tuple[str, str]]
    ) -> list[Stored]:
        return _search(c, actor, rtype, [*params, ("_count", str(search.MAX_COUNT))])[2]

    def getter(c: psycopg.Connection[Any], url: str) -> dict[str, Any]:
        return _get(c, actor, url, _base(request))

    with conn.transaction():
        result = transaction.process(
            conn,
            bundle,
            write=_writer(actor),
            write_many=_bulk_writer(actor),
            delete=_deleter(actor),
            search=searcher,
            get=getter,
            lang=request_lang(request),
        )
    return fhir_response(result)


@router.post("/{rtype}", summary="Create a resource (conditional with If-None-Exist)")
def create(rtype: str, request: Request, conn: Conn, actor: CurrentActor, raw: RawBody) -> Response:
    _check_type(rtype)
    body = _json_body(raw)
    validate(body, rtype)
    body = {k: v for k, v in body.items() if k != "id"}  # the server assigns ids on create
    condition = request.headers.get("if-none-exist")
    if condition:
        _, _, found = _search(conn, actor, rtype, parse_qsl(condition.lstrip("?")))
        if len(found) > 1:
            raise FhirError(412, "multiple-matches",
                            msg("if-none-exist-multiple", condition=condition, count=len(found)))  # fmt: skip
        if found:
            return fhir_response(found[0].body, 200, headers=_meta_headers(found[0]))
    stored, _ = _writer(actor)(conn, body, None, None)
    return fhir_response(stored.body, 201, headers=_meta_headers(stored))


@router.put("/{rtype}/{rid}", summary="Update (or create with a client id) a resource")
def update(
    rtype: str, rid: str, request: Request, conn: Conn, actor: CurrentActor, raw: RawBody
) -> Response:
    _check_type(rtype)
    body = _json_body(raw)
    validate(body, rtype)
    if body.get("id") not in (None, rid):
        raise FhirError(
            400, "invalid", msg("id-mismatch", body_id=body.get("id"), url_id=rid), "id"
        )
    if_match = transaction.parse_etag(request.headers.get("if-match"))
    stored, created = _writer(actor)(conn, {**body, "id": rid}, rid, if_match)
    return fhir_response(stored.body, 201 if created else 200, headers=_meta_headers(stored))


@router.delete("/{rtype}/{rid}", summary="Delete a resource (its history stays)")
def remove(rtype: str, rid: str, conn: Conn, actor: CurrentActor) -> Response:
    _check_type(rtype)
    _deleter(actor)(conn, rtype, rid)
    return Response(status_code=204)


# --- reads -------------------------------------------------------------------------------
def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _get(conn: psycopg.Connection[Any], actor: Actor, url: str, base: str) -> dict[str, Any]:
    """A GET entry of a batch or transaction: the same read, checks and audit as over REST."""
    path, query_mark, query = url.partition("?")
    parts = [p for p in path.split("/") if p]
    rtype = parts[0] if parts else ""
    _check_type(rtype)
    if query_mark or len(parts) == 1:
        params = parse_qsl(query, keep_blank_values=True)
        return _search_bundle(conn, actor, rtype, params, f"{base}/{rtype}")
    if len(parts) == 2 and not parts[1].startswith("$"):
        return _read(conn, actor, rtype, parts[1])[0]
    if len(parts) in (3, 4) and parts[2] == "_history":
        if len(parts) == 3:
            return _history_bundle(conn, actor, rtype, parts[1])
        return _vread(conn, actor, rtype, parts[1], parts[3]).body
    raise FhirError(400, "not-supported", msg("entry-get-unsupported", url=url))


def _require_read(conn: psycopg.Connection[Any], actor: Actor, stored: Stored) -> None:
    """A version is read by the right to its own person and sensitivity label."""
    require(decide(conn, actor, "read", stored.type, stored.person_id, rid=stored.id,
                   sensitivity=stored.sensitivity))  # fmt: skip


def _read(
    conn: psycopg.Connection[Any], actor: Actor, rtype: str, rid: str
) -> tuple[dict[str, Any], dict[str, str] | None]:
    """The current version and its headers (a golden record ``mpi-N`` has none)."""
    golden = _golden_of_read(conn, rtype, rid)
    if golden is not None:
        person = get_person(conn, golden)
        if person is None:
            raise store.NotFound(f"Patient/{rid}")
        require(decide(conn, actor, "read", "Patient", person.id, rid=rid))
        return golden_patient(person), None
    stored = store.read(conn, rtype, rid)
    _require_read(conn, actor, stored)
    return stored.body, _meta_headers(stored)


def _golden_of_read(conn: psycopg.Connection[Any], rtype: str, rid: str) -> int | None:
    """The person whose golden record ``Patient/rid`` reads: ``mpi-N``, or a bare ``N`` that is
    no stored Patient's id (what resources ingested before ``mpi-N`` reference; merges
    followed, so the reference resolves to the surviving record)."""
    if rtype != "Patient":
        return None
    golden = golden_person_id(rid)
    bare = refs.bare_person_id(rid)
    if golden is None and bare is not None and not store.owners(conn, [("Patient", rid)]):
        return resolve(conn, bare)
    return golden


def _vread(conn: psycopg.Connection[Any], actor: Actor, rtype: str, rid: str, vid: str) -> Stored:
    """One version, decided on that version's own person and sensitivity label (a version
    that does not exist on that of the newest: no 404 tells others how many there are)."""
    if not vid.isascii() or not vid.isdigit() or len(vid) > 9:
        raise FhirError(400, "invalid", msg("version-not-number", version=vid))
    versions = store.history(conn, rtype, rid)
    stored = next((v for v in versions if v.version == int(vid)), None)
    _require_read(conn, actor, stored or versions[0])
    if stored is None:
        raise store.NotFound(f"{rtype}/{rid}/_history/{vid}")
    if stored.deleted:
        raise store.Gone(f"{rtype}/{rid}/_history/{vid}")
    return stored


def _readable_versions(
    conn: psycopg.Connection[Any], actor: Actor, rtype: str, rid: str
) -> list[Stored]:
    """The versions the actor may read, each decided on its own person and label (audited
    once per person and label); Forbidden when there is none."""
    versions = store.history(conn, rtype, rid)
    decisions: dict[tuple[int | None, str | None], Decision] = {}
    for v in versions:
        key = (v.person_id, v.sensitivity)
        if key not in decisions:
            decisions[key] = decide(conn, actor, "history", rtype, key[0], rid=rid,
                                    sensitivity=key[1])  # fmt: skip
    shown = [v for v in versions if decisions[(v.person_id, v.sensitivity)].allowed]
    if not shown:  # the reason given for the newest version
        raise Forbidden(next(iter(decisions.values())).reason)
    return shown


def _history_bundle(
    conn: psycopg.Connection[Any], actor: Actor, rtype: str, rid: str
) -> dict[str, Any]:
    entries = [
        {
            "fullUrl": f"{rtype}/{v.id}/_history/{v.version}",
            **({} if v.deleted else {"resource": v.body}),
            "request": {
                "method": "DELETE" if v.deleted else ("POST" if v.version == 1 else "PUT"),
                "url": f"{rtype}/{rid}",
            },
            "response": {
                "status": "200",
                "etag": f'W/"{v.version}"',
                "lastModified": v.last_updated.isoformat(),
            },
        }
        for v in _readable_versions(conn, actor, rtype, rid)
    ]
    return {"resourceType": "Bundle", "type": "history", "total": len(entries), "entry": entries}


@router.get("/{rtype}/{rid}", summary="Read the current version")
def read(rtype: str, rid: str, conn: Conn, actor: CurrentActor) -> Response:
    _check_type(rtype)
    body, headers = _read(conn, actor, rtype, rid)
    return fhir_response(body, headers=headers)


@router.get("/{rtype}/{rid}/_history", summary="All versions of a resource")
def history(rtype: str, rid: str, conn: Conn, actor: CurrentActor) -> Response:
    _check_type(rtype)
    return fhir_response(_history_bundle(conn, actor, rtype, rid))


@router.get("/{rtype}/{rid}/_history/{vid}", summary="Read one version")
def vread(rtype: str, rid: str, vid: str, conn: Conn, actor: CurrentActor) -> Response:
    _check_type(rtype)
    stored = _vread(conn, actor, rtype, rid, vid)
    return fhir_response(stored.body, headers=_meta_headers(stored))


# Beyond this many (person, label) pairs matching a search, the rows are decided a page at a
# time and the total is left out (it would count rows the caller may not see).
OWNER_GROUPS = 1000


def _visible(
    conn: psycopg.Connection[Any],
    actor: Actor,
    rtype: str,
    keys: set[tuple[int | None, str | None]],
) -> set[tuple[int | None, str | None]]:
    """The (person, sensitivity label) pairs whose rows the actor may see: one decision query
    per label."""
    out: set[tuple[int | None, str | None]] = set()
    for sens in {s for _, s in keys}:
        persons = [p for p, s in keys if s == sens and p is not None]
        decisions = authorize_many(conn, actor, "search", rtype, persons, sensitivity=sens)
        out |= {(p, sens) for p, d in decisions.items() if d.allowed}
        if (None, sens) in keys and authorize(conn, actor, "search", rtype, None,
                                              sensitivity=sens).allowed:  # fmt: skip
            out.add((None, sens))
    return out


def _search(
    conn: psycopg.Connection[Any],
    actor: Actor,
    rtype: str,
    params: list[tuple[str, str]],
    *,
    strict: bool = False,
) -> tuple[search.Query, int | None, list[Stored]]:
    """Run a search keeping only the rows the actor may see: (query, total, page).

    ``strict`` (``Prefer: handling=strict``) refuses unknown parameters with a 400 naming
    them; else they are left out and reported. A search naming a patient is refused (403)
    unless the actor may search that person. The rows the actor may not see (by person or
    sensitivity label) are left out in SQL, so that the total and paging count only what the
    caller may see."""
    try:
        q = search.parse(conn, rtype, params, person_of_patient, merged_ids)
    except search.SearchError as exc:
        reason = str(exc).removeprefix(f"search parameter '{exc.param}': ")
        raise FhirError(
            400, "invalid", msg("search-invalid", param=exc.param, detail=reason), exc.param
        ) from None
    if strict and q.ignored:
        raise FhirError(400, "not-supported", _unknown_params(rtype, q.ignored), q.ignored[0])
    if q.person is not None:
        require(decide(conn, actor, "search", rtype, q.person))
    elif rtype in DIRECTORY_TYPES:
        return q, *search.run(conn, q)
    groups = search.owner_groups(conn, q, OWNER_GROUPS)
    total: int | None
    if groups is None:  # too many persons to decide up front: decide the page's rows
        _, rows = search.run(conn, q, total=False)
        seen = _visible(conn, actor, rtype, {(s.person_id, s.sensitivity) for s in rows})
        allowed = [s for s in rows if (s.person_id, s.sensitivity) in seen]
        total, filtered = None, len(rows) - len(allowed)
    else:
        seen = _visible(conn, actor, rtype, set(groups))
        search.restrict(q, seen)
        _, allowed = search.run(conn, q, total=False)
        total = sum(n for key, n in groups.items() if key in seen)
        filtered = sum(groups.values()) - total
    if q.person is None:  # a search naming a person was audited by its guard
        persons = sorted({s.person_id for s in allowed if s.person_id is not None})
        audit(conn, actor, "search", outcome="allow", resource_type=rtype,
              detail={"params": params[:20], "persons": persons[:100], "filtered": filtered})  # fmt: skip
    return q, total, allowed


def _unknown_params(rtype: str, names: list[str]) -> Message:
    known = ", ".join(search.allowed_params(rtype))
    listed = ", ".join(f"'{n}'" for n in names)
    return msg("search-unknown-params", params=listed, type=rtype, known=known)


def strict_handling(request: Request) -> bool:
    """Whether the caller asked ``Prefer: handling=strict`` (FHIR; lenient is the default)."""
    prefs = request.headers.get("prefer", "").replace(",", ";").split(";")
    return any(p.strip().replace(" ", "") == "handling=strict" for p in prefs)


def _searchset(
    rows: list[Stored],
    total: int | None,
    base: str,
    params: list[tuple[str, str]],
    count: int,
    offset: int,
    ignored: list[str],
) -> dict[str, Any]:
    # the self link shows the parameters the search used (FHIR), not the ones left out
    keep = [(k, v) for k, v in params if k not in ("_count", "_offset", *ignored)]

    def link(relation: str, off: int) -> dict[str, str]:
        return {
            "relation": relation,
            "url": f"{base}?{urlencode([*keep, ('_count', str(count)), ('_offset', str(off))])}",
        }

    links = [link("self", offset)]
    if count and len(rows) == count and (total is None or offset + count < total):
        links.append(link("next", offset + count))
    if offset > 0:
        links.append(link("previous", max(0, offset - count)))
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if total is not None:
        bundle["total"] = total
    bundle["entry"] = [
        {"fullUrl": f"{base}/{s.id}", "resource": s.body, "search": {"mode": "match"}} for s in rows
    ]
    return bundle


def _search_bundle(
    conn: psycopg.Connection[Any],
    actor: Actor,
    rtype: str,
    params: list[tuple[str, str]],
    base: str,
    *,
    strict: bool = False,
) -> dict[str, Any]:
    """The searchset Bundle of a search (REST or a bundle's GET entry)."""
    q, total, rows = _search(conn, actor, rtype, params, strict=strict)
    golden = _golden_patients(conn, actor, params) if rtype == "Patient" else []
    bundle = _searchset(rows, total, base, params, q.count, q.offset, q.ignored)
    if golden and q.offset == 0:  # golden records of the master patient index come first
        bundle["entry"][:0] = [
            {"fullUrl": f"{base}/{g['id']}", "resource": g, "search": {"mode": "match"}}
            for g in golden
        ]
        if "total" in bundle:
            bundle["total"] += len(golden)
    if q.ignored:
        ignored = msg("search-ignored-params", params=", ".join(q.ignored))
        bundle["entry"].append({"resource": {"resourceType": "OperationOutcome", "issue": [{
            "severity": "warning", "code": "not-supported",
            "details": {"coding": [{"system": SYSTEM, "code": ignored.id}]},
            "diagnostics": f"{ignored.text('vi')} / {ignored.text('en')}",
            "expression": q.ignored}]},
            "search": {"mode": "outcome"}})  # fmt: skip
    return bundle


@router.get("/{rtype}", summary="Search (patient, identifier, date, code, _count, _offset …)")
def search_type(rtype: str, request: Request, conn: Conn, actor: CurrentActor) -> Response:
    _check_type(rtype)
    params = list(request.query_params.multi_items())
    base = f"{_base(request)}/{rtype}"
    strict = strict_handling(request)
    return fhir_response(_search_bundle(conn, actor, rtype, params, base, strict=strict))


_GOLDEN_KINDS = {identifiers.CCCD: "cccd", identifiers.BHYT: "bhyt", identifiers.BHXH: "bhxh"}


def _golden_patients(
    conn: psycopg.Connection[Any], actor: Actor, params: list[tuple[str, str]]
) -> list[dict[str, Any]]:
    """Golden records of the master patient index that a Patient search finds: an identifier
    (CCCD/health id, BHYT card, BHXH number) equal to a searched one, or a full name the MPI
    finds (accents and word order ignored) whose every word begins a word of the person's name,
    born on the birthdate when one is given. Ingested persons have no stored Patient: this is
    how they are found."""
    names = [v for k, v in params if k in ("name", "family", "given")]
    if any(k == "identifier" for k, _ in params):
        persons = _persons_by_identifier(conn, params)
    elif names:
        persons = _persons_by_name(conn, " ".join(names), dict(params).get("birthdate"))
    else:
        return []
    if not persons:
        return []
    decisions = authorize_many(conn, actor, "search", "Patient", persons)
    shown = [p for pid, p in persons.items() if decisions[pid].allowed]
    audit(conn, actor, "search", outcome="allow", resource_type="Patient",
          detail={"params": params[:20], "persons": [p.id for p in shown],
                  "filtered": len(persons) - len(shown)})  # fmt: skip
    return [golden_patient(p) for p in shown]


def _persons_by_name(conn: psycopg.Connection[Any], name: str, birth: str | None) -> dict[int, Any]:
    words = extract.fold(name).split()
    if not words:
        return {}
    prefix = birth[:2] if birth and birth[:2].isalpha() else "eq"
    day = (birth[2:] if birth and birth[:2].isalpha() else birth) or None
    if prefix != "eq":  # ranges of birth dates are for stored Patients; the MPI takes one date
        day = None
    out = {}
    for cand in find(conn, name=name, birth_date=day[:4] if day else None, limit=50):
        have = extract.fold(cand.person.full_name or "").split()
        born = cand.person.birth_date
        if not all(any(h.startswith(w) for h in have) for w in words):
            continue
        if day and (born is None or not born.isoformat().startswith(day)):
            continue
        out[cand.person.id] = cand.person
    return out


def _persons_by_identifier(
    conn: psycopg.Connection[Any], params: list[tuple[str, str]]
) -> dict[int, Any]:
    """Persons whose CCCD/health id, BHYT card or BHXH number equals a searched one."""
    wanted: list[tuple[str, str]] = []
    for name, value in params:
        if name != "identifier":
            continue
        for part in value.split(","):
            system, _, code = part.rpartition("|")
            system = identifiers.canonical_system(system)
            kinds = [_GOLDEN_KINDS[system]] if system in _GOLDEN_KINDS else (
                list(_GOLDEN_KINDS.values()) if not system else [])  # fmt: skip
            wanted += [(k, code) for k in kinds if code]
    persons = {}
    for kind, code in wanted:
        for cand in find(conn, **{kind: code}, limit=5):
            if getattr(cand.person, kind) == identifiers.clean(code):
                persons[cand.person.id] = cand.person
    return persons


def _referenced(conn: psycopg.Connection[Any], actor: Actor, record: list[Stored]) -> list[Stored]:
    """The resources of no person that ``record`` names (its Organizations, Practitioners,
    Medications …): ``$everything`` returns them too (FHIR R4 Patient-everything), those the
    actor may see, read by one search per type (a page of ``MAX_COUNT`` ids at a time)."""
    have = {(s.type, s.id) for s in record}
    wanted: dict[str, set[str]] = {}
    for s in record:
        for ref in transaction.references(s.body):
            rtype, _, rid = ref.partition("/")
            if rtype in DIRECTORY_TYPES and rid and "/" not in rid and (rtype, rid) not in have:
                wanted.setdefault(rtype, set()).add(rid)
    out: list[Stored] = []
    for rtype, ids in sorted(wanted.items()):
        names = sorted(ids)
        for at in range(0, len(names), search.MAX_COUNT):
            page = names[at : at + search.MAX_COUNT]
            out += _search(
                conn, actor, rtype, [("_id", ",".join(page)), ("_count", str(len(page)))]
            )[2]
    return out


@router.get("/Patient/{rid}/$everything", summary="The whole record of a patient")
def everything(rid: str, conn: Conn, actor: CurrentActor) -> Response:
    golden = _golden_of_read(conn, "Patient", rid)  # mpi-N, or a bare N as reads take it
    person_id = golden if golden is not None else store.read(conn, "Patient", rid).person_id
    if person_id is None:
        raise FhirError(404, "not-found", msg("patient-not-linked", id=rid))
    under = merged_ids(conn, person_id)  # the survivor, then the persons merged into it
    person_id = under[0]
    require(decide(conn, actor, "export", "Patient", person_id, rid=rid, purpose="everything"))
    resources = store.everything(conn, under)
    allowed = {
        (s.type, s.sensitivity): authorize(
            conn, actor, "read", s.type, person_id, sensitivity=s.sensitivity
        ).allowed
        for s in resources
        if s.sensitivity is not None
    }
    resources = [s for s in resources if s.sensitivity is None or allowed[(s.type, s.sensitivity)]]
    resources += _referenced(conn, actor, resources)
    resources.sort(key=lambda s: (s.type != "Patient", s.type))
    entries = [
        {"fullUrl": f"{s.type}/{s.id}", "resource": s.body, "search": {"mode": "match"}}
        for s in resources
    ]
    person = get_person(conn, person_id)
    if person is not None:  # the golden record first: ingested data has no Patient resource
        golden_body = golden_patient(person)
        entries.insert(0, {"fullUrl": f"Patient/{golden_body['id']}", "resource": golden_body,
                           "search": {"mode": "match"}})  # fmt: skip
    bundle = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(entries),
        "entry": entries,
    }
    return Response(orjson.dumps(bundle), media_type=FHIR_JSON)


MATCH_GRADE = "http://hl7.org/fhir/StructureDefinition/match-grade"


@router.post("/Patient/$match", summary="IHE PDQm: find the persons matching a Patient")
def patient_match(conn: Conn, actor: CurrentActor, raw: RawBody) -> Response:
    """Parameters(resource=Patient, count, onlyCertainMatches) → ranked golden records.

    Only persons the caller may see are returned (the rest are dropped, and counted in the
    audit event)."""
    params = _json_body(raw)
    if params.get("resourceType") != "Parameters":
        raise FhirError(400, "invalid", msg("match-needs-parameters"))
    by_name = {p.get("name"): p for p in params.get("parameter") or [] if isinstance(p, dict)}
    patient = (by_name.get("resource") or {}).get("resource")
    if not isinstance(patient, dict):
        raise FhirError(400, "required", msg("match-needs-patient"), "resource")
    count = (by_name.get("count") or {}).get("valueInteger", 10)
    only_certain = bool((by_name.get("onlyCertainMatches") or {}).get("valueBoolean", False))
    if not isinstance(count, int) or not 1 <= count <= 100:
        raise FhirError(400, "invalid", msg("match-count-range"), "count")
    try:
        found = match(conn, patient, count=count, only_certain=only_certain)
    except MatchInputError as exc:
        raise FhirError(400, "invalid", msg("match-input", detail=str(exc)), "resource") from None
    decisions = authorize_many(conn, actor, "search", "Patient", [p.id for p, _, _ in found])
    shown = [(p, score, grade) for p, score, grade in found if decisions[p.id].allowed]
    audit(conn, actor, "search", outcome="allow", resource_type="Patient", purpose="$match",
          detail={"persons": [p.id for p, _, _ in shown], "filtered": len(found) - len(shown)})  # fmt: skip
    entries = []
    for person, score, grade in shown:
        current = get_person(conn, person.id) or person
        entries.append({
            "fullUrl": f"Patient/{GOLDEN}{current.id}",
            "resource": golden_patient(current),
            "search": {"mode": "match", "score": round(score, 4),
                       "extension": [{"url": MATCH_GRADE, "valueCode": grade}]},
        })  # fmt: skip
    return fhir_response(
        {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
    )
