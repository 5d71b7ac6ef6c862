-- A change of an account's status (enabled, disabled) is announced on the channel
-- hssk_account_status at commit, the account's id as payload, whoever makes it: every process
-- keeps the statuses it asked (hssk.access.accounts.account_disabled) and forgets the
-- announced ones, so a disabled account is refused at its next request in every web worker,
-- not once a cache expires.
CREATE FUNCTION account_status_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('hssk_account_status', NEW.id::text);
  RETURN NULL;
END
$$;

CREATE TRIGGER account_status_notify
  AFTER UPDATE OF active, disabled_at ON account
  FOR EACH ROW
  WHEN (OLD.active IS DISTINCT FROM NEW.active
        OR OLD.disabled_at IS DISTINCT FROM NEW.disabled_at)
  EXECUTE FUNCTION account_status_notify();
