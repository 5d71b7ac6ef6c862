-- hssk:long area_household area_young
-- Province-wide supervision without reading one row per household or per birth date.
--
-- Households: the province summary counted the distinct households of every cell of the
-- province (one area_household row per household: 2.6 s at a million persons) and each
-- breakdown row did the same for its commune. Now a household's members are counted per
-- level (the whole platform, a province, a commune, an old commune) in household_member, one
-- row per level and household updated in place (the row lock orders two writers of one
-- household, so the count of households stays exact), and whenever such a row goes from no
-- member to some, or back, area_household_count gets a +1 or -1 delta for that level's code:
-- the province figures sum a few delta rows per commune. area_household stays for the pages
-- of a commune or an old district, which read that area's households only.
--
-- Children under 6: area_young keeps births of the last 7 years per day and cell, and the
-- province summary read 6 years of days of every cell. area_young_month keeps the same per
-- month: an area's children are its whole months after the 6-year limit plus the days of the
-- limit's own month from area_young (at most 31 days per cell).
-- The new tables are filled from the rollups below: no person may change meanwhile (its
-- deltas would go to the old tables only).
LOCK TABLE person IN SHARE MODE;

CREATE TABLE household_member (
    level         text NOT NULL,              -- all, province, commune, commune_old
    province_code text NOT NULL DEFAULT '',   -- '' when unknown (and for the level all)
    code          text NOT NULL DEFAULT '',   -- the commune or old commune; '' otherwise
    household_id  bigint NOT NULL,
    persons       bigint NOT NULL,
    PRIMARY KEY (level, province_code, code, household_id)
);

CREATE TABLE area_household_count (
    level         text NOT NULL,
    province_code text NOT NULL,
    code          text NOT NULL,
    households    bigint NOT NULL
);
CREATE INDEX area_household_count_key ON area_household_count (level, province_code, code);

CREATE TABLE area_young_month (
    province_code    text,
    commune_code     text,
    commune_code_old text,
    birth_month      date NOT NULL,   -- the first day of the month
    persons          bigint NOT NULL,
    with_id          bigint NOT NULL
);
CREATE INDEX area_young_month_province ON area_young_month (province_code, birth_month);
CREATE INDEX area_young_month_commune ON area_young_month (commune_code);
CREATE INDEX area_young_month_commune_old ON area_young_month (commune_code_old);
CREATE INDEX area_young_birth ON area_young (birth_date);

-- The levels a person of a cell counts at, each with its keys ('' for none).
CREATE FUNCTION household_levels(province text, commune text, commune_old text)
RETURNS TABLE (level text, province_code text, code text) LANGUAGE sql IMMUTABLE AS $$
  VALUES ('all', '', ''), ('province', coalesce(province, ''), ''),
         ('commune', coalesce(province, ''), coalesce(commune, '')),
         ('commune_old', coalesce(province, ''), coalesce(commune_old, ''))
$$;

-- The deltas of a set of person rows d(<person columns>, s), s = +1 or -1 (0581, with the
-- household levels and the months of young persons).
CREATE OR REPLACE FUNCTION area_rollup_apply(src text) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
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
  FROM a WHERE household_id IS NOT NULL GROUP BY 1, 2, 3, 4 HAVING sum(s) <> 0 RETURNING 1),
lv AS (  -- members per level and household
  SELECT l.level, l.province_code, l.code, a.household_id, sum(a.s) AS s
  FROM a CROSS JOIN LATERAL household_levels(a.province_code, a.commune_code,
                                              a.commune_code_old) l
  WHERE a.household_id IS NOT NULL GROUP BY 1, 2, 3, 4 HAVING sum(a.s) <> 0),
mem AS (  -- in key order: two statements updating the same households lock them alike
  INSERT INTO household_member AS m (level, province_code, code, household_id, persons)
  SELECT * FROM lv ORDER BY 1, 2, 3, 4
  ON CONFLICT (level, province_code, code, household_id)
  DO UPDATE SET persons = m.persons + excluded.persons
  RETURNING m.level, m.province_code, m.code, m.household_id, m.persons),
