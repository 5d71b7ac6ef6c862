-- Why a guardianship was recorded: the registry's mother, the same household, or a staff
-- member's written reason (the papers seen).
ALTER TABLE guardianship ADD COLUMN basis text, ADD COLUMN reason text;
