"""Benchmark of the health book under concurrent load on loopback (for ``hssk bench web``).

The server runs as its own uvicorn process(es) on the configured database; the load comes
from keep-alive HTTP/1.1 connections driven by asyncio in this process. Persons already in the
database are used; when there are fewer than ``persons``, synthetic books are added first
(registry ``link_many`` + record store ``bulk_upsert``, both COPY-based).
"""

from __future__ import annotations

import asyncio
import os
import random
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from hssk import registry
from hssk.access import Actor, accounts
from hssk.access.tokens import issue
from hssk.config import Settings, load_settings
from hssk.db import Database, open_database
from hssk.records import NewResource, bulk_upsert
from hssk.web.book import ICD10
from hssk.web.demo import seed_family

BENCH_UNIT = "BENCH-VNEID"
_BATCH = 5_000
_GIVEN = ("Hoa", "Lan", "Minh", "An", "Bình", "Hùng", "Mai", "Tuấn", "Hương", "Dũng")


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


def ensure_persons(db: Database, persons: int, seed: int = 1) -> list[int]:
    """Ids of ``persons`` persons with a book (synthetic ones are added when missing)."""
    with db.connection() as conn:
        have = [r[0] for r in conn.execute(
            "SELECT id FROM person WHERE merged_into IS NULL ORDER BY id LIMIT %s", (persons,)
        ).fetchall()]  # fmt: skip
    rnd = random.Random(seed)
    now = datetime.now(UTC)
    start = len(have)
    while len(have) < persons:
        n = min(_BATCH, persons - len(have))
        recs = [
            registry.SourceRecord(
                "bench", f"p{start + i}", full_name=f"Nguyễn Văn {rnd.choice(_GIVEN)} {start + i}",
                birth_date=f"{rnd.randint(1940, 2020)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}",
                sex=rnd.choice("MF"),
            )
            for i in range(n)
        ]  # fmt: skip
        start += n
        with db.connection() as conn:
            ids = [r.person_id for r in registry.link_many(conn, recs)]
            bulk_upsert(conn, [x for pid in ids for x in _book_resources(pid, rnd, now)])
        have += ids
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
    cmd = [sys.executable, "-m", "uvicorn", "hssk.api.app:create_app", "--factory",
           "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
           "--log-level", "warning", "--no-access-log"]  # fmt: skip
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


def _load(
    url: str, paths: list[str], headers: dict[str, str], concurrency: int, seconds: float
) -> dict[str, Any]:
    host, _, port = url.removeprefix("http://").partition(":")
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    lat: list[float] = []
    errors = [0]

    async def main() -> float:
        stop = time.monotonic() + seconds
        t0 = time.monotonic()
        await asyncio.gather(*(
            _client(host, int(port), paths, head, stop, i, lat, errors) for i in range(concurrency)
        ))  # fmt: skip
        return time.monotonic() - t0

    elapsed = asyncio.run(main())
    all_lat = sorted(lat)
    n = len(all_lat)

    def pct(p: float) -> float:
        return round(all_lat[min(n - 1, int(p * n))] * 1000, 1) if n else 0.0

    return {
        "requests": n,
        "errors": errors[0],
        "requests_per_s": round(n / elapsed, 1) if elapsed else 0.0,
        "p50_ms": pct(0.50),
        "p95_ms": pct(0.95),
        "p99_ms": pct(0.99),
    }


def run_bench(
    persons: int = 10_000,
    *,
    concurrency: int = 16,
    seconds: float = 15.0,
    workers: int = 2,
    url: str | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Load ``persons`` books (if missing), then hit the partner book API
    (``GET /api/v1/book/{id}``, random persons) and the citizen book page (``GET /book``)
    with ``concurrency`` keep-alive clients for ``seconds`` each. Returns requests/s and
    p50/p95/p99 latency (ms) per target. ``url`` reuses a running server instead of starting
    ``workers`` uvicorn processes."""
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
    try:
        api = _load(url, [f"/api/v1/book/{i}?v=1" for i in ids],
                    {"Authorization": f"Bearer {token}"}, concurrency, seconds)  # fmt: skip
        page = _load(
            url, ["/book"], {"Cookie": f"hssk_token={citizen_token}"}, concurrency, seconds
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
        "api_book": api,
        "page_book": page,
    }


if __name__ == "__main__":  # python -m hssk.web.bench [persons]
    import json

    print(json.dumps(run_bench(int(sys.argv[1]) if len(sys.argv) > 1 else 2000), indent=2))
