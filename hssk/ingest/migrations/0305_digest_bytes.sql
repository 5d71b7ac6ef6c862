-- hssk:long ingest_digest
-- A source record's content digest as its 20 bytes instead of 40 hexadecimal characters: one
-- row per source record ever stored (7.5 per person in the Hà Nội benchmark, ~70 M for the
-- city), each 20 bytes smaller. The writer still speaks hexadecimal (decode/encode at the
-- table); a digest that is not hexadecimal fails this migration instead of being changed.
ALTER TABLE ingest_digest ALTER COLUMN digest TYPE bytea USING decode(digest, 'hex');
