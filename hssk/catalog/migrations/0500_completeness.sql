-- Completeness of each person's record against each field catalog, kept up to date
-- incrementally: writers mark persons dirty (set-based), a job recomputes them.
CREATE TABLE catalog_dirty (
    person_id  bigint PRIMARY KEY,
    marked_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE completeness (
    person_id    bigint NOT NULL,
    catalog      text   NOT NULL,             -- catalog name, e.g. 'hanoi-73'
    version      text   NOT NULL,             -- catalog version the score was computed with
    filled       integer NOT NULL,
    total        integer NOT NULL,
    missing      text[] NOT NULL DEFAULT '{}', -- field codes without a value
    computed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (person_id, catalog)
);
CREATE INDEX completeness_catalog ON completeness (catalog, filled);
