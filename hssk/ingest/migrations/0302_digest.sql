-- Content digest of every source record stored, so a re-sent identical record (HIS retries,
-- a file loaded twice) is recognised before any mapping, linking or writing.
CREATE TABLE ingest_digest (
    key         text PRIMARY KEY,          -- kind|record key (e.g. xml130|01001|LK000001)
    digest      text NOT NULL,             -- blake2b-160 of the record's decoded content
    updated_at  timestamptz NOT NULL DEFAULT now()
);
