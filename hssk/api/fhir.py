"""FHIR R4 REST API under /fhir: read, vread, _history, search, create, update, delete,
transaction/batch Bundles, ``Patient/$everything``. Every access is authorized and audited."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import orjson
import psycopg
from fastapi import APIRouter, Request
from fastapi.responses import Response

from hssk.access import Actor, audit, authorize
from hssk.access.audit import record_decision
from hssk.access.policy import authorize_many
from hssk.api import transaction
from hssk.api.capability import capability_statement
from hssk.api.deps import Conn, CurrentActor
from hssk.api.errors import FHIR_JSON, FhirError, Forbidden, fhir_response
from hssk.kernel import identifiers
from hssk.kernel.sensitivity import sensitivity_of
from hssk.records import Stored, extract, refs, search, store
from hssk.records.types import DIRECTORY_TYPES, SUPPORTED_TYPES
from hssk.records.validate import validate
from hssk.registry import find, get_person, link, link_many, match, patient_resource, resolve
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
        return stored
    bare = refs.bare_person_id(rid)
    return resolve(conn, bare) if bare is not None else None


def golden_person_id(rid: str) -> int | None:
    """N for 'mpi-N', else None."""
    tail = rid[len(GOLDEN) :] if rid.startswith(GOLDEN) else ""
    return int(tail) if tail.isdigit() and len(tail) < 19 else None


def _check_type(rtype: str) -> None:
    if rtype not in SUPPORTED_TYPES:
        raise FhirError(
            404, "not-supported", f"resource type '{rtype}' is not supported; see /fhir/metadata"
        )


def _person_id(conn: psycopg.Connection[Any], body: dict[str, Any], rid: str) -> int | None:
    if body.get("resourceType") == "Patient":
        return link(conn, record_from_patient(body, record_id=rid)).person_id
    ref = extract.subject_reference(body)
    if not ref:
        return None
    parts = ref.split("/")
    if len(parts) >= 2 and parts[-2] == "Patient":
        return store.person_of(conn, parts[-1])
    return None


def guard(
    conn: psycopg.Connection[Any],
    actor: Actor,
    action: str,
    rtype: str,
    person_id: int | None,
    *,
    rid: str | None = None,
    sensitivity: str | None = None,
    purpose: str | None = None,
) -> str:
    """Authorize and audit one access; raise Forbidden (after auditing the denial)."""
    directory_read = rtype in DIRECTORY_TYPES and action in ("read", "search", "history")
    if directory_read and actor.authenticated:
        return "directory"
    decision = authorize(
        conn, actor, action, rtype, person_id, sensitivity=sensitivity, purpose=purpose
    )
    if person_id is not None or not decision.allowed or action not in ("read", "search"):
        record_decision(
            conn, actor, action, decision, purpose=purpose, resource_type=rtype,
            resource_id=rid, person_id=person_id,
        )  # fmt: skip
    if not decision.allowed:  # the audit trail keeps the denial although the request fails
        raise Forbidden(decision.reason)
    return decision.basis


def _meta_headers(stored: Stored) -> dict[str, str]:
    return {
        "ETag": f'W/"{stored.version}"',
        "Last-Modified": stored.last_updated.strftime("%a, %d %b %Y %H:%M:%S GMT"),
        "Location": f"/fhir/{stored.type}/{stored.id}/_history/{stored.version}",
    }


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > 50_000_000:
        raise FhirError(413, "too-costly", "request body over 50 MB; split the bundle")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FhirError(400, "structure", f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise FhirError(400, "structure", "the body must be a JSON object (a FHIR resource)")
    return body


# --- capability --------------------------------------------------------------------------
@router.get("/metadata", summary="CapabilityStatement: what this server implements")
def metadata(request: Request) -> Response:
    return fhir_response(capability_statement(str(request.base_url).rstrip("/") + "/fhir"))


# --- writes ------------------------------------------------------------------------------
def _writer(actor: Actor) -> transaction.Writer:
    def write(
        conn: psycopg.Connection[Any], body: dict[str, Any], rid: str | None, if_match: int | None
    ) -> tuple[Stored, bool]:
        rid = rid or body.get("id") or store.new_id()
        person_id = _person_id(conn, body, rid)
        sens = sensitivity_of(body)
        guard(conn, actor, "write", body["resourceType"], person_id, rid=rid, sensitivity=sens)
        return store.save(
            conn, body, rid=rid, if_match=if_match, person_id=person_id, sensitivity=sens
        )

    return write


def _bulk_writer(actor: Actor) -> transaction.BulkWriter:
    """Write many resources of one transaction in a single COPY + upsert.

    Patients are linked to persons in one registry batch; each (person, type) is authorized
    once and audited as one event listing the resources written."""

    def write_many(
        conn: psycopg.Connection[Any], bodies: list[dict[str, Any]]
    ) -> list[tuple[Stored, bool]]:
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
            for pid, person in conn.execute(
                "SELECT id, person_id FROM resource WHERE type = 'Patient' AND id = ANY(%s)",
                (unknown,),
            ):
                person_by_patient[pid] = person
        items: list[store.NewResource] = []
        groups: dict[tuple[str, int | None, str | None], list[str]] = {}
        for i, body in enumerate(bodies):
            person = (
                person_by_patient.get(body["id"])
                if body["resourceType"] == "Patient"
                else person_by_patient.get(refs.get(i, ""))
            )
            sens = sensitivity_of(body)
            groups.setdefault((body["resourceType"], person, sens), []).append(body["id"])
            items.append(store.NewResource(body, person_id=person, sensitivity=sens))
        for (rtype, person, sens), rids in groups.items():
            decision = authorize(conn, actor, "write", rtype, person, sensitivity=sens)
            record_decision(conn, actor, "write", decision, resource_type=rtype, person_id=person,
                            resource_id=rids[0] if len(rids) == 1 else None,
                            detail={"resources": rids[:1000], "count": len(rids)})  # fmt: skip
            if not decision.allowed:
                raise Forbidden(decision.reason)
        existed = {
            (t, i)
            for t, i in conn.execute(
                "SELECT type, id FROM resource WHERE (type, id) IN "
                "(SELECT * FROM unnest(%s::text[], %s::text[])) AND NOT deleted",
                ([b["resourceType"] for b in bodies], [b["id"] for b in bodies]),
            )
        }
        result = store.bulk_upsert(conn, items, versions=True)
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        out = []
        for body, item in zip(bodies, items, strict=True):
            key = (body["resourceType"], body["id"])
            stored = Stored(key[0], key[1], result.versions[key], now, body, item.person_id)
            out.append((stored, key not in existed))
        return out

    return write_many


def _deleter(actor: Actor) -> transaction.Deleter:
    def delete(conn: psycopg.Connection[Any], rtype: str, rid: str) -> bool:
        try:
            cur = store.read(conn, rtype, rid)
        except (store.NotFound, store.Gone):
            return False
        guard(conn, actor, "delete", rtype, cur.person_id, rid=rid)
        return store.delete(conn, rtype, rid)

    return delete


@router.post("", summary="Process a transaction or batch Bundle")
async def post_bundle(request: Request, conn: Conn, actor: CurrentActor) -> Response:
    bundle = await _json_body(request)
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
        return _search(c, actor, rtype, [*params, ("_count", str(search.MAX_COUNT))])[1]

    def getter(c: psycopg.Connection[Any], url: str) -> dict[str, Any]:
        rtype, rid, params = transaction._split(url)
        _check_type(rtype)
        if params is not None or not rid:
            total, rows = _search(c, actor, rtype, params or [])
            return _searchset(rows, total, f"/fhir/{rtype}", params or [], len(rows), 0)
        stored = store.read(c, rtype, rid)
        guard(c, actor, "read", rtype, stored.person_id, rid=rid)
        return stored.body

    with conn.transaction():
        result = transaction.process(
            conn,
            bundle,
            write=_writer(actor),
            write_many=_bulk_writer(actor),
            delete=_deleter(actor),
            search=searcher,
            get=getter,
        )
    return fhir_response(result)


@router.post("/{rtype}", summary="Create a resource (conditional with If-None-Exist)")
async def create(rtype: str, request: Request, conn: Conn, actor: CurrentActor) -> Response:
    _check_type(rtype)
    body = await _json_body(request)
    validate(body, rtype)
    body = {k: v for k, v in body.items() if k != "id"}  # the server assigns ids on create
    condition = request.headers.get("if-none-exist")
    if condition:
        from urllib.parse import parse_qsl

        _, found = _search(conn, actor, rtype, parse_qsl(condition.lstrip("?")))
        if len(found) > 1:
            raise FhirError(
                412, "multiple-matches", f"If-None-Exist '{condition}' matches {len(found)}"
            )
        if found:
            return fhir_response(found[0].body, 200, headers=_meta_headers(found[0]))
    stored, _ = _writer(actor)(conn, body, None, None)
    return fhir_response(stored.body, 201, headers=_meta_headers(stored))


@router.put("/{rtype}/{rid}", summary="Update (or create with a client id) a resource")
async def update(
    rtype: str, rid: str, request: Request, conn: Conn, actor: CurrentActor
) -> Response:
    _check_type(rtype)
    body = await _json_body(request)
    validate(body, rtype)
    if body.get("id") not in (None, rid):
        raise FhirError(
            400,
            "invalid",
            f"the resource id '{body.get('id')}' differs from the URL id '{rid}'",
            "id",
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
@router.get("/{rtype}/{rid}", summary="Read the current version")
def read(rtype: str, rid: str, conn: Conn, actor: CurrentActor) -> Response:
    _check_type(rtype)
    golden = golden_person_id(rid) if rtype == "Patient" else None
    if golden is not None:
        person = get_person(conn, golden)
        if person is None:
            raise store.NotFound(f"Patient/{rid}")
        guard(conn, actor, "read", "Patient", person.id, rid=rid)
        return fhir_response(golden_patient(person))
    stored = store.read(conn, rtype, rid)
    guard(
        conn,
        actor,
        "read",
        rtype,
        stored.person_id,
        rid=rid,
        sensitivity=stored.sensitivity,
    )
    return fhir_response(stored.body, headers=_meta_headers(stored))


@router.get("/{rtype}/{rid}/_history", summary="All versions of a resource")
def history(rtype: str, rid: str, conn: Conn, actor: CurrentActor) -> Response:
    _check_type(rtype)
    versions = store.history(conn, rtype, rid)
    guard(conn, actor, "history", rtype, versions[0].person_id, rid=rid)
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
        for v in versions
    ]
    return fhir_response(
        {"resourceType": "Bundle", "type": "history", "total": len(entries), "entry": entries}
    )


@router.get("/{rtype}/{rid}/_history/{vid}", summary="Read one version")
def vread(rtype: str, rid: str, vid: str, conn: Conn, actor: CurrentActor) -> Response:
    _check_type(rtype)
    if not vid.isdigit():
        raise FhirError(400, "invalid", f"version '{vid}' must be a number")
    stored = store.vread(conn, rtype, rid, int(vid))
    guard(conn, actor, "read", rtype, stored.person_id, rid=rid)
    if stored.deleted:
        raise store.Gone(f"{rtype}/{rid}/_history/{vid}")
    return fhir_response(stored.body, headers=_meta_headers(stored))


def _search(
    conn: psycopg.Connection[Any], actor: Actor, rtype: str, params: list[tuple[str, str]]
) -> tuple[int | None, list[Stored]]:
    """Run a search and keep only the rows the actor may read; audit once per person."""
    try:
        q = search.parse(conn, rtype, params, person_of_patient)
    except search.SearchError as exc:
        raise FhirError(400, "invalid", str(exc), exc.param) from None
    scoped = any(name.split(":")[0] in ("patient", "subject") for name, _ in params)
    if scoped and not q.empty:
        person = next(a for w, a in zip(q.where, q.args, strict=False) if w == "person_id = %s")
        guard(conn, actor, "search", rtype, person)
        # Sensitive categories (HIV, mental health…) need their own rule: leave out, in SQL so
        # that totals and paging stay right, those the caller may not read.
        present = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT sensitivity FROM resource WHERE person_id = %s AND type = %s"
                " AND sensitivity IS NOT NULL",
                (person, rtype),
            )
        ]
        readable = [
            sens
            for sens in present
            if authorize(conn, actor, "read", rtype, person, sensitivity=sens).allowed
        ]
        q.where.append("(sensitivity IS NULL OR sensitivity = ANY(%s))")
        q.args.append(readable)
    total, rows = search.run(conn, q)
    if scoped or rtype in DIRECTORY_TYPES:
        return total, rows
    persons_seen = {s.person_id for s in rows if s.person_id is not None}
    decisions = authorize_many(conn, actor, "search", rtype, persons_seen)
    allowed = [
        s
        for s in rows
        if (decisions[s.person_id].allowed if s.person_id is not None else
            authorize(conn, actor, "search", rtype, None).allowed)
        and (not s.sensitivity
             or authorize(conn, actor, "read", rtype, s.person_id, sensitivity=s.sensitivity).allowed)
    ]  # fmt: skip
    persons = sorted({s.person_id for s in allowed if s.person_id is not None})
    audit(conn, actor, "search", outcome="allow", resource_type=rtype,
          detail={"params": params[:20], "persons": persons[:100], "filtered": len(rows) - len(allowed)})  # fmt: skip
    return (total if len(allowed) == len(rows) else None), allowed


def _searchset(
    rows: list[Stored],
    total: int | None,
    base: str,
    params: list[tuple[str, str]],
    count: int,
    offset: int,
) -> dict[str, Any]:
    keep = [(k, v) for k, v in params if k not in ("_count", "_offset")]

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


@router.get("/{rtype}", summary="Search (patient, identifier, date, code, _count, _offset …)")
def search_type(rtype: str, request: Request, conn: Conn, actor: CurrentActor) -> Response:
    _check_type(rtype)
    params = list(request.query_params.multi_items())
    total, rows = _search(conn, actor, rtype, params)
    golden = _golden_patients(conn, actor, params) if rtype == "Patient" else []
    q_count = dict(params).get("_count", str(search.DEFAULT_COUNT))
    count = min(int(q_count), search.MAX_COUNT) if q_count.isdigit() else search.DEFAULT_COUNT
    off = dict(params).get("_offset", "0")
    base = str(request.base_url).rstrip("/") + f"/fhir/{rtype}"
    offset = int(off) if off.isdigit() else 0
    bundle = _searchset(rows, total, base, params, count, offset)
    if golden and offset == 0:  # golden records of the master patient index come first
        bundle["entry"][:0] = [
            {"fullUrl": f"{base}/{g['id']}", "resource": g, "search": {"mode": "match"}}
            for g in golden
        ]
        if "total" in bundle:
            bundle["total"] += len(golden)
    ignored = [k for k, _ in params if k.split(":")[0] not in search.allowed_params(rtype)]
    if ignored:
        bundle["entry"].append({"resource": {"resourceType": "OperationOutcome", "issue": [{
            "severity": "warning", "code": "not-supported",
            "diagnostics": f"ignored unknown search parameters: {', '.join(ignored)}"}]},
            "search": {"mode": "outcome"}})  # fmt: skip
    return fhir_response(bundle)


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


@router.get("/Patient/{rid}/$everything", summary="The whole record of a patient")
def everything(rid: str, conn: Conn, actor: CurrentActor) -> Response:
    golden = golden_person_id(rid)
    person_id = (
        resolve(conn, golden) if golden is not None else store.read(conn, "Patient", rid).person_id
    )
    if person_id is None:
        raise FhirError(404, "not-found", f"Patient/{rid} is not linked to a person")
    guard(conn, actor, "export", "Patient", person_id, rid=rid, purpose="everything")
    rows = conn.execute(
        "SELECT type, id, sensitivity FROM resource WHERE person_id = %s AND sensitivity IS NOT NULL",
        (person_id,),
    ).fetchall()
    hidden = set()
    for rtype, res_id, sens in rows:
        if not authorize(conn, actor, "read", rtype, person_id, sensitivity=sens).allowed:
            hidden.add((rtype, res_id))
    resources = [s for s in store.everything(conn, person_id) if (s.type, s.id) not in hidden]
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
async def patient_match(request: Request, conn: Conn, actor: CurrentActor) -> Response:
    """Parameters(resource=Patient, count, onlyCertainMatches) → ranked golden records.

    Only persons the caller may see are returned (the rest are dropped, and counted in the
    audit event)."""
    params = await _json_body(request)
    if params.get("resourceType") != "Parameters":
        raise FhirError(400, "invalid", "$match takes a Parameters resource with a 'resource'")
    by_name = {p.get("name"): p for p in params.get("parameter") or [] if isinstance(p, dict)}
    patient = (by_name.get("resource") or {}).get("resource")
    if not isinstance(patient, dict):
        raise FhirError(400, "required", "parameter 'resource' must hold a Patient", "resource")
    count = (by_name.get("count") or {}).get("valueInteger", 10)
    only_certain = bool((by_name.get("onlyCertainMatches") or {}).get("valueBoolean", False))
    if not isinstance(count, int) or not 1 <= count <= 100:
        raise FhirError(400, "invalid", "count must be an integer from 1 to 100", "count")
    try:
        found = match(conn, patient, count=count, only_certain=only_certain)
    except MatchInputError as exc:
        raise FhirError(400, "invalid", str(exc), "resource") from None
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
