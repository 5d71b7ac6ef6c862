"""Completeness of each person's record per catalog ("66/73"), kept up to date incrementally.

Writers only mark persons dirty (``on_records_changed``, one set-based INSERT per batch of
changes); ``recompute`` takes dirty persons in batches, evaluates every catalog over their
bundle and upserts the scores with COPY, the missing fields as numbers of
``completeness_field`` (migration 0590; rows ~5 times smaller than with the codes). Registry
changes queue their persons by trigger (migration 0503); ``mark_stale`` is the repair that
reads every person. Triggers also keep the per-area rollups the aggregates below read
(``hssk.monitor.rollups``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg

from hssk.catalog import bundle, fastpath
from hssk.catalog.catalogs import Catalog, catalogs
from hssk.db import Database, deltas

_COUNTERS = """
WITH ch AS (  -- one row per (person, facility) of the batch, with its number of changes
  SELECT * FROM unnest(%(pids)s::bigint[], %(units)s::text[], %(n)s::int[])
    AS c(person_id, source_unit, n)),
presence AS (
  INSERT INTO record_presence AS x (person_id, first_change, last_change)
  SELECT DISTINCT person_id, now(), now() FROM ch WHERE person_id IS NOT NULL ORDER BY 1
  ON CONFLICT (person_id) DO UPDATE SET last_change = greatest(x.last_change, excluded.last_change)
  RETURNING 1),
activity AS (  -- append-only deltas: no row shared between concurrent batches
  INSERT INTO facility_activity (facility, day, changes)
  SELECT source_unit, now()::date, sum(n) FROM ch WHERE source_unit IS NOT NULL GROUP BY 1
  RETURNING 1),
seen AS (
  INSERT INTO facility_person AS x (facility, person_id, last_seen)
  SELECT DISTINCT source_unit, person_id, now() FROM ch
  WHERE source_unit IS NOT NULL AND person_id IS NOT NULL ORDER BY 1, 2
  ON CONFLICT (facility, person_id) DO UPDATE SET last_seen = greatest(x.last_seen, excluded.last_seen)
  RETURNING 1)
