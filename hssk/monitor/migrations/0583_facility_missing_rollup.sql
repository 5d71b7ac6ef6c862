-- hssk:long completeness facility_person
-- The fields most often missing per facility, over the persons it sent data about
-- (facility_person), kept by statement-level triggers on completeness, person and
-- facility_person like the facility completeness of migration 0503: the facilities page sums
-- a few rows per facility instead of reading the completeness of every recent patient
-- (3.5 s for a province at 200 k persons). Append-only signed deltas; the rollup compaction
-- job folds them. A person counts while it exists and is not merged. facility_person rows
-- never change facility or person (only last_seen), so its updates need no trigger.
CREATE TABLE facility_missing_rollup (
    facility  text NOT NULL,
    catalog   text NOT NULL,
    field     text NOT NULL,
    persons   bigint NOT NULL
);
CREATE INDEX facility_missing_rollup_key ON facility_missing_rollup (catalog, facility);

-- d(person_id, catalog, missing, s): completeness rows, signed; persons that do not count
-- are dropped by the join.
CREATE FUNCTION facility_missing_scores_sql(src text) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
SELECT format($q$
WITH d AS (
  SELECT person_id, catalog, missing, sum(s)::int AS s FROM (%s) x
  GROUP BY 1, 2, 3 HAVING sum(s) <> 0)
INSERT INTO facility_missing_rollup (facility, catalog, field, persons)
SELECT f.facility, d.catalog, m, sum(d.s)
FROM d JOIN person p ON p.id = d.person_id AND p.merged_into IS NULL
JOIN facility_person f ON f.person_id = d.person_id
CROSS JOIN LATERAL unnest(d.missing) AS m
GROUP BY 1, 2, 3 HAVING sum(d.s) <> 0 $q$, src)
$f$;

-- d(id, s): persons that start or stop counting (appear, merge, unmerge, go).
CREATE FUNCTION facility_missing_persons_sql(src text) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
SELECT format($q$
WITH d AS (SELECT id, sum(s)::int AS s FROM (%s) x GROUP BY 1 HAVING sum(s) <> 0)
INSERT INTO facility_missing_rollup (facility, catalog, field, persons)
SELECT f.facility, c.catalog, m, sum(d.s)
FROM d JOIN completeness c ON c.person_id = d.id
JOIN facility_person f ON f.person_id = d.id
CROSS JOIN LATERAL unnest(c.missing) AS m
GROUP BY 1, 2, 3 HAVING sum(d.s) <> 0 $q$, src)
$f$;

-- d(facility, person_id, s): a facility's first (or lost) data about a person.
CREATE FUNCTION facility_missing_seen_sql(src text) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
SELECT format($q$
INSERT INTO facility_missing_rollup (facility, catalog, field, persons)
SELECT d.facility, c.catalog, m, sum(d.s)
FROM (%s) d JOIN completeness c ON c.person_id = d.person_id
JOIN person p ON p.id = d.person_id AND p.merged_into IS NULL
CROSS JOIN LATERAL unnest(c.missing) AS m
GROUP BY 1, 2, 3 HAVING sum(d.s) <> 0 $q$, src)
$f$;

-- One trigger function per statement kind, its SQL written out (planned once per session).
DO $$
DECLARE v record;
BEGIN
  FOR v IN SELECT * FROM (VALUES
      ('scores_insert', facility_missing_scores_sql(
         'SELECT person_id, catalog, missing, 1 AS s FROM new_rows')),
      ('scores_delete', facility_missing_scores_sql(
         'SELECT person_id, catalog, missing, -1 AS s FROM old_rows')),
      ('scores_update', facility_missing_scores_sql(
         'SELECT person_id, catalog, missing, 1 AS s FROM new_rows UNION ALL '
         'SELECT person_id, catalog, missing, -1 FROM old_rows')),
      ('persons_insert', facility_missing_persons_sql(
         'SELECT id, 1 AS s FROM new_rows WHERE merged_into IS NULL')),
      ('persons_delete', facility_missing_persons_sql(
         'SELECT id, -1 AS s FROM old_rows WHERE merged_into IS NULL')),
      ('persons_update', facility_missing_persons_sql(
         'SELECT id, 1 AS s FROM new_rows WHERE merged_into IS NULL UNION ALL '
         'SELECT id, -1 FROM old_rows WHERE merged_into IS NULL')),
      ('seen_insert', facility_missing_seen_sql(
         'SELECT facility, person_id, 1 AS s FROM new_rows')),
      ('seen_delete', facility_missing_seen_sql(
         'SELECT facility, person_id, -1 AS s FROM old_rows'))
    ) x(name, body)
  LOOP
    EXECUTE format('CREATE FUNCTION facility_missing_%s() RETURNS trigger LANGUAGE plpgsql AS %L',
                   v.name, format('BEGIN %s; RETURN NULL; END', v.body));
  END LOOP;
END $$;

-- TRUNCATE fires no row events: rebuilt from what is left.
CREATE FUNCTION facility_missing_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM facility_missing_rollup;
  EXECUTE facility_missing_scores_sql(
    'SELECT person_id, catalog, missing, 1 AS s FROM completeness');
END $$;

CREATE FUNCTION facility_missing_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM facility_missing_rollup_rebuild();
  RETURN NULL;
END $$;

CREATE TRIGGER facility_missing_insert AFTER INSERT ON completeness
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION facility_missing_scores_insert();
CREATE TRIGGER facility_missing_update AFTER UPDATE ON completeness
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION facility_missing_scores_update();
CREATE TRIGGER facility_missing_delete AFTER DELETE ON completeness
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION facility_missing_scores_delete();
CREATE TRIGGER facility_missing_person_insert AFTER INSERT ON person
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION facility_missing_persons_insert();
CREATE TRIGGER facility_missing_person_update AFTER UPDATE ON person
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION facility_missing_persons_update();
CREATE TRIGGER facility_missing_person_delete AFTER DELETE ON person
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION facility_missing_persons_delete();
CREATE TRIGGER facility_missing_seen_insert AFTER INSERT ON facility_person
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT
  EXECUTE FUNCTION facility_missing_seen_insert();
CREATE TRIGGER facility_missing_seen_delete AFTER DELETE ON facility_person
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION facility_missing_seen_delete();
CREATE TRIGGER facility_missing_truncate AFTER TRUNCATE ON completeness
  FOR EACH STATEMENT EXECUTE FUNCTION facility_missing_truncated();
CREATE TRIGGER facility_missing_person_truncate AFTER TRUNCATE ON person
  FOR EACH STATEMENT EXECUTE FUNCTION facility_missing_truncated();
CREATE TRIGGER facility_missing_seen_truncate AFTER TRUNCATE ON facility_person
  FOR EACH STATEMENT EXECUTE FUNCTION facility_missing_truncated();

SELECT facility_missing_rollup_rebuild();

-- Quality findings carry the area cell and what station staff see of the person (name, birth
-- date) as the daily job found them, so the quality page reads no person row.
ALTER TABLE quality_issue ADD COLUMN commune_code_old text, ADD COLUMN full_name text,
  ADD COLUMN birth_date date;
UPDATE quality_issue q SET commune_code_old = p.commune_code_old, full_name = p.full_name,
  birth_date = p.birth_date
FROM person p WHERE p.id = q.person_id;
CREATE INDEX quality_issue_commune_old ON quality_issue (commune_code_old);
