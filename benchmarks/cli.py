"""``hssk bench``: benchmarks of the hot paths. Each prints its figures; none is a test."""

from __future__ import annotations

import inspect
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import typer
from rich.console import Console
from rich.table import Table

import benchmarks.access
import benchmarks.hanoi
import benchmarks.ingest
import benchmarks.registry
import benchmarks.share
import benchmarks.synth
import benchmarks.web
from hssk.db.embedded import stop_embedded

app = typer.Typer(no_args_is_help=True)
console = Console()


def percentiles(samples: list[float]) -> dict[str, float]:
    """p50/p95/p99 of latencies in seconds, returned in milliseconds."""
    if not samples:
        return {"p50": 0.0, "p95": 0.0, "p99": 0.0}
    qs = statistics.quantiles(samples, n=100, method="inclusive")
    return {"p50": qs[49] * 1000, "p95": qs[94] * 1000, "p99": qs[98] * 1000}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(env: dict[str, str], workers: int = 1) -> Iterator[str]:
    """Start ``hssk serve`` in a subprocess on a free loopback port; yield its base URL."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hssk", "serve", "--port", str(port), "--workers", str(workers)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while time.time() < deadline:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(
                    f"server exited: {proc.stderr.read().decode()[-2000:] if proc.stderr else ''}"
                )
            time.sleep(0.3)
        else:
            raise RuntimeError("server did not become ready in 90 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _bundle(rng: random.Random, entries: int) -> dict[str, Any]:
    pref = f"urn:uuid:{uuid.UUID(int=rng.getrandbits(128))}"
    cccd = f"001{rng.choice('0123')}{rng.randint(0, 99):02d}{rng.randint(0, 999999):06d}"
    items: list[dict[str, Any]] = [
        {
            "fullUrl": pref,
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": "https://fhir.hssk.vn/sid/cccd", "value": cccd}],
                "name": [{"family": "Nguyễn", "given": ["Văn", f"An{rng.randint(0, 9999)}"]}],
                "gender": "male",
                "birthDate": f"19{rng.randint(30, 99)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            },
            "request": {"method": "POST", "url": "Patient"},
        }
    ]
    for i in range(entries - 1):
        items.append(
            {
                "resource": {
                    "resourceType": "Observation",
                    "status": "final",
                    "code": {
                        "coding": [
                            {
                                "system": "http://loinc.org",
                                "code": rng.choice(["8480-6", "8462-4", "2339-0", "29463-7"]),
                            }
                        ]
                    },
                    "subject": {"reference": pref},
                    "effectiveDateTime": f"2025-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T08:{i % 60:02d}:00+07:00",
                    "valueQuantity": {"value": round(rng.uniform(50, 200), 1), "unit": "mmHg"},
                },
                "request": {"method": "POST", "url": "Observation"},
            }
        )
    return {"resourceType": "Bundle", "type": "transaction", "entry": items}


def _system_token(env: dict[str, str]) -> str:
    from hssk.access.actor import Actor
    from hssk.access.tokens import issue
    from hssk.kernel.config import load_settings

    old = dict(os.environ)
    os.environ.update(env)
    try:
        # the platform's own account: benchmarks measure the store, not the access rules
        actor = Actor(
            "platform",
            "system",
            scopes=frozenset({"system/*.read", "system/*.write"}),
            client="bench",
        )
        return issue(load_settings(), actor, ttl=3600)
    finally:
        os.environ.clear()
        os.environ.update(old)


def _parallel(
    n_threads: int, jobs: list[Any], work: Callable[[httpx.Client, Any], float]
) -> list[float]:
    lock = threading.Lock()
    queue = list(jobs)
    out: list[float] = []
    errors: list[str] = []

    def run() -> None:
        with httpx.Client(timeout=120) as client:
            while True:
                with lock:
                    if not queue:
                        return
                    job = queue.pop()
                try:
                    took = work(client, job)
                except Exception as exc:  # a failed request must not pass for a fast one
                    errors.append(str(exc)[:300])
                    return
                with lock:
                    out.append(took)

    threads = [threading.Thread(target=run) for _ in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} requests failed, first: {errors[0]}")
    return out


@app.command("fhir")
def bench_fhir(
    bundles: int = typer.Option(300, help="Transaction bundles to post (timed)."),
    warmup: int = typer.Option(
        20, help="Bundles posted first and not timed (connections, caches, query plans)."
    ),
    entries: int = typer.Option(100, help="Entries per bundle."),
    reads: int = typer.Option(5000, help="Reads by id afterwards."),
    clients: int = typer.Option(4, help="Concurrent HTTP clients."),
    workers: int = typer.Option(2, help="Server worker processes."),
    data_dir: Path | None = typer.Option(None, help="Data dir (default: a new temporary one)."),
    database_url: str | None = typer.Option(
        None, help="A PostgreSQL URL instead of the embedded one."
    ),
) -> None:
    """Load N transaction bundles through HTTP, read resources back by id; print throughput."""
    made_here = data_dir is None
    tmp = Path(data_dir or tempfile.mkdtemp(prefix="hssk-bench-"))
    try:
        _bench_fhir(tmp, bundles, entries, reads, clients, workers, database_url, warmup)
    finally:
        if not database_url:
            stop_embedded(tmp)  # its users were terminated: it would outlive the bench
        if made_here:
            shutil.rmtree(tmp, ignore_errors=True)


def _bench_fhir(
    tmp: Path, bundles: int, entries: int, reads: int, clients: int, workers: int,
    database_url: str | None, warmup: int = 0,
) -> None:  # fmt: skip
    env = {"HSSK_DATA_DIR": str(tmp)}
    if database_url:
        env["HSSK_DATABASE_URL"] = database_url
    else:
        env.pop("HSSK_DATABASE_URL", None)
        os.environ.pop("HSSK_DATABASE_URL", None)
    rng = random.Random(42)
    payloads = [json.dumps(_bundle(rng, entries)).encode() for _ in range(warmup + bundles)]
    token = _system_token(env)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    ids: list[str] = []
    with running_server(env, workers=workers) as base:

        def post(client: httpx.Client, body: bytes) -> float:
            t0 = time.perf_counter()
            r = client.post(f"{base}/fhir", content=body, headers=headers)
            took = time.perf_counter() - t0
            if r.status_code != 200:
                raise RuntimeError(f"bundle failed: {r.status_code} {r.text[:300]}")
            ids.extend(e["response"]["location"].split("/_history")[0] for e in r.json()["entry"])
            return took

        if warmup:
            _parallel(clients, payloads[:warmup], post)
        t0 = time.perf_counter()
        post_lat = _parallel(clients, payloads[warmup:], post)
        load_s = time.perf_counter() - t0
        sample = [rng.choice(ids) for _ in range(reads)]

        def get(client: httpx.Client, path: str) -> float:
            t = time.perf_counter()
            r = client.get(f"{base}/fhir/{path}", headers=headers)
            if r.status_code != 200:
                raise RuntimeError(f"read failed: {r.status_code}")
            return time.perf_counter() - t

        t0 = time.perf_counter()
        read_lat = _parallel(clients, sample, get)
        read_s = time.perf_counter() - t0
    total = bundles * entries
    result = {
        "warmup_bundles": warmup,
        "resources": total,
        "load_seconds": round(load_s, 2),
        "resources_per_s": round(total / load_s),
        "bundle_latency_ms": {k: round(v, 1) for k, v in percentiles(post_lat).items()},
        "reads": reads,
        "reads_per_s": round(reads / read_s),
        "read_latency_ms": {k: round(v, 2) for k, v in percentiles(read_lat).items()},
        "clients": clients,
        "workers": workers,
    }
    _print("hssk bench fhir", result)


def _print(title: str, result: dict[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("figure")
    table.add_column("value", justify="right")
    for k, v in result.items():
        table.add_row(k, json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else str(v))
    console.print(table)
    console.print_json(json.dumps(result, ensure_ascii=False))


# Component benchmarks: (command, module, function). Each function takes keyword options
# and returns a dict of figures.
COMPONENT_BENCHES: tuple[tuple[str, str, Callable[..., dict[str, Any]]], ...] = (
    ("synth", "generator", benchmarks.synth.run_bench),
    ("ingest", "ingestion", benchmarks.ingest.run_bench),
    ("mpi", "master patient index", benchmarks.registry.run_bench),
    ("web", "health book", benchmarks.web.run_bench),
    ("share", "sharing and supervision", benchmarks.share.run_bench),
    ("access", "access control and audit", benchmarks.access.run_bench),
)


# What each component calls its main size parameter.
SIZE_NAMES = ("size", "persons", "records", "requests")


def _register(name: str, what: str, fn: Callable[..., dict[str, Any]]) -> None:
    @app.command(name, help=f"Benchmark of the {what} (see docs/benchmarks.md).")
    def _cmd(
        size: int = typer.Option(0, help="Main size parameter (persons/records); 0 = default."),
        out: Path | None = typer.Option(None, help="Working directory."),
    ) -> None:
        accepted = inspect.signature(fn).parameters
        kwargs: dict[str, Any] = {}
        size_name = next((n for n in SIZE_NAMES if n in accepted), None)
        if size and size_name:
            kwargs[size_name] = size
        out_name = next((n for n in ("out", "out_dir") if n in accepted), None)
        if out and out_name:
            kwargs[out_name] = out
        _print(f"hssk bench {name}", fn(**kwargs))


for _n, _m, _f in COMPONENT_BENCHES:
    _register(_n, _m, _f)


@app.command("hanoi")
def bench_hanoi(
    size: int = typer.Option(200_000, help="Persons of the synthetic Hà Nội."),
    out: Path | None = typer.Option(
        None, help="Working directory (feeds, database, stages.json); a run resumes in it."
    ),
    initial: bool = typer.Option(
        False, help="Registers and immunizations through the batch first-load path."
    ),
    visit_rate: float = typer.Option(0.1, help="Share of the generator's visits."),
    score_persons: int | None = typer.Option(
        None, help="Score the completeness of that many persons only."
    ),
    serve: bool = typer.Option(True, help="Measure a running server after the load."),
    clients: int = typer.Option(16, help="Concurrent clients of the book API and page."),
    seconds: float = typer.Option(15.0, help="Seconds each serving measure runs."),
    skip_feed: list[str] = typer.Option(
        [], help="A feed stage not to load (checkin, his, station…); repeatable."
    ),
) -> None:
    """Benchmark of Hà Nội at full size: load stage by stage, then measure serving."""
    result = benchmarks.hanoi.run_bench(
        size, out, visit_rate=visit_rate, score_persons=score_persons, initial=initial,
        serve=serve, clients=clients, seconds=seconds, skip_feeds=tuple(skip_feed),
    )  # fmt: skip
    print_hanoi(result)


def print_hanoi(result: dict[str, Any]) -> None:
    """The load stages, the supervision pages and the serving measures as tables, then the
    whole result as JSON."""
    # written to a log file, a console is 80 columns wide: too narrow for the serving table
    out = console if console.is_terminal else Console(width=120)
    stages = Table(title=f"hssk bench hanoi: {result['persons']:,} persons, load stages")
    for col in ("stage", "path", "seconds", "records", "records/s", "peak RSS MB"):
        stages.add_column(col, justify="left" if col in ("stage", "path") else "right")
    for name, s in result.get("stages", {}).items():
        stages.add_row(name, s.get("path", ""), str(s["seconds"]), f"{s['records']:,}",
                       f"{s['records_per_s']:,}", str(s["peak_rss_mb"]))  # fmt: skip
    out.print(stages)
    pages = Table(title="supervision pages and /metrics (in process)")
    pages.add_column("page", no_wrap=True)
    for col in ("p50 ms", "p95 ms"):
        pages.add_column(col, justify="right")
    for name, t in result.get("supervision", {}).items():
        pages.add_row(name, str(t["p50_ms"]), str(t["p95_ms"]))
    out.print(pages)
    serving = Table(title="serving (hssk serve on the loaded database; link in process)")
    serving.add_column("measure", no_wrap=True, min_width=21)
    for col in ("clients", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "load 1m"):
        serving.add_column(col, justify="right")
    for name, m in (result.get("serving") or {}).items():
        rate = m.get("requests_per_s", m.get("records_per_s"))
        serving.add_row(name, str(m.get("clients", 1)), str(rate), str(m["p50_ms"]),
                        str(m["p95_ms"]), str(m["p99_ms"]), str(m.get("errors", 0)),
                        str(m.get("load_average_1m")))  # fmt: skip
    out.print(serving)
    out.print(
        f"bytes on disk: {result.get('bytes_per_person')} per person, "
        f"{result.get('bytes_per_resource')} per resource "
        f"({result.get('registry_persons')} persons, {result.get('resources')} resources); "
        f"load average {result.get('load_average')}"
    )
    out.print_json(json.dumps(result, ensure_ascii=False, default=str))