INSERT INTO catalog_dirty (person_id)
SELECT DISTINCT person_id FROM ch WHERE person_id IS NOT NULL
"""
# Upserts take their rows in key order, so two batches lock shared rows in the same order
# within this statement. The rescoring queue takes no lock at all (append-only, migration
# 0504): a transaction that queued persons in an earlier statement (the registry's trigger)
# would otherwise wait on another's keys in the opposite order.


def on_records_changed(conn: psycopg.Connection[Any], changes: Sequence[Any]) -> None:
    """Record-store hook (one statement per batch): mark the persons dirty and keep the
    supervision counters (who has a record, what each facility sent per day, whom it saw)."""
    # A Patient change is the registry's (a death): not a clinical record, so it counts for
    # none of these; mark_stale recomputes the person's completeness.
    changes = [c for c in changes if c.type != "Patient"]
    if not changes:
        return
    # every change of a transaction is stamped with its now(): counting per (person,
    # facility) here spares the database a look-up of each changed resource
    groups = Counter((c.person_id, c.source_unit) for c in changes)
    conn.execute(
        _COUNTERS.encode(),
        {
            "pids": [k[0] for k in groups],
            "units": [k[1] for k in groups],
            "n": list(groups.values()),
        },
    )


def compact_activity(conn: psycopg.Connection[Any]) -> None:
    """Fold the per-batch deltas of ``facility_activity`` and of the completeness rollups
    into one row per key (rows whose persons sum to nothing go)."""
    cell = "province_code, commune_code, commune_code_old, catalog"
    persons = "sum(persons) = 0"
    deltas.fold(conn, "facility_activity", "facility, day", ("changes",))
    deltas.fold(conn, "completeness_rollup", f"{cell}, bin",
                ("persons", "filled", "total", "ratio"), nothing=persons)  # fmt: skip
    deltas.fold(conn, "completeness_missing_rollup", f"{cell}, field", ("persons",))
    deltas.fold(conn, "completeness_facility_rollup", "facility, catalog",
                ("persons", "filled", "total"), nothing=persons)  # fmt: skip


def rebuild_counters(conn: psycopg.Connection[Any]) -> None:
    """Recompute the counters from the record store (repair, or after back-dated loads)."""
    conn.execute("TRUNCATE record_presence, facility_activity, facility_person")
    conn.execute(
        """INSERT INTO record_presence (person_id, first_change, last_change)
           SELECT person_id, min(last_updated), max(last_updated) FROM resource
           WHERE person_id IS NOT NULL AND NOT deleted GROUP BY person_id"""
    )
    conn.execute(
        """INSERT INTO facility_activity (facility, day, changes)
           SELECT source_unit, last_updated::date, count(*) FROM resource
           WHERE source_unit IS NOT NULL GROUP BY 1, 2"""
    )
    conn.execute(
        """INSERT INTO facility_person (facility, person_id, last_seen)
           SELECT source_unit, person_id, max(last_updated) FROM resource
           WHERE source_unit IS NOT NULL AND person_id IS NOT NULL GROUP BY 1, 2"""
    )


def mark_dirty(conn: psycopg.Connection[Any], person_ids: Iterable[int]) -> None:
    """Queue persons for recomputation."""
    ids = sorted(set(person_ids))
    if ids:
        conn.execute(
            "INSERT INTO catalog_dirty (person_id) SELECT unnest(%s::bigint[])",
            (ids,),
        )


def mark_stale(conn: psycopg.Connection[Any]) -> int:
    """Queue persons never scored, or changed in the registry since their last score.

    A repair (it reads every person): registry changes queue their persons by trigger."""
    cur = conn.execute(
        """INSERT INTO catalog_dirty (person_id)
           SELECT p.id FROM person p
           LEFT JOIN (SELECT person_id, min(computed_at) AS at FROM completeness
                      GROUP BY person_id) c ON c.person_id = p.id
           WHERE p.merged_into IS NULL AND (c.at IS NULL OR p.updated_at > c.at)"""
    )
    return cur.rowcount


def score(cats: Sequence[Catalog], bundles: dict[int, dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Rows (person_id, catalog, version, filled, total, missing) for each person × catalog."""
    rows: list[tuple[Any, ...]] = []
    for pid, b in bundles.items():
        groups = fastpath.group(b)
        cache: dict[str, bool] = {}
        for cat in cats:
            missing = cat.missing(b, groups, cache)
            rows.append((pid, cat.name, cat.version, cat.size - len(missing), cat.size, missing))
    return rows


_STAGE = """CREATE TEMP TABLE IF NOT EXISTS completeness_scores (
    person_id bigint, catalog text, version text, filled integer, total integer,
    missing smallint[]
) ON COMMIT DELETE ROWS"""


def field_ids(conn: psycopg.Connection[Any], codes: Iterable[str]) -> dict[str, int]:
    """The number of each field code in ``completeness_field`` (migration 0590), new codes
    numbered first. Only codes not there yet are inserted: a conflict would still use up a
    number of the smallint sequence."""
    wanted = sorted(set(codes))
    conn.execute(
        """INSERT INTO completeness_field (code)
           SELECT c FROM unnest(%s::text[]) AS c
           WHERE NOT EXISTS (SELECT 1 FROM completeness_field f WHERE f.code = c)
           ORDER BY 1 ON CONFLICT (code) DO NOTHING""",
        (wanted,),
    )
    rows = conn.execute(
        "SELECT code, id FROM completeness_field WHERE code = ANY(%s)", (wanted,)
    ).fetchall()
    return {code: int(i) for code, i in rows}


