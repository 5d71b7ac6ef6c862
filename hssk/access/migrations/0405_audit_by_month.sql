-- hssk:online
-- hssk:long audit_event
-- The audit log range-partitioned by UTC month of `at` (month_partitions, migration 0001):
-- a month-bounded query (a citizen's "who read my record" for a period, an auditor's search)
-- reads the partitions of its months only, and an old month can be detached and archived as a
-- whole table (never dropped: the law keeps the trail). The primary key becomes (seq, at): a
-- partitioned table's unique keys must hold its partition column; seq stays unique by its
-- identity sequence, which goes on where the old one stopped. Every row is copied as it is,
-- so the hash chain (over the fields, not the physical rows) still verifies.
--
-- Online: the rows are copied in batches while the platform writes on (an audit event is
-- appended after the chain lock, so seq grows in commit order and "seq > the last copied"
-- finds every new row); only the last step — the rows written since, the swap — holds the
-- table, writers waiting for it, readers not.
CREATE TABLE audit_event_by_month (
    seq            bigint GENERATED ALWAYS AS IDENTITY,
    at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor          text,
    unit_id        text,
    role           text,
    basis          text,
    purpose        text,
    action         text NOT NULL,
    resource_type  text,
    resource_id    text,
    person_id      bigint,
    outcome        text NOT NULL,
    client         text,
    detail         jsonb NOT NULL DEFAULT '{}',
    prev_hash      text NOT NULL,
    hash           text NOT NULL,
    PRIMARY KEY (seq, at)
) PARTITION BY RANGE (at);
SELECT month_partitions('audit_event_by_month', coalesce((SELECT min(at) FROM audit_event), now()));
-- hssk:step the rows, 50,000 a batch, in chain order
-- hssk:repeat
INSERT INTO audit_event_by_month OVERRIDING SYSTEM VALUE
SELECT seq, at, actor, unit_id, role, basis, purpose, action, resource_type, resource_id,
       person_id, outcome, client, detail, prev_hash, hash
FROM audit_event
WHERE seq > (SELECT coalesce(max(seq), 0) FROM audit_event_by_month)
ORDER BY seq LIMIT 50000;
-- hssk:step the indexes, on the copy (not yet in use: nothing waits for them)
CREATE INDEX audit_event_by_month_person ON audit_event_by_month (person_id, at);
CREATE INDEX audit_event_by_month_actor ON audit_event_by_month (actor, at);
CREATE INDEX audit_event_by_month_at ON audit_event_by_month (at);
-- hssk:step the swap: writers wait for this step only
DO $$
BEGIN
    LOCK TABLE audit_event IN EXCLUSIVE MODE;
    INSERT INTO audit_event_by_month OVERRIDING SYSTEM VALUE
    SELECT seq, at, actor, unit_id, role, basis, purpose, action, resource_type, resource_id,
           person_id, outcome, client, detail, prev_hash, hash
    FROM audit_event
    WHERE seq > (SELECT coalesce(max(seq), 0) FROM audit_event_by_month);
    PERFORM swap_in_partitioned('audit_event', 'audit_event_by_month');
END $$;
