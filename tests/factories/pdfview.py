"""A PDF as Chromium's viewer shows it (a screenshot of its first page), for tests that read what
a person would see, e.g. the QR code of a book PDF."""

from __future__ import annotations

import functools
import http.server
import tempfile
import threading
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")


def pdf_screenshot(data: bytes, width: int = 1000, height: int = 1300) -> bytes:
    """PNG of the PDF ``data`` opened in headless Chromium (served over loopback HTTP, as the
    viewer does not open data: URLs)."""
    from playwright.sync_api import sync_playwright

    folder = Path(tempfile.mkdtemp())
    (folder / "so-suc-khoe.pdf").write_bytes(data)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=str(CHROMIUM), args=["--no-sandbox", "--disable-gpu"]
            )
            page = browser.new_page(viewport={"width": width, "height": height})
            page.goto(f"http://127.0.0.1:{httpd.server_address[1]}/so-suc-khoe.pdf")
            page.wait_for_timeout(2500)  # the PDF viewer draws the page
            png = page.screenshot()
            browser.close()
    finally:
        httpd.shutdown()
    return png