def recompute_batch(conn: psycopg.Connection[Any], batch: int = 500) -> int:
    """Recompute up to ``batch`` dirty persons in the caller's transaction; returns how many."""
    # queue rows by their address (a Tid scan), so two jobs never wait on each other's rows
    ids = sorted(
        {
            r[0]
            for r in conn.execute(
                """DELETE FROM catalog_dirty WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM catalog_dirty ORDER BY marked_at
                     LIMIT %s FOR UPDATE SKIP LOCKED))
                   RETURNING person_id""",
                (batch,),
            )
        }
    )
    if not ids:
        return 0
    # the same persons queued again by other changes: done by this batch too (before their
    # records are read, so what those changes wrote is scored); rows another job holds stay
    conn.execute(
        """DELETE FROM catalog_dirty WHERE ctid = ANY(ARRAY(
             SELECT ctid FROM catalog_dirty WHERE person_id = ANY(%s)
             FOR UPDATE SKIP LOCKED))""",
        (ids,),
    )
    _write_scores(conn, ids)
    return len(ids)


def _write_scores(conn: psycopg.Connection[Any], ids: Sequence[int]) -> None:
    """Score ``ids`` over their current record and upsert the rows (COPY into a stage, one
    INSERT); persons gone from the registry lose their scores."""
    bundles = bundle.bundles(conn, ids, allowed_sensitivity=None)
    rows = score(list(catalogs().values()), bundles)
    numbers = field_ids(conn, (code for row in rows for code in row[5]))
    conn.execute(_STAGE)
    with conn.cursor().copy(
        "COPY completeness_scores (person_id, catalog, version, filled, total, missing) FROM STDIN"
    ) as copy:
        for row in rows:
            copy.write_row((*row[:5], [numbers[code] for code in row[5]]))
    conn.execute(
        """INSERT INTO completeness AS c (person_id, catalog, version, filled, total, missing,
               computed_at)
           SELECT person_id, catalog, version, filled, total, missing, now()
           FROM completeness_scores
           ON CONFLICT (person_id, catalog) DO UPDATE SET version = excluded.version,
             filled = excluded.filled, total = excluded.total, missing = excluded.missing,
             computed_at = excluded.computed_at"""
    )
    conn.execute(
        """DELETE FROM record_presence x WHERE x.person_id = ANY(%s) AND NOT EXISTS (
             SELECT 1 FROM resource r WHERE r.person_id = x.person_id AND NOT r.deleted)""",
        (ids,),
    )
    # Persons gone from the registry (deleted, merged) lose their scores.
    gone = sorted(set(ids) - set(bundles))
    if gone:
        conn.execute("DELETE FROM completeness WHERE person_id = ANY(%s)", (gone,))


@dataclass
class JobResult:
    persons: int = 0
    batches: int = 0
    seconds: float = 0.0
    compacted: int = 0  # times the rollups' deltas were folded on the way


# Every scored batch appends rollup deltas (~120 rows per person: fields missing per area cell
# and per facility, 2.3 M rows for 20 k persons). Folded only at the end, a rescoring of
# Hà Nội's 10.5 M persons would pile up ~1.2 billion of them (~85 GB) first; folded every
# this many persons, they stay under ~6 M rows.
COMPACT_EVERY = 50_000

Compactor = Callable[[psycopg.Connection[Any]], object]


def _compact_on_the_way(db: Database, result: JobResult, since: int, compact: Compactor) -> int:
    """Fold the deltas once ``COMPACT_EVERY`` persons were scored since ``since`` (the count
    at the last folding); returns the new count to start from."""
    if result.persons - since < COMPACT_EVERY:
        return since
    with db.connection() as conn:
        compact(conn)
    result.compacted += 1
    return result.persons


def run(
    db: Database,
    *,
    batch: int = 500,
    stale: bool = False,
    max_batches: int | None = None,
    compact: Compactor = compact_activity,
) -> JobResult:
    """The recompute job: drain the dirty queue, one committed transaction per batch.

    ``compact`` folds the rollups' deltas before and every ``COMPACT_EVERY`` persons (the
    monitor passes its own, which also folds the rollups its triggers keep)."""
    started = time.perf_counter()
    result = JobResult()
    with db.connection() as conn:
        compact(conn)
        if stale:
            mark_stale(conn)
    since = 0
    while max_batches is None or result.batches < max_batches:
        with db.connection() as conn:
            n = recompute_batch(conn, batch)
        if n == 0:
            break
        result.persons += n
        result.batches += 1
        since = _compact_on_the_way(db, result, since, compact)
    result.seconds = time.perf_counter() - started
    return result


