-- Accent-insensitive account search in the administration console: `search_key` holds the
-- username and display name folded by hssk.kernel.text.fold (no diacritics, đ→d, lower case,
-- words split at anything not a letter or digit). The fold runs in Python, so a changed name
-- clears the key (trigger below) and the search folds the accounts whose key is missing
-- before it looks (hssk.access.admin.list_accounts). An index on every prefix of every word
-- answers "nguyen van an" and "Nguyễn Văn An" alike (pg_trgm is not available everywhere).
ALTER TABLE account ADD COLUMN search_key text;

CREATE FUNCTION account_search_prefixes(key text) RETURNS text[]
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
  SELECT coalesce(array_agg(DISTINCT left(w, n)), '{}')
  FROM unnest(string_to_array(key, ' ')) AS w, generate_series(1, length(w)) AS n
  WHERE w <> ''
$$;

CREATE INDEX account_search_prefixes ON account USING gin (account_search_prefixes(search_key))
  WHERE search_key IS NOT NULL;
-- accounts without a unit (citizens') are never listed by the console: never folded
CREATE INDEX account_search_pending ON account (id)
  WHERE search_key IS NULL AND unit_id IS NOT NULL;

CREATE FUNCTION account_search_key_stale() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.search_key := NULL;
  RETURN NEW;
END
$$;

CREATE TRIGGER account_search_key_stale
  BEFORE UPDATE OF username, display_name ON account
  FOR EACH ROW
  WHEN (OLD.username IS DISTINCT FROM NEW.username
        OR OLD.display_name IS DISTINCT FROM NEW.display_name)
  EXECUTE FUNCTION account_search_key_stale();
