"""Upgrades that make the database denser, each keeping every row: the person-keyed store
without its second (person, type) index (migration 0106), and the completeness table with
numbered missing fields (0590): every row gives back exactly the codes it held, in their
order; the rollups kept by triggers stay equal to a recomputation, and later writes go
through the dictionary."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from hssk.catalog.completeness import field_ids
from hssk.db.migrate import discover, migrate
from hssk.monitor import rollups

NEW = "0590"
DROPPED = "0106"
ROWS = """SELECT person_id, catalog, version, filled, total, {missing}, computed_at
          FROM completeness ORDER BY 1, 2"""
CODES = [f"hc.truong_{i:02d}" for i in range(60)]


def _missing_rollups(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        """SELECT 'area', commune_code, catalog, field, sum(persons) FROM completeness_missing_rollup
           GROUP BY 2, 3, 4 HAVING sum(persons) <> 0
           UNION ALL
           SELECT 'facility', facility, catalog, field, sum(persons) FROM facility_missing_rollup
           GROUP BY 2, 3, 4 HAVING sum(persons) <> 0 ORDER BY 1, 2, 3, 4"""
    ).fetchall()


def test_upgrade_numbers_the_missing_fields_and_keeps_every_code(drill_url: str) -> None:
    with psycopg.connect(drill_url, autocommit=True) as conn:
        migrate(conn, [m for m in discover() if m.version != NEW], partitions=4)
        conn.execute(
            """INSERT INTO person (id, full_name, province_code, commune_code, commune_code_old)
               SELECT i, 'Lê Văn ' || i, '01', '0000' || (i % 3), NULL
               FROM generate_series(1, 6) AS i"""
        )
        conn.execute(
            """INSERT INTO facility_person (facility, person_id, last_seen)
               SELECT '01001', i, now() FROM generate_series(1, 4) AS i"""
        )
        # codes in no sorted order, some rows sharing them, one row with nothing missing
        conn.execute(
            """INSERT INTO completeness (person_id, catalog, version, filled, total, missing)
               SELECT p, c, '1', 60 - n, 60, (%s::text[])[61 - n : 60]
               FROM generate_series(1, 6) AS p, unnest(ARRAY['byt-48', 'hanoi-73']) AS c,
                    LATERAL (SELECT (p * 7 + length(c) * 5) %% 61 AS n) k""",
            (list(reversed(CODES)),),
        )
        before = conn.execute(ROWS.format(missing="missing")).fetchall()
        assert 0 in {len(r[5]) for r in before} and max(len(r[5]) for r in before) > 40
        size_before = conn.execute("SELECT sum(pg_column_size(missing)) FROM completeness")
        rolled = _missing_rollups(conn)
        assert rolled  # kept by the triggers of the older schema

        assert migrate(conn) == ["0590_completeness_field_ids.sql"]

        after = conn.execute(
            ROWS.format(missing="ARRAY(SELECT completeness_field_codes(missing))")
        ).fetchall()
        assert after == before  # every row, every code in its place
        used = {code for r in before for code in r[5]}
        assert conn.execute("SELECT count(*) FROM completeness_field").fetchone() == (len(used),)
        size_after = conn.execute("SELECT sum(pg_column_size(missing)) FROM completeness")
        assert size_after.fetchone()[0] * 4 < size_before.fetchone()[0]  # type: ignore[index]
        assert _missing_rollups(conn) == rolled
        assert rollups.check(conn) == {}

        # a code the dictionary does not know is refused, not dropped
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute(
                """UPDATE completeness SET missing = completeness_field_ids(ARRAY['hc.moi'])
                   WHERE person_id = 1"""
            )
        # numbered first, it is written, and the triggers roll it up by its code
        ids = field_ids(conn, ["hc.moi", CODES[0]])
        assert set(ids) == {"hc.moi", CODES[0]} and ids["hc.moi"] > len(used)
        conn.execute(
            "UPDATE completeness SET missing = %s, filled = 58 WHERE person_id = 1",
            ([ids["hc.moi"], ids[CODES[0]]],),
        )
        assert field_ids(conn, ["hc.moi"]) == {"hc.moi": ids["hc.moi"]}  # numbered once
        assert conn.execute(
            """SELECT sum(persons) FROM facility_missing_rollup
               WHERE field = 'hc.moi' AND facility = '01001'"""
        ).fetchone() == (2,)  # two catalogs
        assert rollups.check(conn) == {}


def _indexes(conn: psycopg.Connection[Any]) -> set[str]:
    rows = conn.execute(
        """SELECT i.indexrelid::regclass::text FROM pg_index i
           WHERE i.indrelid IN (SELECT 'resource'::regclass UNION ALL
                                SELECT inhrelid FROM pg_inherits WHERE inhparent IN (
                                  'resource'::regclass, 'resource_by_person'::regclass))"""
    ).fetchall()
    return {r[0] for r in rows}


def test_upgrade_drops_the_second_person_index_and_reads_by_the_key(drill_url: str) -> None:
    with psycopg.connect(drill_url, autocommit=True) as conn:
        migrate(conn, [m for m in discover() if m.version < DROPPED], partitions=4)
        conn.execute(
            """INSERT INTO resource (type, id, version, person_id, effective, last_updated, body)
               SELECT t, t || i, 1, i % 5, now() - i * interval '1 day', now(), '{}'
               FROM generate_series(1, 200) AS i, unnest(ARRAY['Observation', 'Encounter']) t"""
        )
        book = """SELECT type, id FROM resource WHERE person_id = 3 AND type = 'Observation'
                  AND effective >= now() - interval '100 days'
                  ORDER BY effective DESC NULLS LAST, id"""
        before = conn.execute(book).fetchall()
        had = _indexes(conn)
        assert any("person_id_type_effective" in i for i in had) and len(before) == 20
        count = conn.execute("SELECT count(*) FROM resource").fetchone()

        migrate(conn, [m for m in discover() if m.version == DROPPED])

        left = _indexes(conn)
        # the index on every partition, and no other
        assert had - left == {"resource_person"} | {i for i in had if "_type_effective" in i
                                                    and "person_id" in i}  # fmt: skip
        assert len(had - left) == 1 + 1 + 1 + 4  # resource, by_person, none, 4 partitions
        assert conn.execute("SELECT count(*) FROM resource").fetchone() == count
        with conn.transaction():
            conn.execute("SET LOCAL enable_seqscan = off")
            assert conn.execute(book).fetchall() == before
            plan = "\n".join(r[0] for r in conn.execute(("EXPLAIN " + book).encode()))
            assert "person_id_type_id_idx" in plan  # the key, in the person's partition


def test_upgrade_keeps_every_digest_as_bytes(drill_url: str) -> None:
    """0305: the digests of stored source records become their 20 bytes, each the same."""
    with psycopg.connect(drill_url, autocommit=True) as conn:
        migrate(conn, [m for m in discover() if m.version < "0305"], partitions=4)
        conn.execute(
            """INSERT INTO ingest_digest (key, digest)
               SELECT 'xml130|01001|LK' || i, encode(sha256(i::text::bytea), 'hex')::char(40)
               FROM generate_series(1, 50) AS i"""
        )
        before = conn.execute("SELECT key, digest, updated_at FROM ingest_digest ORDER BY 1")
        rows = before.fetchall()
        size = conn.execute("SELECT sum(pg_column_size(digest)) FROM ingest_digest").fetchone()

        migrate(conn, [m for m in discover() if m.version == "0305"])

        after = conn.execute(
            "SELECT key, encode(digest, 'hex'), updated_at FROM ingest_digest ORDER BY 1"
        ).fetchall()
        assert after == rows and len(rows) == 50
        smaller = conn.execute("SELECT sum(pg_column_size(digest)) FROM ingest_digest")
        assert smaller.fetchone()[0] * 2 <= size[0] + 50  # type: ignore[index]