def rescore_all(
    db: Database, *, chunk: int = 2000, compact: Compactor = compact_activity
) -> JobResult:
    """A full rescoring (after a first load, or a new catalog): every person of the registry
    scored in ranges of ids, one committed transaction per range, without draining the
    queue person by person. Gives the rows the queue's job would give for everyone queued.

    Each range also takes its persons off the queue (the rows there when it runs: a change
    queued after that stays queued for the job). ``compact``: as for ``run``."""
    started = time.perf_counter()
    result = JobResult()
    with db.connection() as conn:
        compact(conn)
        row = conn.execute("SELECT coalesce(min(id), 0), coalesce(max(id), -1) FROM person")
        lo, hi = row.fetchone() or (0, -1)
    since = 0
    for start in range(lo, hi + 1, chunk):
        with db.connection() as conn:
            ids = [r[0] for r in conn.execute(
                "SELECT id FROM person WHERE id >= %s AND id < %s ORDER BY id",
                (start, start + chunk),
            ).fetchall()]  # fmt: skip
            if not ids:
                continue
            conn.execute(
                """DELETE FROM catalog_dirty WHERE ctid = ANY(ARRAY(
                     SELECT ctid FROM catalog_dirty WHERE person_id = ANY(%s)
                     FOR UPDATE SKIP LOCKED))""",
                (ids,),
            )
            _write_scores(conn, ids)
        result.persons += len(ids)
        result.batches += 1
        since = _compact_on_the_way(db, result, since, compact)
    with db.connection() as conn:  # scores of persons no longer in the registry
        conn.execute(
            """DELETE FROM completeness c
               WHERE NOT EXISTS (SELECT 1 FROM person p WHERE p.id = c.person_id)"""
        )
    result.seconds = time.perf_counter() - started
    return result


# --- aggregates ----------------------------------------------------------------------------
LEVELS = ("province", "commune", "district_old", "commune_old", "facility")


@dataclass(frozen=True)
class AreaFilter:
    """Restricts aggregates to persons of a province, or of some communes (new or old codes)."""

    province: str | None = None
    communes: tuple[str, ...] = ()
    communes_old: tuple[str, ...] = ()

    def sql(self, alias: str = "p") -> tuple[str, list[Any]]:
        """Condition on ``person`` rows (living golden records of the area)."""
        cells, params = self.cells(alias)
        return f"{alias}.merged_into IS NULL AND {cells}", params

    def cells(self, alias: str) -> tuple[str, list[Any]]:
        """Condition on rows keyed by area cell (province_code, commune_code,
        commune_code_old): the rollups."""
        parts: list[str] = ["true"]
        params: list[Any] = []
        if self.province:
            parts.append(f"{alias}.province_code = %s")
            params.append(self.province)
        if self.communes or self.communes_old:
            parts.append(f"({alias}.commune_code = ANY(%s) OR {alias}.commune_code_old = ANY(%s))")
            params += [list(self.communes), list(self.communes_old)]
        return " AND ".join(parts), params


@dataclass
class AreaScore:
    code: str | None
    persons: int
    filled: int
    total: int

    @property
    def ratio(self) -> float:
        return self.filled / self.total if self.total else 0.0


