-- Completeness summed per area cell (province, commune, old commune) and per facility, kept
-- by statement-level triggers on completeness, person and facility_person, so supervision
-- reads a few rows per area instead of joining every person of it. Rows are append-only
-- deltas (concurrent writers never wait on one counter row); readers sum, the completeness
-- job compacts. A person counts while it exists and is not merged.
CREATE TABLE completeness_rollup (
    province_code    text,
    commune_code     text,
    commune_code_old text,
    catalog          text NOT NULL,
    bin              integer,           -- floor(filled/total * 10), 0–9; NULL when total = 0
    persons          bigint NOT NULL,
    filled           bigint NOT NULL,
    total            bigint NOT NULL,
    ratio            double precision NOT NULL  -- sum of filled/total
);
CREATE INDEX completeness_rollup_province ON completeness_rollup (catalog, province_code);
CREATE INDEX completeness_rollup_commune ON completeness_rollup (catalog, commune_code);
CREATE INDEX completeness_rollup_commune_old ON completeness_rollup (catalog, commune_code_old);

CREATE TABLE completeness_missing_rollup (
    province_code    text,
    commune_code     text,
    commune_code_old text,
    catalog          text NOT NULL,
    field            text NOT NULL,
    persons          bigint NOT NULL
);
CREATE INDEX completeness_missing_rollup_catalog ON completeness_missing_rollup (catalog, province_code);

-- Per facility over the persons it sent data about (facility_person).
CREATE TABLE completeness_facility_rollup (
    facility  text NOT NULL,
    catalog   text NOT NULL,
    persons   bigint NOT NULL,
    filled    bigint NOT NULL,
    total     bigint NOT NULL
);
CREATE INDEX completeness_facility_rollup_key ON completeness_facility_rollup (catalog, facility);
CREATE INDEX facility_person_person ON facility_person (person_id);

-- The deltas of a set of completeness rows d(person_id, catalog, filled, total, missing, s),
-- s = +1 or -1; rows of persons that do not count are dropped by the join.
CREATE FUNCTION completeness_rollup_apply(src text) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
SELECT format($q$
WITH d0 AS (%s),
d AS (  -- a row that did not change adds +1 and -1: nothing to do
  SELECT person_id, catalog, filled, total, missing, sum(s)::int AS s FROM d0
  GROUP BY 1, 2, 3, 4, 5 HAVING sum(s) <> 0),
a AS (
  SELECT p.province_code, p.commune_code, p.commune_code_old, d.*,
         CASE WHEN d.total > 0 THEN least(floor(d.filled::float8 / d.total * 10)::int, 9) END AS bin
  FROM d JOIN person p ON p.id = d.person_id AND p.merged_into IS NULL),
main AS (
  INSERT INTO completeness_rollup (province_code, commune_code, commune_code_old, catalog, bin,
                                   persons, filled, total, ratio)
  SELECT province_code, commune_code, commune_code_old, catalog, bin, sum(s), sum(s * filled),
         sum(s * total), coalesce(sum(s * filled::float8 / nullif(total, 0)), 0)
  FROM a GROUP BY 1, 2, 3, 4, 5 RETURNING 1),
miss AS (
  INSERT INTO completeness_missing_rollup (province_code, commune_code, commune_code_old,
                                           catalog, field, persons)
  SELECT province_code, commune_code, commune_code_old, catalog, m, sum(s)
  FROM a CROSS JOIN LATERAL unnest(a.missing) AS m
  GROUP BY 1, 2, 3, 4, 5 HAVING sum(s) <> 0 RETURNING 1)
INSERT INTO completeness_facility_rollup (facility, catalog, persons, filled, total)
SELECT f.facility, a.catalog, sum(a.s), sum(a.s * a.filled), sum(a.s * a.total)
FROM a JOIN facility_person f ON f.person_id = a.person_id
GROUP BY 1, 2
$q$, src)
$f$;

