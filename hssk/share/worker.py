"""The delivery worker: claims due outbox events, sends them, records the outcome.

Each event is POSTed as JSON with an ``Idempotency-Key`` header. 2xx → delivered; 408, 425,
429, 5xx and network errors → retry with exponential backoff (and jitter); other 4xx → the
partner refused the content: dead-letter at once. After ``max_attempts`` an event is
dead-lettered too; ``replay`` puts it back. A worker killed mid-flight leaves its events
leased; when the lease runs out another worker sends them again under the same key.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import httpx
import orjson

from hssk.db import Database
from hssk.share import outbox, partners
from hssk.share.outbox import Event, Outcome

log = logging.getLogger(__name__)
RETRYABLE = frozenset({408, 425, 429})


@dataclass
class WorkerConfig:
    batch: int = 200
    concurrency: int = 8
    lease_s: float = 60.0
    base_delay: float = 1.0
    max_delay: float = 600.0
    idle_sleep: float = 0.5


@dataclass
class WorkerStats:
    delivered: int = 0
    retried: int = 0
    dead: int = 0
    batches: int = 0
    seconds: float = 0.0
    errors: dict[str, int] = field(default_factory=dict)


def send_one(client: httpx.Client, partner: partners.Partner, event: Event) -> Outcome:
    """POST one event; classify the answer."""
    headers = {
        "Content-Type": "application/json",
        "Idempotency-Key": event.idempotency_key,
        "X-HSSK-Event": event.event_id,
        **partner.headers(),
    }
    try:
        resp = client.post(
            partner.endpoint,
            content=orjson.dumps(event.payload),
            headers=headers,
            timeout=partner.timeout_s,
        )
    except httpx.HTTPError as exc:
        return Outcome(event.id, False, True, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= resp.status_code < 300:
        return Outcome(event.id, True, False, resp.status_code, None)
    retry = resp.status_code in RETRYABLE or resp.status_code >= 500
    return Outcome(event.id, False, retry, resp.status_code, resp.text[:500] or resp.reason_phrase)


def run_once(
    db: Database, client: httpx.Client, pool: ThreadPoolExecutor, cfg: WorkerConfig
) -> tuple[int, list[Outcome]]:
    """Claim one batch, send it concurrently, record the outcomes. Returns (claimed, outcomes)."""
    with db.connection() as conn:
        known = partners.load(conn, enabled_only=False)
        events = outbox.claim(conn, cfg.batch, cfg.lease_s)
        if not events:
            return 0, []
        outbox.build_payloads(conn, events, {k: v for k, v in known.items() if v.enabled})
    sendable = [e for e in events if e.payload is not None and e.partner in known]
    outcomes = list(pool.map(lambda e: send_one(client, known[e.partner], e), sendable))
    # Events of a disabled partner without payload: back to pending, retried later.
    outcomes += [
        Outcome(e.id, False, True, None, "partner disabled or unknown")
        for e in events
        if e not in sendable
    ]
    with db.connection() as conn:
        outbox.record_outcomes(conn, outcomes, base_delay=cfg.base_delay, max_delay=cfg.max_delay)
    return len(events), outcomes


def run(
    db: Database,
    cfg: WorkerConfig | None = None,
    *,
    stop: threading.Event | None = None,
    until_idle: bool = False,
    max_seconds: float | None = None,
) -> WorkerStats:
    """Deliver until stopped (or, with ``until_idle``, until nothing is due)."""
    cfg = cfg or WorkerConfig()
    stats = WorkerStats()
    started = time.perf_counter()
    stop = stop or threading.Event()
    limits = httpx.Limits(
        max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency
    )
    with (
        httpx.Client(limits=limits) as client,
        ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="hssk-share") as pool,
    ):
        while not stop.is_set():
            if max_seconds is not None and time.perf_counter() - started > max_seconds:
                break
            claimed, outcomes = run_once(db, client, pool, cfg)
            stats.batches += 1 if claimed else 0
            for o in outcomes:
                if o.delivered:
                    stats.delivered += 1
                elif o.retry:
                    stats.retried += 1
                    key = str(o.status or "network")
                    stats.errors[key] = stats.errors.get(key, 0) + 1
                else:
                    stats.dead += 1
            if claimed == 0:
                if until_idle and not _pending(db):
                    break
                stop.wait(cfg.idle_sleep)
    stats.seconds = time.perf_counter() - started
    return stats


def _pending(db: Database) -> bool:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE status IN ('pending', 'sending'))"
        ).fetchone()
    return bool(row and row[0])
