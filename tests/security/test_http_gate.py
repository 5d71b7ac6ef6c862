"""The HTTP doors under attack: one gate for credentials, cross-site forms, request sizes,
login guessing, browser headers, side doors (metrics, forwarded addresses, ingest jobs) and
wiring that fails loudly. One test per finding of the hostile test (issue 14)."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi.testclient import TestClient

from hssk.access import accounts, auth
from hssk.access.accounts import Account
from hssk.access.tokens import issue
from hssk.app import create_app
from hssk.db import Database
from hssk.http.serve import server_options
from hssk.ingest.xmlparse import build_envelope
from hssk.kernel.config import load_settings
from tests.factories.samples import visit
from tests.ingest.conftest import register_facilities

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "mat-khau-dai-du-12"
CCCD, PHONE = "001190000123", "0987000123"


@pytest.fixture
def world(clean_db: Database, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Facilities, a HIS, a read-only partner, a staff member and a citizen; an app."""
    monkeypatch.setattr(accounts, "STATUS_TTL", 0.0)  # a disabled account: refused at once
    register_facilities(clean_db)
    with clean_db.connection() as conn:
        pid = conn.execute(
            "INSERT INTO person (full_name, birth_date, cccd, phone, commune_code) "
            "VALUES ('Lê Thị Hồng', %s, %s, %s, '00001') RETURNING id",
            (date(1990, 1, 1), CCCD, PHONE),
        ).fetchone()[0]  # type: ignore[index]
        made = {
            "his": accounts.create_account(conn, "his01001", "system", unit_id="F01001",
                                           scopes=["system/*.write", "system/*.read"]),
            "reader": accounts.create_account(conn, "reader01", "system", unit_id="F01002",
                                              scopes=["system/*.read"]),
            "staff": accounts.create_account(conn, "bs.an", "clinician", unit_id="F01001",
                                             scopes=["user/*.read", "user/*.write"],
                                             password=PASSWORD),
            "citizen": accounts.create_account(conn, "cd.hong", "citizen", person_id=pid,
                                               phone=PHONE),
        }  # fmt: skip
    with TestClient(create_app(load_settings(), clean_db)) as client:
        yield {"client": client, "db": clean_db, "person": pid, **made}


def _token(account: Account) -> str:
    return issue(load_settings(), account.actor(), ttl=600)


def _bearer(account: Account) -> dict[str, str]:
    return {"Authorization": f"Bearer {_token(account)}"}


def _disable(db: Database, account: Account) -> None:
    with db.connection() as conn:
        accounts.set_active(conn, account.id, False, reason="security test")


def _refusals(db: Database, account: Account) -> int:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT count(*) FROM audit_event WHERE action = 'authenticate' AND outcome = 'deny'"
            " AND detail->>'account' = %s",
            (str(account.id),),
        ).fetchone()
    return int(row[0]) if row else 0


def _gateway_form(xml: bytes) -> dict[str, str]:
    return {"username": "his01001", "loaiHoSo": "130", "maTinh": "01", "maCSKCB": "01001",
            "fileHSBase64": base64.b64encode(xml).decode()}  # fmt: skip


# --- one gate ----------------------------------------------------------------------------------
def test_gateway_refuses_a_disabled_accounts_token(world: dict[str, Any]) -> None:
    client, his = world["client"], world["his"]
    token = _token(his)
    form = _gateway_form(build_envelope("01001", [visit(1)]))
    ok = client.post("/api/qd130/guiHoSoXmlQD4750", data=form, headers={"accessToken": token})
    assert ok.json()["maKetQua"] == "200", ok.text
    _disable(world["db"], his)
    for headers, params in (
        ({"accessToken": token}, {}),
        ({"Authorization": f"Bearer {token}"}, {}),
        ({}, {"token": token}),  # the gateway's query parameter
    ):
        r = client.post("/api/qd130/guiHoSoXmlQD4750", data=form, headers=headers, params=params)
        assert r.status_code == 401 and r.json()["maKetQua"] == "401", r.text
    assert _refusals(world["db"], his) == 3  # each refusal is in the audit trail


