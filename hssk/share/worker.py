"""The delivery worker: claims due outbox events, sends them, records the outcome.

Each event is POSTed as JSON with an ``Idempotency-Key`` header. 2xx → delivered; 408, 425,
429, 5xx and network errors → retry with exponential backoff (and jitter); other 4xx → the
partner refused the content: dead-letter at once. After ``max_attempts`` an event is
dead-lettered too; ``replay`` puts it back. A worker killed mid-flight leaves its events
leased; when the lease runs out another worker sends them again under the same key. What
was delivered is audited per person (action ``share-out``, the partner and the rule).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import psycopg

from hssk.access import PLATFORM
from hssk.access.audit import PersonEvent, record_persons
from hssk.db import Database
from hssk.share import channels, outbox, partners
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

    def count(self, outcomes: list[Outcome]) -> None:
        """Add one delivered batch's outcomes."""
        self.batches += 1
        for o in outcomes:
            if o.delivered:
                self.delivered += 1
            elif o.retry:
                self.retried += 1
                key = str(o.status or "network")
                self.errors[key] = self.errors.get(key, 0) + 1
            else:
                self.dead += 1


def send_one(client: httpx.Client, partner: partners.Partner, event: Event) -> Outcome:
    """POST one event; classify the answer."""
    # a channel's events go in its own format (``channels``)
    if partner.channel != "fieldset":
        return channels.send(client, partner, event)
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


@dataclass
class Batch:
    events: list[Event]
    known: dict[str, partners.Partner]


def prepare(db: Database, cfg: WorkerConfig) -> Batch:
    """Claim one batch and fix the payloads it lacks (one transaction)."""
    with db.connection() as conn:
        known = partners.load(conn, enabled_only=False)
        events = outbox.claim(conn, cfg.batch, cfg.lease_s)
        if events:
            enabled = {k: v for k, v in known.items() if v.enabled}
            outbox.build_payloads(conn, events, enabled)
            channels.build_payloads(conn, events, enabled)
    return Batch(events, known)


def deliver(
    db: Database, client: httpx.Client, pool: ThreadPoolExecutor, cfg: WorkerConfig, batch: Batch
) -> list[Outcome]:
    """Send a prepared batch concurrently and record the outcomes (one transaction)."""
    known = batch.known
    sendable = [e for e in batch.events if e.payload is not None and e.partner in known]
    outcomes = list(pool.map(lambda e: send_one(client, known[e.partner], e), sendable))
    # Events of a disabled partner without payload: back to pending, retried later.
    outcomes += [
        Outcome(e.id, False, True, None, "partner disabled or unknown")
        for e in batch.events
        if e not in sendable
    ]
    with db.connection() as conn:
        outbox.record_outcomes(conn, outcomes, base_delay=cfg.base_delay, max_delay=cfg.max_delay)
        _audit(conn, batch, outcomes)
    return outcomes


# The rule each kind of partner receives a person's data under (the audit trail's basis).
BASIS = {
    "xml130-gateway": "QĐ 2733/QĐ-BYT, QĐ 31/QĐ-BYT (Sổ sức khỏe điện tử)",
    "ksk-hub": "QĐ 1551/QĐ-BYT (dữ liệu khám sức khỏe)",
    "fieldset": "partner-agreement",
}


def _audit(conn: psycopg.Connection[Any], batch: Batch, outcomes: list[Outcome]) -> None:
    """One audit event per person whose data left the platform (one write per batch): the
    citizen sees who received what, and under which rule."""
    by_id = {e.id: e for e in batch.events}
    sent: dict[str, list[PersonEvent]] = {}
    for o in outcomes:
        e = by_id.get(o.id)
        if not o.delivered or e is None or e.partner not in batch.known:
            continue
        rtype, _, rid = (e.subject or "").partition("/")
        sent.setdefault(e.partner, []).append(
            PersonEvent(e.person_id, rtype or None, rid or None,
                        {"partner": e.partner, "event": e.event_id, "status": o.status})
        )  # fmt: skip
    for pid, events in sent.items():
        basis = BASIS[batch.known[pid].channel]
        record_persons(conn, PLATFORM, "share-out", events, outcome="allow", basis=basis)


def run_once(
    db: Database, client: httpx.Client, pool: ThreadPoolExecutor, cfg: WorkerConfig
) -> tuple[int, list[Outcome]]:
    """Claim one batch, send it, record the outcomes. Returns (claimed, outcomes)."""
    batch = prepare(db, cfg)
    if not batch.events:
        return 0, []
    return len(batch.events), deliver(db, client, pool, cfg, batch)


def run(
    db: Database,
    cfg: WorkerConfig | None = None,
    *,
    stop: threading.Event | None = None,
    until_idle: bool = False,
    max_seconds: float | None = None,
) -> WorkerStats:
    """Deliver until stopped (or, with ``until_idle``, until nothing is due).

    The next batch is claimed and built while the current one is on the wire (a producer
    thread and a queue of one), so database work and network waits overlap."""
    cfg = cfg or WorkerConfig()
    stats = WorkerStats()
    started = time.perf_counter()
    stop = stop or threading.Event()
    done = threading.Event()
    ready: queue.Queue[Batch | BaseException] = queue.Queue(maxsize=1)

    def produce() -> None:
        try:
            while not stop.is_set() and not done.is_set():
                batch = prepare(db, cfg)
                while not (stop.is_set() or done.is_set()):
                    try:
                        ready.put(batch, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if not batch.events:
                    stop.wait(cfg.idle_sleep)
        except BaseException as exc:
            ready.put(exc)

    limits = httpx.Limits(
        max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency
    )
    producer = threading.Thread(target=produce, name="hssk-share-prepare", daemon=True)
    with (
        httpx.Client(limits=limits) as client,
        ThreadPoolExecutor(cfg.concurrency, thread_name_prefix="hssk-share") as pool,
    ):
        producer.start()
        try:
            while not stop.is_set():
                if max_seconds is not None and time.perf_counter() - started > max_seconds:
                    break
                try:
                    item = ready.get(timeout=0.5)
                except queue.Empty:
                    continue
                if isinstance(item, BaseException):
                    raise item
                if not item.events:
                    if until_idle and not _pending(db):
                        break
                    continue
                stats.count(deliver(db, client, pool, cfg, item))
        finally:
            done.set()
            producer.join(timeout=30)
            _release(db, ready)
    stats.seconds = time.perf_counter() - started
    return stats


def _release(db: Database, ready: queue.Queue[Batch | BaseException]) -> None:
    """Give back events claimed for a batch that will not be sent (the worker is stopping)."""
    ids: list[int] = []
    while True:
        try:
            item = ready.get_nowait()
        except queue.Empty:
            break
        if isinstance(item, Batch):
            ids += [e.id for e in item.events]
    if ids:
        with db.connection() as conn:
            conn.execute(
                """UPDATE outbox SET status = 'pending', attempts = greatest(attempts - 1, 0),
                     locked_until = NULL WHERE id = ANY(%s) AND status = 'sending'""",
                (ids,),
            )


def _pending(db: Database) -> bool:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT EXISTS (SELECT 1 FROM outbox WHERE status IN ('pending', 'sending'))"
        ).fetchone()
    return bool(row and row[0])
