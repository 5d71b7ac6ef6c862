"""Loading many source records at once (a province's first load of its registers).

The online path (``link.link_many``) decides record by record against candidates fetched per
batch. A first load decides elsewhere, for the whole file (``dedup.dedup``, identifier joins)
and hands the decisions here, where they are written with the online path's COPY helpers:
persons, source links and review pairs in a few set-based statements.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import psycopg

from hssk.registry.link import (
    LINK_LOCK,
    PHONE_SOURCE,
    _copy_persons,
    _copy_reviews,
    _copy_sources,
    _existing_links,
    _reserve_ids,
    _update_persons,
    features_of,
    features_of_person,
)
from hssk.registry.model import compare, strong_identifier
from hssk.registry.prepare import Prepared
from hssk.registry.types import PERSON_COLUMNS, LinkResult, SourceRecord, person_from_row


@dataclass(frozen=True)
class Review:
    """Two records (indexes into the batch) that may be one person: queued for people."""

    a: int
    b: int
    probability: float


@dataclass(frozen=True)
class IdentifierMatch:
    """A record whose verified identifier names exactly one person of the registry."""

    person_id: int
    rule: str  # cccd | bhxh | passport | temp_card


def linked(conn: psycopg.Connection[Any], recs: Sequence[SourceRecord]) -> list[int | None]:
    """The person (survivor) of each record already linked by its source and record id (a
    re-run of a load finds its records here), None for the others. A whole register is
    looked up by chunks, and not at all while no record is linked (a province's first load)."""
    if not recs:
        return []
    none = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM person_source)").fetchone()
    if none is not None and none[0]:
        return [None] * len(recs)
    out: list[int | None] = []
    for start in range(0, len(recs), _LOOKUP_CHUNK):
        part = recs[start : start + _LOOKUP_CHUNK]
        found = _existing_links(conn, part)
        out += [found.get((r.source, r.record_id)) for r in part]
    return out


_LOOKUP_CHUNK = 100_000  # records looked up per statement


_ID_JOIN = """
SELECT q.i, p.id FROM registry_batch_ids q JOIN person p ON p.cccd = q.cccd
 WHERE p.merged_into IS NULL
UNION SELECT q.i, p.id FROM registry_batch_ids q JOIN person p ON p.bhxh = q.bhxh
 WHERE p.merged_into IS NULL
UNION SELECT q.i, p.id FROM registry_batch_ids q JOIN person p ON p.passport = q.passport
 WHERE p.merged_into IS NULL
UNION SELECT q.i, p.id FROM registry_batch_ids q JOIN person p ON p.temp_card = q.temp_card
 WHERE p.merged_into IS NULL
"""


def identifier_matches(
    conn: psycopg.Connection[Any], prepared: Sequence[Prepared]
) -> list[IdentifierMatch | None]:
    """Each record's person by a shared verified identifier (the online path's deterministic
    rule, ``model.strong_identifier`` without a veto), set-based: the records' identifiers
    are copied into a temporary table and joined with ``person``. A record naming two
    persons, or none, gets None (the caller links it another way)."""
    out: list[IdentifierMatch | None] = [None] * len(prepared)
    # the identifiers as ``features_of`` gives them; the features (an address to normalize)
    # only for the records that meet a person
    rows = [
        (i, p.cccd, p.bhxh_verified, p.passport, p.temp_card)
        for i, p in enumerate(prepared)
        if p.cccd or p.bhxh_verified or p.passport or p.temp_card
    ]
    if not rows:
        return out
    conn.execute(
        "CREATE TEMP TABLE IF NOT EXISTS registry_batch_ids (i int, cccd text, bhxh text, passport text,"
        " temp_card text) ON COMMIT DELETE ROWS"
    )
    conn.execute("TRUNCATE registry_batch_ids")
    with conn.cursor().copy("COPY registry_batch_ids FROM STDIN") as cp:
        for r in rows:
            cp.write_row(r)
    conn.execute("ANALYZE registry_batch_ids")
    hits = conn.execute(_ID_JOIN).fetchall()
    conn.execute("TRUNCATE registry_batch_ids")
    ids = sorted({int(pid) for _, pid in hits})
    persons = {
        p.id: features_of_person(p)
        for p in map(
            person_from_row,
            conn.execute(f"SELECT {PERSON_COLUMNS} FROM person WHERE id = ANY(%s)", (ids,)),
        )
    }
    feats = {i: features_of(prepared[i]) for i in sorted({int(i) for i, _ in hits})}
    found: dict[int, dict[int, str]] = {}
    for i, pid in hits:
        other = persons[int(pid)]
        rule = strong_identifier(feats[i], other)
        if rule and compare(feats[i], other).veto is None:
            found.setdefault(int(i), {})[int(pid)] = rule
    for i, by in found.items():
        if len(by) == 1:  # two persons holding its ids: the online path merges them
            pid, rule = next(iter(by.items()))
            out[i] = IdentifierMatch(pid, rule)
    return out