-- A person that appears, moves, merges, unmerges or goes: its scores move with it.
-- d0(id, province_code, commune_code, commune_code_old, s): the person rows, signed.
CREATE FUNCTION completeness_rollup_person_sql(src text) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
SELECT format($q$
    WITH d AS (
      SELECT id, province_code, commune_code, commune_code_old, sum(s)::int AS s FROM (%s) x
      GROUP BY 1, 2, 3, 4 HAVING sum(s) <> 0),
    a AS (
      SELECT d.province_code, d.commune_code, d.commune_code_old, d.s, c.person_id, c.catalog,
             c.filled, c.total, c.missing,
             CASE WHEN c.total > 0 THEN least(floor(c.filled::float8 / c.total * 10)::int, 9)
             END AS bin
      FROM d JOIN completeness c ON c.person_id = d.id),
    main AS (
      INSERT INTO completeness_rollup (province_code, commune_code, commune_code_old, catalog,
                                       bin, persons, filled, total, ratio)
      SELECT province_code, commune_code, commune_code_old, catalog, bin, sum(s),
             sum(s * filled), sum(s * total),
             coalesce(sum(s * filled::float8 / nullif(total, 0)), 0)
      FROM a GROUP BY 1, 2, 3, 4, 5 RETURNING 1),
    miss AS (
      INSERT INTO completeness_missing_rollup (province_code, commune_code, commune_code_old,
                                               catalog, field, persons)
      SELECT province_code, commune_code, commune_code_old, catalog, m, sum(s)
      FROM a CROSS JOIN LATERAL unnest(a.missing) AS m
      GROUP BY 1, 2, 3, 4, 5 HAVING sum(s) <> 0 RETURNING 1)
    INSERT INTO completeness_facility_rollup (facility, catalog, persons, filled, total)
    SELECT f.facility, a.catalog, sum(a.s), sum(a.s * a.filled), sum(a.s * a.total)
    FROM a JOIN (SELECT d.id FROM d GROUP BY 1 HAVING sum(d.s) <> 0) moved
      ON moved.id = a.person_id  -- a move within the registry leaves facilities unchanged
    JOIN facility_person f ON f.person_id = a.person_id
    GROUP BY 1, 2 $q$, src)
$f$;

-- One trigger function per statement kind, its SQL written out (not run through EXECUTE),
-- so each session plans it once: a one-row registry write pays microseconds, not a plan.
DO $$
DECLARE
  v record;
  cols text := 'person_id, catalog, filled, total, missing';
  pcols text := 'id, province_code, commune_code, commune_code_old';
BEGIN
  FOR v IN SELECT * FROM (VALUES
      ('scores_insert', completeness_rollup_apply(format('SELECT %s, 1 AS s FROM new_rows', cols))),
      ('scores_delete', completeness_rollup_apply(format('SELECT %s, -1 AS s FROM old_rows', cols))),
      ('scores_update', completeness_rollup_apply(format(
         'SELECT %1$s, 1 AS s FROM new_rows UNION ALL SELECT %1$s, -1 FROM old_rows', cols))),
      ('persons_insert', completeness_rollup_person_sql(format(
         'SELECT %s, 1 AS s FROM new_rows WHERE merged_into IS NULL', pcols))),
      ('persons_delete', completeness_rollup_person_sql(format(
         'SELECT %s, -1 AS s FROM old_rows WHERE merged_into IS NULL', pcols))),
      ('persons_update', completeness_rollup_person_sql(format(
         'SELECT %1$s, 1 AS s FROM new_rows WHERE merged_into IS NULL UNION ALL '
         'SELECT %1$s, -1 FROM old_rows WHERE merged_into IS NULL', pcols)))
    ) x(name, body)
  LOOP
    EXECUTE format(
      'CREATE FUNCTION completeness_rollup_%s() RETURNS trigger LANGUAGE plpgsql AS %L',
      v.name, format('BEGIN %s; RETURN NULL; END', v.body));
  END LOOP;