def aggregate(
    conn: psycopg.Connection[Any], catalog: str, level: str, area: AreaFilter | None = None
) -> list[AreaScore]:
    """Completeness summed per area, read from the rollups (a few rows per commune).

    ``facility``: per facility over the persons it sent data about; with an area, the
    facilities located in it."""
    if level not in LEVELS:
        raise ValueError(f"level must be one of {', '.join(LEVELS)}, not '{level}'")
    area = area or AreaFilter()
    if level == "facility":
        cond, params = area.cells("u")
        sql = f"""SELECT r.facility, sum(r.persons), sum(r.filled), sum(r.total)
                  FROM completeness_facility_rollup r
                  WHERE r.catalog = %s AND r.facility IN (
                    SELECT u.facility_code FROM unit u WHERE {cond})
                  GROUP BY 1 HAVING sum(r.persons) <> 0 ORDER BY 1"""
        if area == AreaFilter():  # everything: facilities not (or no longer) in the unit list too
            sql = """SELECT r.facility, sum(r.persons), sum(r.filled), sum(r.total)
                     FROM completeness_facility_rollup r WHERE r.catalog = %s
                     GROUP BY 1 HAVING sum(r.persons) <> 0 ORDER BY 1"""
            params = []
        rows = conn.execute(sql.encode(), [catalog, *params]).fetchall()
        return [AreaScore(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows]
    column = {
        "province": "r.province_code",
        "commune": "r.commune_code",
        "commune_old": "r.commune_code_old",
        "district_old": "r.commune_code_old",
    }[level]
    cond, params = area.cells("r")
    sql = f"""SELECT {column}, sum(r.persons), sum(r.filled), sum(r.total)
              FROM completeness_rollup r
              WHERE r.catalog = %s AND {cond} GROUP BY 1 HAVING sum(r.persons) <> 0
              ORDER BY 1"""
    rows = conn.execute(sql.encode(), [catalog, *params]).fetchall()
    scores = [AreaScore(r[0], int(r[1]), int(r[2]), int(r[3])) for r in rows]
    if level != "district_old":
        return scores
    from hssk.catalog.areas import old_district_of

    rolled: dict[str | None, AreaScore] = {}
    for s in scores:
        code = old_district_of(s.code)
        acc = rolled.setdefault(code, AreaScore(code, 0, 0, 0))
        acc.persons += s.persons
        acc.filled += s.filled
        acc.total += s.total
    return sorted(rolled.values(), key=lambda s: s.code or "")


BINS = 10  # the rollups keep persons per tenth of completeness


def distribution(
    conn: psycopg.Connection[Any], catalog: str, area: AreaFilter | None = None
) -> list[int]:
    """Number of persons per completeness bin (bin i covers [i/10, (i+1)/10), last closed)."""
    cond, params = (area or AreaFilter()).cells("r")
    rows = conn.execute(
        f"""SELECT r.bin, sum(r.persons) FROM completeness_rollup r
            WHERE r.catalog = %s AND r.bin IS NOT NULL AND {cond} GROUP BY 1""".encode(),
        [catalog, *params],
    ).fetchall()
    out = [0] * BINS
    for b, n in rows:
        out[b] += int(n)
    return out


def missing_fields(
    conn: psycopg.Connection[Any],
    catalog: str,
    area: AreaFilter | None = None,
    *,
    facility: str | None = None,
    limit: int = 10,
) -> list[tuple[str, int]]:
    """The fields most often missing (code, persons), optionally among a facility's patients
    (that one reads the facility's patients; the area figures come from the rollups)."""
    if facility:
        where, params = (area or AreaFilter()).sql()
        rows = conn.execute(
            f"""SELECT m, count(*) FROM completeness c JOIN person p ON p.id = c.person_id
                JOIN facility_person f ON f.person_id = c.person_id AND f.facility = %s
                CROSS JOIN LATERAL completeness_field_codes(c.missing) AS m
                WHERE c.catalog = %s AND {where} GROUP BY m ORDER BY 2 DESC, 1
                LIMIT %s""".encode(),
            [facility, catalog, *params, limit],
        ).fetchall()
        return [(r[0], r[1]) for r in rows]
    cond, params = (area or AreaFilter()).cells("r")
    rows = conn.execute(
        f"""SELECT r.field, sum(r.persons) FROM completeness_missing_rollup r
            WHERE r.catalog = %s AND {cond} GROUP BY 1 HAVING sum(r.persons) > 0
            ORDER BY 2 DESC, 1 LIMIT %s""".encode(),
        [catalog, *params, limit],
    ).fetchall()
    return [(r[0], int(r[1])) for r in rows]


def person_score(conn: psycopg.Connection[Any], person_id: int) -> dict[str, tuple[int, int]]:
    """{catalog: (filled, total)} of one person, as last computed."""
    rows = conn.execute(
        "SELECT catalog, filled, total FROM completeness WHERE person_id = %s", (person_id,)
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}
