-- Accent-insensitive account search in the administration console: `search_key` holds the
-- username and display name folded by hssk.kernel.text.fold (no diacritics, đ→d, lower case,
-- words split at anything not a letter or digit) and `search_prefixes` every prefix of every
-- word of it, under a GIN index: "nguyen van an" and "Nguyễn Văn An" alike find the accounts
-- with a word starting with each word typed (pg_trgm is not available everywhere). The
-- prefixes are stored, not computed by an index expression: a prepared statement's generic
-- plan would otherwise compute them for every row it filters. The fold runs in Python, so a
-- changed name clears both (trigger below) and the search folds the accounts left without a
-- key before it looks (hssk.access.admin.list_accounts).
ALTER TABLE account ADD COLUMN search_key text, ADD COLUMN search_prefixes text[];

CREATE INDEX account_search_prefixes ON account USING gin (search_prefixes);
-- accounts without a unit (citizens') are never listed by the console: never folded
CREATE INDEX account_search_pending ON account (id)
  WHERE search_key IS NULL AND unit_id IS NOT NULL;

CREATE FUNCTION account_search_key_stale() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  NEW.search_key := NULL;
  NEW.search_prefixes := NULL;
  RETURN NEW;
END
$$;

CREATE TRIGGER account_search_key_stale
  BEFORE UPDATE OF username, display_name ON account
  FOR EACH ROW
  WHEN (OLD.username IS DISTINCT FROM NEW.username
        OR OLD.display_name IS DISTINCT FROM NEW.display_name)
  EXECUTE FUNCTION account_search_key_stale();
