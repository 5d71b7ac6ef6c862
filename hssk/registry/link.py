"""Online linking of source records to persons: deterministic rules, then Fellegi–Sunter.

``link_many`` is the batch entry point for ingest: a handful of set-based queries per batch
(existing links, candidates by identifiers and blocking keys), comparisons in Python, and COPY
for the new persons, source links and review rows. Records of the same batch that belong to
the same person link to one person (an in-memory index of the batch's new persons).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import orjson
import psycopg
from psycopg.types.json import Jsonb

from hssk.db.textlist import SPLIT, joined, splittable
from hssk.kernel.config import settings
from hssk.registry.address import normalize_address
from hssk.registry.adminunits import commune_options
from hssk.registry.merge import merge
from hssk.registry.model import Features, Score, cccd_valid, compare, strong_identifier
from hssk.registry.persons import resolve, resolve_many
from hssk.registry.prepare import Prepared, prepare
from hssk.registry.train import apply_active
from hssk.registry.types import PERSON_COLUMNS, LinkResult, Person, SourceRecord, person_from_row

LINK_LOCK = 7_340_200  # advisory lock key of the linking step
MAX_CANDIDATES = 64  # per record and blocking key: very common names are capped
# Identity data (phone, identifiers, address) of a golden record belongs to the registry: only
# the national registers, loaded by platform systems alone (ingest's register kinds), add it
# to an existing person. A clinical or partner record keeps its values in person_source: a
# hospital system posting a victim's CCCD with its own phone must not reach the victim's login.
REGISTER_SOURCES = frozenset({"population", "insurance"})
# The population register verifies a phone: one-time codes may go to it.
PHONE_SOURCE = "population"
_IDENTITY = ("cccd", "bhxh", "passport", "temp_card", "phone", "commune", "commune_old")


def features_of(p: Prepared) -> Features:
    return _features(
        p,
        cccd_ok=p.cccd_ok,
        bhxh=p.bhxh_verified,
        mother_id=p.rec.mother_person_id,
        communes=p.commune_options,
        address=p.rec.address,
    )


def features_of_person(p: Person) -> Features:
    return _features(
        p,
        cccd_ok=cccd_valid(p.cccd, p.birth_date if p.birth_precision else None, p.sex),
        bhxh=p.bhxh,
        mother_id=p.mother_id,
        communes=commune_options(p.commune_code, p.commune_code_old),
        address=p.address,
    )


def _features(
    p: Prepared | Person,
    *,
    cccd_ok: bool,
    bhxh: str | None,
    mother_id: int | None,
    communes: tuple[str, ...],
    address: str | None,
) -> Features:
    """The comparison features of a source record (prepared) or of a golden record, which
    name their fields alike."""
    return Features(
        name_key=p.name_key,
        display=p.full_name.lower() if p.full_name else None,
        family=p.family_key,
        given=p.given_key,
        name_sorted=p.name_sorted,
        birth_date=p.birth_date,
        precision=p.birth_precision,
        # a golden record keeps only valid dates; a source record may carry impossible digits
        birth_digits=p.birth_digits if isinstance(p, Prepared) else None,
        sex=p.sex,
        cccd=p.cccd,
        cccd_ok=cccd_ok,
        bhxh=bhxh,
        passport=p.passport,
        eid=p.eid,
        temp_card=p.temp_card,
        phone=p.phone,
        commune=p.commune_code,
        commune_old=p.commune_code_old,
        province=p.province_code,
        mother_id=mother_id,
        communes=communes,
        address=normalize_address(address),
    )


def blocking_keys(f: Features) -> list[tuple[Any, ...]]:
    """Keys under which a record is looked up (same keys for the in-batch index and SQL)."""
    keys: list[tuple[Any, ...]] = []
    if f.cccd:
        keys.append(("cccd", f.cccd))
    if f.bhxh:
        keys.append(("bhxh", f.bhxh))
    if f.passport:
        keys.append(("passport", f.passport))
    if f.temp_card:
        keys.append(("temp", f.temp_card))
    if f.eid:
        keys.append(("eid", f.eid))
    if f.phone:
        keys.append(("phone", f.phone))
    bd = f.birth_date
    if bd is not None:
        if f.name_key:
            keys.append(("ny", f.name_key, bd.year))
        if f.name_sorted and f.name_sorted != f.name_key:
            keys.append(("ns", f.name_sorted, bd.year))
        if f.family and f.given:
            keys.append(("fgy", f.family, f.given, bd.year))
        if f.precision == "D":
            if f.given:
                keys.append(("gd", f.given, bd))
            if f.family:
                keys.append(("fd", f.family, bd))
            if f.commune:
                keys.append(("bc", bd, f.commune))  # a name typed wrong or replaced
    if f.name_key and (f.commune or f.commune_old):
        keys.append(("nc", f.name_key, f.commune or f.commune_old))
    return keys


@dataclass
class _Batch:
    """Persons known while linking one batch: fetched from the database or created now."""

    persons: dict[int, Features] = field(default_factory=dict)
    # blocking key → persons (a dict as an ordered set: membership tests stay O(1) for the
    # common keys, e.g. a frequent name born in the same year)
    index: dict[tuple[Any, ...], dict[int, None]] = field(default_factory=lambda: defaultdict(dict))
    name_counts: dict[str, int] = field(default_factory=dict)  # persons per name key (registry)
    total: int = 0  # persons in the registry

    def name_u(self, key: str | None) -> float | None:
        """Frequency of a name key among persons (u of an exact name agreement)."""
        if not key:
            return None
        # Small registries say little about name frequencies: count at least 50,000 persons.
        return max(self.name_counts.get(key, 0), 1) / max(self.total, 50_000)

    def add(self, pid: int, f: Features, new: bool = False) -> None:
        if new:
            self.total += 1
            if f.name_key:
                self.name_counts[f.name_key] = self.name_counts.get(f.name_key, 0) + 1
        self.persons[pid] = f
        index = self.index
        for k in blocking_keys(f):
            index[k][pid] = None

    def candidates(self, f: Features) -> list[int]:
        seen: dict[int, None] = {}
        index = self.index
        for k in blocking_keys(f):
            found = index.get(k)
            if found:
                seen.update(found)
        return list(seen)


_CANDIDATE_SQL = f"""
WITH q AS (
    SELECT * FROM unnest(%(cccd)b::text[], %(bhxh)b::text[], %(passport)b::text[],
                         %(temp)b::text[], %(phone)b::text[], %(nk)b::text[], %(fam)b::text[],
                         %(giv)b::text[], %(yr)b::int[], %(bd)b::date[], %(com)b::text[],
                         %(ns)b::text[], %(eid)b::text[])
      AS q(cccd, bhxh, passport, temp, phone, nk, fam, giv, yr, bd, com, ns, eid)
), hits AS (
    SELECT p.id FROM q JOIN person p ON p.cccd = q.cccd
    UNION SELECT p.id FROM q JOIN person p ON p.bhxh = q.bhxh
    UNION SELECT p.id FROM q JOIN person p ON p.passport = q.passport
    UNION SELECT p.id FROM q JOIN person p ON p.temp_card = q.temp
    UNION SELECT p.id FROM q JOIN LATERAL (
        SELECT id FROM person WHERE eid = q.eid LIMIT {MAX_CANDIDATES}) p ON true
    UNION SELECT p.id FROM q JOIN LATERAL (
        SELECT id FROM person WHERE phone = q.phone LIMIT {MAX_CANDIDATES}) p ON true
    UNION SELECT p.id FROM q JOIN LATERAL (
        SELECT id FROM person WHERE name_key = q.nk
           AND birth_date >= make_date(q.yr, 1, 1) AND birth_date < make_date(q.yr + 1, 1, 1)
         LIMIT {MAX_CANDIDATES}) p ON true
    UNION SELECT p.id FROM q JOIN LATERAL (
        SELECT id FROM person WHERE name_sorted = q.ns
           AND birth_date >= make_date(q.yr, 1, 1) AND birth_date < make_date(q.yr + 1, 1, 1)
         LIMIT {MAX_CANDIDATES}) p ON true
    UNION SELECT p.id FROM q JOIN LATERAL (
        SELECT id FROM person WHERE family_key = q.fam AND given_key = q.giv
           AND extract(year FROM birth_date) = q.yr LIMIT {MAX_CANDIDATES}) p ON true
    UNION SELECT p.id FROM q JOIN LATERAL (
        SELECT id FROM person WHERE given_key = q.giv AND birth_date = q.bd
         LIMIT {MAX_CANDIDATES}) p ON true
    UNION SELECT p.id FROM q JOIN LATERAL (
        SELECT id FROM person WHERE family_key = q.fam AND birth_date = q.bd
         LIMIT {MAX_CANDIDATES}) p ON true
    UNION SELECT p.id FROM q JOIN LATERAL (
        SELECT id FROM person WHERE name_key = q.nk AND commune_code = q.com
         LIMIT {MAX_CANDIDATES}) p ON true
    UNION SELECT p.id FROM q JOIN LATERAL (
        SELECT id FROM person WHERE birth_date = q.bd AND commune_code = q.com
         LIMIT {MAX_CANDIDATES}) p ON true
)
SELECT {PERSON_COLUMNS.replace("id, ", "p.id, ", 1)}
  FROM hits JOIN person p ON p.id = hits.id WHERE p.merged_into IS NULL
