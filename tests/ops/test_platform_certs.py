"""The platform's own certificates (PDF and XML signing): rotated with the old one kept, so what
it signed still verifies; replaced by a CA's certificate after checking it matches its key;
their expiry watched by ``hssk doctor``."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter
from typer.testing import CliRunner

from hssk.access import pdfsign
from hssk.cli import app
from hssk.db import Database
from hssk.ingest import xmlsig
from hssk.kernel import certs
from hssk.kernel.config import load_settings
from hssk.ops import doctor
from hssk.ops.doctor import FAIL, OK, WARN
from hssk.share import xmlsign

runner = CliRunner()
ENVELOPE = b"<GIAMDINHHS><THONGTINHOSO><SOLUONGHOSO>0</SOLUONGHOSO></THONGTINHOSO>" \
           b"<CHUKYDONVI/></GIAMDINHHS>"  # fmt: skip


def _blank_pdf() -> bytes:
    w = PdfFileWriter()
    box = generic.ArrayObject([generic.NumberObject(n) for n in (0, 0, 595, 842)])
    w.insert_page(
        PageObject(contents=w.add_object(generic.StreamObject(stream_data=b"")), media_box=box)
    )
    out = io.BytesIO()
    w.write(out)
    return out.getvalue()


def _rotations(db: Database, what: str) -> list[dict]:
    with db.connection() as conn:
        return [r[0] for r in conn.execute(
            "SELECT detail FROM audit_event WHERE action = 'key-rotate' AND detail->>'what' = %s "
            "ORDER BY seq", (what,))]  # fmt: skip


def test_a_pdf_signed_before_a_rotation_still_verifies_after_it(
    clean_db: Database, data_dir: Path, tmp_path: Path
) -> None:
    settings = load_settings()
    old = pdfsign.platform_signer(settings)
    before = tmp_path / "before.pdf"
    before.write_bytes(pdfsign.sign_pdf(_blank_pdf(), old, reason="Sổ sức khỏe"))
    out = runner.invoke(app, ["keys", "rotate", "pdf-cert"])
    assert out.exit_code == 0, out.output
    new = pdfsign.platform_signer(settings)
    old_fp, new_fp = certs.fingerprint(old.certificate), certs.fingerprint(new.certificate)
    assert old_fp != new_fp and f"{old_fp} → {new_fp}" in out.output
    assert isinstance(new.key, ec.EllipticCurvePrivateKey) and new.key.curve.name == "secp256r1"
    after = tmp_path / "after.pdf"
    after.write_bytes(pdfsign.sign_pdf(_blank_pdf(), new, reason="Sổ sức khỏe"))
    # new documents carry the new certificate only; the old one is kept for the old documents
    assert pdfsign.check_pdf(after.read_bytes(), new.certificate).trusted
    assert not pdfsign.check_pdf(before.read_bytes(), new.certificate).trusted
    for doc in (before, after):
        checked = runner.invoke(app, ["verify", str(doc)])
        assert checked.exit_code == 0 and "the platform's certificate" in checked.output, (
            checked.output
        )
    # the old key is gone from the data dir: only its certificate stays
    assert (data_dir / "platform_certificate.retired.json").stat().st_mode & 0o077 == 0
    assert old_fp in (data_dir / "platform_certificate.retired.json").read_text()
    assert "PRIVATE" not in (data_dir / "platform_certificate.retired.json").read_text()
    listed = runner.invoke(app, ["keys", "list"])
    assert old_fp in listed.output and new_fp in listed.output
    (rotation,) = _rotations(clean_db, "pdf-cert")
    assert (rotation["old"], rotation["new"], rotation["source"]) == (old_fp, new_fp, "self-signed")


def test_an_xml_rotation_keeps_rsa_and_the_old_certificate(
    clean_db: Database, data_dir: Path
) -> None:
    settings = load_settings()
    old = xmlsign.platform_signer(settings)
    signed_before = xmlsign.sign_envelope(ENVELOPE, old)
    assert runner.invoke(app, ["keys", "rotate", "xml-cert"]).exit_code == 0
    new = xmlsign.platform_signer(settings)
    assert new.certificate != old.certificate and new.key.key_size == 2048  # type: ignore[union-attr]
    signed_after = xmlsign.sign_envelope(ENVELOPE, new)
    kept = certs.trusted(certs.xml_spec(data_dir))
    assert kept == [new.certificate, old.certificate]
    assert xmlsig.check(signed_before, kept).status == "valid"
    assert xmlsig.check(signed_after, [new.certificate]).status == "valid"
    assert xmlsig.check(signed_before, [new.certificate]).status == "unknown-signer"
    (rotation,) = _rotations(clean_db, "xml-cert")
    assert rotation["new"] == certs.fingerprint(new.certificate)


def _ca_issued(tmp_path: Path, days: int) -> tuple[x509.Certificate, Path, Path, Path]:
    """A CA (as a Vietnamese public CA's root) and a leaf it issued; returns the CA's
    certificate and the leaf's chain file, its key file and a key file of another key."""
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA thử nghiệm")])
    now = dt.datetime.now(dt.UTC)
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=900))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False),
                       critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sở Y tế Hà Nội")]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False),
                       critical=True)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    pem = serialization.Encoding.PEM
    chain = tmp_path / f"chain{days}.pem"
    chain.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    key_file, other = tmp_path / f"key{days}.pem", tmp_path / f"other{days}.pem"
    for path, k in ((key_file, key), (other, ec.generate_private_key(ec.SECP256R1()))):
        path.write_bytes(k.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption()))  # fmt: skip
    return ca, chain, key_file, other


