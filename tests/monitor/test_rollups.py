"""Per-area rollups: equal to a full recomputation after every kind of change, and no
dashboard query reads the registry."""

from __future__ import annotations

import re
from datetime import date

import pytest

from hssk.catalog import completeness
from hssk.db import Database
from hssk.monitor import metrics, quality, rollups
from hssk.monitor.areas import ALL, parse
from hssk.records import store
from hssk.registry import merge
from tests.factories.supervision import load_province


def _scan_coverage(conn, catalog: str) -> tuple:
    """The figures of the whole registry as the dashboard computed them before the rollups."""
    u6 = date.today().replace(year=date.today().year - 6)
    return conn.execute(
        """SELECT count(*), count(*) FILTER (WHERE r.person_id IS NOT NULL),
             count(*) FILTER (WHERE p.verification <> 'unverified' OR p.cccd_verified),
             count(DISTINCT p.household_id), count(*) FILTER (WHERE p.deceased_at IS NOT NULL),
             count(*) FILTER (WHERE p.bhyt IS NOT NULL),
             count(*) FILTER (WHERE p.birth_date > %(u6)s),
             count(*) FILTER (WHERE p.birth_date > %(u6)s
                              AND (p.cccd IS NOT NULL OR p.health_id IS NOT NULL)),
             round(avg(c.filled::float8 / nullif(c.total, 0))::numeric, 9)
           FROM person p LEFT JOIN record_presence r ON r.person_id = p.id
           LEFT JOIN completeness c ON c.person_id = p.id AND c.catalog = %(cat)s
           WHERE p.merged_into IS NULL""",
        {"u6": u6, "cat": catalog},
    ).fetchone()


def _scan_breakdown(conn, group: str) -> dict:
    """{code: (residents, households, children under 6, with an id)} of province 01 per
    ``group`` column, from the registry."""
    u6 = date.today().replace(year=date.today().year - 6)
    rows = conn.execute(
        f"""SELECT {group}, count(*), count(DISTINCT household_id),
              count(*) FILTER (WHERE birth_date > %(u6)s),
              count(*) FILTER (WHERE birth_date > %(u6)s
                               AND (cccd IS NOT NULL OR health_id IS NOT NULL))
            FROM person WHERE merged_into IS NULL AND province_code = '01' GROUP BY 1""",
        {"u6": u6},
    ).fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def _assert_equal(conn) -> None:
    assert rollups.check(conn) == {}
    cat = metrics.completeness_default()
    (c,) = metrics.coverage(conn, ALL, catalog=cat)
    got = (c.residents, c.with_record, c.standardized, c.households, c.deaths, c.with_bhyt,
           c.children_u6, c.children_u6_with_id, round(c.completeness, 9))  # fmt: skip
    want = _scan_coverage(conn, cat)
    assert got == tuple(float(v) if i == 8 else v for i, v in enumerate(want))
    # the province and its breakdowns (households per level, children by month and day)
    province = parse("province:01")
    for by, group in ((None, "NULL::text"), ("commune", "commune_code"),
                      ("commune_old", "commune_code_old")):  # fmt: skip
        rows = metrics.coverage(conn, province, by=by, catalog=cat)
        kept = {r.code: (r.residents, r.households, r.children_u6, r.children_u6_with_id)
                for r in rows}  # fmt: skip
        assert kept == _scan_breakdown(conn, group), by
    # an old district: its old communes' figures, and their sum
    district = parse("district_old:001")
    olds = {c: v for c, v in _scan_breakdown(conn, "commune_code_old").items()
            if c in district.communes_old}  # fmt: skip
    rows = metrics.coverage(conn, district, by="commune_old", catalog=cat)
    assert {r.code: (r.residents, r.households, r.children_u6, r.children_u6_with_id)
            for r in rows} == olds  # fmt: skip
    (total,) = metrics.coverage(conn, district, catalog=cat)
    assert (total.residents, total.households) == tuple(
        sum(v[i] for v in olds.values()) for i in (0, 1)
    )


@pytest.fixture
def world(clean_db: Database):
    with clean_db.connection() as conn:
        prov = load_province(conn, 60, seed=5)
    completeness.run(clean_db, batch=50)
    return clean_db, prov


