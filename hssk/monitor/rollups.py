"""Per-area rollups of the registry: upkeep and the check against a full recomputation.

Statement-level triggers (migrations 0503, 0581, 0583 and 0584) append signed deltas per area
cell (province, commune, old commune) and per facility whenever a person, its presence in the
record store or its completeness score changes, so supervision sums a few rows per commune or
facility and never reads ``person``. Households are counted per level (platform, province,
commune, old commune): ``household_member`` holds each household's members per level, updated
in place (a household that leaves a level keeps a row of 0 there), and the count changes when
a household enters or leaves. ``compact`` folds the deltas (the ``monitor.compact`` job, and
``hssk report completeness``); ``check`` recomputes every figure from the base tables and
returns the cells that differ; ``rebuild`` repairs (two concurrent transactions that change
one person's commune and its first record at the same instant can leave one delta in the old
commune).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import psycopg

from hssk.catalog.completeness import compact_activity
from hssk.db import deltas

_FIGURES = ("residents", "with_record", "standardized", "verified", "deaths", "with_bhyt",
            "with_cccd")  # fmt: skip
_CELL = "province_code, commune_code, commune_code_old"
_COUNTED = {"outbox": "partner, status", "ingest_error": "status, NULL",
            "quality_issue": "kind, NULL"}  # fmt: skip


_DELTAS = ("area_rollup", "area_household", "area_household_count", "area_young",
           "area_young_month", "completeness_rollup",
           "completeness_missing_rollup", "completeness_facility_rollup",
           "facility_missing_rollup", "facility_activity", "row_counter")  # fmt: skip


def delta_rows(conn: psycopg.Connection[Any]) -> int:
    """Rows in the rollup tables (what the dashboards sum; compacting shrinks it)."""
    union = " UNION ALL ".join(f"SELECT count(*) FROM {t}" for t in _DELTAS)
    row = conn.execute(f"SELECT sum(count) FROM ({union}) x".encode()).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


# Each delta table: (key columns, summed columns, rows kept); compacting folds it by key.
_FOLDS: dict[str, tuple[str, tuple[str, ...], str]] = {
    "area_rollup": (_CELL, _FIGURES, "true"),
    "area_household": (f"{_CELL}, household_id", ("persons",), "true"),
    "area_household_count": ("level, province_code, code", ("households",), "true"),
    "area_young": (f"{_CELL}, birth_date", ("persons", "with_id"),
                   "birth_date > current_date - interval '7 years'"),
    "area_young_month": (f"{_CELL}, birth_month", ("persons", "with_id"),
                         "birth_month > current_date - interval '7 years 1 month'"),
    "facility_missing_rollup": ("facility, catalog, field", ("persons",), "true"),
    "row_counter": ("tbl, label1, label2", ("n",), "true"),
}  # fmt: skip


def compact(conn: psycopg.Connection[Any]) -> int:
    """Fold the deltas into one row per cell (rows that sum to nothing go; births older than
    the 7-year window of ``area_young`` go too; only the cells that need it are rewritten:
    ``db.deltas.fold``); returns the rows left."""
    compact_activity(conn)
    for table, (keys, figures, keep) in _FOLDS.items():
        deltas.fold(conn, table, keys, figures, keep=keep)
    return delta_rows(conn)


def row_counts(conn: psycopg.Connection[Any], table: str) -> dict[tuple[str, str | None], int]:
    """Rows of ``table`` (outbox, ingest_error, quality_issue) per label, from the counters
    its triggers keep (migration 0582): {(label1, label2): rows}."""
    return {
        (r[0], r[1]): int(r[2])
        for r in conn.execute(
            """SELECT label1, label2, sum(n) FROM row_counter WHERE tbl = %s
               GROUP BY 1, 2 HAVING sum(n) <> 0 ORDER BY 1, 2""",
            (table,),
        )
    }


def rebuild(conn: psycopg.Connection[Any]) -> None:
    """Recompute every rollup and counter from the base tables (reads the whole registry)."""
    conn.execute(
        "SELECT area_rollup_rebuild(), completeness_rollup_rebuild(), "
        "facility_missing_rollup_rebuild()"
    )
    conn.execute("DELETE FROM row_counter")
    for table, labels in _COUNTED.items():
        conn.execute(
            f"""INSERT INTO row_counter (tbl, label1, label2, n)
                SELECT %s, {labels}, count(*) FROM {table} GROUP BY 2, 3""".encode(),
            (table,),
        )


# A household's members per level (migration 0584), from the registry.
_MEMBERS = """
SELECT l.level, l.province_code, l.code, p.household_id, 1 AS persons
FROM person p
CROSS JOIN LATERAL household_levels(p.province_code, p.commune_code, p.commune_code_old) l
WHERE p.merged_into IS NULL AND p.household_id IS NOT NULL"""

# Each: (key columns, what the rollups say, what a full recomputation says), rows of one shape.
_CHECKS: dict[str, tuple[int, str, str]] = {
    "area": (
        3,
        f"""SELECT {_CELL}, {", ".join(f"sum({f})" for f in _FIGURES)} FROM area_rollup
            GROUP BY 1, 2, 3""",
        """SELECT p.province_code, p.commune_code, p.commune_code_old, count(*),
              count(*) FILTER (WHERE r.person_id IS NOT NULL),
              count(*) FILTER (WHERE p.verification <> 'unverified' OR p.cccd_verified),
              count(*) FILTER (WHERE p.verification = 'verified' OR p.cccd_verified),
              count(*) FILTER (WHERE p.deceased_at IS NOT NULL),
              count(*) FILTER (WHERE p.bhyt IS NOT NULL),
              count(*) FILTER (WHERE p.cccd IS NOT NULL)
            FROM person p LEFT JOIN record_presence r ON r.person_id = p.id
            WHERE p.merged_into IS NULL GROUP BY 1, 2, 3""",
    ),
    "household": (
        4,
        f"SELECT {_CELL}, household_id, sum(persons) FROM area_household GROUP BY 1, 2, 3, 4",
        """SELECT province_code, commune_code, commune_code_old, household_id, count(*)
           FROM person WHERE merged_into IS NULL AND household_id IS NOT NULL
           GROUP BY 1, 2, 3, 4""",
    ),
    "household_member": (
        4,
        """SELECT level, province_code, code, household_id, persons FROM household_member""",
        f"""SELECT level, province_code, code, household_id, sum(persons)
            FROM ({_MEMBERS}) m GROUP BY 1, 2, 3, 4""",
    ),
    "households": (
        3,
        """SELECT level, province_code, code, sum(households) FROM area_household_count
           GROUP BY 1, 2, 3""",
        f"""SELECT level, province_code, code, count(*) FROM (
              SELECT level, province_code, code, household_id FROM ({_MEMBERS}) m
              GROUP BY 1, 2, 3, 4 HAVING sum(persons) > 0) h GROUP BY 1, 2, 3""",
    ),
    "young_month": (
        4,
        f"""SELECT {_CELL}, birth_month, sum(persons), sum(with_id) FROM area_young_month
            WHERE birth_month > current_date - interval '7 years' GROUP BY 1, 2, 3, 4""",
        """SELECT province_code, commune_code, commune_code_old,
             date_trunc('month', birth_date)::date, count(*),
             count(*) FILTER (WHERE cccd IS NOT NULL OR health_id IS NOT NULL)
           FROM person WHERE merged_into IS NULL
             AND date_trunc('month', birth_date) > current_date - interval '7 years'
           GROUP BY 1, 2, 3, 4""",
    ),
    "young": (
        4,
        f"""SELECT {_CELL}, birth_date, sum(persons), sum(with_id) FROM area_young
            WHERE birth_date > current_date - interval '7 years' GROUP BY 1, 2, 3, 4""",
        """SELECT province_code, commune_code, commune_code_old, birth_date, count(*),
             count(*) FILTER (WHERE cccd IS NOT NULL OR health_id IS NOT NULL)
           FROM person WHERE merged_into IS NULL
             AND birth_date > current_date - interval '7 years' GROUP BY 1, 2, 3, 4""",
    ),
    "completeness": (
        5,
        f"""SELECT {_CELL}, catalog, bin, sum(persons), sum(filled), sum(total),
              round(sum(ratio)::numeric, 6)
            FROM completeness_rollup GROUP BY 1, 2, 3, 4, 5""",
        """SELECT p.province_code, p.commune_code, p.commune_code_old, c.catalog,
             CASE WHEN c.total > 0 THEN least(floor(c.filled::float8 / c.total * 10)::int, 9)
             END, count(*), sum(c.filled), sum(c.total),
             round(coalesce(sum(c.filled::float8 / nullif(c.total, 0)), 0)::numeric, 6)
           FROM completeness c JOIN person p ON p.id = c.person_id
           WHERE p.merged_into IS NULL GROUP BY 1, 2, 3, 4, 5""",
    ),
    "missing": (
        5,
        f"""SELECT {_CELL}, catalog, field, sum(persons) FROM completeness_missing_rollup
            GROUP BY 1, 2, 3, 4, 5""",
        """SELECT p.province_code, p.commune_code, p.commune_code_old, c.catalog, m, count(*)
           FROM completeness c JOIN person p ON p.id = c.person_id
           CROSS JOIN LATERAL completeness_field_codes(c.missing) AS m
           WHERE p.merged_into IS NULL GROUP BY 1, 2, 3, 4, 5""",
    ),
    "outbox": (
        2,
        "SELECT label1, label2, sum(n) FROM row_counter WHERE tbl = 'outbox' GROUP BY 1, 2",
        "SELECT partner, status, count(*) FROM outbox GROUP BY 1, 2",
    ),
    "ingest_error": (
        1,
        "SELECT label1, sum(n) FROM row_counter WHERE tbl = 'ingest_error' GROUP BY 1",
        "SELECT status, count(*) FROM ingest_error GROUP BY 1",
    ),
    "quality_issue": (
        1,
        "SELECT label1, sum(n) FROM row_counter WHERE tbl = 'quality_issue' GROUP BY 1",
        "SELECT kind, count(*) FROM quality_issue GROUP BY 1",
    ),
    "facility": (
        2,
        """SELECT facility, catalog, sum(persons), sum(filled), sum(total)
           FROM completeness_facility_rollup GROUP BY 1, 2""",
        """SELECT f.facility, c.catalog, count(*), sum(c.filled), sum(c.total)
           FROM completeness c JOIN person p ON p.id = c.person_id AND p.merged_into IS NULL
           JOIN facility_person f ON f.person_id = c.person_id GROUP BY 1, 2""",
    ),
    "facility_missing": (
        3,
        "SELECT facility, catalog, field, sum(persons) FROM facility_missing_rollup GROUP BY 1, 2, 3",
        """SELECT f.facility, c.catalog, m, count(*)
           FROM completeness c JOIN person p ON p.id = c.person_id AND p.merged_into IS NULL
           JOIN facility_person f ON f.person_id = c.person_id
           CROSS JOIN LATERAL completeness_field_codes(c.missing) AS m GROUP BY 1, 2, 3""",
    ),
}


def _rows(conn: psycopg.Connection[Any], sql: str, key_len: int) -> set[tuple[Any, ...]]:
    """Rows as a set (numbers as floats: sums and counts differ in type), without those whose
    figures (the columns after the key) are all zero: a cell whose deltas cancel out."""
    out = set()
    for row in conn.execute(sql.encode()):
        values = tuple(float(v) if isinstance(v, int | Decimal) else v for v in row)
        if any(values[key_len:]):
            out.add(values)
    return out


def check(conn: psycopg.Connection[Any]) -> dict[str, list[tuple[Any, ...]]]:
    """{rollup: rows that differ from a full recomputation} (empty when all agree).

    Each differing row appears as ('rollup', ...) or ('recomputed', ...)."""
    out: dict[str, list[tuple[Any, ...]]] = {}
    for name, (key_len, kept_sql, full_sql) in _CHECKS.items():
        kept, full = _rows(conn, kept_sql, key_len), _rows(conn, full_sql, key_len)
        if kept != full:
            out[name] = sorted(
                [("rollup", *r) for r in kept - full] + [("recomputed", *r) for r in full - kept],
                key=repr,
            )
    return out
