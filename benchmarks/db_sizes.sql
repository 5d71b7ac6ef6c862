-- Where the bytes go: every table (partitions summed into their parent) and every index, with
-- bytes per person and per resource (current + earlier versions). Used for docs/benchmarks.md
-- ("Bytes on disk per person and per resource"); run with psql -f on a loaded database.
WITH RECURSIVE up(rel, top) AS (
  SELECT c.oid, c.oid FROM pg_class c
  WHERE c.relkind IN ('r','p') AND c.relnamespace = 'public'::regnamespace
    AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = c.oid)
  UNION ALL
  SELECT h.inhrelid, up.top FROM up JOIN pg_inherits h ON h.inhparent = up.rel
), n AS (SELECT (SELECT count(*) FROM person)::numeric AS persons,
                (SELECT count(*) FROM resource)::numeric + (SELECT count(*) FROM resource_history) AS resources),
s AS (
SELECT up.top::regclass AS tbl, count(*) AS parts,
  sum(pg_relation_size(up.rel)) AS heap,
  sum(coalesce(pg_total_relation_size(nullif(c.reltoastrelid, 0)), 0)) AS toast,
  sum(pg_indexes_size(up.rel)) AS idx,
  sum(pg_total_relation_size(up.rel)) AS total,
  sum(c.reltuples) FILTER (WHERE c.relkind = 'r') AS rows
FROM up JOIN pg_class c ON c.oid = up.rel GROUP BY up.top)
SELECT tbl::text, parts, rows::bigint, pg_size_pretty(heap) heap, pg_size_pretty(toast) toast, pg_size_pretty(idx) idx,
  pg_size_pretty(total) total,
  round(total / n.persons) AS b_per_person, round(total / n.resources) AS b_per_resource
FROM s, n WHERE total > 100000
UNION ALL
SELECT 'ALL (database)', NULL, NULL, NULL, NULL, NULL, pg_size_pretty(pg_database_size(current_database())),
  round(pg_database_size(current_database()) / n.persons), round(pg_database_size(current_database()) / n.resources) FROM n
ORDER BY b_per_person DESC;
SELECT (SELECT count(*) FROM person) persons, (SELECT count(*) FROM resource) resources, (SELECT count(*) FROM resource_history) history;
-- every index rolled up to its top table and top index (partition indexes attached to parents)
WITH RECURSIVE up(idx, top) AS (
  SELECT i.indexrelid, i.indexrelid FROM pg_index i
  JOIN pg_class c ON c.oid = i.indexrelid
  WHERE c.relnamespace = 'public'::regnamespace
    AND NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)
  UNION ALL
  SELECT h.inhrelid, up.top FROM up JOIN pg_inherits h ON h.inhparent = up.idx
)
SELECT top::regclass AS index, (SELECT indrelid::regclass FROM pg_index WHERE indexrelid = top) AS tbl,
       pg_size_pretty(sum(pg_relation_size(idx))) AS size, sum(pg_relation_size(idx)) AS b
FROM up GROUP BY top ORDER BY b DESC LIMIT 45;