"""


def _fetch_candidates(
    conn: psycopg.Connection[Any], feats: list[Features], *, prepare: bool = False
) -> list[Person]:
    cols: dict[str, list[Any]] = defaultdict(list)
    for f in feats:
        cols["cccd"].append(f.cccd)
        cols["bhxh"].append(f.bhxh)
        cols["passport"].append(f.passport)
        cols["temp"].append(f.temp_card)
        cols["phone"].append(f.phone)
        cols["nk"].append(f.name_key)
        cols["fam"].append(f.family)
        cols["giv"].append(f.given)
        cols["yr"].append(f.birth_date.year if f.birth_date else None)
        cols["bd"].append(f.birth_date if f.precision == "D" else None)
        cols["com"].append(f.commune)
        cols["ns"].append(f.name_sorted)
        cols["eid"].append(f.eid)
    # binary parameters: dumping the arrays as text costs five times more
    # (prepare: a server-side statement at once, so a generic plan is used from the first call)
    rows = conn.execute(_CANDIDATE_SQL, dict(cols), prepare=prepare or None).fetchall()
    return [person_from_row(r) for r in rows]


@dataclass
class _Decision:
    person_id: int | None  # None → create a new person
    score: float | None
    rule: str
    review_of: list[tuple[int, Score]] = field(default_factory=list)
    also: list[int] = field(default_factory=list)  # other persons holding the same verified ids


AMBIGUITY_BITS = 10.0  # a runner-up within 2^10 odds of the best makes the best uncertain


def _decide(f: Features, batch: _Batch, upper: float, lower: float) -> _Decision:
    """Deterministic rule on a shared verified identifier, else the best probabilistic
    candidate: linked above ``upper`` unless a runner-up is nearly as likely (namesakes),
    queued for review between the thresholds, a new person below."""
    scored: list[tuple[int, Score]] = []
    strong: list[tuple[int, str]] = []
    name_u = batch.name_u(f.name_key)
    for pid in batch.candidates(f):
        other = batch.persons[pid]
        sc = compare(f, other, name_u)
        rule = strong_identifier(f, other)
        if rule and sc.veto is None:
            strong.append((pid, rule))
        elif sc.probability >= lower / 4:
            scored.append((pid, sc))
    if strong:
        # Two persons holding this record's verified ids (one had the CCCD, the other the BHYT
        # card) are one person split earlier: link to the oldest and report the others.
        strong.sort()
        pid, rule = strong[0]
        return _Decision(pid, 1.0, rule, also=[p for p, _ in strong[1:] if p != pid])
    if not scored:
        return _Decision(None, None, "new")
    scored.sort(key=lambda t: -t[1].weight)
    best = scored[0]
    plausible = [t for t in scored if t[1].probability >= lower]
    if best[1].probability >= upper:
        rivals = [
            t
            for t in plausible[1:]
            if best[1].weight - t[1].weight < AMBIGUITY_BITS
            and compare(batch.persons[best[0]], batch.persons[t[0]]).veto is not None
        ]
        if not rivals:  # a runner-up that may be the same person is queued, not a blocker
            return _Decision(best[0], best[1].probability, "probabilistic", plausible[1:3])
    return _Decision(None, best[1].probability, "new", plausible[:3])


def link(conn: psycopg.Connection[Any], rec: SourceRecord) -> LinkResult:
    """Link one source record to a person (creating one when no person matches)."""
    return link_many(conn, [rec])[0]


def link_many(
    conn: psycopg.Connection[Any],
    recs: Sequence[SourceRecord],
    prepared: Sequence[Prepared | None] | None = None,
) -> list[LinkResult]:
    """Link a batch of source records: few round trips, COPY for every insert.

    A record already linked (same source and record id) keeps its person (the person it was
    merged into, if any) and its stored demographics are refreshed. Concurrent callers are
    serialized by a transaction-level advisory lock: commit soon after linking.
    ``prepared``: ``prepare(rec)`` of each record where already computed (ingest normalizes
    in its mapping processes); None entries are prepared here.
    """
    if not recs:
        return []
    cfg = settings()
    upper, lower = cfg.match_upper, cfg.match_lower
    apply_active(cfg.data_dir)  # trained weights of this installation, when activated
    # Normalizing happens before the lock, so concurrent ingest workers overlap on it.
    given = prepared if prepared is not None else [None] * len(recs)
    # (strict: one prepared entry per record, or ValueError)
    preps = [p if p is not None else prepare(r) for r, p in zip(recs, given, strict=True)]
    feats = [features_of(p) for p in preps]
    demo = [orjson.dumps(p.demographics()).decode() for p in preps]
    # Linking is serialized per database (until the caller's transaction ends): two concurrent
    # batches holding records of one new person would otherwise both create it.
    small = len(recs) <= SMALL_BATCH
    plan_mode = None
    if small:
        # A record at a time (the FHIR API, a clinic's registration): planning the candidate
        # query and the golden-record update cost 1–5 ms each, executing them 0.3 ms. Their
        # generic plans (index look-ups whatever the values) are as good, so reuse them for
        # this transaction; the caller's setting is restored at the end.
        plan_mode = conn.execute(
            "WITH s AS MATERIALIZED (SELECT current_setting('plan_cache_mode') AS prev)"
            " SELECT s.prev FROM s, LATERAL (SELECT pg_advisory_xact_lock(%s),"
            " set_config('plan_cache_mode', 'force_generic_plan', true) WHERE s.prev <> '') g",
            (LINK_LOCK,),
        ).fetchone()
    else:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LINK_LOCK,))

    batch = _Batch()
    batch.total, batch.name_counts = _name_counts(conn, {f.name_key for f in feats if f.name_key})
    empty = batch.total == 0  # first load of a register: nothing to look up
    existing = {} if empty else _existing_links(conn, recs)
    todo = [i for i, r in enumerate(recs) if (r.source, r.record_id) not in existing]
    candidates = (
        _fetch_candidates(conn, [feats[i] for i in todo], prepare=small)
        if todo and not empty
        else []
    )
    for person in candidates:
        batch.add(person.id, features_of_person(person))

    results: list[LinkResult | None] = [None] * len(recs)
    new_ids = _NewIds(conn, len(todo))
    new_persons: list[int] = []  # indexes into recs of records that create a person
    links: list[tuple[int, int, float | None, str]] = []  # (rec index, person, score, rule)
    reviews: list[tuple[int, int, int, Score]] = []  # (rec index, person, candidate, score)
    seen_keys: dict[tuple[str, str], int] = {}
    merges: list[tuple[int, int]] = []  # (survivor, merged): split persons sharing verified ids
    for i, rec in enumerate(recs):
        key = (rec.source, rec.record_id)
        if key in existing:
            pid = existing[key]
            results[i] = LinkResult(pid, False, None, "source", False)
            continue
        if key in seen_keys:  # the same record twice in one batch
            first = results[seen_keys[key]]
            assert first is not None
            results[i] = LinkResult(first.person_id, False, first.score, "source", False)
            continue
        seen_keys[key] = i
        d = _decide(feats[i], batch, upper, lower)
        if d.person_id is None:
            pid = new_ids.pop()
            new_persons.append(i)
            batch.add(pid, feats[i], new=True)
            for cand, sc in d.review_of:
                reviews.append((i, pid, cand, sc))
            results[i] = LinkResult(pid, True, d.score, d.rule, bool(d.review_of))
        else:
            pid = d.person_id
            for cand, sc in d.review_of:
                reviews.append((i, pid, cand, sc))
            results[i] = LinkResult(pid, False, d.score, d.rule, bool(d.review_of))
            register = rec.source in REGISTER_SOURCES
            _absorb(batch.persons[pid], feats[i], register)
            batch.add(pid, batch.persons[pid])  # index the identifiers it just gained
            for other in d.also:
                if register:
                    merges.append((pid, other))
                else:  # a clinical record never joins two persons by itself: people decide
                    sc = compare(feats[i], batch.persons[other], batch.name_u(feats[i].name_key))
                    reviews.append((i, pid, other, sc))
        links.append((i, pid, d.score, d.rule))

    _copy_persons(conn, [(results[i].person_id, preps[i]) for i in new_persons])  # type: ignore[union-attr]
    link_ids = _copy_sources(
        conn, [(preps[i], demo[i], pid, sc, rule) for i, pid, sc, rule in links]
    )
    src_id = {i: sid for (i, _, _, _), sid in zip(links, link_ids, strict=True)}
    _update_persons(conn, [(pid, preps[i]) for i, pid, _, rule in links if rule != "new"])
    verified = [
        (r.person_id, preps[i].phone, recs[i].record_id)
        for i, r in enumerate(results)
        if r is not None and recs[i].source == PHONE_SOURCE and preps[i].phone
    ]
    if verified:  # (imported here: phones follows merges with this module's resolve)
        from hssk.registry.phones import verify_from_register

        verify_from_register(conn, verified, PHONE_SOURCE)  # type: ignore[arg-type]
    if reviews:
        _copy_reviews(
            conn,
            [
                (src_id[i], pid, cand, sc.probability, sc.evidence(feats[i], batch.persons[cand]))
                for i, pid, cand, sc in reviews
            ],
        )
    _auto_merge(conn, merges)
    if existing:
        _refresh_sources(
            conn, [(preps[i]) for i, r in enumerate(recs) if (r.source, r.record_id) in existing]
        )
    if small and plan_mode is not None:
        conn.execute("SELECT set_config('plan_cache_mode', %s, true)", (plan_mode[0],))
    return [r for r in results if r is not None]


SMALL_BATCH = 16  # up to this many records, statements run with generic plans (link_many)


class _NewIds:
    """Ids for the persons a batch creates, reserved on the first one needed: a record that
    links to a known person (most online links) costs no sequence round trip."""

    def __init__(self, conn: psycopg.Connection[Any], n: int) -> None:
        self.conn = conn
        self.n = n
        self.ids: list[int] | None = None

    def pop(self) -> int:
        if self.ids is None:
            self.ids = _reserve_ids(self.conn, self.n)
        return self.ids.pop()


def _auto_merge(conn: psycopg.Connection[Any], pairs: list[tuple[int, int]]) -> None:
    """Merge persons found to share verified identifiers (rare; each merge is reversible)."""
    done: set[frozenset[int]] = set()
    for survivor, other in pairs:
        if frozenset((survivor, other)) in done:
            continue
        done.add(frozenset((survivor, other)))
        if resolve(conn, survivor) != resolve(conn, other):
            merge(conn, survivor, other, actor="mpi", reason="same verified identifier")


def _name_counts(conn: psycopg.Connection[Any], keys: set[str]) -> tuple[int, dict[str, int]]:
    """Number of persons (the highest id: ids are dense, and it is an index look-up) and the
    persons per name key (``person_name_count``, kept by triggers)."""
    rows = conn.execute(
        f"""SELECT NULL, (SELECT coalesce(max(id), 0) FROM person)
            UNION ALL
            SELECT name_key, n FROM person_name_count WHERE name_key = ANY({SPLIT})""",
        (joined(k for k in keys if splittable(k)),),
    ).fetchall()
    return int(rows[0][1]), {r[0]: int(r[1]) for r in rows[1:]}


def _absorb(target: Features, f: Features, register: bool) -> None:
    """Fill a batch person's missing fields from a record linked to it (later records see it),
    as ``_update_persons`` fills the golden record: identity fields from a register only."""
    for name in _IDENTITY if register else ():
        if getattr(target, name) is None and getattr(f, name) is not None:
            setattr(target, name, getattr(f, name))
    if f.cccd and f.cccd == target.cccd and f.cccd_ok:
        target.cccd_ok = True
    # a full birth date refines a month/year-only one of the same year (as _update_persons does)
    if (
        f.birth_date
        and f.precision == "D"
        and (
            target.birth_date is None
            or (target.precision != "D" and target.birth_date.year == f.birth_date.year)
        )
    ):
        target.birth_date, target.precision = f.birth_date, "D"


def _existing_links(
    conn: psycopg.Connection[Any], recs: Sequence[SourceRecord]
) -> dict[tuple[str, str], int]:
    rows = conn.execute(
        """SELECT s.source, s.source_record_id, s.person_id
             FROM unnest(%b::text[], %b::text[]) AS q(source, rid)
             JOIN person_source s ON s.source = q.source AND s.source_record_id = q.rid""",
        ([r.source for r in recs], [r.record_id for r in recs]),
    ).fetchall()
    found = {(r[0], r[1]): int(r[2]) for r in rows}
    if not found:
        return found
    survivors = resolve_many(conn, list(set(found.values())))
    return {k: survivors.get(v, v) for k, v in found.items()}


def _reserve_ids(conn: psycopg.Connection[Any], n: int) -> list[int]:
    if n == 0:
        return []
    rows = conn.execute(
        "SELECT nextval(pg_get_serial_sequence('person', 'id')) FROM generate_series(1, %s)", (n,)
    ).fetchall()
    return [int(r[0]) for r in reversed(rows)]  # popped from the end: ascending order


_PERSON_COPY = (
    "cccd", "cmnd", "eid", "passport", "bhxh", "bhyt", "temp_card", "full_name", "name_key",
    "family_key", "middle_key", "given_key", "name_sorted", "birth_date", "birth_precision", "sex", "phone",
    "address", "province_code", "commune_code", "commune_code_old", "commune_ambiguous",
    "mother_id", "phone_verified",
)  # fmt: skip


def _person_values(p: Prepared) -> tuple[Any, ...]:
    return (
        p.cccd, p.cmnd, p.eid, p.passport, p.bhxh, p.bhyt, p.temp_card, p.full_name, p.name_key,
        p.family_key, p.middle_key, p.given_key, p.name_sorted, p.birth_date, p.birth_precision, p.sex, p.phone,
        p.rec.address, p.province_code, p.commune_code, p.commune_code_old, p.commune_ambiguous,
        p.rec.mother_person_id, p.rec.source == PHONE_SOURCE and p.phone is not None,
    )  # fmt: skip


def _copy_persons(conn: psycopg.Connection[Any], rows: list[tuple[int, Prepared]]) -> None:
    if not rows:
        return
    cols = ", ".join(("id", *_PERSON_COPY))
    with conn.cursor().copy(f"COPY person ({cols}) FROM STDIN") as cp:
        for pid, p in rows:
            cp.write_row((pid, *_person_values(p)))


def _copy_sources(
    conn: psycopg.Connection[Any], rows: list[tuple[Prepared, str, int, float | None, str]]
) -> list[int]:
    if not rows:
        return []
    first = conn.execute(
        "SELECT nextval(pg_get_serial_sequence('person_source', 'id')) FROM generate_series(1, %s)",
        (len(rows),),
    ).fetchall()
    ids_ = [int(r[0]) for r in first]
    with conn.cursor().copy(
        "COPY person_source (id, person_id, source, source_record_id, demographics, score, rule)"
        " FROM STDIN"
    ) as cp:
        for sid, (p, demo, pid, score, rule) in zip(ids_, rows, strict=True):
            cp.write_row((sid, pid, p.rec.source, p.rec.record_id, demo, score, rule))
    return ids_


def _update_persons(conn: psycopg.Connection[Any], rows: list[tuple[int, Prepared]]) -> None:
    """Fill what a golden record lacks from records linked to it (one set-based UPDATE).

    Values already on the person win: a later source never overwrites them here (verification
    against the population register is what corrects demographics). Identity fields (phone,
    identifiers, address) are filled from the registers only (``REGISTER_SOURCES``).
    """
    if not rows:
        return
    cols: list[list[Any]] = [[] for _ in range(14)]
    for pid, p in rows:
        ident = (
            (p.cccd if p.cccd_ok else None, p.passport, p.bhxh_verified,
             p.bhyt if p.bhyt_ok else None, p.temp_card, p.phone, p.rec.address,
             p.province_code, p.commune_code, p.commune_code_old)
            if p.rec.source in REGISTER_SOURCES else (None,) * 10
        )  # fmt: skip
        if p.rec.source == PHONE_SOURCE:  # the register's phone is set by verify_from_register
            ident = (*ident[:5], None, *ident[6:])
        values = (pid, *ident, p.birth_date, p.birth_precision, p.full_name)
        for c, v in zip(cols, values, strict=True):
            c.append(v)
    # Only persons that gain something are written: most linked records (a known patient's
    # next visit) add nothing, and rewriting their row costs a new tuple and index entries.
    conn.execute(
        """WITH u AS (
             SELECT DISTINCT ON (id) * FROM unnest(%b::bigint[], %b::text[], %b::text[],
                 %b::text[], %b::text[], %b::text[], %b::text[], %b::text[], %b::text[],
                 %b::text[], %b::text[], %b::date[], %b::text[], %b::text[])
               AS x(id, cccd, passport, bhxh, bhyt, temp_card, phone, address, province_code,
                    commune_code, commune_code_old, birth_date, birth_precision, full_name)),
           n AS (SELECT p.id, coalesce(p.cccd, u.cccd) AS cccd,
               coalesce(p.passport, u.passport) AS passport, coalesce(p.bhxh, u.bhxh) AS bhxh,
               coalesce(u.bhyt, p.bhyt) AS bhyt, coalesce(p.temp_card, u.temp_card) AS temp_card,
               coalesce(p.phone, u.phone) AS phone, coalesce(p.address, u.address) AS address,
               coalesce(p.province_code, u.province_code) AS province_code,
               coalesce(p.commune_code, u.commune_code) AS commune_code,
               coalesce(p.commune_code_old, u.commune_code_old) AS commune_code_old,
               CASE WHEN p.full_name = lower(p.full_name) OR p.full_name IS NULL
                    THEN coalesce(u.full_name, p.full_name) ELSE p.full_name END AS full_name,
               CASE WHEN b.better THEN u.birth_date ELSE p.birth_date END AS birth_date,
               CASE WHEN b.better THEN u.birth_precision ELSE p.birth_precision END
                 AS birth_precision
             FROM u JOIN person p ON p.id = u.id
             -- a full birth date refines a missing one, or a month/year of the same year
             CROSS JOIN LATERAL (SELECT p.birth_date IS NULL OR (p.birth_precision <> 'D'
                 AND u.birth_precision = 'D'
                 AND extract(year FROM u.birth_date) = extract(year FROM p.birth_date))
               AS better) b)
           UPDATE person p SET cccd = n.cccd, passport = n.passport, bhxh = n.bhxh,
             bhyt = n.bhyt, temp_card = n.temp_card, phone = n.phone, address = n.address,
             province_code = n.province_code, commune_code = n.commune_code,
             commune_code_old = n.commune_code_old, full_name = n.full_name,
             birth_date = n.birth_date, birth_precision = n.birth_precision, updated_at = now()
           FROM n
           WHERE p.id = n.id AND (p.cccd, p.passport, p.bhxh, p.bhyt, p.temp_card, p.phone,
               p.address, p.province_code, p.commune_code, p.commune_code_old, p.full_name,
               p.birth_date, p.birth_precision) IS DISTINCT FROM (n.cccd, n.passport, n.bhxh,
               n.bhyt, n.temp_card, n.phone, n.address, n.province_code, n.commune_code,
               n.commune_code_old, n.full_name, n.birth_date, n.birth_precision)""",
        cols,
    )


def _copy_reviews(
    conn: psycopg.Connection[Any], rows: list[tuple[int, int, int, float, dict[str, Any]]]
) -> None:
    with conn.cursor().copy(
        "COPY match_review (person_source_id, person_id, candidate_id, score, evidence) FROM STDIN"
    ) as cp:
        for sid, pid, cand, score, ev in rows:
            cp.write_row((sid, pid, cand, score, orjson.dumps(ev).decode()))


def _refresh_sources(conn: psycopg.Connection[Any], rows: list[Prepared]) -> None:
    """Store the latest demographics of records linked earlier (a patient's next visit), in
    one statement, writing only the rows whose demographics changed."""
    latest = {(p.rec.source, p.rec.record_id): p for p in rows}
    conn.execute(
        """UPDATE person_source s SET demographics = u.d
           FROM unnest(%b::text[], %b::text[], %b::jsonb[]) AS u(src, rid, d)
           WHERE s.source = u.src AND s.source_record_id = u.rid
             AND s.demographics IS DISTINCT FROM u.d""",
        (
            [k[0] for k in latest],
            [k[1] for k in latest],
            [Jsonb(p.demographics()) for p in latest.values()],
        ),
    )


def refresh_statistics(conn: psycopg.Connection[Any]) -> None:
    """Refresh the planner's statistics of the registry after a bulk load (see
    ``records.refresh_statistics``)."""
    conn.execute("ANALYZE person, person_source, person_name_count")


def reclaim_persons(conn: psycopg.Connection[Any]) -> None:
    """After a bulk load: make the space of the person rows it replaced reusable (a plain
    VACUUM, no lock that stops readers or writers; outside any transaction, so ``conn`` must
    be idle). A first load COPYs each person then updates it (its household, the next
    register's fill), each update leaving the old row behind: without this the next register
    grows the table instead of reusing it (measured, 20,000 persons after the population and
    insurance first loads: 15.8 MB of heap and 30.8 MB with indexes without, 10.7 and 23.7
    with; the population's own updates still take one row's space more per person)."""
    conn.autocommit = True
    try:
        conn.execute("VACUUM person")  # (ANALYZE: refresh_statistics)
    finally:
        conn.autocommit = False


def birth_year_range(d: date | None) -> tuple[date, date] | None:
    if d is None:
        return None
    return date(d.year, 1, 1), date(d.year + 1, 1, 1)
