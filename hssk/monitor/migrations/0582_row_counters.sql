-- Rows per label of the tables /metrics reports (outbox per partner and status, quarantined
-- records per status, quality findings per kind), kept by statement-level triggers, so a
-- scrape sums a few rows instead of counting tables that grow without bound. Append-only
-- deltas (concurrent writers never wait on one counter row); the completeness job compacts.
CREATE TABLE row_counter (
    tbl     text NOT NULL,
    label1  text,
    label2  text,
    n       bigint NOT NULL
);
CREATE INDEX row_counter_tbl ON row_counter (tbl);

-- Trigger arguments: the label columns (one or two); args[2] NULL when one.
CREATE FUNCTION row_counter_source(op text, args text[]) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
SELECT CASE op
  WHEN 'INSERT' THEN format('SELECT %s AS a, %s AS b, 1 AS s FROM new_rows', l1, l2)
  WHEN 'DELETE' THEN format('SELECT %s AS a, %s AS b, -1 AS s FROM old_rows', l1, l2)
  WHEN 'TRUNCATE' THEN format('SELECT %s AS a, %s AS b, 1 AS s FROM %%I', l1, l2)
  ELSE format('SELECT %1$s AS a, %2$s AS b, 1 AS s FROM new_rows UNION ALL '
              'SELECT %1$s, %2$s, -1 FROM old_rows', l1, l2) END
FROM (SELECT format('%I::text', args[1]) AS l1,
             CASE WHEN args[2] IS NOT NULL THEN format('%I::text', args[2])
                  ELSE 'NULL::text' END AS l2) x
$f$;

CREATE FUNCTION row_counter_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  src text := row_counter_source(TG_OP, ARRAY[TG_ARGV[0], TG_ARGV[1]]);  -- TG_ARGV counts from 0
BEGIN
  IF TG_OP = 'TRUNCATE' THEN  -- no row events: count what is left (nothing, usually)
    DELETE FROM row_counter WHERE tbl = TG_TABLE_NAME;
    src := format(src, TG_TABLE_NAME);
  END IF;
  EXECUTE format(
    'INSERT INTO row_counter (tbl, label1, label2, n) SELECT %L, a, b, sum(s) FROM (%s) x '
    'GROUP BY 2, 3 HAVING sum(s) <> 0', TG_TABLE_NAME, src);
  RETURN NULL;
END $$;

CREATE TRIGGER row_counter_insert AFTER INSERT ON outbox REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION row_counter_apply('partner', 'status');
CREATE TRIGGER row_counter_update AFTER UPDATE ON outbox
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION row_counter_apply('partner', 'status');
CREATE TRIGGER row_counter_delete AFTER DELETE ON outbox REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION row_counter_apply('partner', 'status');
CREATE TRIGGER row_counter_truncate AFTER TRUNCATE ON outbox
  FOR EACH STATEMENT EXECUTE FUNCTION row_counter_apply('partner', 'status');

CREATE TRIGGER row_counter_insert AFTER INSERT ON ingest_error REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION row_counter_apply('status');
CREATE TRIGGER row_counter_update AFTER UPDATE ON ingest_error
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION row_counter_apply('status');
CREATE TRIGGER row_counter_delete AFTER DELETE ON ingest_error REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION row_counter_apply('status');
CREATE TRIGGER row_counter_truncate AFTER TRUNCATE ON ingest_error
  FOR EACH STATEMENT EXECUTE FUNCTION row_counter_apply('status');

CREATE TRIGGER row_counter_insert AFTER INSERT ON quality_issue
  REFERENCING NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION row_counter_apply('kind');
CREATE TRIGGER row_counter_update AFTER UPDATE ON quality_issue
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION row_counter_apply('kind');
CREATE TRIGGER row_counter_delete AFTER DELETE ON quality_issue
  REFERENCING OLD TABLE AS old_rows
  FOR EACH STATEMENT EXECUTE FUNCTION row_counter_apply('kind');
CREATE TRIGGER row_counter_truncate AFTER TRUNCATE ON quality_issue
  FOR EACH STATEMENT EXECUTE FUNCTION row_counter_apply('kind');

-- Rows stored before this migration.
INSERT INTO row_counter (tbl, label1, label2, n)
SELECT 'outbox', partner, status, count(*) FROM outbox GROUP BY 2, 3;
INSERT INTO row_counter (tbl, label1, label2, n)
SELECT 'ingest_error', status, NULL, count(*) FROM ingest_error GROUP BY 2;
INSERT INTO row_counter (tbl, label1, label2, n)
SELECT 'quality_issue', kind, NULL, count(*) FROM quality_issue GROUP BY 2;
