"""Verification of persons against the national population register (CSDLQG về dân cư).

``PopulationRegister`` is the adapter interface; ``SimulatedRegister`` answers from a synthetic
register CSV with latency, a per-minute quota and outages. ``verify_pending`` is a worker pass:
linking never calls the register, so an outage never blocks ingest; a failed look-up is
retried later with exponential back-off.
"""

from __future__ import annotations

import csv
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson
import psycopg

from hssk.registry.normalize import display_name, normalize_sex, parse_birth_date, split_name

MAX_BACKOFF_S = 24 * 3600


@dataclass(frozen=True)
class RegisterAnswer:
    """The register's answer for a personal id: match, mismatch (the id exists but belongs to
    someone with other demographics) or not_found, with the register's demographics."""

    status: str
    demographics: dict[str, str] = field(default_factory=dict)


class RegisterUnavailable(RuntimeError):
    """The register did not answer (outage, quota exhausted, timeout): retry later."""


class PopulationRegister(Protocol):
    def lookup(
        self, cccd: str, full_name: str | None, birth_date: str | None
    ) -> RegisterAnswer: ...


class SimulatedRegister:
    """A local stand-in for the national register, answering from a CSV with columns
    ``cccd, full_name, birth_date, sex, commune_code``."""

    def __init__(
        self,
        rows: Iterable[dict[str, str]],
        *,
        latency_ms: float = 5.0,
        quota_per_minute: int = 10_000,
        outage_rate: float = 0.0,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rows = {r["cccd"]: r for r in rows if r.get("cccd")}
        self.latency_ms = latency_ms
        self.quota_per_minute = quota_per_minute
        self.outage_rate = outage_rate
        self.down = False  # a forced outage, for tests and drills
        self._rng = random.Random(seed)
        self._clock, self._sleep = clock, sleep
        self._calls: deque[float] = deque()

    @classmethod
    def from_csv(cls, path: Path, **kw: Any) -> SimulatedRegister:
        with path.open(encoding="utf-8", newline="") as fh:
            return cls(list(csv.DictReader(fh)), **kw)

    def lookup(self, cccd: str, full_name: str | None, birth_date: str | None) -> RegisterAnswer:
        now = self._clock()
        while self._calls and now - self._calls[0] > 60:
            self._calls.popleft()
        if self.down or self._rng.random() < self.outage_rate:
            raise RegisterUnavailable("population register unavailable (simulated outage)")
        if len(self._calls) >= self.quota_per_minute:
            raise RegisterUnavailable(
                f"quota of {self.quota_per_minute} look-ups per minute exhausted"
            )
        self._calls.append(now)
        if self.latency_ms:
            self._sleep(self.latency_ms / 1000)
        row = self.rows.get(cccd)
        if row is None:
            return RegisterAnswer("not_found")
        demo = {k: v for k, v in row.items() if v}
        same_name = (
            split_name(full_name).key == split_name(row.get("full_name")).key if full_name else True
        )
        bd = parse_birth_date(birth_date) if birth_date else None
        reg_bd = parse_birth_date(row.get("birth_date"))
        same_year = bd is None or reg_bd is None or bd.value.year == reg_bd.value.year
        return RegisterAnswer("match" if same_name and same_year else "mismatch", demo)


def verify_pending(
    conn: psycopg.Connection[Any], register: PopulationRegister, *, limit: int = 500
) -> dict[str, int]:
    """Verify up to ``limit`` persons whose CCCD is not yet verified and whose retry time has
    come. A match marks the person verified and takes the register's demographics; an
    unavailable register schedules a retry (back-off 1 min, 2 min, 4 min … ≤ 1 day)."""
    rows = conn.execute(
        """SELECT id, cccd, full_name, birth_date, birth_precision, verify_attempts FROM person
            WHERE cccd IS NOT NULL AND merged_into IS NULL AND verification IN ('unverified', 'retry')
              AND (verify_next IS NULL OR verify_next <= now())
            ORDER BY verify_next NULLS FIRST, id LIMIT %s FOR UPDATE SKIP LOCKED""",
        (limit,),
    ).fetchall()
    counts = {"verified": 0, "mismatch": 0, "not_found": 0, "retry": 0}
    for pid, cccd, name, bd, prec, attempts in rows:
        bd_text = (
            None
            if bd is None
            else {"Y": bd.isoformat()[:4], "M": bd.isoformat()[:7]}.get(prec, bd.isoformat())
        )
        try:
            answer = register.lookup(cccd, name, bd_text)
        except RegisterUnavailable as exc:
            delay = min(60 * 2**attempts, MAX_BACKOFF_S)
            conn.execute(
                """UPDATE person SET verification = 'retry', verify_attempts = verify_attempts + 1,
                          verify_next = now() + make_interval(secs => %s) WHERE id = %s""",
                (delay, pid),
            )
            _log(conn, pid, "error", {"reason": str(exc), "retry_in_s": delay})
            counts["retry"] += 1
            continue
        if answer.status == "match":
            _apply(conn, pid, answer.demographics)
            counts["verified"] += 1
        else:
            conn.execute(
                "UPDATE person SET verification = %s, verify_next = NULL, updated_at = now() WHERE id = %s",
                (answer.status, pid),
            )
            counts[answer.status] += 1
        _log(
            conn,
            pid,
            "verified" if answer.status == "match" else answer.status,
            answer.demographics,
        )
    return counts


def _apply(conn: psycopg.Connection[Any], pid: int, demo: dict[str, str]) -> None:
    """Mark verified and correct demographics from the register (it is authoritative)."""
    parts = split_name(demo.get("full_name"))
    bd = parse_birth_date(demo.get("birth_date"))
    conn.execute(
        """UPDATE person SET verification = 'verified', cccd_verified = true, verify_next = NULL,
                  full_name = coalesce(%s, full_name), name_key = coalesce(%s, name_key),
                  family_key = coalesce(%s, family_key), middle_key = coalesce(%s, middle_key),
                  given_key = coalesce(%s, given_key), name_sorted = coalesce(%s, name_sorted),
                  birth_date = coalesce(%s, birth_date),
                  birth_precision = CASE WHEN %s::date IS NULL THEN birth_precision ELSE %s END,
                  sex = coalesce(%s, sex), updated_at = now()
            WHERE id = %s""",
        (
            display_name(demo.get("full_name")),
            parts.key,
            parts.family,
            parts.middle,
            parts.given,
            parts.sorted,
            bd.value if bd else None,
            bd.value if bd else None,
            bd.precision if bd else None,
            normalize_sex(demo.get("sex")),
            pid,
        ),
    )


def _log(conn: psycopg.Connection[Any], pid: int, outcome: str, detail: dict[str, Any]) -> None:
    conn.execute(
        "INSERT INTO person_verification (person_id, outcome, detail) VALUES (%s, %s, %s::jsonb)",
        (pid, outcome, orjson.dumps(detail).decode()),
    )


def write_register_csv(path: Path, rows: Iterable[dict[str, str]]) -> None:
    """Write a register CSV (for the simulator) from dicts with the register columns."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(
            fh, fieldnames=["cccd", "full_name", "birth_date", "sex", "commune_code"]
        )
        w.writeheader()
        for r in rows:
            w.writerow({k: r.get(k, "") for k in w.fieldnames})
