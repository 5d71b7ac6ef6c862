-- The rescoring queue becomes append-only. With a unique key on person_id, a transaction that
-- queues a person waits for any other uncommitted transaction that queued the same person
-- (ON CONFLICT must know whether that row will exist). Two ingest transactions queueing
-- overlapping persons in different statements (the registry trigger for the persons it
-- updates, then the record counters for the persons whose records changed) took those keys in
-- opposite orders and deadlocked; sorting within a statement cannot order keys across
-- statements. Plain inserts never wait. A person queued twice is scored twice (harmless); the
-- job takes queue rows, and with them the other rows of the same persons. The index on
-- marked_at spares each batch a sort of the whole queue.
ALTER TABLE catalog_dirty DROP CONSTRAINT catalog_dirty_pkey;
CREATE INDEX catalog_dirty_marked ON catalog_dirty (marked_at);
CREATE INDEX catalog_dirty_person ON catalog_dirty (person_id);

CREATE OR REPLACE FUNCTION completeness_mark_persons() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    INSERT INTO catalog_dirty (person_id) SELECT DISTINCT id FROM old_rows;
  ELSE
    INSERT INTO catalog_dirty (person_id) SELECT DISTINCT id FROM new_rows;
  END IF;
  RETURN NULL;
END $$;
