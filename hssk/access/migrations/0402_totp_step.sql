-- The last TOTP time step accepted per account: a code is accepted once (no replay).
ALTER TABLE account ADD COLUMN totp_last_step bigint;
