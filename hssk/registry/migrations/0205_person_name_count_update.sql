-- The update trigger of 0204 joined the old and new transition tables by id: they have no
-- index nor statistics, and the planner chose a nested loop (5.8 s for a 5,000-row UPDATE).
-- Counting each side by name key and taking the difference is linear: a row whose key did
-- not change adds +1 and -1 to the same key.
CREATE OR REPLACE FUNCTION person_name_count_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO person_name_count AS c (name_key, n)
  SELECT name_key, sum(d) FROM (
      SELECT name_key, 1 AS d FROM new_rows WHERE name_key IS NOT NULL
      UNION ALL
      SELECT name_key, -1 FROM old_rows WHERE name_key IS NOT NULL
  ) x
  GROUP BY name_key HAVING sum(d) <> 0
  ORDER BY name_key  -- key order: concurrent writers never deadlock
  ON CONFLICT (name_key) DO UPDATE SET n = c.n + excluded.n;
  RETURN NULL;
END $$;
