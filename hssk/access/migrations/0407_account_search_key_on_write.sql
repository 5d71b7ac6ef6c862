-- The account search key is written with the name (hssk.access.accounts: create, import,
-- rename), so a search only reads: the trigger that cleared a changed name's key, and the
-- index of the accounts left to fold at search time, go. Re-runnable (tests run it again).
DROP TRIGGER IF EXISTS account_search_key_stale ON account;
DROP FUNCTION IF EXISTS account_search_key_stale();
DROP INDEX IF EXISTS account_search_pending;

-- Once, the accounts of a unit never searched since 0406 (citizens' are never listed): the
-- fold of hssk.access.accounts.search_key in SQL — decompose, drop the combining marks, đ→d,
-- lower case, words of letters and digits — and every prefix of every word.
UPDATE account a
SET search_key = f.key,
    search_prefixes = (
      SELECT coalesce(array_agg(DISTINCT left(w, n)), '{}')
      FROM unnest(string_to_array(f.key, ' ')) w, generate_series(1, length(w)) n)
FROM (
  SELECT id, btrim(regexp_replace(lower(translate(
           regexp_replace(normalize(concat_ws(' ', username, display_name), NFD),
                          '[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]',
                          '', 'g'),
           'đĐ', 'dD')), '[^0-9a-z]+', ' ', 'g')) AS key
  FROM account
  WHERE search_key IS NULL AND unit_id IS NOT NULL
) f
WHERE a.id = f.id;