def test_rollups_equal_recomputation_after_every_change(world) -> None:
    db, prov = world
    first = prov.first_person
    with db.connection() as conn:
        _assert_equal(conn)  # after ingest and scoring
        # a death, a commune move, new identifiers, a household change, a young child
        conn.execute("UPDATE person SET deceased_at = now() WHERE id = %s", (first,))
        conn.execute(
            """UPDATE person SET commune_code = '99999', commune_code_old = '99998',
                 cccd = '001234567890', household_id = NULL WHERE id = %s""",
            (first + 1,),
        )
        conn.execute(
            "UPDATE person SET birth_date = current_date - 400, health_id = 'H1' WHERE id = %s",
            (first + 2,),
        )
        _assert_equal(conn)
        # children born on either side of the 6-year limit, in the limit's own month
        u6 = date.today().replace(year=date.today().year - 6)
        conn.execute(
            """UPDATE person SET birth_date = CASE id WHEN %(a)s THEN %(u6)s::date
                 ELSE %(u6)s::date + 1 END WHERE id IN (%(a)s, %(b)s)""",
            {"a": first + 9, "b": first + 10, "u6": u6},
        )
        _assert_equal(conn)
        # a household gets a member in another commune, then loses it
        hh = conn.execute("SELECT household_id FROM person WHERE id = %s", (first + 11,)).fetchone()
        conn.execute(
            """UPDATE person SET household_id = %s, commune_code = '88888',
                 commune_code_old = '88887' WHERE id = %s""",
            (hh[0], first + 12),
        )
        _assert_equal(conn)
        conn.execute("UPDATE person SET household_id = NULL WHERE id = %s", (first + 12,))
        _assert_equal(conn)
        # a merge (the merged person stops counting, its records move), then its undoing
        merge_id = merge.merge(conn, first + 3, first + 4, reason="test")
        _assert_equal(conn)
        merge.unmerge(conn, merge_id)
        _assert_equal(conn)
        merge.merge(conn, first + 7, first + 8, reason="test")
        _assert_equal(conn)
        # a new person, scored; a resource deleted (its presence goes at rescoring)
        (new_id,) = conn.execute(
            """INSERT INTO person (full_name, birth_date, province_code, commune_code,
                 commune_code_old, household_id, bhyt)
               VALUES ('Lê Văn Mới', current_date - 100, '01', '00004', '00004', 777, 'X')
               RETURNING id"""
        ).fetchone()
        _assert_equal(conn)
        rid = conn.execute(
            "SELECT type, id FROM resource WHERE person_id = %s AND NOT deleted LIMIT 1",
            (first + 5,),
        ).fetchone()
        store.delete(conn, rid[0], rid[1])
        conn.execute("DELETE FROM person WHERE id = %s", (first + 6,))
        _assert_equal(conn)
        # a facility loses (then regains) a person it had data about
        (fac, pid) = conn.execute(
            "SELECT facility, person_id FROM facility_person ORDER BY 1, 2 LIMIT 1"
        ).fetchone()
        conn.execute("DELETE FROM facility_person WHERE person_id = %s", (pid,))
        _assert_equal(conn)
        conn.execute(
            "INSERT INTO facility_person (facility, person_id, last_seen) VALUES (%s, %s, now())",
            (fac, pid),
        )
        _assert_equal(conn)
    completeness.run(db, batch=50)  # the registry changes queued their persons
    with db.connection() as conn:
        assert completeness.person_score(conn, new_id)
        _assert_equal(conn)
        rollups.compact(conn)
        _assert_equal(conn)
        (rows,) = conn.execute("SELECT count(*) FROM area_rollup").fetchone()
        (cells,) = conn.execute(
            """SELECT count(*) FROM (SELECT DISTINCT province_code, commune_code,
                 commune_code_old FROM person WHERE merged_into IS NULL) x"""
        ).fetchone()
        assert rows == cells  # compacted: one row per cell
        (facility_rows,) = conn.execute("SELECT count(*) FROM facility_missing_rollup").fetchone()
        assert facility_rows > 0  # the per-facility rollup has something to agree on
        # a repair from scratch gives the same figures
        rollups.rebuild(conn)
        _assert_equal(conn)


def test_check_reports_a_wrong_rollup(world) -> None:
    db, _ = world
    with db.connection() as conn:
        conn.execute(
            """INSERT INTO area_rollup VALUES ('01', '00004', '00004', 1, 0, 0, 0, 0, 0, 0)"""
        )
        assert set(rollups.check(conn)) == {"area"}


