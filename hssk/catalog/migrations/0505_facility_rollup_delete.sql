-- A facility_person row that goes (a repair, a purge) takes the person's scores out of the
-- facility's completeness too; only its insert was followed (0503).
CREATE FUNCTION completeness_rollup_facility_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO completeness_facility_rollup (facility, catalog, persons, filled, total)
  SELECT o.facility, c.catalog, -count(*), -sum(c.filled), -sum(c.total)
  FROM old_rows o JOIN completeness c ON c.person_id = o.person_id
  JOIN person p ON p.id = o.person_id AND p.merged_into IS NULL
  GROUP BY 1, 2;
  RETURN NULL;
END $$;

CREATE TRIGGER completeness_rollup_facility_delete AFTER DELETE ON facility_person
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT
  EXECUTE FUNCTION completeness_rollup_facility_delete();
