"""An XML8 treatment summary that arrived through the official channel is in the citizen's book
PDF: Chromium shows the PDF, its QR code opens the verification page, and the digest that page
vouches for is that of the book's text with the summary in it."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient

from hssk.access import Actor
from hssk.access.tokens import issue
from hssk.app import create_app
from hssk.db import Database
from hssk.kernel.config import load_settings
from hssk.web import pdf
from hssk.web.i18n import t
from hssk.web.reading import load_book
from tests.factories.pdfview import pdf_screenshot
from tests.ingest.test_ingest_official_tables import _bodies, _ingest, _official_visit
from tests.web.test_book_pdf import SHOTS


def test_xml8_summary_is_in_the_book_pdf(idb: Database, tmp_path: Path) -> None:
    import zxingcpp
    from PIL import Image

    s = _ingest(idb, tmp_path, [_official_visit()])
    assert s.quarantined == 0, s.errors
    ((_, _, pid),) = _bodies(idb, "Encounter")
    citizen = Actor("citizen-test", "citizen", person_id=pid, scopes=frozenset({"patient/*.read"}))
    headers = {"Authorization": f"Bearer {issue(load_settings(), citizen)}"}
    with TestClient(create_app(load_settings(), idb)) as client:
        r = client.get(f"/book/p/{pid}/book.pdf", headers=headers)
        assert r.status_code == 200 and r.content.startswith(b"%PDF"), r.text[:200]
        png = pdf_screenshot(r.content)
        SHOTS.mkdir(parents=True, exist_ok=True)
        (SHOTS / "book-pdf-xml8-summary.png").write_bytes(png)
        found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
        (url,) = [b.text for b in found if b.format == zxingcpp.BarcodeFormat.QRCode]
        verified = client.get(f"/verify/{url.rsplit('/', 1)[1]}")
        assert verified.status_code == 200 and 'data-valid="true"' in verified.text
    with idb.connection() as conn:
        book, _ = load_book(conn, citizen, pid, lang="vi", action="export")
    assert book is not None
    lines = pdf.book_lines(book, "vi")
    text = "\n".join(x.text for x in lines)
    assert "Tóm tắt hồ sơ bệnh án" in text
    assert "Chẩn đoán ra viện: Viêm phổi <thùy> & sốt" in text
    assert "Kháng sinh tĩnh mạch 5 ngày" in text
    assert pdf.digest(t("app", "vi"), lines) in verified.text
