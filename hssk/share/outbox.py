"""The transactional outbox: record changes become delivery events for every partner.

``on_records_changed`` runs inside the writing transaction (one set-based INSERT for a whole
ingest batch). Changes to the same person coalesce into one open event per partner until the
worker claims it; at its first claim the event's payload (the partner's field set, built from
the person's current record) and its idempotency key are fixed, so every retry sends the same
bytes under the same key and the partner can deduplicate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
import psycopg
from psycopg import sql

from hssk.catalog import bundle
from hssk.catalog.catalogs import get as get_catalog
from hssk.db import Database, monthly
from hssk.kernel.identifiers import MA_LK
from hssk.share.ksk import HUB_KINDS
from hssk.share.partners import Partner


def on_records_changed(conn: psycopg.Connection[Any], changes: Sequence[Any]) -> None:
    """Record-store hook: enqueue (or coalesce) one event per partner and changed person, and
    one per channel and visit the channel carries."""
    counts: dict[int, int] = {}
    visits: list[str] = []
    for c in changes:
        if c.person_id is not None:
            counts[c.person_id] = counts.get(c.person_id, 0) + 1
            if c.type == "Encounter" and c.action != "delete":
                visits.append(c.id)
    enqueue(conn, counts)
    enqueue_visits(conn, visits)


def enqueue(conn: psycopg.Connection[Any], counts: dict[int, int]) -> None:
    """Enqueue events for persons ({person_id: number of changes}) to every enabled partner.

    The outbox is partitioned by month and cannot hold the unique index that made one open
    event per partner and person: ``outbox_open`` holds it (the open event's id), so a change
    either opens an event (a new key) or adds to the open one (the key was there)."""
    if not counts:
        return
    ids = sorted(counts)
    conn.execute(
        """WITH c AS MATERIALIZED (
             SELECT sp.id AS partner, x.pid, x.n
             FROM unnest(%s::bigint[], %s::int[]) AS x(pid, n)
             CROSS JOIN share_partner sp
             WHERE sp.enabled AND coalesce(sp.config->>'channel', 'fieldset') = 'fieldset'
             ORDER BY sp.id, x.pid),  -- key order: concurrent batches never deadlock
           k AS (
             INSERT INTO outbox_open AS k (partner, person_id, id, created_at)
             SELECT partner, pid, nextval('outbox_id_seq'), now() FROM c
             ON CONFLICT (partner, person_id) DO UPDATE SET partner = excluded.partner
             RETURNING k.partner, k.person_id, k.id, k.created_at, k.xmax = 0 AS opened),
           more AS (
             UPDATE outbox o SET changes = o.changes + c.n
             FROM k JOIN c ON c.partner = k.partner AND c.pid = k.person_id
             WHERE NOT k.opened AND o.id = k.id AND o.created_at = k.created_at)
           INSERT INTO outbox (id, created_at, event_id, partner, person_id, changes,
                               idempotency_key)
           SELECT k.id, k.created_at, e.e, k.partner, k.person_id, c.n,
                  k.partner || ':' || e.e::text
           FROM k JOIN c ON c.partner = k.partner AND c.pid = k.person_id
           CROSS JOIN LATERAL (SELECT gen_random_uuid() AS e) e
           WHERE k.opened""",
        (ids, [counts[i] for i in ids]),
    )


def enqueue_visits(conn: psycopg.Connection[Any], encounter_ids: Sequence[str]) -> None:
    """One event per channel and finished visit it carries, once (the key names the visit):
    the insurance gateway gets the visits that did not come as a QĐ 130 hồ sơ (a HIS sends
    those itself), the health-check hub the health checks, due 24 h after the check-up (a
    check-up with a day only: after the end of that day, Vietnam time).

    Reads the visits' bodies from the store's rows in the writer's transaction, set-based (one
    statement a batch), as ``catalog.bundle`` does: the records API reads one at a time, and
    this runs inside every ingest batch."""
    if not encounter_ids:
        return
    conn.execute(
        r"""WITH v AS (
             SELECT r.id, r.person_id, r.body,
                    coalesce(r.body->'period'->>'end', r.body->'period'->>'start') AS ended
             FROM resource r
             WHERE r.type = 'Encounter' AND r.id = ANY(%(ids)s) AND NOT r.deleted
               AND r.person_id IS NOT NULL AND r.body->>'status' = 'finished'),
           want AS MATERIALIZED (
             SELECT sp.id AS partner, v.person_id, 'Encounter/' || v.id AS subject,
                    sp.id || ':Encounter/' || v.id AS key,
                    CASE WHEN sp.config->>'channel' = 'ksk-hub' THEN coalesce(
                      CASE WHEN v.ended ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}$'
                             THEN (v.ended::date + 1)::timestamp AT TIME ZONE 'Asia/Ho_Chi_Minh'
                           WHEN v.ended ~ '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}'
                             THEN v.ended::timestamptz END, now()) + interval '24 hours' END
                      AS due_at
             FROM v CROSS JOIN share_partner sp
             WHERE sp.enabled AND CASE sp.config->>'channel'
               WHEN 'xml130-gateway' THEN NOT jsonb_path_exists(
                 v.body, '$.identifier[*].system ? (@ starts with $p)',
                 jsonb_build_object('p', %(ma_lk)s::text))
               WHEN 'ksk-hub' THEN EXISTS (
                 SELECT 1 FROM jsonb_array_elements(coalesce(v.body->'type', '[]')) t,
                               jsonb_array_elements(coalesce(t->'coding', '[]')) c
                 WHERE c->>'code' = ANY(%(kinds)s))
               ELSE false END
             ORDER BY sp.id, v.id),
           -- the key, once (the partitioned outbox cannot hold a unique index on it)
           k AS (
             INSERT INTO outbox_key (idempotency_key, id, created_at)
             SELECT key, nextval('outbox_id_seq'), now() FROM want
             ON CONFLICT (idempotency_key) DO NOTHING
             RETURNING idempotency_key, id, created_at)
           INSERT INTO outbox (id, created_at, event_id, partner, person_id, subject,
                               idempotency_key, due_at)
           SELECT k.id, k.created_at, gen_random_uuid(), w.partner, w.person_id, w.subject,
                  w.key, w.due_at
           FROM k JOIN want w ON w.key = k.idempotency_key""",
        {"ids": list(encounter_ids), "ma_lk": MA_LK + "/", "kinds": list(HUB_KINDS)},
    )


@dataclass
class Event:
    id: int
    event_id: str
    partner: str
    person_id: int
    idempotency_key: str
    attempts: int
    payload: dict[str, Any] | None
    subject: str | None = None
    due_at: datetime | None = None


def claim(conn: psycopg.Connection[Any], limit: int, lease_s: float) -> list[Event]:
    """Lease due events (pending and due, or sending with an expired lease: a worker died).

    A claimed open event loses its key in ``outbox_open``: later changes open a new event. An
    open event a writer is adding a change to at this moment (its key locked) is left for the
    next round, so a claim and an ingest batch never wait for each other in turn."""
    rows = conn.execute(
        """WITH cand AS (
             SELECT id, created_at FROM outbox
             WHERE (status = 'pending' AND next_try <= now())
                OR (status = 'sending' AND locked_until < now())
             ORDER BY next_try, id LIMIT %s FOR UPDATE SKIP LOCKED),
           free AS (
             SELECT k.id FROM outbox_open k JOIN cand USING (id) FOR UPDATE OF k SKIP LOCKED),
           due AS (
             SELECT c.id, c.created_at FROM cand c
             WHERE c.id IN (SELECT id FROM free)
                OR NOT EXISTS (SELECT 1 FROM outbox_open k WHERE k.id = c.id)),
           closed AS (DELETE FROM outbox_open k USING free WHERE k.id = free.id)
           UPDATE outbox o SET status = 'sending', attempts = o.attempts + 1,
             locked_until = now() + make_interval(secs => %s)
           FROM due WHERE o.id = due.id AND o.created_at = due.created_at
           RETURNING o.id, o.event_id::text, o.partner, o.person_id, o.idempotency_key,
                     o.attempts, o.payload, o.subject, o.due_at""",
        (limit, lease_s),
    ).fetchall()
    return [Event(*r) for r in rows]


def _json_safe(value: Any) -> Any:
    return orjson.loads(orjson.dumps(value, default=str))


def build_payloads(
    conn: psycopg.Connection[Any], events: list[Event], partners: dict[str, Partner]
) -> None:
    """Fix the payload of events that have none yet (set-based update, one per batch).

    Sensitive resources are left out unless the partner has a rule allowing their label.
    """
    todo = [e for e in events if e.payload is None and e.subject is None]
    by_partner: dict[str, list[Event]] = {}
    for e in todo:
        by_partner.setdefault(e.partner, []).append(e)
    ids: list[int] = []
    payloads: list[str] = []
    now = datetime.now(UTC).isoformat()
    for pid, evs in by_partner.items():
        partner = partners.get(pid)
        if partner is None:
            continue  # disabled since: the event waits (replay after re-enabling)
        cat = get_catalog(partner.catalog)
        bundles = bundle.bundles(
            conn, [e.person_id for e in evs], allowed_sensitivity=partner.sensitive_labels
        )
        for e in evs:
            b = bundles.get(e.person_id)
            fields = {k: v for k, v in cat.extract(b).items() if v} if b else {}
            patient = b["entry"][0]["resource"] if b else {}
            e.payload = _json_safe(
                {
                    "eventId": e.event_id,
                    "partner": pid,
                    "catalog": cat.name,
                    "catalogVersion": cat.version,
                    "personId": e.person_id,
                    "identifiers": patient.get("identifier", []),
                    "status": "active" if b else "removed",
                    "fields": fields,
                    "filled": len(fields),
                    "total": cat.size,
                    "generatedAt": now,
                }
            )
            ids.append(e.id)
            payloads.append(orjson.dumps(e.payload).decode())
    fix_payloads(conn, ids, payloads)


def fix_payloads(conn: psycopg.Connection[Any], ids: list[int], payloads: list[str]) -> None:
    """Store the payloads (JSON texts) of events ``ids``, in one statement."""
    if ids:
        conn.execute(
            """UPDATE outbox o SET payload = x.payload::jsonb
               FROM unnest(%s::bigint[], %s::text[]) AS x(id, payload) WHERE o.id = x.id""",
            (ids, payloads),
        )


@dataclass
class Outcome:
    id: int
    delivered: bool
    retry: bool  # False with delivered False: permanent failure → dead letter
    status: int | None
    error: str | None


def record_outcomes(
    conn: psycopg.Connection[Any],
    outcomes: list[Outcome],
    *,
    default_max_attempts: int = 8,
    base_delay: float = 1.0,
    max_delay: float = 600.0,
) -> None:
    """Mark delivered / schedule a retry with exponential backoff / dead-letter, set-based."""
    if not outcomes:
        return
    conn.execute(
        """UPDATE outbox o SET
             status = CASE WHEN x.delivered THEN 'delivered'
                           WHEN NOT x.retry OR o.attempts >= coalesce((
                               SELECT (sp.config->>'max_attempts')::int FROM share_partner sp
                               WHERE sp.id = o.partner), %s) THEN 'dead'
                           ELSE 'pending' END,
             delivered_at = CASE WHEN x.delivered THEN now() END,
             locked_until = NULL,
             last_status = x.status,
             last_error = CASE WHEN x.delivered THEN NULL ELSE x.error END,
             next_try = CASE WHEN x.delivered THEN o.next_try
                        ELSE now() + make_interval(secs => least(%s,
                               %s * power(2, greatest(o.attempts - 1, 0)))
                               * (0.5 + random() / 2)) END
           FROM unnest(%s::bigint[], %s::bool[], %s::bool[], %s::int[], %s::text[])
                AS x(id, delivered, retry, status, error)
           WHERE o.id = x.id AND o.status = 'sending'""",
        (
            default_max_attempts,
            max_delay,
            base_delay,
            [o.id for o in outcomes],
            [o.delivered for o in outcomes],
            [o.retry for o in outcomes],
            [o.status for o in outcomes],
            [o.error for o in outcomes],
        ),
    )


def replay(
    conn: psycopg.Connection[Any],
    *,
    partner: str | None = None,
    ids: Sequence[int] = (),
    status: str = "dead",
    rebuild: bool = False,
) -> int:
    """Send dead-lettered (or other) events again, keeping their key and, unless
    ``rebuild``, their payload (a channel's event rebuilt from the record as it is now, e.g.
    once the station's facility code was added; a field-set event is always built afresh
    by a later change)."""
    cur = conn.execute(
        """UPDATE outbox SET status = 'pending', attempts = 0, next_try = now(),
             locked_until = NULL, last_error = NULL,
             payload = CASE WHEN %s AND subject IS NOT NULL THEN NULL ELSE payload END
           WHERE status = %s AND (%s::text IS NULL OR partner = %s)
             AND (cardinality(%s::bigint[]) = 0 OR id = ANY(%s))""",
        (rebuild, status, partner, partner, list(ids), list(ids)),
    )
    return cur.rowcount


def events(
    conn: psycopg.Connection[Any],
    *,
    partner: str | None = None,
    status: str | None = None,
    overdue: bool = False,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """Events oldest first, with their lag (seconds since created, until delivered) and
    whether they are past their due time."""
    rows = conn.execute(
        """SELECT id, partner, person_id, subject, status, attempts, due_at,
                  extract(epoch FROM coalesce(delivered_at, now()) - created_at),
                  coalesce(delivered_at, now()) > due_at, last_status, last_error, created_at
           FROM outbox
           WHERE (%(p)s::text IS NULL OR partner = %(p)s)
             AND (%(s)s::text IS NULL OR status = %(s)s)
             AND (NOT %(o)s OR (status <> 'delivered' AND due_at < now()))
           ORDER BY id LIMIT %(n)s""",
        {"p": partner, "s": status, "o": overdue, "n": limit},
    ).fetchall()
    keys = ("id", "partner", "person_id", "subject", "status", "attempts", "due_at", "lag_s",
            "overdue", "last_status", "last_error", "created_at")  # fmt: skip
    return [dict(zip(keys, r, strict=True)) for r in rows]


def purge_all(db: Database, retention_days: int) -> int:
    """:func:`purge` until nothing is left to purge, each call its own short transaction;
    returns how many events went (the daily retention job and ``hssk share purge``)."""
    total = 0
    while True:
        with db.connection() as conn:
            n = purge(conn, retention_days)
        total += n
        if n == 0:
            return total


def purge(conn: psycopg.Connection[Any], retention_days: int, limit: int = 10_000) -> int:
    """Remove events delivered more than ``retention_days`` ago; returns how many (call again
    until 0: short transactions, no long lock on the outbox).

    The outbox is partitioned by month of creation (``hssk.db.monthly``): a past month whose
    partition holds only such events goes whole (:func:`drop_delivered_months`); in the
    months left, up to ``limit`` events are deleted a call."""
    if retention_days < 0:
        raise ValueError(f"retention must be 0 days or more, not {retention_days}")
    dropped = drop_delivered_months(conn, retention_days)
    if dropped:
        return dropped
    row = conn.execute(
        """WITH gone AS (
             DELETE FROM outbox WHERE (id, created_at) IN (
               SELECT id, created_at FROM outbox WHERE status = 'delivered'
                 AND delivered_at < now() - make_interval(days => %s)
               ORDER BY delivered_at LIMIT %s FOR UPDATE SKIP LOCKED)
             RETURNING idempotency_key, subject),
           keys AS (
             DELETE FROM outbox_key k USING gone
             WHERE gone.subject IS NOT NULL AND k.idempotency_key = gone.idempotency_key)
           SELECT count(*) FROM gone""",
        (retention_days, limit),
    ).fetchone()
    return int(row[0]) if row else 0


def drop_delivered_months(
    conn: psycopg.Connection[Any], retention_days: int, *, lock_timeout_ms: int = 5_000
) -> int:
    """Drop the partitions of past months that hold only events delivered more than
    ``retention_days`` ago (or nothing); returns the events they held. The current month and
    those ahead are kept (new events go there), and the default partition too.

    A partition found so is locked and checked again (a replay may have just made one of its
    events pending); one whose lock is not granted within ``lock_timeout_ms`` (a long
    transaction reads the outbox) stays for the next run. Dropping a partition deletes no row
    one by one, so no statement trigger sees it: the monitor's per-label counters of the
    outbox (``row_counter``, kept by such triggers) are given the matching negative deltas."""
    dropped = 0
    now_month = _month_start(conn)
    for month in monthly.months(conn, "outbox"):
        if month.end is None or month.end > now_month or _keeps(conn, month, retention_days):
            continue
        table = sql.Identifier(month.name)
        try:
            with conn.transaction():
                before = conn.execute(
                    "SELECT current_setting('lock_timeout'), set_config('lock_timeout', %s, true)",
                    (f"{max(lock_timeout_ms, 1)}ms",),
                ).fetchone()
                conn.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(table))
                if before:
                    conn.execute("SELECT set_config('lock_timeout', %s, true)", (before[0],))
                if _keeps(conn, month, retention_days):
                    continue
                dropped += _drop(conn, month)
        except psycopg.errors.LockNotAvailable:
            continue
    return dropped


def _keeps(conn: psycopg.Connection[Any], month: monthly.Month, retention_days: int) -> bool:
    """Whether a month's partition holds an event not delivered, or delivered too recently."""
    row = conn.execute(
        sql.SQL(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE status <> 'delivered' "
            "OR delivered_at >= now() - make_interval(days => %s))"
        ).format(sql.Identifier(month.name)),
        (retention_days,),
    ).fetchone()
    return bool(row is None or row[0])