def test_api_does_not_take_the_session_cookie_as_a_bearer_token(world: dict[str, Any]) -> None:
    client, citizen = world["client"], world["citizen"]
    client.cookies.set("hssk_token", _token(citizen))
    try:
        assert client.get("/api/v1/me").status_code == 401
        assert client.get("/api/v1/me/book").status_code == 401
        assert client.get(f"/fhir/Patient/{world['person']}").status_code == 401
        assert client.get("/book", follow_redirects=False).status_code == 200  # pages: yes
    finally:
        client.cookies.clear()
    assert client.get("/api/v1/me", headers=_bearer(citizen)).status_code == 200


def test_open_page_session_of_a_disabled_account_ends_and_is_audited(
    world: dict[str, Any],
) -> None:
    client, citizen = world["client"], world["citizen"]
    cookie = {"hssk_token": _token(citizen)}
    client.cookies.update(cookie)
    try:
        assert client.get("/book", follow_redirects=False).status_code == 200
        _disable(world["db"], citizen)
        for path in ("/book", "/book/consents", "/book/self"):
            r = client.get(path, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/book/login")
    finally:
        client.cookies.clear()
    assert _refusals(world["db"], citizen) == 3


# --- cross-site forms --------------------------------------------------------------------------
def test_cross_site_form_posts_are_refused(world: dict[str, Any]) -> None:
    client, citizen = world["client"], world["citizen"]
    client.cookies.set("hssk_token", _token(citizen))
    form = {"factor": "smoking"}

    def entries() -> int:
        with world["db"].connection() as conn:
            row = conn.execute("SELECT count(*) FROM citizen_entry").fetchone()
        return int(row[0]) if row else 0

    try:
        for foreign in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                        {"Sec-Fetch-Site": "same-site", "Origin": "https://a.testserver"}):  # fmt: skip
            r = client.post("/book/self/risk_factor", data=form, headers=foreign,
                            follow_redirects=False)  # fmt: skip
            assert r.status_code == 403, (foreign, r.status_code)
            assert "Yêu cầu bị từ chối" in r.text and "another site" in r.text
        assert entries() == 0  # nothing was written
        for same in ({"Origin": "http://testserver"}, {"Sec-Fetch-Site": "same-origin"}):
            r = client.post("/book/self/risk_factor", data=form, headers=same,
                            follow_redirects=False)  # fmt: skip
            assert r.status_code == 303, (same, r.status_code, r.text[:200])
        assert entries() == 2
    finally:
        client.cookies.clear()


