"""PAdES signatures on the PDFs the platform issues (books, visits), through pyHanko.

The platform signs with an X.509 certificate, so that any PDF reader recognises the signature
(PAdES baseline B-B: ETSI.CAdES.detached, SHA-256). The certificate and its key live in the data
directory: an installation puts the certificate its CA issued there (``platform_certificate.pem``
and ``platform_certificate_key.pem``, PEM, ECDSA P-256 or RSA ≥ 2048 bits); without one, a
self-signed certificate of the platform is made on first use. (The platform's Ed25519 key of
``signing`` signs JWS documents; PDF readers do not check Ed25519, so PDFs use this one.)
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfReadError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.signers.pdf_signer import PdfSignatureMetadata
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from hssk.kernel.clock import VN, now
from hssk.kernel.config import Settings

CERT_FILE = "platform_certificate.pem"
KEY_FILE = "platform_certificate_key.pem"
FIELD = "HSSK"
CERT_YEARS = 10


class CertificateError(ValueError):
    """The platform certificate or its key cannot be used (the message says why)."""


@dataclass(frozen=True)
class PdfSigner:
    """A key and its X.509 certificate."""

    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def name(self) -> str:
        names = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else self.certificate.subject.rfc4514_string()


def new_certificate(common_name: str = "Nền tảng Hồ sơ sức khỏe điện tử (HSSK)") -> PdfSigner:
    """A new ECDSA P-256 key and a self-signed certificate for signing documents."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HSSK"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    start = now() - timedelta(days=1)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365 * CERT_YEARS))
        .add_extension(usage, critical=True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return PdfSigner(key, cert)


def platform_signer(settings: Settings) -> PdfSigner:
    """The platform's certificate and key from the data directory (made on first use; when
    several workers start at once, the one that creates the key file makes both)."""
    cert_path, key_path = settings.data_dir / CERT_FILE, settings.data_dir / KEY_FILE
    if not key_path.exists():
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            fd = -1  # another worker is making it
        if fd >= 0:
            made = new_certificate()
            pem = made.key.private_bytes(serialization.Encoding.PEM,
                                         serialization.PrivateFormat.PKCS8,
                                         serialization.NoEncryption())  # fmt: skip
            with os.fdopen(fd, "wb") as out:
                out.write(pem)
            cert_path.write_bytes(made.certificate.public_bytes(serialization.Encoding.PEM))
            return made
    for _ in range(50):  # the worker that made the key writes the certificate next
        if cert_path.exists() and key_path.stat().st_size:
            break
        time.sleep(0.1)
    certificate = load_certificate(cert_path)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertificateError(
            f"{key_path}: cần khóa ECDSA hoặc RSA / an ECDSA or RSA key is needed"
        )
    return PdfSigner(key, certificate)


def platform_certificate(settings: Settings) -> x509.Certificate | None:
    """The platform's certificate, if this installation has one."""
    path = settings.data_dir / CERT_FILE
    return load_certificate(path) if path.exists() else None


def load_certificate(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    try:
        if b"BEGIN CERTIFICATE" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise CertificateError(
            f"{path}: không phải chứng thư X.509 / not an X.509 certificate: {exc}"
        ) from None


def _asn1_cert(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


def sign_pdf(data: bytes, signer: PdfSigner, reason: str) -> bytes:
    """``data`` (a PDF) with a PAdES signature of ``signer`` over the whole file."""
    key = asn1_keys.PrivateKeyInfo.load(
        signer.key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    simple = signers.SimpleSigner(
        signing_cert=_asn1_cert(signer.certificate),
        signing_key=key,
        cert_registry=SimpleCertificateStore(),
    )
    meta = PdfSignatureMetadata(
        field_name=FIELD,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location="Việt Nam",
        name=signer.name,
    )
    out = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(data)), meta, signer=simple)
    return bytes(out.getvalue())


def _validate(sig: Any, context: ValidationContext) -> Any:
    """pyHanko's validation, which runs its own event loop: in a thread of its own when the
    caller is inside one already (an async route, a browser driver)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return validate_pdf_signature(sig, context)
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(validate_pdf_signature, sig, context).result()


@dataclass(frozen=True)
class PdfCheck:
    """What a PDF's signature says: whether the file is as signed, by whom, when."""

    intact: bool  # the signed bytes are unchanged and cover the whole file
    trusted: bool  # signed by the trusted certificate given
    signer: str | None
    signed_at: datetime | None
    reason: str  # Vietnamese / English

    @property
    def valid(self) -> bool:
        return self.intact


def check_pdf(data: bytes, trusted: x509.Certificate | None = None) -> PdfCheck:
    """Validate the signature of a PDF (the last one; HSSK signs once) with pyHanko.

    ``trusted``: the certificate to trust (the platform's); without it the signature is still
    checked, and the answer says the signer was not compared with a trusted one."""
    try:
        sigs = PdfFileReader(io.BytesIO(data)).embedded_signatures
    except (PdfReadError, ValueError, KeyError) as exc:
        return PdfCheck(False, False, None, None, f"không đọc được PDF / not a readable PDF: {exc}")
    if not sigs:
        return PdfCheck(
            False, False, None, None, "tài liệu không có chữ ký / the PDF is not signed"
        )
    roots = [_asn1_cert(trusted)] if trusted is not None else []
    logging.getLogger("pyhanko").setLevel(logging.CRITICAL)  # untrusted roots log tracebacks
    logging.getLogger("pyhanko_certvalidator").setLevel(logging.CRITICAL)
    try:
        status = _validate(sigs[-1], ValidationContext(trust_roots=roots))
    except (SignatureValidationError, ValueError) as exc:
        return PdfCheck(False, False, None, None, f"chữ ký hỏng / broken signature: {exc}")
    signer = status.signing_cert.subject.human_friendly if status.signing_cert else None
    when = status.signer_reported_dt
    whole = status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    intact = bool(status.intact and status.valid and whole)
    trusted_ok = intact and bool(status.trusted)
    at = f" lúc {when.astimezone(VN):%d/%m/%Y %H:%M} (giờ Việt Nam)" if when else ""
    if not intact:
        why = (
            "tài liệu đã bị sửa sau khi ký / the document was changed after it was signed"
            if status.intact and not whole
            else "chữ ký không khớp nội dung: tài liệu đã bị sửa / the signature does not match "
            "the content: the document was changed"
        )
    elif trusted_ok:
        why = (
            f"tài liệu nguyên vẹn, ký bởi {signer}{at}; chứng thư của nền tảng / the document "
            f"is intact, signed by {signer}; the platform's certificate"
        )
    else:
        why = (
            f"tài liệu nguyên vẹn, ký bởi {signer}{at}; chứng thư chưa được đối chiếu với "
            f"chứng thư tin cậy / the document is intact, signed by {signer}; the certificate "
            "was not compared with a trusted one (--cert)"
        )
    return PdfCheck(intact, trusted_ok, signer, when.astimezone(UTC) if when else None, why)