def _drop(conn: psycopg.Connection[Any], month: monthly.Month) -> int:
    """Drop a month's partition (locked) with the keys of its events; the events it held."""
    table = sql.Identifier(month.name)
    counted = conn.execute(
        sql.SQL("SELECT partner, status, count(*) FROM {} GROUP BY 1, 2").format(table)
    ).fetchall()
    if counted and conn.execute("SELECT to_regclass('row_counter') IS NOT NULL").fetchone() == (
        True,
    ):
        conn.execute(
            """INSERT INTO row_counter (tbl, label1, label2, n)
               SELECT 'outbox', p, s, -n
               FROM unnest(%s::text[], %s::text[], %s::bigint[]) AS x(p, s, n)""",
            ([r[0] for r in counted], [r[1] for r in counted], [r[2] for r in counted]),
        )
    # an event's key has the event's created_at: the keys of this month's events
    conn.execute(
        "DELETE FROM outbox_key WHERE created_at >= %s AND created_at < %s",
        (month.start, month.end),
    )
    conn.execute(sql.SQL("DROP TABLE {}").format(table))
    return sum(int(r[2]) for r in counted)


def _month_start(conn: psycopg.Connection[Any]) -> datetime:
    """The start of the current UTC month, by the database's clock."""
    row = conn.execute("SELECT date_trunc('month', now(), 'UTC')").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def counts(conn: psycopg.Connection[Any]) -> dict[tuple[str, str], int]:
    """Events per (partner, status)."""
    return {
        (r[0], r[1]): r[2]
        for r in conn.execute("SELECT partner, status, count(*) FROM outbox GROUP BY 1, 2")
    }


def dead_letters(
    conn: psycopg.Connection[Any], partner: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    rows = conn.execute(
        """SELECT id, partner, person_id, attempts, last_status, last_error, created_at
           FROM outbox WHERE status = 'dead' AND (%s::text IS NULL OR partner = %s)
           ORDER BY id LIMIT %s""",
        (partner, partner, limit),
    ).fetchall()
    keys = ("id", "partner", "person_id", "attempts", "last_status", "last_error", "created_at")
    return [dict(zip(keys, r, strict=True)) for r in rows]
