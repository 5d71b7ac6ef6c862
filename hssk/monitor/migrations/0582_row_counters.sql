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

-- Per counted table and statement kind, one trigger function with its SQL written out (not
-- run through EXECUTE), so each session plans it once.
DO $$
DECLARE
  t record;
  op record;
  src text;
BEGIN
  FOR t IN SELECT * FROM (VALUES
      ('outbox', 'partner::text', 'status::text'),
      ('ingest_error', 'status::text', 'NULL::text'),
      ('quality_issue', 'kind::text', 'NULL::text')) x(tbl, l1, l2)
  LOOP
    FOR op IN SELECT * FROM (VALUES
        ('insert', 'REFERENCING NEW TABLE AS new_rows',
         'SELECT %1$s AS a, %2$s AS b, 1 AS s FROM new_rows'),
        ('delete', 'REFERENCING OLD TABLE AS old_rows',
         'SELECT %1$s AS a, %2$s AS b, -1 AS s FROM old_rows'),
        ('update', 'REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows',
         'SELECT %1$s AS a, %2$s AS b, 1 AS s FROM new_rows UNION ALL '
         'SELECT %1$s, %2$s, -1 FROM old_rows'),
        ('truncate', '',  -- no row events: count what is left (nothing, usually)
         'SELECT %1$s AS a, %2$s AS b, 1 AS s FROM %3$I')) y(name, referencing, src)
    LOOP
      src := format(op.src, t.l1, t.l2, t.tbl);
      EXECUTE format(
        'CREATE FUNCTION row_counter_%s_%s() RETURNS trigger LANGUAGE plpgsql AS %L',
        t.tbl, op.name, format(
          '%sINSERT INTO row_counter (tbl, label1, label2, n) SELECT %L, a, b, sum(s) '
          'FROM (%s) x GROUP BY 2, 3 HAVING sum(s) <> 0; RETURN NULL; END',
          CASE WHEN op.name = 'truncate'
               THEN format('BEGIN DELETE FROM row_counter WHERE tbl = %L; ', t.tbl)
               ELSE 'BEGIN ' END,
          t.tbl, src));
      EXECUTE format(
        'CREATE TRIGGER row_counter_%1$s AFTER %1$s ON %2$I %3$s FOR EACH STATEMENT '
        'EXECUTE FUNCTION row_counter_%2$s_%1$s()', op.name, t.tbl, op.referencing);
    END LOOP;
  END LOOP;
END $$;

-- Rows stored before this migration.
INSERT INTO row_counter (tbl, label1, label2, n)
SELECT 'outbox', partner, status, count(*) FROM outbox GROUP BY 2, 3;
INSERT INTO row_counter (tbl, label1, label2, n)
SELECT 'ingest_error', status, NULL, count(*) FROM ingest_error GROUP BY 2;
INSERT INTO row_counter (tbl, label1, label2, n)
SELECT 'quality_issue', kind, NULL, count(*) FROM quality_issue GROUP BY 2;
