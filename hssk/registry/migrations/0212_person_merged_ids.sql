-- Merges never move clinical rows: the data of a survivor is what was written under it and
-- under every person merged into it. These two functions are the registry's answer, for SQL
-- that needs it inside one query (the access policy); Python reads them through
-- registry.merged_ids / survivors.
CREATE FUNCTION person_survivor(pid bigint) RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  WITH RECURSIVE chain(id, next, depth) AS (
      SELECT p.id, p.merged_into, 0 FROM person p WHERE p.id = pid
    UNION ALL
      SELECT p.id, p.merged_into, c.depth + 1 FROM chain c JOIN person p ON p.id = c.next
      WHERE c.depth < 50)
  SELECT coalesce((SELECT id FROM chain WHERE next IS NULL LIMIT 1), pid)
$$;

CREATE FUNCTION person_merged_ids(pid bigint) RETURNS bigint[]
LANGUAGE sql STABLE PARALLEL SAFE AS $$
  WITH RECURSIVE tree(id, depth) AS (
      SELECT pid, 0
    UNION ALL
      SELECT p.id, t.depth + 1 FROM tree t JOIN person p ON p.merged_into = t.id
      WHERE p.merged_into IS NOT NULL AND t.depth < 50)
  SELECT array_agg(id ORDER BY depth, id) FROM tree
$$;
