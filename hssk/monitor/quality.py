"""Scheduled data-quality jobs: lists of persons for commune staff to fix.

Kinds of findings (each a set-based query; a run replaces the previous findings):

* ``conflicting_identifier`` — one CCCD on two living golden records; a CCCD whose digits
  contradict the birth year or sex; a BHYT card whose last 10 digits are not the BHXH number;
* ``suspected_duplicate`` — two records with the same folded name and birth date;
* ``visit_after_death`` — an encounter that starts more than a day after the recorded death;
* ``child_without_guardian`` — a child under 16 with neither a mother nor an active guardian.
"""

from __future__ import annotations

from typing import Any

import psycopg

KINDS: dict[str, tuple[str, str]] = {
    "conflicting_identifier": ("Định danh mâu thuẫn", "Conflicting identifiers"),
    "suspected_duplicate": ("Nghi trùng hồ sơ", "Suspected duplicates"),
    "visit_after_death": ("Có lượt khám sau ngày tử vong", "Visits after death"),
    "child_without_guardian": ("Trẻ em chưa có người giám hộ", "Children without a guardian"),
}

# Each kind's query gives (kind, person_id, other_person, detail); the finding keeps the
# person's area cell, name and birth date as found, so the pages read no ``person`` row.
_INSERT = """INSERT INTO quality_issue (kind, person_id, other_person, commune_code,
    commune_code_old, province_code, full_name, birth_date, detail)
SELECT f.kind, f.person_id, f.other_person, p.commune_code, p.commune_code_old,
       p.province_code, p.full_name, p.birth_date, f.detail
FROM ({}) f(kind, person_id, other_person, detail) JOIN person p ON p.id = f.person_id"""

_QUERIES: dict[str, str] = {
    "conflicting_identifier": """
        SELECT 'conflicting_identifier', a.id, b.id,
               jsonb_build_object('rule', 'cccd_shared', 'cccd', a.cccd)
        FROM person a JOIN person b ON a.cccd = b.cccd AND a.id < b.id
        WHERE a.merged_into IS NULL AND b.merged_into IS NULL
        UNION ALL
        SELECT 'conflicting_identifier', p.id, NULL,
               jsonb_build_object('rule', 'cccd_birth_year', 'cccd', p.cccd,
                                  'birth_year', extract(year FROM p.birth_date)::int)
        FROM person p
        WHERE p.merged_into IS NULL AND p.cccd ~ '^[0-9]{12}$' AND p.birth_date IS NOT NULL
          AND substr(p.cccd, 4, 1)::int BETWEEN 0 AND 9
          AND 1900 + (substr(p.cccd, 4, 1)::int / 2) * 100 + substr(p.cccd, 5, 2)::int
              <> extract(year FROM p.birth_date)::int
        UNION ALL
        SELECT 'conflicting_identifier', p.id, NULL,
               jsonb_build_object('rule', 'cccd_sex', 'cccd', p.cccd, 'sex', p.sex)
        FROM person p
        WHERE p.merged_into IS NULL AND p.cccd ~ '^[0-9]{12}$' AND p.sex IN ('M', 'F')
          AND (CASE WHEN substr(p.cccd, 4, 1)::int % 2 = 0 THEN 'M' ELSE 'F' END) <> p.sex
        UNION ALL
        SELECT 'conflicting_identifier', p.id, NULL,
               jsonb_build_object('rule', 'bhyt_bhxh', 'bhyt', p.bhyt, 'bhxh', p.bhxh)
        FROM person p
        WHERE p.merged_into IS NULL AND length(p.bhyt) = 15 AND p.bhxh IS NOT NULL
          AND right(p.bhyt, 10) <> p.bhxh""",
    "suspected_duplicate": """
        SELECT 'suspected_duplicate', a.id, b.id,
               jsonb_build_object('name_key', a.name_key, 'birth_date', a.birth_date)
        FROM person a JOIN person b
          ON a.name_key = b.name_key AND a.birth_date = b.birth_date AND a.id < b.id
        WHERE a.merged_into IS NULL AND b.merged_into IS NULL AND a.name_key <> ''
          AND (a.cccd IS NULL OR b.cccd IS NULL OR a.cccd = b.cccd)""",
    "visit_after_death": """
        SELECT 'visit_after_death', p.id, NULL::bigint,
               jsonb_build_object('deceased_at', p.deceased_at, 'visits', count(*),
                                  'last_visit', max(r.effective),
                                  'facilities', array_agg(DISTINCT r.source_unit))
        FROM person p CROSS JOIN LATERAL unnest(person_merged_ids(p.id)) AS u(id)
        JOIN resource r ON r.person_id = u.id  -- under the person or one merged into it
        WHERE p.deceased_at IS NOT NULL AND r.type = 'Encounter' AND NOT r.deleted
          AND r.effective > p.deceased_at + interval '1 day' AND p.merged_into IS NULL
        GROUP BY p.id""",
    "child_without_guardian": """
        SELECT 'child_without_guardian', p.id, NULL::bigint,
               jsonb_build_object('birth_date', p.birth_date)
        FROM person p
        WHERE p.merged_into IS NULL AND p.deceased_at IS NULL AND p.mother_id IS NULL
          AND p.birth_date > current_date - interval '16 years'
          AND {no_guardian}""",
}