cnt AS (  -- a household appears in, or leaves, a level's area
  INSERT INTO area_household_count (level, province_code, code, households)
  SELECT * FROM (
    SELECT mem.level, mem.province_code, mem.code,
           sum(CASE WHEN mem.persons > 0 AND mem.persons - lv.s <= 0 THEN 1
                    WHEN mem.persons <= 0 AND mem.persons - lv.s > 0 THEN -1 ELSE 0 END) AS n
    FROM mem JOIN lv USING (level, province_code, code, household_id) GROUP BY 1, 2, 3) t
  WHERE n <> 0 RETURNING 1),
yg AS (
  SELECT province_code, commune_code, commune_code_old, young, sum(s) AS n,
         coalesce(sum(s) FILTER (WHERE cccd OR hid), 0) AS with_id
  FROM a WHERE young IS NOT NULL GROUP BY 1, 2, 3, 4),
ym AS (
  INSERT INTO area_young_month (province_code, commune_code, commune_code_old, birth_month,
                                persons, with_id)
  SELECT * FROM (
    SELECT province_code, commune_code, commune_code_old, date_trunc('month', young)::date,
           sum(n) AS n, sum(with_id) AS with_id
    FROM yg GROUP BY 1, 2, 3, 4) t
  WHERE (n, with_id) <> (0, 0) RETURNING 1)
INSERT INTO area_young (province_code, commune_code, commune_code_old, birth_date, persons,
                        with_id)
SELECT * FROM yg WHERE (n, with_id) <> (0, 0)
$q$, src)
$f$;

DO $$
DECLARE v record;
BEGIN
  FOR v IN SELECT * FROM (VALUES
      ('persons_insert', area_rollup_apply('SELECT *, 1 AS s FROM new_rows')),
      ('persons_delete', area_rollup_apply('SELECT *, -1 AS s FROM old_rows')),
      ('persons_update', area_rollup_apply(
         'SELECT *, 1 AS s FROM new_rows UNION ALL SELECT *, -1 FROM old_rows'))
    ) x(name, body)
  LOOP
    EXECUTE format('CREATE OR REPLACE FUNCTION area_rollup_%s() RETURNS trigger '
                   'LANGUAGE plpgsql AS %L', v.name, format('BEGIN %s; RETURN NULL; END', v.body));
  END LOOP;
END $$;

CREATE OR REPLACE FUNCTION area_rollup_rebuild() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM area_rollup;
  DELETE FROM area_household;
  DELETE FROM household_member;
  DELETE FROM area_household_count;
  DELETE FROM area_young;
  DELETE FROM area_young_month;
  EXECUTE area_rollup_apply('SELECT *, 1 AS s FROM person');
END $$;

-- The new tables from the rollups already kept (no read of person).
INSERT INTO household_member (level, province_code, code, household_id, persons)
SELECT l.level, l.province_code, l.code, h.household_id, sum(h.persons)
FROM area_household h
CROSS JOIN LATERAL household_levels(h.province_code, h.commune_code, h.commune_code_old) l
GROUP BY 1, 2, 3, 4 HAVING sum(h.persons) <> 0;

INSERT INTO area_household_count (level, province_code, code, households)
SELECT level, province_code, code, count(*) FROM household_member WHERE persons > 0
GROUP BY 1, 2, 3;

INSERT INTO area_young_month (province_code, commune_code, commune_code_old, birth_month,
                              persons, with_id)
SELECT province_code, commune_code, commune_code_old, date_trunc('month', birth_date)::date,
       sum(persons), sum(with_id)
FROM area_young GROUP BY 1, 2, 3, 4 HAVING (sum(persons), sum(with_id)) <> (0, 0);
