"""The serving half of ``hssk bench hanoi``: a real ``hssk serve`` on the loaded database,
driven by keep-alive HTTP clients, plus the online link in this process.

Each measure is its own resumable step, kept in ``DIR/serving.json`` when done (a run stopped
in the middle measures only what is missing): the partner book API and the citizen ``/book``
page (p50/p99, requests/s), the clinician search page (by CCCD and by name + birth year), FHIR
read by id, and ``registry.link`` of one new source record at a time. Every figure carries
the 1-minute load average of the machine when it was taken.
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from benchmarks.cli import _system_token, percentiles, running_server
from benchmarks.web import _load, _partner_token, _source_records

if TYPE_CHECKING:
    from benchmarks.hanoi import Stages
    from hssk.db import Database

ONLINE_SOURCE = "bench-online"  # the source of the records linked online (one at a time)


def _sample(db: Database, sql: str, n: int) -> list[tuple[Any, ...]]:
    """Up to ``n`` rows of a sampling query (the query takes ``n`` as its one parameter)."""
    with db.connection() as conn:
        return [tuple(r) for r in conn.execute(sql.encode(), (n,)).fetchall()]


# Persons sampled from the whole registry (a block sample of ~2 % of pages, then shuffled):
# requests spread over the table as a province's requests would, not over its first pages.
_PERSONS = """
SELECT id, full_name, birth_date, sex, cccd FROM person TABLESAMPLE SYSTEM (2)
WHERE merged_into IS NULL AND full_name IS NOT NULL ORDER BY random() LIMIT %s"""
_RESOURCES = """
SELECT type, id FROM resource TABLESAMPLE SYSTEM (2) WHERE NOT deleted ORDER BY random() LIMIT %s"""


def _tokens(db: Database, env: dict[str, str]) -> dict[str, str]:
    """Bearer tokens and cookies: a partner (book API), the demo family's citizen (``/book``)
    and clinician (``/clinic``), the platform's account (FHIR)."""
    from hssk.access import accounts
    from hssk.access.tokens import issue
    from hssk.http.gate import COOKIE, SESSION_TTL
    from hssk.kernel.config import load_settings
    from hssk.web.demo import seed_family

    settings = load_settings()
    with db.connection() as conn:
        family = seed_family(conn, tag="bench")
        citizen = accounts.find_account(conn, f"citizen.{family.mother}")
        clinician = accounts.find_account(conn, family.clinician)
    assert citizen is not None and clinician is not None
    return {
        "partner": f"Bearer {_partner_token(db, settings)}",
        "citizen": f"{COOKIE}={issue(settings, citizen.actor(), ttl=SESSION_TTL)}",
        "clinician": f"{COOKIE}={issue(settings, clinician.actor(), ttl=SESSION_TTL)}",
        "system": f"Bearer {_system_token(env)}",
    }


def _online_link(db: Database, records: int, seed: int) -> dict[str, Any]:
    """``registry.link`` of ``records`` source records, one committed transaction each, as a
    daily feed sends them: half are residents already in the registry coming from a new
    source, half are new residents."""
    from hssk import registry

    rnd = random.Random(seed)
    known = _sample(db, _PERSONS, records // 2)
    with db.connection() as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM person").fetchone()
    first = int(row[0]) if row else 0  # numbering after every person ever created: all new
    run = f"{int(time.time())}"  # a later run links records of its own, not resent ones
    recs = [
        registry.SourceRecord(ONLINE_SOURCE, f"{run}-k{i}", full_name=name,
                              birth_date=born.isoformat() if born else None, sex=sex, cccd=cccd)
        for i, (_, name, born, sex, cccd) in enumerate(known)
    ]  # fmt: skip
    for r in _source_records(first + 10_000_000, records - len(recs), rnd):
        r.source, r.record_id = ONLINE_SOURCE, f"{run}-n{r.record_id}"
        recs.append(r)
    rnd.shuffle(recs)
    lat: list[float] = []
    created = 0
    for rec in recs:
        t = time.perf_counter()
        with db.connection() as conn:
            created += registry.link(conn, rec).created
        lat.append(time.perf_counter() - t)
    pct = percentiles(lat)
    return {
        "records": len(recs),
        "created": created,
        "records_per_s": round(len(lat) / sum(lat), 1) if lat else 0.0,
        "p50_ms": round(pct["p50"], 1),
        "p95_ms": round(pct["p95"], 1),
        "p99_ms": round(pct["p99"], 1),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def measure_serving(
    db: Database,
    url: str,
    data_dir: Path,
    steps: Stages,
    *,
    clients: int = 16,
    latency_clients: int = 4,
    seconds: float = 15.0,
    workers: int = 2,
    link_records: int = 500,
    seed: int = 1,
) -> dict[str, Any]:
    """Measure serving on the loaded database; each measure is a step of ``steps``.

    The book API and ``/book`` take ``clients`` concurrent clients (throughput); search and
    FHIR read take ``latency_clients`` (a few clinicians and partners at once)."""
    env = {"HSSK_DATA_DIR": str(data_dir), "HSSK_DATABASE_URL": url}
    persons = _sample(db, _PERSONS, 2000)
    resources = _sample(db, _RESOURCES, 2000)
    if not persons or not resources:
        raise RuntimeError("the serving measures need a loaded registry and record store")
    http_steps = ("book_api", "book_page", "clinician_search_cccd", "clinician_search_name",
                  "fhir_read")  # fmt: skip
    if any(s not in steps.done for s in http_steps):
        auth = _tokens(db, env)
        book = [f"/api/v1/book/{p[0]}?v=1" for p in persons]
        by_cccd = [f"/clinic?{urlencode({'cccd': p[4]})}" for p in persons if p[4]]
        by_name = [
            f"/clinic?{urlencode({'name': p[1], 'birth': str(p[2].year)})}"
            for p in persons if p[2] is not None
        ]  # fmt: skip
        reads = [f"/fhir/{t}/{i}" for t, i in resources]
        plan: dict[str, tuple[list[str], dict[str, str], int]] = {
            "book_api": (book, {"Authorization": auth["partner"]}, clients),
            "book_page": (["/book"], {"Cookie": auth["citizen"]}, clients),
            "clinician_search_cccd": (by_cccd, {"Cookie": auth["clinician"]}, latency_clients),
            "clinician_search_name": (by_name, {"Cookie": auth["clinician"]}, latency_clients),
            "fhir_read": (reads, {"Authorization": auth["system"]}, latency_clients),
        }
        with running_server(env, workers=workers) as base:
            for name, (paths, headers, n) in plan.items():
                steps.record(name, lambda p=paths, h=headers, n=n: {  # type: ignore[misc]
                    "clients": n, "server_workers": workers,
                    **_load(base, p, h, n, seconds, warmup=3.0)})  # fmt: skip
    steps.record("online_link", lambda: _online_link(db, link_records, seed))
    return {name: steps.done[name] for name in (*http_steps, "online_link")}