def test_no_dashboard_query_reads_person(world) -> None:
    """No plan reads the registry; those of the platform, province and old-district pages read
    no table with a row per household, nor births beyond the 6-year limit's month (0584)."""
    db, prov = world
    plans: dict[str, list[str]] = {}  # area kind: the plans of its pages
    with db.connection() as conn:
        real = conn.execute
        kind = ""

        def spy(query, params=None, **kw):  # every statement the dashboard runs
            text = query.decode() if isinstance(query, bytes) else str(query)
            if text.lstrip().upper().startswith(("SELECT", "WITH")):
                plan = real(b"EXPLAIN " + text.encode(), params).fetchall()
                plans.setdefault(kind, []).append("\n".join(r[0] for r in plan))
            return real(query, params, **kw)

        quality.run(conn)
        conn.execute = spy  # type: ignore[method-assign]
        for area in (ALL, parse("province:01"), parse("district_old:001"),
                     parse(f"commune:{next(iter(prov.stations))}")):  # fmt: skip
            kind = area.kind
            where, params = area.persons().cells("q")  # the quality page's queries
            quality.counts_by_commune(conn, where, params)
            quality.findings(conn, where, params, None)
            metrics.summary(conn, area)
            by = "commune" if area.kind in ("all", "province") else "commune_old"  # the page's
            metrics.coverage(conn, area, by=by)
            metrics.coverage(conn, area, by="district_old")
            metrics.facilities(conn, area)
            metrics.trend(conn, area)
            for level in completeness.LEVELS:
                completeness.aggregate(conn, "hanoi-73", level, area.persons())
            completeness.missing_fields(conn, "hanoi-73", area.persons())
    wide = plans["all"] + plans["province"] + plans["district_old"]
    assert any("area_household_count" in plan for plan in wide)
    assert any(re.search(r" on area_young\s", plan) for plan in wide)
    for plan in wide:
        assert not re.search(r" on area_household\s", plan), plan
        if re.search(r" on area_young\s", plan):
            assert "birth_date < " in plan, plan
    # a commune's households are counted over its own (few) rows
    assert any(re.search(r" on area_household\s", plan) for plan in plans["commune"])
    seen = wide + plans["commune"]
    assert len(seen) > 20 and any("area_rollup" in plan for plan in seen)
    assert any("facility_missing_rollup" in plan for plan in seen)
    assert any("quality_issue" in plan for plan in seen)
    for plan in seen:
        assert " on person" not in plan and " on person " not in plan, plan


def test_scoring_folds_the_deltas_on_the_way(
    clean_db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A long scoring run folds the rollups' deltas every ``COMPACT_EVERY`` persons instead of
    piling them up until the end (a rescoring of Hà Nội would pile up ~85 GB), and the
    figures stay equal to a recomputation."""
    with clean_db.connection() as conn:
        load_province(conn, 60, seed=5)
    monkeypatch.setattr(completeness, "COMPACT_EVERY", 20)
    by_queue = completeness.run(clean_db, batch=10, compact=rollups.compact)
    assert by_queue.persons == 60 and by_queue.compacted >= 2
    with clean_db.connection() as conn:
        _assert_equal(conn)
        folded = rollups.delta_rows(conn)
        conn.execute("DELETE FROM completeness")
    result = completeness.rescore_all(clean_db, chunk=10, compact=rollups.compact)
    assert result.persons == 60 and result.compacted >= 2
    with clean_db.connection() as conn:
        _assert_equal(conn)
        assert rollups.compact(conn) == folded  # the same cells as the queue's run
        completeness.mark_dirty(conn, [r[0] for r in conn.execute("SELECT id FROM person")])
    # the scheduled job folds the monitor's rollups on the way too
    from hssk.ops import tasks

    assert tasks.completeness(clean_db) == {"persons": 60, "compacted": 1}  # one batch
    with clean_db.connection() as conn:
        assert rollups.delta_rows(conn) == folded
        _assert_equal(conn)


def test_compaction_rewrites_only_the_cells_that_changed(clean_db: Database) -> None:
    """A folded cell that got no delta keeps its row (the hourly job rewrote every household
    of the province before); a cell with deltas, a zero sum or a birth out of the window is
    folded, and nothing is counted twice."""
    with clean_db.connection() as conn:
        conn.execute(
            """INSERT INTO area_household VALUES ('01', '00001', NULL, 1, 2),
               ('01', '00002', NULL, 2, 3), ('01', '00002', NULL, 2, -1),
               ('01', '00003', NULL, 3, 1), ('01', '00003', NULL, 3, -1),
               ('01', '00004', NULL, 4, 0)"""
        )
        conn.execute(
            """INSERT INTO area_young (province_code, commune_code, commune_code_old,
                                       birth_date, persons, with_id)
               VALUES ('01', '00001', NULL, current_date - interval '8 years', 1, 1),
                      ('01', '00001', NULL, current_date - interval '1 year', 1, 0)"""
        )
        rollups.compact(conn)
        rows = conn.execute("SELECT household_id, persons, ctid FROM area_household").fetchall()
        assert sorted((h, p) for h, p, _ in rows) == [(1, 2), (2, 2)]
        assert conn.execute("SELECT count(*) FROM area_young").fetchone() == (1,)
        place = {h: ctid for h, _, ctid in rows}
        conn.execute("INSERT INTO area_household VALUES ('01', '00002', NULL, 2, 1)")
        rollups.compact(conn)
        after = {h: (p, ctid) for h, p, ctid in conn.execute(
            "SELECT household_id, persons, ctid FROM area_household")}  # fmt: skip
        assert after[1] == (2, place[1])  # untouched: the same row in the same place
        assert after[2][0] == 3 and after[2][1] != place[2]
