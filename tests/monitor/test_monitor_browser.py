"""Browser tests of the supervision pages (Playwright, Debian's headless Chromium).

Each page is walked on a phone (390×844) and a desktop (1366×900); screenshots go to
docs/screenshots/supervision-*-{phone,desktop}.png.
"""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest

from hssk.access.actor import Actor
from hssk.access.tokens import issue
from hssk.app import create_app
from hssk.catalog import completeness
from hssk.db import Database
from hssk.kernel import clock
from hssk.kernel.config import load_settings
from hssk.monitor import metrics, quality
from hssk.monitor.areas import parse
from tests.factories.supervision import load_province
from tests.web.test_web_journeys import VIEWPORTS, no_horizontal_scroll, vietnam_dates

CHROMIUM = Path("/usr/bin/chromium")
# `make screenshots` sets HSSK_SCREENSHOT_DIR=docs/screenshots; plain runs use a temp folder.
SHOTS = Path(os.environ.get("HSSK_SCREENSHOT_DIR") or Path(tempfile.gettempdir()) / "hssk-shots")
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="/usr/bin/chromium is absent: install Debian's chromium"
)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def site(db: Database) -> Iterator[str]:
    import uvicorn

    from tests.conftest import truncate_all

    truncate_all(db)
    with db.connection() as conn:
        load_province(conn, 400, seed=5)
    completeness.run(db)
    with db.connection() as conn:
        quality.run(conn)
        area = parse("province:01")
        for back in range(6, -1, -1):  # a week of daily snapshots for the trend line
            metrics.snapshot(conn, area, date.today() - timedelta(days=back))
            conn.execute(
                "UPDATE monitor_snapshot SET value = value * %s WHERE day = %s "
                "AND metric = 'with_record_share'",
                (0.7 + 0.05 * (6 - back), date.today() - timedelta(days=back)),
            )
    port = _port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(load_settings(), db), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(100):
        if server.started:
            break
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)
    truncate_all(db)


def _token(unit: str, role: str) -> str:
    actor = Actor(account_id=f"browser-{role}", kind="staff", unit_id=unit,
                  roles=frozenset({role}), scopes=frozenset({"user/*.read"}))  # fmt: skip
    return issue(load_settings(), actor, ttl=3600)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


def _page(browser, site: str, token: str, size: str):  # type: ignore[no-untyped-def]
    ctx = browser.new_context(viewport=VIEWPORTS[size], locale="vi-VN")
    ctx.add_cookies([{"name": "hssk_token", "value": token, "url": site}])
    return ctx.new_page()


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_department_dashboard(browser, site: str, size: str) -> None:
    page = _page(browser, site, _token("SYT01", "supervisor"), size)
    page.goto(f"{site}/supervision")
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.get_by_role("heading", name="Tiến độ so với mục tiêu").is_visible()
    assert page.get_by_role("progressbar").count() == len(metrics.targets())
    alert = page.get_by_role("status")
    assert "ngừng gửi" in alert.inner_text()
    charts = page.locator("svg[role=img]")
    assert charts.count() >= 3  # distribution, records per day, share with a record
    for i in range(charts.count()):
        assert charts.nth(i).get_attribute("aria-labelledby")
        assert charts.nth(i).is_visible()
        box = charts.nth(i).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= VIEWPORTS[size]["width"]
    no_horizontal_scroll(page)
    vietnam_dates(page.locator("main").inner_text())
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"supervision-overview-vi-{size}.png"), full_page=True)
    # keyboard: the skip link is the first stop and leads to the main content
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Bỏ qua, tới nội dung chính"
    page.get_by_role("link", name="English").click()
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="Progress against targets").is_visible()
    no_horizontal_scroll(page)
    page.screenshot(path=str(SHOTS / f"supervision-overview-en-{size}.png"), full_page=True)


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_facilities_page_highlights_silent_facilities(browser, site: str, size: str) -> None:
    page = _page(browser, site, _token("SYT01", "supervisor"), size)
    page.goto(f"{site}/supervision/facilities")
    rows = page.locator("tbody tr.alert")
    assert rows.count() == 2  # one stopped, one never sent
    assert "Ngừng gửi" in rows.nth(0).inner_text() or "Ngừng gửi" in rows.nth(1).inner_text()
    assert page.locator("table").first.is_visible()
    # the last receipts (loaded minutes ago) are shown in Vietnam time, not the stored UTC
    shown = [datetime.strptime(c, "%d/%m/%Y %H:%M")
             for c in page.locator("tbody tr td:nth-child(4)").all_inner_texts() if c != "—"]  # fmt: skip
    now_vn = clock.now_vn().replace(tzinfo=None)
    assert shown and abs(max(shown) - now_vn) < timedelta(hours=2), (max(shown), now_vn)
    no_horizontal_scroll(page)
    vietnam_dates(page.locator("main").inner_text())
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"supervision-facilities-{size}.png"), full_page=True)
    with page.expect_download() as dl:
        page.get_by_role("link", name="Excel").first.click()
    assert dl.value.suggested_filename.endswith(".xlsx")


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_station_quality_list(browser, site: str, size: str) -> None:
    page = _page(browser, site, _token("TYT00001", "station"), size)
    page.goto(f"{site}/supervision/quality")
    assert page.get_by_role("heading", name="Danh sách cần rà soát").is_visible()
    details = page.locator("main").inner_text()
    assert "Ngày sinh:" in details and "birth_date" not in details  # words, not internal keys
    vietnam_dates(details)
    no_horizontal_scroll(page)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"supervision-quality-station-{size}.png"), full_page=True)
    page.goto(f"{site}/supervision?area=province:01")
    assert page.get_by_role("alert").is_visible()  # outside the station's area
