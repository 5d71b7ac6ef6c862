-- Clinical record store: current version of each resource + every earlier version.
-- No foreign keys to person: tables stay distributable by person_id (Citus) and bulk loads fast.
CREATE TABLE resource (
    type          text        NOT NULL,
    id            text        NOT NULL,
    version       integer     NOT NULL,
    person_id     bigint,
    codes         text[]      NOT NULL DEFAULT '{}',   -- 'system|code' and bare 'code'
    effective     timestamptz,
    source_unit   text,
    source_key    text,
    sensitivity   text,                                -- NULL, or e.g. 'HIV', 'PSY'
    deleted       boolean     NOT NULL DEFAULT false,
    last_updated  timestamptz NOT NULL,
    body          jsonb       NOT NULL,
    PRIMARY KEY (type, id)
);
CREATE UNIQUE INDEX resource_source_key ON resource (type, source_key) WHERE source_key IS NOT NULL;
CREATE INDEX resource_person ON resource (person_id, type, effective);
CREATE INDEX resource_type_effective ON resource (type, effective);
CREATE INDEX resource_codes ON resource USING gin (codes);
CREATE INDEX resource_identifier ON resource USING gin ((body -> 'identifier') jsonb_path_ops);

CREATE TABLE resource_history (
    type          text        NOT NULL,
    id            text        NOT NULL,
    version       integer     NOT NULL,
    person_id     bigint,
    last_updated  timestamptz NOT NULL,
    deleted       boolean     NOT NULL DEFAULT false,
    body          jsonb       NOT NULL,
    PRIMARY KEY (type, id, version)
);
