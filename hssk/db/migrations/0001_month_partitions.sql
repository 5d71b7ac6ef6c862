-- Monthly range partitions of the append-only logs (audit, outbox, ingest receipts).
--
-- A log is partitioned BY RANGE on its time column, one partition per UTC month (the month of
-- the row's timestamp in UTC, not in Vietnam: a row stored between 17:00 and 24:00 UTC on the
-- last day of a month belongs to the next month in Vietnam and to this one here — harmless,
-- partitions are for pruning and retention, not for reports), named <table>_YYYYMM, plus
-- <table>_default, which takes a row whose month has no partition yet (the job that makes
-- partitions ahead did not run) so that no write fails.
--
-- month_partitions(parent, since, ahead) makes the partitions from the month of `since` to
-- `ahead` months after the current one, and moves the rows waiting in the default partition
-- into partitions of their months (the default is detached and its rows copied into the
-- month partitions directly, not through the parent: no statement trigger of the parent sees a
-- move, so the row counters stay right; the audit log's no-delete trigger is not involved).
-- It returns how many partitions it made. Used by the migrations that partition a log and by
-- the daily job `logs.partitions` (hssk.db.monthly).
CREATE FUNCTION month_partitions(parent regclass, since timestamptz DEFAULT now(),
                                 ahead integer DEFAULT 2) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    nsp text;
    base text;
    col text := substring(pg_get_partkeydef(parent) FROM '^RANGE \((\w+)\)$');
    dflt regclass;
    old_dflt text;
    months timestamp[];
    stray timestamp[];
    m timestamp;
    part text;
    made integer := 0;
BEGIN
    SELECT n.nspname, c.relname INTO nsp, base
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = parent;
    IF col IS NULL THEN
        RAISE EXCEPTION '% is not partitioned by range on one column', parent;
    END IF;
    dflt := to_regclass(format('%I.%I', nsp, base || '_default'));
    IF dflt IS NOT NULL THEN
        EXECUTE format('SELECT array_agg(DISTINCT date_trunc(''month'', %I AT TIME ZONE ''UTC''))'
                       ' FROM %s', col, dflt) INTO stray;
    END IF;
    SELECT array_agg(DISTINCT x ORDER BY x) INTO months FROM (
        SELECT generate_series(date_trunc('month', least(since, now()) AT TIME ZONE 'UTC'),
                               date_trunc('month', now() AT TIME ZONE 'UTC')
                                 + make_interval(months => ahead),
                               interval '1 month') AS x
        UNION SELECT unnest(stray)) s;
    IF stray IS NOT NULL THEN
        -- rows waiting: set the default aside, make the partitions, put the rows in them
        old_dflt := base || '_default_moving';
        EXECUTE format('ALTER TABLE %s DETACH PARTITION %s', parent, dflt);
        EXECUTE format('ALTER TABLE %s RENAME TO %I', dflt, old_dflt);
    END IF;
    FOREACH m IN ARRAY months LOOP
        part := base || '_' || to_char(m, 'YYYYMM');
        IF to_regclass(format('%I.%I', nsp, part)) IS NULL THEN
            EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s FOR VALUES FROM (%L) TO (%L)',
                           nsp, part, parent, m AT TIME ZONE 'UTC',
                           (m + interval '1 month') AT TIME ZONE 'UTC');
            made := made + 1;
        END IF;
    END LOOP;
    IF dflt IS NULL OR stray IS NOT NULL THEN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %s DEFAULT', nsp, base || '_default', parent);
    END IF;
    IF stray IS NOT NULL THEN
        FOREACH m IN ARRAY stray LOOP
            EXECUTE format('INSERT INTO %I.%I OVERRIDING SYSTEM VALUE SELECT * FROM %I.%I'
                           ' WHERE %I >= %L AND %I < %L',
                           nsp, base || '_' || to_char(m, 'YYYYMM'), nsp, old_dflt,
                           col, m AT TIME ZONE 'UTC', col, (m + interval '1 month') AT TIME ZONE 'UTC');
        END LOOP;
        EXECUTE format('DROP TABLE %I.%I', nsp, old_dflt);
    END IF;
    RETURN made;
END $$;

-- The last step of converting a log to a partitioned table: `new` (filled by the migration)
-- takes the place of `old`. The old table's triggers are made again on the new one, identity
-- sequences go on where the old ones stopped, and the new table, its partitions, indexes,
-- constraints and sequences take the old names (prefix `new` → `old`). Triggers whose name
-- ends in _copy_log (the migration's own change log) are left behind with the old table.
CREATE FUNCTION swap_in_partitioned(old regclass, new regclass) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    old_name text := (SELECT relname FROM pg_class WHERE oid = old);
    new_name text := (SELECT relname FROM pg_class WHERE oid = new);
    ns oid := (SELECT relnamespace FROM pg_class WHERE oid = new);
    defs text[];
    d text;
    r record;
BEGIN
    SELECT coalesce(array_agg(pg_get_triggerdef(t.oid) ORDER BY t.tgname), '{}') INTO defs
    FROM pg_trigger t WHERE t.tgrelid = old AND NOT t.tgisinternal
      AND t.tgname NOT LIKE '%\_copy\_log';
    FOR r IN SELECT attname FROM pg_attribute
             WHERE attrelid = old AND attidentity <> '' AND NOT attisdropped LOOP
        EXECUTE format('SELECT setval(%L, last_value, is_called) FROM %s',
                       pg_get_serial_sequence(new::text, r.attname),
                       pg_get_serial_sequence(old::text, r.attname));
    END LOOP;
    EXECUTE format('DROP TABLE %s', old);
    EXECUTE format('ALTER TABLE %s RENAME TO %I', new, old_name);
    FOR r IN SELECT relname, relkind FROM pg_class
             WHERE relnamespace = ns AND left(relname, length(new_name) + 1) = new_name || '_'
             ORDER BY relkind DESC, relname LOOP
        EXECUTE format('ALTER %s %I RENAME TO %I',
                       CASE WHEN r.relkind IN ('i', 'I') THEN 'INDEX'
                            WHEN r.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
                       r.relname, old_name || substr(r.relname, length(new_name) + 1));
    END LOOP;
    FOREACH d IN ARRAY defs LOOP
        EXECUTE regexp_replace(d, ' ON \S+ ', format(' ON %s ', new::regclass::text));
    END LOOP;
END $$;
