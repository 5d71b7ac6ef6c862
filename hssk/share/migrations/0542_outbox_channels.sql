-- Channels (the insurance gateway's QĐ 130 hồ sơ, the Ministry's health-check hub) send one
-- event per visit, not per person: ``subject`` names the visit (Encounter/<id>) and
-- ``due_at`` the deadline the rule sets (QĐ 1551: a health check within 24 h).
ALTER TABLE outbox ADD COLUMN subject text;
ALTER TABLE outbox ADD COLUMN due_at timestamptz;
-- The per-person coalescing index no longer covers per-visit events.
DROP INDEX outbox_open;
CREATE UNIQUE INDEX outbox_open ON outbox (partner, person_id)
    WHERE status = 'pending' AND payload IS NULL AND subject IS NULL;
CREATE INDEX outbox_subject ON outbox (subject) WHERE subject IS NOT NULL;
