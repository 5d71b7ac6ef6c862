"""Clinician search of the index (``find``) and IHE PDQm ``$match``."""

from __future__ import annotations

from datetime import date
from typing import Any

import psycopg

from hssk.kernel import identifiers as ids
from hssk.kernel.config import settings
from hssk.registry.link import _fetch_candidates, features_of, features_of_person
from hssk.registry.model import compare, grade, strong_identifier
from hssk.registry.prepare import prepare
from hssk.registry.types import PERSON_COLUMNS, Candidate, Person, SourceRecord, person_from_row


def _rank(
    conn: psycopg.Connection[Any], rec: SourceRecord, extra: list[Person], limit: int
) -> list[Candidate]:
    cfg = settings()
    p = prepare(rec)
    f = features_of(p)
    persons = {x.id: x for x in _fetch_candidates(conn, [f])}
    for x in extra:
        persons.setdefault(x.id, x)
    out: list[Candidate] = []
    for person in persons.values():
        pf = features_of_person(person)
        sc = compare(f, pf)
        prob = sc.probability
        if strong_identifier(f, pf) and sc.veto is None:
            prob = 1.0
        out.append(
            Candidate(
                person, prob, grade(prob, cfg.match_upper, cfg.match_lower), sc.evidence(f, pf)
            )
        )
    out.sort(key=lambda c: (-c.score, c.person.id))
    return out[:limit]


def find(
    conn: psycopg.Connection[Any],
    *,
    cccd: str | None = None,
    bhyt: str | None = None,
    bhxh: str | None = None,
    name: str | None = None,
    birth_date: str | None = None,
    limit: int = 20,
) -> list[Candidate]:
    """Search persons by identifiers and/or name (+ birth date), best first, with scores."""
    rec = SourceRecord(
        "search", "-", full_name=name, birth_date=birth_date, cccd=cccd, bhyt=bhyt, bhxh=bhxh
    )
    p = prepare(rec)
    extra: list[Person] = []
    clauses: list[str] = []
    params: list[Any] = []
    if cccd:
        clauses.append("cccd = %s")
        params.append(ids.clean(cccd))
    if p.bhxh:
        clauses.append("bhxh = %s")
        params.append(p.bhxh)
    if p.bhyt:
        clauses.append("bhyt = %s")
        params.append(p.bhyt)
    if p.name_key:
        if p.birth_date and not (cccd or bhyt or bhxh):
            # by name and birth year: the year in each arm, so that every arm is a range of
            # its index (person_name_birth, person_family_given_year) and a common name reads
            # one year's namesakes, not all of them
            year = p.birth_date.year
            clauses += ["(name_key = %s AND birth_date >= %s AND birth_date < %s)",
                        "(name_key = %s AND birth_date IS NULL)"]  # fmt: skip
            params += [p.name_key, date(year, 1, 1), date(year + 1, 1, 1), p.name_key]
            if p.family_key and p.given_key:
                fam_giv = "(family_key = %s AND given_key = %s AND extract(year FROM birth_date)"
                clauses += [f"{fam_giv} = %s)", f"{fam_giv} IS NULL)"]
                params += [p.family_key, p.given_key, year, p.family_key, p.given_key]
        else:
            clauses.append("name_key = %s")
            params.append(p.name_key)
            if p.family_key and p.given_key:
                clauses.append("(family_key = %s AND given_key = %s)")
                params += [p.family_key, p.given_key]
    if clauses:
        sql = f"SELECT {PERSON_COLUMNS} FROM person WHERE merged_into IS NULL AND ({' OR '.join(clauses)})"
        sql += " LIMIT 500"
        extra = [person_from_row(r) for r in conn.execute(sql, params).fetchall()]
    return _rank(conn, rec, extra, limit)


_KIND_BY_SYSTEM = {s: k for k, s in ids.PERSON_SYSTEMS.items() if k != "health-id"} | {
    ids.HEALTH_ID: "cccd"
}
_SEX = {"male": "M", "female": "F", "other": "U", "unknown": "U"}


