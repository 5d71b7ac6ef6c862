-- Accounts provisioned at a citizen's first login copied the golden record's phone whatever
-- its source (a hospital system could have put its own number there). Codes now go to the
-- person's verified phone (accounts.code_phone): the copies are dropped.
UPDATE account SET phone = NULL WHERE kind = 'citizen' AND username LIKE 'cd.%';
