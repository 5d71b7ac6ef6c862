-- Population figures per area cell (province, commune, old commune), kept by statement-level
-- triggers on person and record_presence, so supervision never reads the registry: it sums
-- a few rows per cell. Rows are append-only deltas (concurrent writers never wait on one
-- counter row); readers sum, the completeness job compacts. A person counts while it exists
-- and is not merged.
CREATE TABLE area_rollup (
    province_code    text,
    commune_code     text,
    commune_code_old text,
    residents        bigint NOT NULL,
    with_record      bigint NOT NULL,
    standardized     bigint NOT NULL,
    verified         bigint NOT NULL,
    deaths           bigint NOT NULL,
    with_bhyt        bigint NOT NULL,
    with_cccd        bigint NOT NULL
);
CREATE INDEX area_rollup_province ON area_rollup (province_code);
CREATE INDEX area_rollup_commune ON area_rollup (commune_code);
CREATE INDEX area_rollup_commune_old ON area_rollup (commune_code_old);

-- Persons per household and cell (households are counted distinct over an area's cells).
CREATE TABLE area_household (
    province_code    text,
    commune_code     text,
    commune_code_old text,
    household_id     bigint NOT NULL,
    persons          bigint NOT NULL
);
CREATE INDEX area_household_province ON area_household (province_code, household_id);
CREATE INDEX area_household_commune ON area_household (commune_code);
CREATE INDEX area_household_commune_old ON area_household (commune_code_old);

-- Young persons per birth date and cell: "children under 6" moves with the calendar, so
-- births of the last 7 years are kept by day; older rows are dropped when compacting.
CREATE TABLE area_young (
    province_code    text,
    commune_code     text,
    commune_code_old text,
    birth_date       date NOT NULL,
    persons          bigint NOT NULL,
    with_id          bigint NOT NULL   -- with a CCCD or a health id
);
CREATE INDEX area_young_province ON area_young (province_code, birth_date);
CREATE INDEX area_young_commune ON area_young (commune_code);
CREATE INDEX area_young_commune_old ON area_young (commune_code_old);

-- The deltas of a set of person rows d(<person columns>, s), s = +1 or -1.
CREATE FUNCTION area_rollup_apply(src text) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
SELECT format($q$
WITH d0 AS (%s),
d AS (  -- a row whose counted columns did not change adds +1 and -1: nothing to do
  SELECT id, province_code, commune_code, commune_code_old, household_id,
         CASE WHEN birth_date > current_date - interval '7 years' THEN birth_date END AS young,
         verification, cccd_verified, deceased_at IS NOT NULL AS dead, bhyt IS NOT NULL AS bhyt,
         cccd IS NOT NULL AS cccd, health_id IS NOT NULL AS hid, sum(s)::int AS s
  FROM d0 WHERE merged_into IS NULL
  GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12 HAVING sum(s) <> 0),
a AS (
  SELECT d.*, EXISTS (SELECT 1 FROM record_presence r WHERE r.person_id = d.id) AS rec FROM d),
main AS (
  INSERT INTO area_rollup (province_code, commune_code, commune_code_old, residents,
    with_record, standardized, verified, deaths, with_bhyt, with_cccd)
  SELECT * FROM (
    SELECT province_code, commune_code, commune_code_old, sum(s) AS residents,
      coalesce(sum(s) FILTER (WHERE rec), 0) AS rec,
      coalesce(sum(s) FILTER (WHERE verification <> 'unverified' OR cccd_verified), 0) AS std,
      coalesce(sum(s) FILTER (WHERE verification = 'verified' OR cccd_verified), 0) AS ver,
      coalesce(sum(s) FILTER (WHERE dead), 0) AS dead, coalesce(sum(s) FILTER (WHERE bhyt), 0) AS bhyt,
      coalesce(sum(s) FILTER (WHERE cccd), 0) AS cccd
    FROM a GROUP BY 1, 2, 3) t
  WHERE (residents, rec, std, ver, dead, bhyt, cccd) IS DISTINCT FROM (0, 0, 0, 0, 0, 0, 0)
  RETURNING 1),
hh AS (
  INSERT INTO area_household (province_code, commune_code, commune_code_old, household_id,
                              persons)
  SELECT province_code, commune_code, commune_code_old, household_id, sum(s)
  FROM a WHERE household_id IS NOT NULL GROUP BY 1, 2, 3, 4 HAVING sum(s) <> 0 RETURNING 1)
INSERT INTO area_young (province_code, commune_code, commune_code_old, birth_date, persons,
                        with_id)
SELECT * FROM (
  SELECT province_code, commune_code, commune_code_old, young, sum(s) AS n,
         coalesce(sum(s) FILTER (WHERE cccd OR hid), 0) AS with_id
  FROM a WHERE young IS NOT NULL GROUP BY 1, 2, 3, 4) t
WHERE (n, with_id) <> (0, 0)
$q$, src)
$f$;

CREATE FUNCTION area_rollup_presence_sql(src text) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
SELECT format($q$
INSERT INTO area_rollup (province_code, commune_code, commune_code_old, residents,
  with_record, standardized, verified, deaths, with_bhyt, with_cccd)
SELECT p.province_code, p.commune_code, p.commune_code_old, 0, sum(d.s), 0, 0, 0, 0, 0
FROM (%s) d JOIN person p ON p.id = d.person_id AND p.merged_into IS NULL
GROUP BY 1, 2, 3 $q$, src)
$f$;

-- One trigger function per statement kind, its SQL written out (not run through EXECUTE),
-- so each session plans it once: a one-row registry write pays microseconds, not a plan.
DO $$
DECLARE v record;
BEGIN
  FOR v IN SELECT * FROM (VALUES
      ('persons_insert', area_rollup_apply('SELECT *, 1 AS s FROM new_rows')),
      ('persons_delete', area_rollup_apply('SELECT *, -1 AS s FROM old_rows')),
      ('persons_update', area_rollup_apply(
         'SELECT *, 1 AS s FROM new_rows UNION ALL SELECT *, -1 FROM old_rows')),
      ('presence_insert', area_rollup_presence_sql('SELECT person_id, 1 AS s FROM new_rows')),
      ('presence_delete', area_rollup_presence_sql('SELECT person_id, -1 AS s FROM old_rows'))
    ) x(name, body)
  LOOP
    EXECUTE format('CREATE FUNCTION area_rollup_%s() RETURNS trigger LANGUAGE plpgsql AS %L',
                   v.name, format('BEGIN %s; RETURN NULL; END', v.body));
  END LOOP;
END $$;

-- TRUNCATE fires no row events: the rollups are rebuilt from what is left.
CREATE FUNCTION area_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM area_rollup;
  DELETE FROM area_household;
  DELETE FROM area_young;
  EXECUTE area_rollup_apply('SELECT *, 1 AS s FROM person');
END $$;

CREATE FUNCTION area_rollup_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM area_rollup_rebuild();
  RETURN NULL;
END $$;

CREATE TRIGGER area_rollup_insert AFTER INSERT ON person
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION area_rollup_persons_insert();
CREATE TRIGGER area_rollup_update AFTER UPDATE ON person
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION area_rollup_persons_update();
CREATE TRIGGER area_rollup_delete AFTER DELETE ON person
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION area_rollup_persons_delete();
CREATE TRIGGER area_rollup_truncate AFTER TRUNCATE ON person
  FOR EACH STATEMENT EXECUTE FUNCTION area_rollup_truncated();

CREATE TRIGGER area_rollup_presence_insert AFTER INSERT ON record_presence
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION area_rollup_presence_insert();
CREATE TRIGGER area_rollup_presence_delete AFTER DELETE ON record_presence
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION area_rollup_presence_delete();
CREATE TRIGGER area_rollup_presence_truncate AFTER TRUNCATE ON record_presence
  FOR EACH STATEMENT EXECUTE FUNCTION area_rollup_truncated();

SELECT area_rollup_rebuild();
