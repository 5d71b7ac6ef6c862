-- Login by code looks a citizen up by CCCD or health id (NĐ 102/2025): without this index every
-- /auth/otp request read the whole person table (10.5 M rows in Hà Nội), a cheap way to load
-- the database from the open internet.
CREATE INDEX IF NOT EXISTS person_health_id ON person (health_id) WHERE health_id IS NOT NULL;
