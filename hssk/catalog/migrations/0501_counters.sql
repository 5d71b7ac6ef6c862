-- Counters kept by the record-change hook (set-based, per batch), so supervision never scans
-- the resource table: who has a record, what each facility sent per day, whom it saw.
CREATE TABLE record_presence (
    person_id     bigint PRIMARY KEY,
    first_change  timestamptz NOT NULL,
    last_change   timestamptz NOT NULL
);

CREATE TABLE facility_activity (
    facility  text NOT NULL,        -- resource.source_unit (mã CSKCB)
    day       date NOT NULL,
    changes   integer NOT NULL,
    PRIMARY KEY (facility, day)
);

CREATE TABLE facility_person (
    facility   text NOT NULL,
    person_id  bigint NOT NULL,
    last_seen  timestamptz NOT NULL,
    PRIMARY KEY (facility, person_id)
);
CREATE INDEX facility_person_seen ON facility_person (facility, last_seen);

-- Data stored before this migration.
INSERT INTO record_presence (person_id, first_change, last_change)
SELECT person_id, min(last_updated), max(last_updated) FROM resource
WHERE person_id IS NOT NULL AND NOT deleted GROUP BY person_id;
INSERT INTO facility_activity (facility, day, changes)
SELECT source_unit, last_updated::date, count(*) FROM resource
WHERE source_unit IS NOT NULL GROUP BY 1, 2;
INSERT INTO facility_person (facility, person_id, last_seen)
SELECT source_unit, person_id, max(last_updated) FROM resource
WHERE source_unit IS NOT NULL AND person_id IS NOT NULL GROUP BY 1, 2;