def test_import_cert_checks_the_pair_then_signs_with_the_cas_certificate(
    clean_db: Database, data_dir: Path, tmp_path: Path
) -> None:
    settings = load_settings()
    self_signed = pdfsign.platform_signer(settings).certificate
    ca, chain, key, other = _ca_issued(tmp_path, 365)
    wrong = runner.invoke(app, ["keys", "import-cert", "pdf-cert", "--cert", str(chain),
                                "--key", str(other)])  # fmt: skip
    assert wrong.exit_code == 1 and "not the key's" in wrong.output
    assert pdfsign.platform_signer(settings).certificate == self_signed  # nothing changed
    _, expired, expired_key, _ = _ca_issued(tmp_path, -1)
    late = runner.invoke(app, ["keys", "import-cert", "pdf-cert", "--cert", str(expired),
                               "--key", str(expired_key)])  # fmt: skip
    assert late.exit_code == 1 and "not valid now" in late.output
    ok = runner.invoke(app, ["keys", "import-cert", "pdf-cert", "--cert", str(chain),
                             "--key", str(key)])  # fmt: skip
    assert ok.exit_code == 0, ok.output
    signer = pdfsign.platform_signer(settings)
    assert signer.name == "Sở Y tế Hà Nội" and signer.intermediates == (ca,)
    signed = pdfsign.sign_pdf(_blank_pdf(), signer, reason="Sổ sức khỏe")
    assert pdfsign.check_pdf(signed, ca).trusted  # a reader trusting the CA trusts the PDF
    assert pdfsign.platform_certificates(settings)[1] == self_signed  # the old one still checks
    (imported,) = _rotations(clean_db, "pdf-cert")
    assert imported["source"] == "import" and "CA" in imported["issuer"]


def test_doctor_warns_before_a_platform_certificate_expires(data_dir: Path) -> None:
    settings = load_settings()
    pdf = pdfsign.platform_signer(settings).certificate
    xmlsign.platform_signer(settings)
    found = {f.check: f for f in doctor.check_platform_certificates(settings)}
    assert {found["pdf-cert"].status, found["xml-cert"].status} == {OK}
    soon = pdf.not_valid_after_utc - dt.timedelta(days=10)
    warned = {f.check: f for f in doctor.check_platform_certificates(settings, soon)}
    assert (
        warned["pdf-cert"].status == WARN and "hssk keys rotate pdf-cert" in warned["pdf-cert"].en
    )
    assert warned["xml-cert"].status == FAIL  # the XML one (3 years) expired long before
    assert "import-cert" in warned["xml-cert"].vi


def test_a_qr_code_printed_before_a_signing_key_rotation_still_opens_its_page(
    clean_db: Database, data_dir: Path
) -> None:
    """The /verify page reads the QR token with the platform's Ed25519 key: the current one or
    a retired one still in its overlap (the PDF certificate is not involved)."""
    import json

    from hssk.access import signing

    settings = load_settings()
    token = signing.sign_claims(settings, {"k": "book", "i": "2026-12-07T08:00:00+07:00"})
    assert runner.invoke(app, ["keys", "rotate", "signing"]).exit_code == 0
    assert signing.read_claims(settings, token) == {"k": "book", "i": "2026-12-07T08:00:00+07:00"}
    assert signing.read_claims(settings, token[:-4] + "AAAA") is None
    path = data_dir / signing.RETIRED_PLATFORM_KEYS
    retired = json.loads(path.read_text())
    retired[0]["until"] = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)).isoformat()
    path.write_text(json.dumps(retired))
    assert signing.read_claims(settings, token) is None  # the overlap ended
