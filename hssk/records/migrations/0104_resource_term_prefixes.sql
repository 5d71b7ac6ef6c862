-- Name search through an index: every prefix of every folded word of `terms` (no extension
-- needed; pg_trgm is not available everywhere). `name=ngu` matches a resource one of whose
-- name words starts with "ngu", as `terms LIKE '% ngu%'` did by reading every row.
CREATE FUNCTION resource_term_prefixes(terms text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT left(w, n)), '{}')
  FROM unnest(string_to_array(terms, ' ')) AS w, generate_series(1, length(w)) AS n
  WHERE w <> ''
$$;
CREATE INDEX resource_term_prefixes ON resource USING gin (resource_term_prefixes(terms))
  WHERE terms IS NOT NULL;
