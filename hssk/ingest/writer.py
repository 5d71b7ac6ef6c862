"""The writer: one batch of mapped units linked to their persons, stored, and what could not be
taken quarantined, in the caller's transaction (a job commits it with its checkpoint)."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from operator import attrgetter
from pathlib import Path
from typing import Any

import psycopg

from hssk import registry
from hssk.access import PLATFORM
from hssk.db.textlist import SPLIT, joined, splittable
from hssk.ingest import kinds, station_map
from hssk.ingest.jobstore import Summary
from hssk.ingest.model import Item, Problem, Unit, attach
from hssk.ingest.person_updates import died_at, record_deaths, record_households
from hssk.kernel import clock
from hssk.records import NewResource, RefusedMove, bulk_upsert, id_for_source_key, owners, refs


def _new_receipt() -> dict[str, Any]:
    return {
        "records": 0,
        "stored": 0,
        "unchanged": 0,
        "quarantined": 0,
        "first": None,
        "last": None,
        "file": "",
    }


@dataclass
class _Batch:
    errors: list[tuple[Unit, Problem, str | None]] = field(default_factory=list)
    notes: list[tuple[Unit, Problem, str | None]] = field(default_factory=list)  # kept, stored
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def receipt(self, unit: Unit) -> dict[str, Any]:
        r = self.receipts.setdefault(unit.facility or "", _new_receipt())
        r["file"] = r["file"] or unit.file
        return r


def write_units(
    conn: psycopg.Connection[Any],
    job_id: int | None,
    kind: str,
    units: list[Unit],
    summary: Summary,
    *,
    files: int = 0,
    linked: Callable[[], None] | None = None,
) -> list[Unit]:
    """Link, store and quarantine one batch (in the caller's transaction). Returns the units
    that were stored. ``linked``: called once the batch's persons are linked, before anything
    is stored (a job commits there, which releases the link lock)."""
    b = _Batch()
    good = _sort(units, b)
    own_writer = kinds.kind(kind).write
    if own_writer is not None:
        n = own_writer(conn, good)
        if n:
            summary.created["unit"] += n
        summary.skipped += len(good) - n
    else:
        good = _link_and_store(conn, kind, good, b, summary, linked)
    t2 = time.perf_counter()
    _quarantine(conn, job_id, kind, b)
    summary.quarantined += len(b.errors)
    summary.records += len(units)
    if job_id is not None:
        _receipts(conn, job_id, kind, b, files)
    summary.timings["quarantine+receipts"] += time.perf_counter() - t2
    return good


def _sort(units: list[Unit], b: _Batch) -> list[Unit]:
    """The units to store; the others, and the rows and notes of the good ones, go to the
    quarantine. Every unit counts in its facility's receipt."""
    good: list[Unit] = []
    for u in units:
        r = b.receipt(u)
        r["records"] += 1
        if u.visit_date:
            r["first"] = min(filter(None, (r["first"], u.visit_date)))
            r["last"] = max(filter(None, (r["last"], u.visit_date)))
        if u.problems:
            b.errors.append((u, u.problems[0], u.raw))
            continue
        good.append(u)
        for prob, raw in u.row_problems:
            b.errors.append((u, prob, raw))
        b.notes += [(u, w, None) for w in u.warnings]
    return good


def _link_and_store(
    conn: psycopg.Connection[Any],
    kind: str,
    good: list[Unit],
    b: _Batch,
    summary: Summary,
    linked: Callable[[], None] | None,
) -> list[Unit]:
    """Persons linked (then ``linked`` called), deaths and households recorded, resources
    stored; the units stored."""
    t0 = time.perf_counter()
    good = _skip_unchanged(conn, kind, good, b, summary)
    _link(conn, good, b, summary)
    if linked is not None:
        linked()
    t1 = time.perf_counter()
    summary.timings["link"] += t1 - t0
    for u, p in station_map.batch_problems(conn, good, clock.today()):
        _fail(u, b, p)
    good = _deaths(conn, [u for u in good if not u.problems], b)
    _households(conn, good)
    _store(conn, good, b, summary)
    _remember(conn, kind, good)
    summary.timings["store"] += time.perf_counter() - t1
    return good


def _skip_unchanged(
    conn: psycopg.Connection[Any], kind: str, good: list[Unit], b: _Batch, summary: Summary
) -> list[Unit]:
    """Drop units whose content is identical to what was stored last time (nothing to do)."""
    keyed = {f"{kind}|{u.key}": u for u in good if u.digest}
    if not keyed:
        return good
    rows = conn.execute(
        f"SELECT key, encode(digest, 'hex') FROM ingest_digest WHERE key = ANY({SPLIT})",
        (joined(keyed),),
    ).fetchall()
    same = {k for k, d in rows if keyed[k].digest == d}
    out = []
    for u in good:
        if u.digest and f"{kind}|{u.key}" in same:
            summary.skipped += len(u.items)
            b.receipt(u)["unchanged"] += len(u.items)
        else:
            out.append(u)
    return out


def _remember(conn: psycopg.Connection[Any], kind: str, stored: list[Unit]) -> None:
    """Record the digests of the units just stored (same transaction as the data)."""
    pairs = {f"{kind}|{u.key}": u.digest for u in stored if u.digest and not u.problems}
    # a key holding the list separator is not remembered: its next send is simply rewritten
    pairs = {k: d for k, d in pairs.items() if splittable(k)}
    if not pairs:
        return
    conn.execute(
        f"""INSERT INTO ingest_digest (key, digest)
            SELECT k, decode(d, 'hex') FROM unnest({SPLIT}, {SPLIT}) AS x(k, d)
            ON CONFLICT (key) DO UPDATE SET digest = excluded.digest, updated_at = now()
            WHERE ingest_digest.digest IS DISTINCT FROM excluded.digest""",
        (joined(pairs), joined(pairs.values())),  # type: ignore[arg-type]
    )


def _store(conn: psycopg.Connection[Any], good: list[Unit], b: _Batch, summary: Summary) -> None:
    items: list[NewResource] = []
    per_fac: Counter[str] = Counter()
    unit_of: dict[tuple[str, str], Unit] = {}
    for u in good:
        for it in u.items:
            item = _resource(u, it)
            items.append(item)
            rtype = item.body["resourceType"]
            rid = item.body.get("id") or id_for_source_key(rtype, item.source_key or "")
            unit_of[(rtype, rid)] = u
            per_fac[u.facility or ""] += 1
    if not items:
        return
    res = bulk_upsert(conn, items)
    _note_refused_moves(res.refused_moves, unit_of, b)
    summary.created.update(res.created)
    summary.updated.update(res.updated)
    summary.skipped += res.unchanged
    changed = sum(res.created.values()) + sum(res.updated.values())
    total = sum(per_fac.values())
    for fac, n in per_fac.items():  # a batch is mostly one facility: share by item count
        b.receipts[fac]["stored"] += round(changed * n / total)
        b.receipts[fac]["unchanged"] += round(res.unchanged * n / total)


def _note_refused_moves(
    moves: list[RefusedMove], unit_of: dict[tuple[str, str], Unit], b: _Batch
) -> None:
    """A re-sent record now naming another person leaves what is stored with its person; the
    record is noted (shown to the facility) with what it asked (rule record.moved)."""
    noted: set[int] = set()
    for m in moves:
        u = unit_of[(m.type, m.id)]
        if id(u) in noted:
            continue
        noted.add(id(u))
        b.notes.append((u, Problem(
            "record.moved", f"{m.type}/{m.id}", None,
            f"already stored for another person (#{m.owner}); sent now for #{m.asked}: left "
            "with its person. If the patient was wrong, ask the Department to correct the "
            "person in the registry",
            f"đã lưu cho một người khác (#{m.owner}); lần gửi này ghi cho #{m.asked}: giữ "
            "nguyên. Nếu nhầm người bệnh, đề nghị Sở Y tế sửa thông tin người trong sổ đăng ký",
        ), u.raw))  # fmt: skip


def _resource(u: Unit, it: Item) -> NewResource:
    pid: int | None = None
    if it.who == "main":
        pid = u.person_id
    elif it.who and it.who.startswith("newborn:"):
        pid = u.newborn_ids.get(int(it.who.split(":")[1]))
    body = attach(it.body, pid) if pid is not None and it.rendered is None else it.body
    # a check-in (only_new) never reopens a visit already on record
    return NewResource(
        body, pid, it.source_key, u.facility, it.sensitivity, u.only_new, it.rendered
    )


def _link(conn: psycopg.Connection[Any], good: list[Unit], b: _Batch, summary: Summary) -> None:
    need = [u for u in good if u.person is not None and u.person_id is None]
    # The same source record repeats (a child's doses): link each distinct one once.
    first: dict[tuple[Any, ...], Unit] = {}
    for u in need:
        first.setdefault(_record_key(u.person), u)
    unique = [u.person for u in first.values() if u.person is not None]
    results = registry.link_many(conn, unique, [u.prepared for u in first.values()])
    by_key = {_record_key(r): res for r, res in zip(unique, results, strict=True)}
    for u in need:
        u.person_id = by_key[_record_key(u.person)].person_id
        summary.persons += 1
    summary.persons_created += sum(int(r.created) for r in results)
    _resolve_known(conn, good, b)
    babies: list[tuple[Unit, int, registry.SourceRecord]] = []
    for u in good:
        for n, nb in enumerate(u.newborns):
            babies.append((u, n, replace(nb, mother_person_id=u.person_id)))
    if babies:
        res = registry.link_many(conn, [nb for _, _, nb in babies])
        for (u, n, _), r in zip(babies, res, strict=True):
            u.newborn_ids[n] = r.person_id
            summary.persons += 1
            summary.persons_created += int(r.created)


_RECORD_FIELDS = attrgetter(*(f.name for f in fields(registry.SourceRecord)))


def _record_key(rec: registry.SourceRecord | None) -> tuple[Any, ...]:
    assert rec is not None
    return _RECORD_FIELDS(rec)  # type: ignore[no-any-return]


def _resolve_golden(conn: psycopg.Connection[Any], good: list[Unit]) -> None:
    """A resource referring to ``Patient/mpi-N`` belongs to person N (its survivor if merged);
    an N with no person is left to the source lookup, which reports it unknown."""
    golden = [
        (u, n)
        for u in good
        if u.person_id is None
        and u.person_source
        and (n := refs.golden_id(u.person_source[1])) is not None
    ]
    if not golden:
        return
    survivors = registry.resolve_many(conn, {n for _, n in golden})
    for u, n in golden:
        u.person_id = survivors.get(n)


def _resolve_known(conn: psycopg.Connection[Any], good: list[Unit], b: _Batch) -> None:
    """Units whose person is known from earlier loads: a FHIR resource pointing at a Patient
    of the same source or at a golden record (``Patient/mpi-N``, as HSSK serves and writes
    them), or detail lines re-sent without their visit header (the person is the one of the
    visit's Encounter)."""
    _resolve_golden(conn, good)
    _resolve_by_source(conn, good, b)
    _resolve_by_visit(conn, good, b)


def _resolve_by_source(conn: psycopg.Connection[Any], good: list[Unit], b: _Batch) -> None:
    """A resource naming a Patient of its source: the person that Patient was linked to."""
    by_source = [u for u in good if u.person_id is None and u.person_source]
    if not by_source:
        return
    sources = [u.person_source for u in by_source if u.person_source]
    rows = conn.execute(
        "SELECT source, source_record_id, person_id FROM person_source"
        " WHERE (source, source_record_id) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
        ([s for s, _ in sources], [r for _, r in sources]),
    ).fetchall()
    found = {(r[0], r[1]): r[2] for r in rows}
    for u in by_source:
        assert u.person_source is not None
        pid = found.get(u.person_source)
        if pid is not None:
            u.person_id = int(pid)
            continue
        ref = u.person_source[1]
        _fail(u, b, Problem("patient.unknown", "subject", ref,
                            f"Patient/{ref} is not known: send the Patient first.",
                            f"Chưa có Patient/{ref}: cần gửi Patient trước."))  # fmt: skip


def _resolve_by_visit(conn: psycopg.Connection[Any], good: list[Unit], b: _Batch) -> None:
    """Detail lines of a hồ sơ re-sent without its visit header: the person of the visit's
    Encounter."""
    orphans = [
        u
        for u in good
        if u.person_id is None
        and not u.person_source
        and u.kind == "xml130"
        and any(i.who == "main" for i in u.items)
    ]
    if not orphans:
        return
    keys = {id_for_source_key("Encounter", f"{u.key}|XML1"): u for u in orphans}
    # through the store's locator (one partition per visit, not a scan of every partition)
    found = owners(conn, [("Encounter", rid) for rid in keys])
    written = {rid: o.person_id for (_, rid), o in found.items()}
    # the survivor of the person the encounter was written under (merges move no rows)
    survivors = registry.resolve_many(conn, {p for p in written.values() if p is not None})
    enc = {rid: survivors.get(p, p) for rid, p in written.items() if p is not None}
    for rid, u in keys.items():
        if enc.get(rid) is not None:
            u.person_id = int(enc[rid])
            continue
        _fail(u, b, Problem("encounter.unknown", "MA_LK", u.key,
                            f"no visit {u.key} is on record: send the hồ sơ with its XML1 first.",
                            f"Chưa có lượt khám {u.key}: cần gửi hồ sơ kèm XML1 trước."))  # fmt: skip


def _fail(u: Unit, b: _Batch, p: Problem) -> None:
    u.problems.append(p)
    b.errors.append((u, p, u.raw))


def _deaths(conn: psycopg.Connection[Any], good: list[Unit], b: _Batch) -> list[Unit]:
    """Record the batch's deaths on the persons (before anything is stored: a unit whose
    death the registry refuses is held back whole). Returns the units still good."""
    by_report: dict[tuple[str, str], Unit] = {}
    reports: list[registry.Death] = []
    for u in good:
        if u.deceased_at and u.person_id and kinds.kind(u.kind).death_element:
            by_report[(u.kind, u.key)] = u
            reports.append(registry.Death(u.person_id, died_at(u.deceased_at), u.kind, u.key))
    if not reports:
        return good
    out = record_deaths(conn, PLATFORM, reports, basis="ingest-job")
    for r in out.refused:
        u = by_report[(r.death.source, r.death.source_ref)]
        element = kinds.kind(u.kind).death_element
        _fail(u, b, Problem(r.rule, element, u.deceased_at, r.en, r.vi))
    return [u for u in good if not u.problems]


def _households(conn: psycopg.Connection[Any], good: list[Unit]) -> None:
    """Households the batch's registers and stations list, applied to the persons."""
    moves = [
        registry.HouseholdMove(u.person_id, u.household.code, u.household.action)
        for u in good
        if u.household and u.person_id
    ]
    if moves:
        record_households(conn, PLATFORM, moves, basis="ingest-job")


def _quarantine(conn: psycopg.Connection[Any], job_id: int | None, kind: str, b: _Batch) -> None:
    """The batch's quarantined records, and the notes on records stored all the same (status
    'noted': e.g. a table read as UTF-8 against its declaration)."""
    if not b.errors and not b.notes:
        return
    rows = [(e, "quarantined") for e in b.errors] + [(n, "noted") for n in b.notes]
    with conn.cursor().copy(
        "COPY ingest_error (job_id, file, record, element, value, rule, reason, reason_vi, raw,"
        " kind, facility, status) FROM STDIN"
    ) as copy:
        for (u, p, raw), status in rows:
            others = [q for q in u.problems if q is not p]
            reason = p.reason + (
                "" if not others else " | " + "; ".join(q.reason for q in others[:9])
            )
            vi = p.vi + ("" if not others else " | " + "; ".join(q.vi for q in others[:9] if q.vi))
            copy.write_row(
                (
                    job_id,
                    u.file,
                    u.key,
                    p.element,
                    _nul(p.value),
                    p.rule,
                    _nul(reason[:4000]),
                    _nul(vi[:4000]) or None,
                    _nul(raw),
                    kind,
                    u.facility,
                    status,
                )
            )
            if status == "quarantined":
                b.receipt(u)["quarantined"] += 1


def _nul(text: str | None) -> str | None:
    return text.replace("\x00", "\\u0000") if text else text


def _receipts(conn: psycopg.Connection[Any], job_id: int, kind: str, b: _Batch, files: int) -> None:
    """Add this batch's counts to the job's per-facility receipts (one set-based statement).

    A receipt is received when its job was: every batch gives the same ``received_at``, part
    of the receipt's key (the receipts are partitioned by its month, migration 0304)."""
    if not b.receipts:
        return
    facs = sorted(b.receipts)
    col = [[b.receipts[f][k] for f in facs] for k in
           ("file", "first", "last", "records", "stored", "unchanged", "quarantined")]  # fmt: skip
    conn.execute(
        """INSERT INTO ingest_receipt AS x (job_id, kind, facility, file, files, first_visit,
               last_visit, records, stored, unchanged, quarantined, received_at)
           SELECT %s, %s, f, fl, %s, fv, lv, r, s, u, q,
                  coalesce((SELECT created_at FROM ingest_job WHERE id = %s), now())
           FROM unnest(%s::text[], %s::text[], %s::date[], %s::date[], %s::int[], %s::int[],
                       %s::int[], %s::int[]) AS t(f, fl, fv, lv, r, s, u, q)
           ON CONFLICT (job_id, facility, received_at) DO UPDATE SET
             first_visit = LEAST(x.first_visit, excluded.first_visit),
             last_visit = GREATEST(x.last_visit, excluded.last_visit),
             files = GREATEST(x.files, excluded.files),
             records = x.records + excluded.records, stored = x.stored + excluded.stored,
             unchanged = x.unchanged + excluded.unchanged,
             quarantined = x.quarantined + excluded.quarantined, updated_at = now()""",
        (job_id, kind, files, job_id, facs, *col),
    )


class Duplicates:
    """Records whose key already appeared in the same file are quarantined (the first one
    counts). Keys of the current file only are kept (a hash each)."""

    def __init__(self) -> None:
        self.file = ""
        self.anonymous = "#"  # key prefix of records without a key of their own in this file
        self.seen: set[int] = set()

    def check(self, kind: str, units: list[Unit]) -> None:
        for u in units:
            if u.file != self.file:  # (a Path per record cost 8 % of the writer on doses)
                self.file, self.seen = u.file, set()
                self.anonymous = Path(u.file).name + "#"
            if u.problems or not u.key or u.key.startswith(self.anonymous):
                continue
            h = hash(u.key)
            if h not in self.seen:
                self.seen.add(h)
                continue
            u.problems.append(Problem(
                "duplicate-key", kinds.kind(kind).key_element, u.key,
                f"record key {u.key} appears more than once in {Path(u.file).name}; the first "
                "was taken, send a correction separately.",
                f"khóa {u.key} xuất hiện nhiều lần trong tệp {Path(u.file).name}; đã nhận bản "
                "đầu tiên, hãy gửi bản sửa riêng.",
            ))  # fmt: skip
