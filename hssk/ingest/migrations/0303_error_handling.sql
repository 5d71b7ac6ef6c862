-- Who set a quarantined record aside, when and why (a record that must not be stored, e.g.
-- a test record or a visit sent to the wrong facility); what was corrected, by whom.
ALTER TABLE ingest_error ADD COLUMN discarded_at timestamptz;
ALTER TABLE ingest_error ADD COLUMN discarded_by text;
ALTER TABLE ingest_error ADD COLUMN discard_reason text;
ALTER TABLE ingest_error ADD COLUMN corrected_at timestamptz;
ALTER TABLE ingest_error ADD COLUMN corrected_by text;
CREATE INDEX ingest_error_facility_status ON ingest_error (facility, status, id);
