-- A resource's id is derived from (type, source_key) (records.id_for_source_key), so the
-- primary key already keeps one resource per source key; the extra unique index only cost
-- ingestion time (one more b-tree on a long text per resource).
DROP INDEX IF EXISTS resource_source_key;
