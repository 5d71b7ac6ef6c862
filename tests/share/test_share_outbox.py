"""Outbox: coalescing, sensitive data, and exactly-once delivery through failures and kill -9."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from hssk.db import Database
from hssk.records import store
from hssk.share import outbox, partners
from hssk.share.worker import WorkerConfig, run
from tests.factories.supervision import load_province

HSSK = str(Path(sys.executable).parent / "hssk")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _partners(port: int, **extra: object) -> list[partners.Partner]:
    return [
        partners.from_dict(
            {
                "id": pid,
                "endpoint": f"http://127.0.0.1:{port}/{pid}",
                "catalog": cat,
                "max_attempts": 50,
                **extra,
            }
        )
        for pid, cat in (("bhxh", "bhxh-80"), ("vneid", "qd1332"))
    ]


class Sim:
    def __init__(self, port: int, proc: subprocess.Popen[bytes]):
        self.port, self.proc = port, proc
        self.url = f"http://127.0.0.1:{port}"

    def stats(self) -> dict:
        return httpx.get(f"{self.url}/_stats").json()

    def received(self) -> list[dict]:
        return httpx.get(f"{self.url}/_received").json()


def _start_sim(tmp: Path, *args: str) -> Sim:
    port = _free_port()
    proc = subprocess.Popen(
        [HSSK, "share", "simulator", "--port", str(port), "--seed", "1", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "HSSK_DATA_DIR": str(tmp)},
    )
    sim = Sim(port, proc)
    deadline = time.monotonic() + 60  # a loaded CI machine starts the command slowly
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            sim.stats()
            return sim
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"simulator did not start: {proc.stderr.read() if proc.stderr else ''}")


@pytest.fixture
def sim_factory(tmp_path: Path) -> Iterator:
    started: list[Sim] = []

    def make(*args: str) -> Sim:
        sim = _start_sim(tmp_path, *args)
        started.append(sim)
        return sim

    yield make
    for sim in started:
        sim.proc.terminate()
        sim.proc.wait(10)


def _allergy(pid: int, n: int) -> store.NewResource:
    return store.NewResource(
        {"resourceType": "AllergyIntolerance", "code": {"text": f"A{n}"},
         "patient": {"reference": f"Patient/person-{pid}"}},
        person_id=pid, source_key=f"t|{pid}|{n}", source_unit="01001",
    )  # fmt: skip


def test_changes_coalesce_per_partner_and_person(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        partners.sync(conn, _partners(9))
        load_province(conn, 30, seed=5)
        persons = conn.execute("SELECT count(DISTINCT person_id) FROM resource").fetchone()[0]
        assert outbox.counts(conn) == {("bhxh", "pending"): persons, ("vneid", "pending"): persons}
        pid = conn.execute("SELECT min(person_id) FROM resource").fetchone()[0]
        before = conn.execute(
            "SELECT changes FROM outbox WHERE person_id = %s AND partner = 'bhxh'", (pid,)
        ).fetchone()[0]
        store.bulk_upsert(conn, [_allergy(pid, 1), _allergy(pid, 2)])
        rows = conn.execute(
            "SELECT changes FROM outbox WHERE person_id = %s AND partner = 'bhxh'", (pid,)
        ).fetchall()
        assert rows == [(before + 2,)]  # still one open event, two more changes
        # Once the worker fixed its payload, a new change opens a new event.
        events = outbox.claim(conn, 1000, 30)
        outbox.build_payloads(conn, events, partners.load(conn))
        store.bulk_upsert(conn, [_allergy(pid, 3)])
        (n,) = conn.execute(
            "SELECT count(*) FROM outbox WHERE person_id = %s AND partner = 'bhxh'", (pid,)
        ).fetchone()
        assert n == 2


def _hiv_person(conn) -> int:
    pid = conn.execute(
        "INSERT INTO person (full_name, cccd) VALUES ('Trần Văn B', '001090000001') RETURNING id"
    ).fetchone()[0]
    store.bulk_upsert(
        conn,
        [
            store.NewResource(
                {
                    "resourceType": "Condition",
                    "code": {"coding": [{"code": "B20"}]},
                    "subject": {"reference": f"Patient/person-{pid}"},
                },
                person_id=pid,
                source_key=f"hiv|{pid}",
                sensitivity="HIV",
            ),
            store.NewResource(
                {
                    "resourceType": "Condition",
                    "code": {"coding": [{"code": "I10"}]},
                    "subject": {"reference": f"Patient/person-{pid}"},
                },
                person_id=pid,
                source_key=f"htn|{pid}",
            ),
        ],
    )
    return int(pid)


def test_sensitive_data_needs_a_rule(clean_db: Database) -> None:
    rule = {"allow_sensitive": [{"category": "HIV", "basis": "consent (Luật HIV/AIDS Art. 30)"}]}
    configured = [*_partners(9), partners.from_dict({"id": "hiv-programme", "endpoint":
                  "http://127.0.0.1:9/hiv", "catalog": "hanoi-73", **rule})]  # fmt: skip
    with clean_db.connection() as conn:
        partners.sync(conn, configured)
        _hiv_person(conn)
        events = outbox.claim(conn, 100, 30)
        outbox.build_payloads(conn, events, partners.load(conn))
        by_partner = {e.partner: e.payload for e in events}
    assert set(by_partner) == {"bhxh", "vneid", "hiv-programme"}
    for pid in ("bhxh", "vneid"):
        text = str(by_partner[pid])
        assert "I10" in text and "B20" not in text
    assert "B20" in str(by_partner["hiv-programme"])
    with pytest.raises(partners.PartnerError, match="basis"):
        partners.from_dict({"id": "x", "endpoint": "http://a", "catalog": "qd1332",
                            "allow_sensitive": [{"category": "HIV"}]})  # fmt: skip


def test_delivery_exactly_once_through_failures_and_kill9(
    clean_db: Database, sim_factory, tmp_path: Path
) -> None:
    sim = sim_factory("--fail-rate", "0.3", "--slow-ms", "5")
    with clean_db.connection() as conn:
        partners.sync(conn, _partners(sim.port))
        load_province(conn, 150, seed=11)
        (expected,) = conn.execute("SELECT count(*) FROM outbox").fetchone()
    assert expected > 150
    env = {**os.environ, "HSSK_DATABASE_URL": clean_db.url, "HSSK_DATA_DIR": str(tmp_path)}
    cmd = [HSSK, "share", "worker", "--batch", "20", "--concurrency", "4", "--lease", "2",
           "--base-delay", "0.05", "--max-delay", "0.5"]  # fmt: skip
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while sim.stats()["accepted"] < expected // 4 and time.time() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # mid-flight: some events stay leased
    first.wait(10)
    with clean_db.connection() as conn:
        counts = outbox.counts(conn)
    assert counts.get(("bhxh", "delivered"), 0) + counts.get(("vneid", "delivered"), 0) < expected
    second = subprocess.run(
        [*cmd, "--until-idle", "--max-seconds", "90"], env=env, capture_output=True, timeout=120
    )
    assert second.returncode == 0, second.stderr.decode()[-2000:]
    with clean_db.connection() as conn:
        rows = conn.execute("SELECT idempotency_key, status, attempts FROM outbox").fetchall()
    assert {r[1] for r in rows} == {"delivered"}
    assert max(r[2] for r in rows) > 1  # failures were retried
    stats = sim.stats()
    received = sim.received()
    keys = [item["key"] for item in received]
    assert len(keys) == len(set(keys)) == expected == stats["accepted"]
    assert set(keys) == {r[0] for r in rows}
    assert stats["failed"] > 0
    # The payload is the partner's field set, and what was received is what was stored.
    sample = received[0]["body"]
    assert sample["catalog"] in ("bhxh-80", "qd1332") and sample["fields"]


def test_rejections_dead_letter_and_replay(clean_db: Database, sim_factory, tmp_path) -> None:
    refusing = sim_factory("--reject-rate", "1")
    with clean_db.connection() as conn:
        partners.sync(conn, _partners(refusing.port)[:1])
        _hiv_person(conn)
        _hiv_person(conn)
    stats = run(clean_db, WorkerConfig(base_delay=0.01), until_idle=True, max_seconds=20)
    assert stats.dead == 2 and stats.delivered == 0
    with clean_db.connection() as conn:
        dead = outbox.dead_letters(conn)
        assert [d["last_status"] for d in dead] == [422, 422]
        assert "rejection" in dead[0]["last_error"]
    accepting = sim_factory()
    with clean_db.connection() as conn:
        partners.sync(conn, _partners(accepting.port)[:1])
        assert outbox.replay(conn, partner="bhxh") == 2
    stats = run(clean_db, WorkerConfig(base_delay=0.01), until_idle=True, max_seconds=20)
    assert stats.delivered == 2
    assert accepting.stats()["unique"] == 2
