"""Benchmark of access control's hot paths: audit writes, policy decisions, bulk account
import, chain verification. ``run_bench(db, ...)`` returns the figures (also printed)."""

from __future__ import annotations

import io
import threading
import time
import uuid
from typing import Any

import orjson
from rich.console import Console

from hssk.access import accounts
from hssk.access.actor import Actor
from hssk.access.audit import defer, flush, record, verify_chain
from hssk.access.policy import authorize
from hssk.db import Database, open_database


def _setup(db: Database, tag: str) -> tuple[Actor, int]:
    with db.connection() as conn:
        accounts.create_unit(conn, f"B{tag}", "hospital", "Bench hospital", facility_code=f"F{tag}")
        person = conn.execute(
            "INSERT INTO person (full_name, commune_code) VALUES ('Bench', '99999') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]
        # an open encounter the hospital's own system wrote (source_unit = its facility code)
        enc = {"resourceType": "Encounter", "status": "in-progress",
               "serviceProvider": {"identifier": {"value": f"F{tag}"}}}  # fmt: skip
        conn.execute(
            """INSERT INTO resource (type, id, version, person_id, source_unit, last_updated, body)
               VALUES ('Encounter', %s, 1, %s, %s, now(), %s::jsonb)""",
            (f"bench-{tag}", person, f"F{tag}", orjson.dumps(enc).decode()),
        )
        conn.execute(
            "INSERT INTO resource_locator (type, id, person_id) VALUES ('Encounter', %s, %s)",
            (f"bench-{tag}", person),
        )
    actor = Actor(account_id=f"bench-{tag}", kind="clinician", unit_id=f"B{tag}",
                  roles=frozenset({"clinician"}), scopes=frozenset({"user/*.read"}))  # fmt: skip
    return actor, int(person)


def run_bench(
    db: Database | None = None,
    *,
    requests: int = 4000,
    threads: int = 4,
    decisions: int = 2000,
    import_rows: int = 10000,
    console: Console | None = None,
) -> dict[str, float]:
    """Measure and return: audited requests/s (``threads`` writers, one event each, written
    after the request like the API does), policy decisions/s, accounts imported/s, audit
    events verified/s."""
    console = console or Console()
    owned = db is None
    db = db or open_database()
    tag = uuid.uuid4().hex[:8]
    out: dict[str, float] = {}
    try:
        actor, person = _setup(db, tag)

        def writer(n: int) -> None:
            for i in range(n):
                with db.connection() as conn:
                    defer(conn)
                    record(conn, actor, "read", outcome="allow", basis="encounter",
                           resource_type="Observation", resource_id=str(i), person_id=person)  # fmt: skip
                    conn.commit()
                    flush(conn)

        per = requests // threads
        t0 = time.perf_counter()
        workers = [threading.Thread(target=writer, args=(per,)) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        out["audited_requests_per_s"] = per * threads / (time.perf_counter() - t0)

        with db.connection() as conn:
            t0 = time.perf_counter()
            for _ in range(decisions):
                assert authorize(conn, actor, "read", "Observation", person).allowed
            out["decisions_per_s"] = decisions / (time.perf_counter() - t0)

        csv_text = "username,kind,display_name,unit_id,roles,phone,cccd\n" + "".join(
            f"b{tag}.{i},staff,Nhân viên {i},B{tag},station,,\n" for i in range(import_rows)
        )
        with db.connection() as conn:
            t0 = time.perf_counter()
            result = accounts.import_accounts(conn, io.StringIO(csv_text))
            out["accounts_imported_per_s"] = result.created / (time.perf_counter() - t0)

        with db.connection() as conn:
            t0 = time.perf_counter()
            report = verify_chain(conn, anchor=False)
            out["audit_verified_per_s"] = report.checked / max(time.perf_counter() - t0, 1e-9)
            out["audit_events"] = float(report.checked)
    finally:
        if owned:
            db.close()
    for key, value in out.items():
        console.print(f"{key:>26}: {value:,.0f}")
    return out


def main(**kw: Any) -> None:  # pragma: no cover - manual run
    run_bench(**kw)