END $$;

-- A facility that sends its first data about a person adds the person's scores.
CREATE FUNCTION completeness_rollup_facility() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO completeness_facility_rollup (facility, catalog, persons, filled, total)
  SELECT n.facility, c.catalog, count(*), sum(c.filled), sum(c.total)
  FROM new_rows n JOIN completeness c ON c.person_id = n.person_id
  JOIN person p ON p.id = n.person_id AND p.merged_into IS NULL
  GROUP BY 1, 2;
  RETURN NULL;
END $$;

-- Registry changes queue the person for rescoring (was a scan of persons × scores per job).
CREATE FUNCTION completeness_mark_persons() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO catalog_dirty (person_id) SELECT DISTINCT id FROM old_rows ORDER BY 1
    ON CONFLICT (person_id) DO NOTHING;
  ELSE
    INSERT INTO catalog_dirty (person_id) SELECT DISTINCT id FROM new_rows ORDER BY 1
    ON CONFLICT (person_id) DO NOTHING;
  END IF;
  RETURN NULL;
END $$;

-- TRUNCATE fires no row events: the rollups are rebuilt from what is left.
CREATE FUNCTION completeness_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM completeness_rollup;
  DELETE FROM completeness_missing_rollup;
  DELETE FROM completeness_facility_rollup;
  EXECUTE completeness_rollup_apply(
    'SELECT person_id, catalog, filled, total, missing, 1 AS s FROM completeness');
END $$;

CREATE FUNCTION completeness_rollup_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM completeness_rollup_rebuild();
  RETURN NULL;
END $$;

CREATE TRIGGER completeness_rollup_insert AFTER INSERT ON completeness
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION completeness_rollup_scores_insert();
CREATE TRIGGER completeness_rollup_update AFTER UPDATE ON completeness
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION completeness_rollup_scores_update();
CREATE TRIGGER completeness_rollup_delete AFTER DELETE ON completeness
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION completeness_rollup_scores_delete();

CREATE TRIGGER completeness_rollup_person_insert AFTER INSERT ON person
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION completeness_rollup_persons_insert();
CREATE TRIGGER completeness_rollup_person_update AFTER UPDATE ON person
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION completeness_rollup_persons_update();
CREATE TRIGGER completeness_rollup_person_delete AFTER DELETE ON person
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION completeness_rollup_persons_delete();

CREATE TRIGGER completeness_rollup_facility_insert AFTER INSERT ON facility_person
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION completeness_rollup_facility();

CREATE TRIGGER completeness_mark_insert AFTER INSERT ON person
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION completeness_mark_persons();
CREATE TRIGGER completeness_mark_update AFTER UPDATE ON person
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION completeness_mark_persons();
CREATE TRIGGER completeness_mark_delete AFTER DELETE ON person
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION completeness_mark_persons();

CREATE TRIGGER completeness_rollup_truncate AFTER TRUNCATE ON completeness
  FOR EACH STATEMENT EXECUTE FUNCTION completeness_rollup_truncated();
CREATE TRIGGER completeness_rollup_person_truncate AFTER TRUNCATE ON person
  FOR EACH STATEMENT EXECUTE FUNCTION completeness_rollup_truncated();
CREATE TRIGGER completeness_rollup_facility_truncate AFTER TRUNCATE ON facility_person
  FOR EACH STATEMENT EXECUTE FUNCTION completeness_rollup_truncated();

-- Data stored before this migration; persons never scored are queued once (the triggers
-- queue every later change).
SELECT completeness_rollup_rebuild();
INSERT INTO catalog_dirty (person_id)
SELECT p.id FROM person p
WHERE p.merged_into IS NULL AND NOT EXISTS (SELECT 1 FROM completeness c WHERE c.person_id = p.id)
ON CONFLICT (person_id) DO NOTHING;
