"""Clinician search of the index (``find``) and IHE PDQm ``$match``."""

from __future__ import annotations

from typing import Any

import psycopg

from hssk import identifiers as ids
from hssk.config import settings
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
        clauses.append("name_key = %s")
        params.append(p.name_key)
        if p.family_key and p.given_key:
            clauses.append("(family_key = %s AND given_key = %s)")
            params += [p.family_key, p.given_key]
    if clauses:
        sql = f"SELECT {PERSON_COLUMNS} FROM person WHERE merged_into IS NULL AND ({' OR '.join(clauses)})"
        if p.birth_date and not (cccd or bhyt or bhxh):
            sql += " AND (birth_date IS NULL OR extract(year FROM birth_date) = %s)"
            params.append(p.birth_date.year)
        sql += " LIMIT 500"
        extra = [person_from_row(r) for r in conn.execute(sql, params).fetchall()]
    return _rank(conn, rec, extra, limit)