# --- sizes -------------------------------------------------------------------------------------
def test_request_bodies_are_limited_before_they_are_read(world: dict[str, Any]) -> None:
    client = world["client"]
    big = b'{"identifier": "' + b"1" * 200_000 + b'"}'
    r = client.post("/auth/otp", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "too large" in r.json()["detail"]

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it arrives
        yield b'{"identifier": "'
        for _ in range(100):
            yield b"1" * 10_000
        yield b'"}'

    r = client.post("/auth/otp", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    r = client.post("/api/v1/me/consents", content=b"x" * (11 * 1024**2),
                    headers={**_bearer(world["citizen"]), "Content-Type": "application/json"})  # fmt: skip
    assert r.status_code == 413
    r = client.post("/fhir", content=b"{" * (11 * 1024**2),
                    headers={**_bearer(world["his"]), "Content-Type": "application/fhir+json"})  # fmt: skip
    assert r.status_code != 413  # a FHIR bundle may be larger (50 MB)


def test_request_headers_are_limited(world: dict[str, Any]) -> None:
    r = world["client"].get("/healthz", headers={"X-Padding": "a" * 100_000})
    assert r.status_code == 431


def test_gateway_size_limit_answers_in_the_gateways_format(world: dict[str, Any]) -> None:
    client, token = world["client"], _token(world["his"])
    # a hồ sơ of 1.5 MB (over Starlette's 1 MB form field default) reaches the gateway's checks
    bulky = b"<GIAMDINHHS>" + b" " * 1_500_000 + b"</GIAMDINHHS>"
    r = client.post("/api/qd130/guiHoSoXmlQD4750", data=_gateway_form(bulky),
                    headers={"accessToken": token})  # fmt: skip
    assert "maKetQua" in r.json() and r.json()["maKetQua"] != "1001", r.text
    huge = {**_gateway_form(b""), "fileHSBase64": "A" * (29 * 1024**2)}
    r = client.post("/api/qd130/guiHoSoXmlQD4750", data=huge, headers={"accessToken": token})
    assert r.status_code == 413 and r.json()["maKetQua"] == "1001"
    assert "Tệp quá lớn" in r.json()["thongDiep"]


# --- login guessing ----------------------------------------------------------------------------
def _otp(client: TestClient, identifier: str, code: str) -> httpx.Response:
    return client.post("/auth/token", data={"grant_type": auth.GRANT_OTP,
                                            "identifier": identifier, "code": code})  # fmt: skip


def test_wrong_codes_do_not_lock_a_citizen_out_nor_reveal_who_exists(
    world: dict[str, Any],
) -> None:
    app = world["client"].app
    with TestClient(app, client=("203.0.113.66", 4000)) as attacker:
        known = [_otp(attacker, CCCD, "000000") for _ in range(5)]
        unknown = [_otp(attacker, "001299999998", "000000") for _ in range(5)]
    # the same answers for an account and for a number nobody has
    assert [(r.status_code, r.json()["error"]) for r in known] == [
        (r.status_code, r.json()["error"]) for r in unknown
    ]
    assert all(r.json()["error"] in ("invalid_grant", "slow_down") for r in known)
    # the citizen, from their own phone, still gets in
    with TestClient(app, client=("198.51.100.20", 4000)) as owner:
        assert owner.post("/auth/otp", json={"identifier": CCCD}).status_code == 202
        with world["db"].connection() as conn:
            (message,) = conn.execute(
                "SELECT body FROM notification WHERE destination = %s ORDER BY id DESC",
                (PHONE,),
            ).fetchone()  # type: ignore[misc]
        code = next(w.rstrip(",") for w in message.split() if w.rstrip(",").isdigit())
        r = _otp(owner, CCCD, code)
        assert r.status_code == 200, r.text


# --- browser headers ---------------------------------------------------------------------------
def test_security_headers_and_no_store_on_personal_data(world: dict[str, Any]) -> None:
    client = world["client"]
    page = client.get("/book/login")
    h = page.headers
    assert "frame-ancestors 'none'" in h["content-security-policy"]
    assert "default-src 'none'" in h["content-security-policy"]
    assert h["x-frame-options"] == "DENY" and h["x-content-type-options"] == "nosniff"
    assert h["referrer-policy"] == "no-referrer"
    assert "strict-transport-security" not in h  # served over http here
    for path, headers in (
        ("/book/login", {}),
        (f"/fhir/Patient/{world['person']}", _bearer(world["citizen"])),
        ("/api/v1/me", _bearer(world["citizen"])),
        ("/clinic", {}),
        ("/station", {}),
    ):
        r = client.get(path, headers=headers, follow_redirects=False)
        assert r.headers.get("cache-control") == "no-store", path
    assert "no-store" not in client.get("/healthz").headers.get("cache-control", "")


def test_over_https_the_cookie_is_secure_and_hsts_is_sent(world: dict[str, Any]) -> None:
    settings = replace(load_settings(), https=True)
    with TestClient(create_app(settings, world["db"])) as client:
        r = client.post("/staff/login", data={"username": "bs.an", "password": PASSWORD},
                        follow_redirects=False)  # fmt: skip
        assert r.status_code == 303, r.text
        cookie = r.headers["set-cookie"].lower()
        assert "hssk_token=" in cookie and "secure" in cookie and "httponly" in cookie
        assert r.headers["strict-transport-security"].startswith("max-age=")


# --- side doors --------------------------------------------------------------------------------
def test_metrics_need_the_scrapers_token(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    client = world["client"]
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=_bearer(world["citizen"])).status_code == 401
    assert client.get("/metrics", headers=_bearer(world["reader"])).status_code == 401  # *.read
    monkeypatch.setenv("HSSK_METRICS_TOKEN", "scrape-secret-123")
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.get("/metrics", headers={"Authorization": "Bearer scrape-secret-123"})
    assert r.status_code == 200 and "hssk_up" in r.text


def _serve(app: Any, **options: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", **options)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


def _recorded_address(db: Database, subject: str) -> str | None:
    with db.connection() as conn:
        row = conn.execute(
            "SELECT detail->>'address' FROM audit_event WHERE action = 'login' "
            "AND detail->>'subject' = %s ORDER BY seq DESC LIMIT 1",
            (subject,),
        ).fetchone()
    return row[0] if row else None


def test_forwarded_addresses_are_believed_from_configured_proxies_only(
    world: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    db = world["db"]
    spoof = {"X-Forwarded-For": "203.0.113.99"}
    form = {"grant_type": "password", "username": "ke.gia.mao", "password": "sai-mat-khau-1"}
    settings = load_settings()
    server, thread, url = _serve(create_app(settings, db), **server_options(settings))
    try:
        assert (
            httpx.post(f"{url}/auth/token", data=form, headers=spoof, timeout=120).status_code
            == 400
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert _recorded_address(db, "ke.gia.mao") == "127.0.0.1"  # loopback is not a proxy
    monkeypatch.setenv("HSSK_TRUSTED_PROXIES", "127.0.0.1")
    settings = load_settings()
    server, thread, url = _serve(create_app(settings, db), **server_options(settings))
    try:
        form["username"] = "qua.proxy"
        httpx.post(f"{url}/auth/token", data=form, headers=spoof, timeout=120)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert _recorded_address(db, "qua.proxy") == "203.0.113.99"


def test_ingest_jobs_hide_server_paths_and_other_facilities(world: dict[str, Any]) -> None:
    client = world["client"]
    env = build_envelope("01001", [visit(1, MA_BENH_CHINH="XX")])  # one quarantined record
    r = client.post("/api/v1/ingest/xml130", files={"files": ("a.xml", env)},
                    headers=_bearer(world["his"]))  # fmt: skip
    assert r.status_code == 202, r.text
    job = client.get(r.json()["href"], headers=_bearer(world["his"])).json()
    assert job["errors"] and all(e["file"] == Path(e["file"]).name for e in job["errors"])
    assert str(load_settings().data_dir) not in str(job)
    errors = client.get("/api/v1/ingest/errors", headers=_bearer(world["his"])).json()
    assert errors and all("/" not in (e["file"] or "") for e in errors)
    # a reading partner of another facility neither follows the job nor lists it
    reader = _bearer(world["reader"])
    assert client.get(r.json()["href"], headers=reader).status_code == 404
    assert client.get("/api/v1/ingest/jobs", headers=reader).json() == []


# --- wiring ------------------------------------------------------------------------------------
def _python(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120, check=False)  # fmt: skip


def test_a_missing_router_stops_the_app() -> None:
    r = _python("import sys; sys.modules['hssk.api.routes.share'] = None\n"
                "from hssk.app import create_app; create_app()")  # fmt: skip
    assert r.returncode != 0 and "hssk.api.routes.share" in r.stderr


def test_a_missing_listener_stops_the_start_and_unwired_writes_fail() -> None:
    r = _python("import sys; sys.modules['hssk.share.outbox'] = None\n"
                "from hssk.app import create_app; create_app()")  # fmt: skip
    assert r.returncode != 0 and "hssk.share.outbox" in r.stderr
    r = _python("from hssk.records import events\n"
                "events.publish(None, [events.Change('Patient', '1', 1, 1, 'create')])")  # fmt: skip
    assert r.returncode != 0 and "NotWired" in r.stderr
