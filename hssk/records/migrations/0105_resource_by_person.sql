-- The store keyed by person: `resource` and `resource_history` hash-partitioned by person_id
-- (HSSK_STORE_PARTITIONS, default 16, read once here: hssk.db.migrate passes it as the
-- setting hssk.store_partitions), data with no person apart in a default partition, and a
-- small `(type, id) → person` locator for reads by id and the existence check of bulk writes.
--
--   resource ─ RANGE (person_id) ─┬─ resource_none            DEFAULT: no person (NULL)
--                                 └─ resource_by_person       every person, HASH (person_id)
--                                      ├─ resource_p00 … resource_pNN
--
-- No unique index on the partitioned tables: a partition may be a foreign table on another
-- server (postgres_fdw), which takes none. The locator's primary key keeps one resource per
-- (type, id); the store writes it first (hssk.records.store).
--
-- The person a row was written under never changes (merges are followed on read, through the
-- registry's person_merged_ids). Rows an earlier version moved on a merge that is still in
-- force go back to the person they were written under, so that an unmerge needs no data
-- movement either; each version of history lives beside its resource.

CREATE TABLE resource_new (
    type          text        NOT NULL,
    id            text        NOT NULL,
    version       integer     NOT NULL,
    person_id     bigint,
    codes         text[]      NOT NULL DEFAULT '{}',
    effective     timestamptz,
    source_unit   text,
    source_key    text,
    sensitivity   text,
    deleted       boolean     NOT NULL DEFAULT false,
    last_updated  timestamptz NOT NULL,
    body          jsonb       NOT NULL,
    terms         text
) PARTITION BY RANGE (person_id);

CREATE TABLE resource_history_new (
    type          text        NOT NULL,
    id            text        NOT NULL,
    version       integer     NOT NULL,
    person_id     bigint,
    last_updated  timestamptz NOT NULL,
    deleted       boolean     NOT NULL DEFAULT false,
    body          jsonb       NOT NULL
) PARTITION BY RANGE (person_id);

DO $$
DECLARE
    n int := coalesce(nullif(current_setting('hssk.store_partitions', true), '')::int, 16);
    t text;
BEGIN
    IF n < 1 OR n > 1024 THEN
        RAISE EXCEPTION 'HSSK_STORE_PARTITIONS=% : cần từ 1 đến 1024 / must be 1 to 1024', n;
    END IF;
    FOREACH t IN ARRAY ARRAY['resource', 'resource_history'] LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', t || '_none', t || '_new');
        EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (MINVALUE) TO (MAXVALUE)'
                       ' PARTITION BY HASH (person_id)', t || '_by_person', t || '_new');
        FOR i IN 0 .. n - 1 LOOP
            EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES WITH (MODULUS %s, REMAINDER %s)',
                           t || '_p' || lpad(i::text, 2, '0'), t || '_by_person', n, i);
        END LOOP;
    END LOOP;
END $$;

-- Where each row moved by a merge still in force was written: the merged person of the first
-- such merge (a chain of merges moved it again, each recorded).
CREATE TEMP TABLE written_under (type text, id text, person_id bigint) ON COMMIT DROP;
DO $$
BEGIN
    IF to_regclass('person_merge') IS NOT NULL THEN
        INSERT INTO written_under
        SELECT DISTINCT ON (e ->> 0, e ->> 1) e ->> 0, e ->> 1, m.merged_id
        FROM person_merge m, jsonb_array_elements(m.moved_resources) AS e
        WHERE m.unmerged_at IS NULL
        ORDER BY e ->> 0, e ->> 1, m.id;
    END IF;
END $$;

INSERT INTO resource_new (type, id, version, person_id, codes, effective, source_unit, source_key,
                          sensitivity, deleted, last_updated, body, terms)
SELECT r.type, r.id, r.version, coalesce(w.person_id, r.person_id), r.codes, r.effective,
       r.source_unit, r.source_key, r.sensitivity, r.deleted, r.last_updated, r.body, r.terms
FROM resource r LEFT JOIN written_under w ON w.type = r.type AND w.id = r.id;

CREATE TABLE resource_locator (
    type       text   NOT NULL,
    id         text   NOT NULL,
    person_id  bigint,
    PRIMARY KEY (type, id)
);
INSERT INTO resource_locator (type, id, person_id)
SELECT type, id, person_id FROM resource_new ORDER BY type, id;

INSERT INTO resource_history_new (type, id, version, person_id, last_updated, deleted, body)
SELECT h.type, h.id, h.version, coalesce(l.person_id, h.person_id), h.last_updated, h.deleted,
       h.body
FROM resource_history h LEFT JOIN resource_locator l ON l.type = h.type AND l.id = h.id;

ALTER TABLE resource RENAME TO resource_v1;
DROP TABLE resource_v1;
ALTER TABLE resource_history RENAME TO resource_history_v1;
DROP TABLE resource_history_v1;
ALTER TABLE resource_new RENAME TO resource;
ALTER TABLE resource_history_new RENAME TO resource_history;

-- Each index is made on every partition (a foreign one is left out by PostgreSQL).
CREATE INDEX resource_key ON resource (person_id, type, id);  -- one resource in its partition
CREATE INDEX resource_person ON resource (person_id, type, effective);
CREATE INDEX resource_type_effective ON resource (type, effective);
CREATE INDEX resource_codes ON resource USING gin (codes);
CREATE INDEX resource_identifier ON resource USING gin ((body -> 'identifier') jsonb_path_ops);
CREATE INDEX resource_term_prefixes ON resource USING gin (resource_term_prefixes(terms))
  WHERE terms IS NOT NULL;
CREATE INDEX resource_history_id ON resource_history (type, id, version);
