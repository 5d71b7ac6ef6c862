"""Benchmark of the health book under concurrent load on loopback (for ``hssk bench web``).

The server runs as its own uvicorn process(es) on the configured database; the load comes
from keep-alive HTTP/1.1 connections driven by asyncio in this process. Persons already in the
database are used; when there are fewer than ``persons``, synthetic books are added first
(registry ``link_many`` + record store ``bulk_upsert``, both COPY-based).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psutil

from hssk import registry
from hssk.access import Actor, accounts
from hssk.access.tokens import issue
from hssk.db import Database, open_database
from hssk.kernel.codes import ICD10
from hssk.kernel.config import Settings, load_settings
from hssk.kernel.identifiers import cccd_digit
from hssk.records import NewResource, bulk_upsert, refresh_statistics
from hssk.synth.names import name_model
from hssk.web.demo import seed_family

log = logging.getLogger(__name__)
BENCH_UNIT = "BENCH-VNEID"
_BATCH = 5_000
_PROVINCES = ("001", "079", "031", "048", "092")  # CCCD birth-province codes


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _book_resources(pid: int, rnd: random.Random, now: datetime) -> list[NewResource]:
    """A small but complete book: 2 visits with diagnoses, vitals, labs, a prescription."""
    out = []
    pref = {"reference": f"Patient/{pid}"}
    for v in range(2):
        when = now - timedelta(days=rnd.randint(10, 900))
        eid = f"bench-enc-{pid}-{v}"
        cid = f"bench-cond-{pid}-{v}"
        at = when.isoformat().replace("+00:00", "Z")
        out += [
            NewResource({"resourceType": "Condition", "id": cid, "subject": pref,
                         "encounter": {"reference": f"Encounter/{eid}"}, "recordedDate": at,
                         "code": {"coding": [{"system": ICD10, "code": rnd.choice(["I10", "E11.9", "J20.9", "K29.7"])}]}},
                        pid, f"bench:{cid}"),
            NewResource({"resourceType": "Encounter", "id": eid, "status": "finished", "class": {"code": "AMB"},
                         "subject": pref, "period": {"start": at},
                         "serviceProvider": {"display": "Bệnh viện Đa khoa"},
                         "diagnosis": [{"condition": {"reference": f"Condition/{cid}"}, "rank": 1}]},
                        pid, f"bench:{eid}"),
            NewResource({"resourceType": "MedicationRequest", "status": "completed", "intent": "order",
                         "subject": pref, "authoredOn": at, "encounter": {"reference": f"Encounter/{eid}"},
                         "medicationCodeableConcept": {"text": "Amlodipin 5mg"}},
                        pid, f"bench:rx:{pid}:{v}"),
            NewResource({"resourceType": "Observation", "status": "final", "subject": pref, "effectiveDateTime": at,
                         "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                         "valueQuantity": {"value": rnd.randint(45, 80), "unit": "kg"}},
                        pid, f"bench:w:{pid}:{v}"),
            NewResource({"resourceType": "Observation", "status": "final", "subject": pref, "effectiveDateTime": at,
                         "category": [{"coding": [{"code": "laboratory"}]}], "encounter": {"reference": f"Encounter/{eid}"},
                         "code": {"coding": [{"system": "http://loinc.org", "code": "2339-0"}], "text": "Glucose"},
                         "valueQuantity": {"value": round(rnd.uniform(4, 9), 1), "unit": "mmol/L"},
                         "referenceRange": [{"low": {"value": 3.9}, "high": {"value": 6.4}}]},
                        pid, f"bench:g:{pid}:{v}"),
        ]  # fmt: skip
    return out


def _source_records(first: int, n: int, rnd: random.Random) -> list[registry.SourceRecord]:
    """``n`` synthetic residents numbered from ``first``: realistic names (namesakes as in a
    province, so the registry's blocking does real work) and a distinct, well-formed CCCD
    each, so two namesakes born the same day stay two persons."""
    names = name_model()
    out = []
    for k in range(first, first + n):
        sex = rnd.choice("MF")
        year = rnd.randint(1940, 2024)
        province = _PROVINCES[(k // 10**6) % len(_PROVINCES)]
        cccd = f"{province}{cccd_digit(year, sex)}{year % 100:02d}{k % 10**6:06d}"
        out.append(registry.SourceRecord(
            "bench", f"p{k}", full_name=names.sample(rnd, sex).full,
            birth_date=f"{year}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
            sex=sex, cccd=cccd,
        ))  # fmt: skip
    return out


def ensure_persons(db: Database, persons: int, seed: int = 1) -> list[int]:
    """Ids of ``persons`` persons with a book: the persons already in the database first,
    synthetic ones with a book of 10 resources added in batches when missing."""
    with db.connection() as conn:
        have = [r[0] for r in conn.execute(
            "SELECT id FROM person WHERE merged_into IS NULL ORDER BY id LIMIT %s", (persons,)
        ).fetchall()]  # fmt: skip
        # numbering of new source records continues after every person ever created, so a
        # later run (a larger size on the same database) never repeats a record
        first = int(conn.execute("SELECT coalesce(max(id), 0) FROM person").fetchone()[0])  # type: ignore[index]
    rnd = random.Random(seed + first)
    now = datetime.now(UTC)
    t0, start = time.monotonic(), len(have)
    while len(have) < persons:
        recs = _source_records(first, min(_BATCH, persons - len(have)), rnd)
        first += len(recs)
        with db.connection() as conn:
            new = [r.person_id for r in registry.link_many(conn, recs) if r.created]
            bulk_upsert(conn, [x for pid in new for x in _book_resources(pid, rnd, now)])
        have += new
        if len(have) // 50_000 != (len(have) - len(new)) // 50_000:
            rate = (len(have) - start) / (time.monotonic() - t0)
            log.info("%d persons with a book (%.0f persons/s)", len(have), rate)
    if len(have) > start:
        # statistics as autovacuum would leave them after such a load: without them the
        # planner guesses ~100 k resources per person and reads a book with parallel workers
        with db.connection() as conn:
            refresh_statistics(conn)
            registry.refresh_statistics(conn)
    return have[:persons]


def _partner_token(db: Database, settings: Settings) -> str:
    with db.connection() as conn:
        accounts.create_unit(conn, BENCH_UNIT, "external", "VNeID (benchmark)")
    actor = Actor("bench-vneid", "system", unit_id=BENCH_UNIT,
                  scopes=frozenset({"system/*.read"}), client="vneid")  # fmt: skip
    return issue(settings, actor, ttl=3600)


def _start_server(settings: Settings, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {**os.environ, "HSSK_DATA_DIR": str(settings.data_dir)}
    if settings.database_url:
        env["HSSK_DATABASE_URL"] = settings.database_url
    cmd = [sys.executable, "-m", "uvicorn", "hssk.app:create_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--log-level", "warning", "--no-access-log", "--no-proxy-headers"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.terminate()
    raise RuntimeError("the benchmark server did not start within 60 s")


async def _client(
    host: str,
    port: int,
    paths: list[str],
    headers: str,
    stop: float,
    seed: int,
    lat: list[float],
    errors: list[int],
) -> None:
    """One keep-alive HTTP/1.1 connection: minimal request writing and response parsing, so
    the load generator costs little CPU next to the server on the same cores."""
    rnd = random.Random(seed)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.monotonic() < stop:
            path = rnd.choice(paths)
            t0 = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\n{headers}\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head[9:12])
            length = 0
            for line in head.split(b"\r\n"):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            lat.append(time.perf_counter() - t0)
            if status != 200:
                errors[0] += 1
    finally:
        writer.close()


def _cpu_seconds(procs: list[psutil.Process]) -> dict[int, float]:
    out = {}
    for p in procs:
        try:
            t = p.cpu_times()
        except psutil.Error:  # ended meanwhile
            continue
        out[p.pid] = t.user + t.system
    return out


def _cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two snapshots (processes started meanwhile count whole; those that
    ended are left out, their last seconds unknown)."""
    return sum(t - before.get(pid, 0.0) for pid, t in after.items())


def _server_procs(server_pid: int | None) -> list[psutil.Process]:
    if server_pid is None:
        return []
    root = psutil.Process(server_pid)
    return [root, *root.children(recursive=True)]


def _postgres_procs() -> list[psutil.Process]:
    return [
        p for p in psutil.process_iter(["name"]) if (p.info["name"] or "").startswith("postgres")
    ]


def _load(
    url: str,
    paths: list[str],
    headers: dict[str, str],
    concurrency: int,
    seconds: float,
    *,
    server_pid: int | None = None,
    warmup: float = 3.0,
) -> dict[str, Any]:
    """Drive ``concurrency`` keep-alive clients for ``seconds`` (after ``warmup`` seconds not
    counted); latency percentiles, and where the CPU went meanwhile (in cores: this load
    generator, the server's processes, every postgres process of the machine) with the load
    average, so a figure says whether the machine or the client was the limit."""
    host, _, port = url.removeprefix("http://").partition(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    lat: list[float] = []
    errors = [0]

    async def run(duration: float) -> float:
        stop = time.monotonic() + duration
        t0 = time.monotonic()
        await asyncio.gather(*(
            _client(host, int(port), paths, head, stop, i, lat, errors) for i in range(concurrency)
        ))  # fmt: skip
        return time.monotonic() - t0

    if warmup > 0:
        asyncio.run(run(warmup))
        lat.clear()
        errors[0] = 0

    def snapshot() -> tuple[dict[int, float], ...]:
        return (_cpu_seconds([psutil.Process()]), _cpu_seconds(_server_procs(server_pid)),
                _cpu_seconds(_postgres_procs()))  # fmt: skip

    cpu0 = snapshot()
    elapsed = asyncio.run(run(seconds))
    cpu1 = snapshot()
    all_lat = sorted(lat)
    n = len(all_lat)

    def pct(p: float) -> float:
        return round(all_lat[min(n - 1, int(p * n))] * 1000, 1) if n else 0.0

    def cores(i: int) -> float:
        return round(_cpu_used(cpu0[i], cpu1[i]) / elapsed, 2) if elapsed else 0.0

    return {
        "requests": n,
        "errors": errors[0],
        "requests_per_s": round(n / elapsed, 1) if elapsed else 0.0,
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
        "cpu_cores": {
            "load_generator": cores(0),
            "server": cores(1) if server_pid is not None else None,
            "postgres_all": cores(2),
        },
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def run_bench(
    persons: int = 10_000,
    *,
    concurrency: int = 16,
    seconds: float = 15.0,
    workers: int = 2,
    page: bool = True,
    warmup: float = 3.0,
    url: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Load ``persons`` books (if missing), then hit the partner book API
    (``GET /api/v1/book/{id}``, random persons) and the citizen book page (``GET /book``,
    unless ``page`` is false) with ``concurrency`` keep-alive clients for ``seconds`` each
    (after ``warmup`` seconds not counted).
    Returns requests/s, p50/p95/p99 latency (ms) and CPU use per target. ``url`` reuses a
    running server instead of starting ``workers`` uvicorn processes. The books stay in the
    database: a later run on the same database (``HSSK_DATABASE_URL`` or ``HSSK_DATA_DIR``)
    loads only what is missing."""
    settings = settings or load_settings()
    db = open_database(settings)
    try:
        t0 = time.monotonic()
        ids = ensure_persons(db, persons)
        load_s = round(time.monotonic() - t0, 1)
        token = _partner_token(db, settings)
        with db.connection() as conn:
            family = seed_family(conn, tag="bench")
            citizen = accounts.find_account(conn, f"citizen.{family.mother}")
        assert citizen is not None
        citizen_token = issue(settings, citizen.actor(), ttl=3600)
    finally:
        db.close()
    proc = None
    if url is None:
        proc, url = _start_server(settings, workers)
    pid = proc.pid if proc is not None else None
    try:
        api = _load(url, [f"/api/v1/book/{i}?v=1" for i in ids],
                    {"Authorization": f"Bearer {token}"}, concurrency, seconds, server_pid=pid,
                    warmup=warmup)  # fmt: skip
        book_page = None
        if page:
            cookie = {"Cookie": f"hssk_token={citizen_token}"}
            book_page = _load(
                url, ["/book"], cookie, concurrency, seconds, server_pid=pid, warmup=warmup
            )
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=30)
    return {
        "persons": len(ids),
        "load_seconds": load_s,
        "concurrency": concurrency,
        "server_workers": workers if proc is not None else None,
        "cores": os.cpu_count(),
        "api_book": api,
        "page_book": book_page,
    }


def main(argv: list[str] | None = None) -> None:
    """``python -m benchmarks.web``: the options ``hssk bench web`` leaves at their defaults."""
    import argparse
    import json

    ap = argparse.ArgumentParser(prog="python -m benchmarks.web", description=__doc__)
    ap.add_argument("--persons", type=int, default=2000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-page", action="store_true", help="the API only")
    ap.add_argument("--url", help="a running server instead of starting one")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # the server's start-up polling
    result = run_bench(a.persons, concurrency=a.concurrency, seconds=a.seconds,
                       workers=a.workers, page=not a.no_page, url=a.url)  # fmt: skip
    print(json.dumps(result, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()