def _guardianship_clause(conn: psycopg.Connection[Any]) -> str:
    """Guardianship lives in the access component; without its table, only the mother counts."""
    (exists,) = conn.execute("SELECT to_regclass('guardianship') IS NOT NULL").fetchone()  # type: ignore[misc]
    if not exists:
        return "true"
    return """NOT EXISTS (SELECT 1 FROM guardianship g WHERE g.child_person = p.id
                          AND g.ended_at IS NULL
                          AND (g.valid_until IS NULL OR g.valid_until > current_date))"""


def run(conn: psycopg.Connection[Any], kinds: list[str] | None = None) -> dict[str, int]:
    """Recompute the findings of ``kinds`` (all by default); returns how many of each."""
    chosen = kinds or list(KINDS)
    unknown = [k for k in chosen if k not in KINDS]
    if unknown:
        raise ValueError(f"unknown kinds {unknown}; choose from {', '.join(KINDS)}")
    out: dict[str, int] = {}
    for kind in chosen:
        conn.execute("DELETE FROM quality_issue WHERE kind = %s", (kind,))
        sql = _QUERIES[kind].replace("{no_guardian}", _guardianship_clause(conn))
        out[kind] = conn.execute(_INSERT.format(sql).encode()).rowcount
    return out


def counts_by_commune(
    conn: psycopg.Connection[Any], where: str, params: list[Any]
) -> list[tuple[str | None, str, int]]:
    """(commune, kind, findings) within an area condition on the cells of alias ``q``
    (``AreaFilter.cells("q")``)."""
    rows = conn.execute(
        f"""SELECT q.commune_code, q.kind, count(*) FROM quality_issue q WHERE {where}
            GROUP BY 1, 2 ORDER BY 1, 2""".encode(),
        params,
    ).fetchall()
    return [(r[0], r[1], int(r[2])) for r in rows]


def findings(
    conn: psycopg.Connection[Any], where: str, params: list[Any], kind: str | None, limit: int = 500
) -> list[dict[str, Any]]:
    """The findings with the person's name and birth date as the job found them (for station
    staff of the commune), within an area condition on alias ``q``."""
    rows = conn.execute(
        f"""SELECT q.id, q.kind, q.person_id, q.full_name, q.birth_date, q.other_person,
                   q.commune_code, q.detail, q.found_at
            FROM quality_issue q
            WHERE {where} AND (%s::text IS NULL OR q.kind = %s)
            ORDER BY q.kind, q.person_id LIMIT %s""".encode(),
        [*params, kind, kind, limit],
    ).fetchall()
    keys = ("id", "kind", "person_id", "full_name", "birth_date", "other_person", "commune_code",
            "detail", "found_at")  # fmt: skip
    return [dict(zip(keys, r, strict=True)) for r in rows]
