"""A local partner simulator (tests and the demo): records what it receives, dedupes by key.

Runs as its own process on 127.0.0.1 (``hssk share simulator``). It can be slow
(``slow_ms``), fail (``fail_rate``: half of the failures happen *after* the event was stored,
so the sender sees an error for something the partner has: the case idempotency keys exist
for) and reject (``reject_rate``: 422, a permanent refusal). It exposes what it holds:

* ``POST /<partner>`` — deliver (header ``Idempotency-Key`` required);
* ``GET /_stats`` — counters; ``GET /_received`` — every accepted event (key, partner, body).

With ``record`` the accepted events are appended to a JSON-lines file and reloaded on start,
so a restarted simulator still recognises keys it already took.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class SimState:
    fail_rate: float = 0.0
    slow_ms: int = 0
    reject_rate: float = 0.0
    seed: int | None = None
    record: Path | None = None
    received: dict[str, dict[str, Any]] = field(default_factory=dict)
    counters: dict[str, int] = field(
        default_factory=lambda: {
            "requests": 0, "accepted": 0, "duplicates": 0, "failed": 0, "rejected": 0,
        }
    )  # fmt: skip
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        if self.record and self.record.exists():
            for line in self.record.read_text("utf-8").splitlines():
                if line.strip():
                    item = json.loads(line)
                    self.received[item["key"]] = item


class JsonHandler(BaseHTTPRequestHandler):
    """A quiet HTTP/1.1 handler that answers JSON (the simulators' common part)."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body leave at once (no delayed-ACK stall)

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: the counters tell the story

    def _reply(self, status: int, body: Any) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _handler(state: SimState) -> type[BaseHTTPRequestHandler]:
    class Handler(JsonHandler):
        def do_GET(self) -> None:
            with state.lock:
                if self.path.startswith("/_stats"):
                    self._reply(200, {**state.counters, "unique": len(state.received)})
                elif self.path.startswith("/_received"):
                    self._reply(200, list(state.received.values()))
                else:
                    self._reply(404, {"error": "GET /_stats or /_received"})

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            key = self.headers.get("Idempotency-Key")
            partner = self.path.strip("/").split("/")[0]
            if state.slow_ms:
                time.sleep(state.slow_ms / 1000)
            with state.lock:
                state.counters["requests"] += 1
                if not key:
                    self._reply(400, {"error": "Idempotency-Key header required"})
                    return
                if key in state.received:
                    state.counters["duplicates"] += 1
                    self._reply(200, {"status": "duplicate", "key": key})
                    return
                roll = state.rng.random()
                if roll < state.fail_rate / 2:
                    state.counters["failed"] += 1
                    self._reply(503, {"error": "simulated failure before storing"})
                    return
                if roll < state.fail_rate / 2 + state.reject_rate:
                    state.counters["rejected"] += 1
                    self._reply(422, {"error": "simulated rejection of the content"})
                    return
                try:
                    body = json.loads(raw or b"null")
                except json.JSONDecodeError:
                    self._reply(400, {"error": "body is not JSON"})
                    return
                item = {"key": key, "partner": partner, "body": body}
                state.received[key] = item
                state.counters["accepted"] += 1
                if state.record:
                    with state.record.open("a", encoding="utf-8") as fh:
                        fh.write(json.dumps(item, ensure_ascii=False) + "\n")
                if roll < state.fail_rate + state.reject_rate:
                    state.counters["failed"] += 1
                    self._reply(503, {"error": "simulated failure after storing (lost answer)"})
                    return
                self._reply(201, {"status": "accepted", "key": key})

    return Handler


def serve(port: int, state: SimState, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    """A started-not-yet-serving server bound to loopback (call ``serve_forever``)."""
    server = ThreadingHTTPServer((host, port), _handler(state))
    server.daemon_threads = True
    return server
