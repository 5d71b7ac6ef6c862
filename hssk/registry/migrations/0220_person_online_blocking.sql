-- Online blocking beyond names: another document number (foreign id, old card), and the full
-- birth date with the commune (a record whose name was typed wrong or replaced).
CREATE INDEX IF NOT EXISTS person_eid ON person (eid) WHERE eid IS NOT NULL;
CREATE INDEX IF NOT EXISTS person_birth_commune ON person (birth_date, commune_code)
    WHERE commune_code IS NOT NULL;