class MatchInputError(ValueError):
    """The Patient given to $match cannot be used (what is wrong and how to fix it)."""


def record_from_patient(
    patient: dict[str, Any], source: str = "fhir", record_id: str = "$match"
) -> SourceRecord:
    """A SourceRecord from a FHIR Patient: identifiers by system, official name, birthDate,
    gender, a phone, and the address (commune code extension, else its text)."""
    if not isinstance(patient, dict) or patient.get("resourceType") != "Patient":
        raise MatchInputError(
            "Tham số 'resource' phải là một Patient. / The 'resource' parameter must be a Patient resource."
        )
    rec = SourceRecord(source, str(patient.get("id") or record_id))
    for ident in patient.get("identifier") or []:
        if not isinstance(ident, dict):
            continue
        kind = _KIND_BY_SYSTEM.get(ids.canonical_system(str(ident.get("system") or "")))
        value = ident.get("value")
        if not kind or not value:
            continue
        attr = {
            "cccd": "cccd",
            "cmnd": "cccd",
            "eid": "cccd",
            "passport": "passport",
            "bhxh": "bhxh",
            "bhyt": "bhyt",
        }
        if kind in attr and getattr(rec, attr[kind]) is None:
            setattr(rec, attr[kind], str(value))
        elif kind == "the-tam":
            rec.temp_card = str(value)
    names = [n for n in patient.get("name") or [] if isinstance(n, dict)]
    if names:
        n = next((x for x in names if x.get("use") == "official"), names[0])
        text = n.get("text") or " ".join(
            [str(n.get("family") or ""), *[str(g) for g in n.get("given") or []]]
        )
        rec.full_name = text.strip() or None
    rec.birth_date = patient.get("birthDate")
    rec.sex = _SEX.get(str(patient.get("gender") or ""))
    for t in patient.get("telecom") or []:
        if isinstance(t, dict) and t.get("system") == "phone" and t.get("value"):
            rec.phone = str(t["value"])
            break
    for a in patient.get("address") or []:
        if not isinstance(a, dict):
            continue
        for ext in a.get("extension") or []:
            if isinstance(ext, dict) and str(ext.get("url", "")).endswith("commune-code"):
                rec.commune_code = ext.get("valueCode")
        rec.address = (
            a.get("text")
            or ", ".join(
                str(x) for x in [*(a.get("line") or []), a.get("city"), a.get("state")] if x
            )
            or None
        )
        break
    return rec


def match(
    conn: psycopg.Connection[Any],
    patient_json: dict[str, Any],
    count: int = 10,
    only_certain: bool = False,
) -> list[tuple[Person, float, str]]:
    """IHE PDQm ``$match``: persons matching a Patient, best first, as (person, score, grade)
    with grade certain / probable / possible. With ``only_certain`` at most one certain match
    is returned, and none when several are certain (the caller cannot tell them apart)."""
    rec = record_from_patient(patient_json)
    if not any(
        [rec.full_name, rec.cccd, rec.bhxh, rec.bhyt, rec.passport, rec.temp_card, rec.phone]
    ):
        raise MatchInputError(
            "Patient cần có họ tên hoặc một định danh (CCCD, BHYT, ...). / "
            "The Patient needs a name or an identifier (CCCD, BHYT card, ...) to match on."
        )
    cands = find_record(conn, rec, limit=max(count, 1) * 3)
    out = [(c.person, c.score, c.grade) for c in cands if c.grade != "certainly-not"]
    if only_certain:
        certain = [t for t in out if t[2] == "certain"]
        return certain if len(certain) == 1 else []
    return out[: max(count, 0)]


def find_record(
    conn: psycopg.Connection[Any], rec: SourceRecord, limit: int = 20
) -> list[Candidate]:
    """Candidates for a whole source record (blocking keys + identifier look-ups), ranked."""
    extra = find(
        conn,
        cccd=rec.cccd,
        bhyt=rec.bhyt,
        bhxh=rec.bhxh,
        name=rec.full_name,
        birth_date=rec.birth_date,
        limit=limit,
    )
    return _rank(conn, rec, [c.person for c in extra], limit)
