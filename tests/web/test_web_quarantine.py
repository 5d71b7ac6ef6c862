"""Held-back records pages (/staff/quarantine): a facility's staff see their own records,
correct and send them again, or discard them; others are refused; everything is audited.
Through the HTTP client and in a real headless Chromium."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi.testclient import TestClient

from hssk.access.actor import Actor
from hssk.access.tokens import issue
from hssk.app import create_app
from hssk.db import Database
from hssk.ingest import runner
from hssk.ingest.xmlparse import build_envelope
from hssk.kernel.config import load_settings
from tests.factories.samples import visit
from tests.ingest.conftest import register_facilities

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
# `make screenshots` sets HSSK_SCREENSHOT_DIR=docs/screenshots; plain runs use a temp folder.
SHOTS = Path(os.environ.get("HSSK_SCREENSHOT_DIR") or Path(tempfile.gettempdir()) / "hssk-shots")
BAD = "<MA_BENH_CHINH><![CDATA[XX]]></MA_BENH_CHINH>"
FIXED = "<MA_BENH_CHINH>J20.9</MA_BENH_CHINH>"


def _cookie(unit: str, account: str = "q-staff") -> dict[str, str]:
    actor = Actor(account_id=account, kind="staff", unit_id=unit,
                  scopes=frozenset({"user/*.read", "user/*.write"}))  # fmt: skip
    return {"hssk_token": issue(load_settings(), actor, ttl=3600)}


@pytest.fixture
def held(clean_db: Database, tmp_path: Path) -> list[int]:
    """Facility 01001 sent 3 visits, two with an unknown ICD-10 code; 01002 one bad visit."""
    register_facilities(clean_db)
    with clean_db.connection() as conn:
        conn.execute("INSERT INTO unit (id, kind, name) VALUES ('SYT98', 'department', 'Sở')")
    for fac, visits in (("01001", [visit(1), visit(2, MA_BENH_CHINH="XX"),
                                   visit(3, MA_BENH_CHINH="XX")]),
                        ("01002", [visit(4, fac="01002", MA_BENH_CHINH="XX")])):  # fmt: skip
        path = tmp_path / f"{fac}.xml"
        path.write_bytes(build_envelope(fac, visits))
        runner.ingest(clean_db, "xml130", [str(path)], workers=0)
    with clean_db.connection() as conn:
        return [r[0] for r in conn.execute("SELECT id FROM ingest_error ORDER BY id")]


@pytest.fixture
def client(clean_db: Database) -> Iterator[TestClient]:
    with TestClient(create_app(load_settings(), clean_db)) as c:
        yield c


def _encounters(db: Database) -> int:
    with db.connection() as conn:
        row = conn.execute("SELECT count(*) FROM resource WHERE type = 'Encounter'").fetchone()
    return int(row[0]) if row else 0


def test_pages_need_a_facility_account(client: TestClient, held: list[int]) -> None:
    r = client.get("/staff/quarantine", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/staff/login")
    r = client.get("/staff/quarantine", cookies=_cookie("SYT98"))
    assert r.status_code == 403 and "không thuộc cơ sở nào" in r.text
    staff = _cookie("F01001")
    listed = client.get("/staff/quarantine", cookies=staff)
    assert listed.status_code == 200
    assert "icd10.unknown" in listed.text and "Cơ sở: 01001." in listed.text
    own, other = held[0], held[-1]
    assert f"/staff/quarantine/{own}" in listed.text
    assert f"/staff/quarantine/{other}" not in listed.text  # 01002's record
    refused = client.get(f"/staff/quarantine/{other}", cookies=staff)
    assert refused.status_code == 403 and "Không có quyền" in refused.text
    r = client.post(f"/staff/quarantine/{other}", data={"action": "discard", "reason": "x"},
                    cookies=staff)  # fmt: skip
    assert r.status_code == 403
    assert client.get("/staff/quarantine/999999999", cookies=staff).status_code == 404
    with client.app.state.db.connection() as conn:  # type: ignore[attr-defined]
        events = conn.execute(
            "SELECT actor, action, outcome FROM audit_event WHERE action LIKE 'ingest-%'"
        ).fetchall()
    assert ("q-staff", "ingest-errors", "deny") in events  # the department's account
    assert ("q-staff", "ingest-error-read", "deny") in events
    assert ("q-staff", "ingest-discard", "deny") in events
    assert ("q-staff", "ingest-errors", "allow") in events


def test_correct_and_send_again(client: TestClient, held: list[int], clean_db: Database) -> None:
    staff = _cookie("F01001")
    rid = held[0]
    page = client.get(f"/staff/quarantine/{rid}", cookies=staff)
    assert "MA_BENH_CHINH" in page.text and "XX" in page.text
    # the rule in words, and what to do about it, in the page's language
    assert "Mã bệnh ICD-10 không hợp lệ" in page.text and "Cách sửa:" in page.text
    assert "danh mục ICD-10 của Bộ Y tế" in page.text
    by_rule = client.get("/staff/quarantine?rule=icd10.unknown", cookies=staff)
    assert "Mã bệnh ICD-10 không hợp lệ" in by_rule.text and "Cách sửa:" in by_rule.text
    en = client.get(f"/staff/quarantine/{rid}?lang=en", cookies=staff)
    assert "Unknown ICD-10 code" in en.text and "How to fix:" in en.text
    client.get(f"/staff/quarantine/{rid}?lang=vi", cookies=staff)  # (the choice is remembered)
    before = _encounters(clean_db)
    raw = client.get(f"/api/v1/ingest/errors/{rid}", headers={"Authorization": "Bearer " +
                     _cookie("F01001")["hssk_token"]}).json()["raw"]  # fmt: skip
    assert BAD in raw
    # unchanged: still refused, said next to the content, and nothing stored
    r = client.post(f"/staff/quarantine/{rid}", data={"action": "replay", "raw": raw},
                    cookies=staff)  # fmt: skip
    assert r.status_code == 422 and 'id="e-raw"' in r.text and "XX" in r.text
    assert _encounters(clean_db) == before
    r = client.post(f"/staff/quarantine/{rid}", data={"action": "replay",
                    "raw": raw.replace(BAD, FIXED)}, cookies=staff)  # fmt: skip
    assert r.status_code == 200, r.text
    assert "Đã gửi lại và lưu vào hồ sơ sức khỏe" in r.text and "Encounter 1" in r.text
    assert _encounters(clean_db) == before + 1
    again = client.post(f"/staff/quarantine/{rid}", data={"action": "replay", "raw": raw},
                        cookies=staff)  # fmt: skip
    assert again.status_code == 409  # replayed already
    listed = client.get("/staff/quarantine?status=replayed", cookies=staff)
    assert f"/staff/quarantine/{rid}" in listed.text


def test_discard_needs_a_reason(client: TestClient, held: list[int], clean_db: Database) -> None:
    staff = _cookie("F01001")
    rid = held[1]
    r = client.post(f"/staff/quarantine/{rid}", data={"action": "discard", "reason": ""},
                    cookies=staff)  # fmt: skip
    assert r.status_code == 422 and 'id="e-reason"' in r.text and "lý do" in r.text
    r = client.post(f"/staff/quarantine/{rid}?lang=en",
                    data={"action": "discard", "reason": "Bản ghi thử nghiệm"}, cookies=staff)  # fmt: skip
    assert r.status_code == 200 and "Discarded: the record is not stored" in r.text
    with clean_db.connection() as conn:
        row = conn.execute(
            "SELECT status, discard_reason, discarded_by FROM ingest_error WHERE id = %s", (rid,)
        ).fetchone()
    assert row == ("discarded", "Bản ghi thử nghiệm", "q-staff")
    r = client.post(f"/staff/quarantine/{rid}", data={"action": "hack"}, cookies=staff)
    assert r.status_code == 400


# --- in a real browser ------------------------------------------------------------------------
def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is absent: install Debian's chromium"
)
def test_browser_fix_a_held_back_visit(held: list[int], clean_db: Database) -> None:
    from playwright.sync_api import sync_playwright

    server = uvicorn.Server(uvicorn.Config(create_app(load_settings(), clean_db),
                                           host="127.0.0.1", port=_port(), log_level="warning"))  # fmt: skip
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    site = f"http://127.0.0.1:{server.config.port}"
    before = _encounters(clean_db)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
            ctx = browser.new_context(locale="vi-VN", viewport={"width": 1280, "height": 900})
            ctx.add_cookies([{"name": "hssk_token", "value": _cookie("F01001")["hssk_token"],
                              "url": site}])  # fmt: skip
            page = ctx.new_page()
            page.goto(f"{site}/staff/quarantine")
            assert page.get_by_role("heading", name="Hồ sơ bị giữ lại", exact=True).is_visible()
            assert page.locator("tbody tr").count() == 2  # 01001's two; not 01002's
            SHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SHOTS / "quarantine-list.png"), full_page=True)
            assert page.get_by_role("link", name="Hồ sơ bị giữ lại").get_attribute(
                "aria-current") == "page"  # fmt: skip
            page.get_by_role("link", name=f"Xem và sửa bản ghi {held[0]}").click()
            content = page.get_by_label("Nội dung bản ghi")
            assert BAD in content.input_value()
            page.screenshot(path=str(SHOTS / "quarantine-record.png"), full_page=True)
            content.fill(content.input_value().replace(BAD, FIXED))
            page.get_by_role("button", name="Gửi lại").click()
            assert "Đã gửi lại và lưu vào hồ sơ sức khỏe" in page.get_by_role("status").inner_text()
            page.goto(f"{site}/staff/quarantine")
            assert page.locator("tbody tr").count() == 1
            page.get_by_role("link", name=f"Xem và sửa bản ghi {held[1]}").click()
            page.get_by_role("button", name="Loại bỏ bản ghi").click()  # no reason given
            assert page.locator("#f-reason").get_attribute("aria-invalid") == "true"
            assert "lý do" in page.get_by_role("alert").inner_text()
            page.get_by_label("Lý do loại bỏ").fill("Gửi nhầm, bản ghi thử")
            page.get_by_role("button", name="Loại bỏ bản ghi").click()
            assert "Đã loại bỏ" in page.get_by_role("status").inner_text()
            page.get_by_role("link", name="English").click()
            assert page.get_by_role("heading", name="Why it was held back").is_visible()
            page.goto(f"{site}/staff/quarantine?lang=vi")
            assert "Không có bản ghi nào." in page.get_by_role("status").inner_text()
            browser.close()
    finally:
        server.should_exit = True
        thread.join(10)
    assert _encounters(clean_db) == before + 1