_COPY_CHUNK = 50_000  # source links rendered and copied at a time


def load_batch(
    conn: psycopg.Connection[Any],
    prepared: Sequence[Prepared],
    clusters: Sequence[int],
    *,
    persons: Mapping[int, int] | None = None,
    rules: Sequence[str | None] | None = None,
    reviews: Sequence[Review] = (),
) -> list[LinkResult]:
    """Write records whose persons are decided: records sharing a cluster id are one person;
    a cluster named in ``persons`` is that existing person, any other becomes a new person,
    made from its first record (put the most authoritative register first) and filled from
    the others as the online path fills a golden record. ``rules``: each record's link rule
    (default 'new' for the record a person is made from, 'batch' for the others). Records
    must not be linked yet (``linked``). Holds the link lock until the transaction ends."""
    if len(clusters) != len(prepared):
        raise ValueError("one cluster id per record")
    if not prepared:
        return []
    known = dict(persons or {})
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (LINK_LOCK,))
    first: dict[int, int] = {}  # cluster → index of its first record
    for i, c in enumerate(clusters):
        first.setdefault(c, i)
    new = [c for c in first if c not in known]
    new_ids = _reserve_ids(conn, len(new))
    new_ids.reverse()  # (reserved ids come popped from the end: ascending here)
    pid_of = {**known, **dict(zip(new, new_ids, strict=True))}
    made = {first[c] for c in new}
    _copy_persons(conn, [(pid_of[c], prepared[first[c]]) for c in new])
    results: list[LinkResult] = []
    for i, c in enumerate(clusters):
        given = rules[i] if rules is not None else None
        rule = given or ("new" if i in made else "batch")
        results.append(LinkResult(pid_of[c], i in made, None, rule, False))
    sids: list[int] = []
    for start in range(0, len(prepared), _COPY_CHUNK):  # (a register's JSON not all at once)
        part = range(start, min(start + _COPY_CHUNK, len(prepared)))
        sids += _copy_sources(
            conn,
            [
                (prepared[i], orjson.dumps(prepared[i].demographics()).decode(),
                 results[i].person_id, results[i].score, results[i].rule)
                for i in part
            ],
        )  # fmt: skip
    _update_persons(
        conn, [(r.person_id, p) for i, (p, r) in enumerate(zip(prepared, results, strict=True))
               if i not in made]
    )  # fmt: skip
    verified = [
        (r.person_id, p.phone, p.rec.record_id)
        for p, r in zip(prepared, results, strict=True)
        if p.rec.source == PHONE_SOURCE and p.phone
    ]
    if verified:
        from hssk.registry.phones import verify_from_register

        verify_from_register(conn, verified, PHONE_SOURCE)  # type: ignore[arg-type]
    queued = []
    for rv in reviews:
        pa, pb = results[rv.a].person_id, results[rv.b].person_id
        if pa == pb:
            continue
        fa, fb = features_of(prepared[rv.a]), features_of(prepared[rv.b])
        ev = compare(fa, fb).evidence(fa, fb)
        queued.append((sids[rv.a], pa, pb, rv.probability, ev))
        results[rv.a] = LinkResult(pa, results[rv.a].created, None, results[rv.a].rule, True)
    if queued:
        _copy_reviews(conn, queued)
    return results
