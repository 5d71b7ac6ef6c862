-- Household changes and deaths entered by commune stations are applied to the person at once
-- (registry, audited); the queue nothing read is gone.
DROP TABLE IF EXISTS station_change;
