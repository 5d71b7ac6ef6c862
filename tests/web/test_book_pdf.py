"""The book PDF: every section, decimal commas, a PAdES signature that pyHanko's validator
accepts and that fails once the file is touched, ``hssk verify book.pdf``, and a QR code that
Chromium shows and a decoder reads as the link to the verification page."""

from __future__ import annotations

import io
import os
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko_certvalidator import ValidationContext
from typer.testing import CliRunner

from hssk.access import pdfsign
from hssk.app import create_app
from hssk.cli import app as cli
from hssk.db import Database
from hssk.kernel.config import load_settings
from hssk.web import pdf
from hssk.web.book import PersonView, build_book
from hssk.web.i18n import t
from hssk.web.models import SECTIONS, HealthBook
from tests.factories.pdfview import CHROMIUM, pdf_screenshot
from tests.web.test_web_book import _rich_record

SHOTS = Path(os.environ.get("HSSK_SCREENSHOT_DIR") or Path(tempfile.gettempdir()) / "hssk-shots")
BASE = "https://hssk.example.vn"


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data directory of its own: the platform's keys and certificate are made there."""
    monkeypatch.setenv("HSSK_DATA_DIR", str(tmp_path / "data"))
    return tmp_path / "data"


def _child_book() -> HealthBook:
    child = PersonView(id=8, full_name="Trần Minh An", birth_date=date(2025, 11, 1))
    return build_book(child, _rich_record(), now=datetime(2026, 11, 25, tzinfo=UTC))


def _issuer() -> pdf.Issuer:
    return pdf.platform_issuer(load_settings(), BASE)


def test_every_section_of_the_book_is_in_the_pdf() -> None:
    book = _child_book()
    text = "\n".join(x.text for x in pdf.book_lines(book, "vi"))
    for section in SECTIONS:
        if section != "admin":
            assert t(section, "vi") in text, section
    assert "Trần Minh An" in text and "BCG" in text  # admin data; the schedule's done dose
    assert "Glucose" in text and "5,1 mmol/L" in text  # the lab table, Vietnamese decimal comma
    assert "5.1 mmol/L" in "\n".join(x.text for x in pdf.book_lines(book, "en"))


def test_signature_validates_and_fails_after_tampering(data_dir: Path) -> None:
    data = pdf.book_pdf(_child_book(), "vi", _issuer())
    cert = pdfsign.platform_certificate(load_settings())
    assert cert is not None
    roots = [pdfsign._asn1_cert(cert)]
    sig = PdfFileReader(io.BytesIO(data)).embedded_signatures[0]
    assert sig.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=roots))
    assert status.intact and status.valid and status.trusted, status.summary()
    check = pdfsign.check_pdf(data, cert)
    assert check.intact and check.trusted and "HSSK" in (check.signer or "")
    # one byte of the page content changed: the signature no longer matches
    at = data.index(b"stream\n", data.index(b"/Type /Page ") - 400) + 20
    tampered = data[:at] + bytes([data[at] ^ 1]) + data[at + 1 :]
    status = validate_pdf_signature(
        PdfFileReader(io.BytesIO(tampered)).embedded_signatures[0],
        ValidationContext(trust_roots=roots),
    )
    assert not status.intact
    assert not pdfsign.check_pdf(tampered, cert).intact
    # another certificate is not the platform's
    other = pdfsign.new_certificate("Không phải HSSK").certificate
    assert not pdfsign.check_pdf(data, other).trusted


def test_hssk_verify_says_whether_the_pdf_is_intact_and_who_signed(
    data_dir: Path, tmp_path: Path
) -> None:
    book = tmp_path / "so-suc-khoe.pdf"
    book.write_bytes(pdf.book_pdf(_child_book(), "vi", _issuer()))
    runner = CliRunner()
    ok = runner.invoke(cli, ["verify", str(book)])
    assert ok.exit_code == 0, ok.output
    assert "HỢP LỆ / VALID" in ok.output and "nguyên vẹn" in ok.output
    assert "Nền tảng Hồ sơ sức khỏe điện tử" in ok.output  # who signed
    data = book.read_bytes()
    at = data.index(b"/Producer (HSSK)") + len(b"/Producer (")  # the document information
    book.write_bytes(data[:at] + b"X" + data[at + 1 :])
    bad = runner.invoke(cli, ["verify", str(book)])
    assert bad.exit_code == 1 and "KHÔNG HỢP LỆ / INVALID" in bad.output, bad.output
    unsigned = tmp_path / "unsigned.pdf"
    unsigned.write_bytes(pdf.render_pdf("Không ký", [pdf.Line("x")], None))
    none = runner.invoke(cli, ["verify", str(unsigned)])
    assert none.exit_code == 1 and "không có chữ ký" in none.output


@pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed")
def test_qr_code_in_the_browser_opens_the_signed_verification(data_dir: Path, db: Database) -> None:
    import zxingcpp
    from PIL import Image

    book = _child_book()
    data = pdf.book_pdf(book, "vi", _issuer())
    SHOTS.mkdir(parents=True, exist_ok=True)
    png = pdf_screenshot(data)
    (SHOTS / "book-pdf.png").write_bytes(png)
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    urls = [b.text for b in found if b.format == zxingcpp.BarcodeFormat.QRCode]
    assert len(urls) == 1 and urls[0].startswith(f"{BASE}/verify/"), urls
    token = urls[0].rsplit("/", 1)[1]
    with TestClient(create_app(load_settings(), db)) as client:
        page_ = client.get(f"/verify/{token}")
        assert page_.status_code == 200 and 'data-valid="true"' in page_.text
        assert pdf.digest(t("app", "vi"), pdf.book_lines(book, "vi")) in page_.text
        assert "T. M. A." in page_.text  # the holder's initials, nothing more
        forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
        refused = client.get(f"/verify/{forged}")
        assert refused.status_code == 400 and 'data-valid="false"' in refused.text
