-- facility_activity becomes append-only deltas: concurrent ingest batches of one facility no
-- longer wait on (or deadlock over) one counter row; readers sum, the completeness job
-- compacts.
ALTER TABLE facility_activity DROP CONSTRAINT facility_activity_pkey;
CREATE INDEX facility_activity_facility ON facility_activity (facility, day);
