"""PAdES signatures on the PDFs the platform issues (books, visits), through pyHanko.

The platform signs with an X.509 certificate, so that any PDF reader recognises the signature
(PAdES baseline B-B: ETSI.CAdES.detached, SHA-256). The certificate and its key live in the data
directory (``platform_certificate.pem`` and ``platform_certificate_key.pem``, PEM, ECDSA P-256
or RSA ≥ 2048 bits; ``kernel.certs``): a self-signed one is made on first use, an installation
imports the one its CA issued (``hssk keys import-cert pdf-cert``) and rotates it (``hssk keys
rotate pdf-cert``); the certificates rotated out still verify the PDFs they signed. (The platform's Ed25519 key of
``signing`` signs JWS documents; PDF readers do not check Ed25519, so PDFs use this one.)
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
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

from hssk.kernel import certs
from hssk.kernel.clock import VN
from hssk.kernel.config import Settings

FIELD = "HSSK"

CertificateError = certs.CertificateError
PdfSigner = certs.PlatformCert
load_certificate = certs.load_certificate


def cert_spec(settings: Settings) -> certs.CertSpec:
    return certs.pdf_spec(settings.data_dir)


def new_certificate(common_name: str | None = None) -> PdfSigner:
    """A new ECDSA P-256 key and a self-signed certificate for signing documents."""
    spec = certs.pdf_spec(Path("."))
    key = certs.new_key(spec.key_type)
    return PdfSigner(key, certs.self_signed(key, common_name or spec.common_name, spec.years))


def platform_signer(settings: Settings) -> PdfSigner:
    """The platform's certificate and key from the data directory (made on first use)."""
    return certs.load_or_create(cert_spec(settings))


def platform_certificate(settings: Settings) -> x509.Certificate | None:
    """The platform's current certificate, if this installation has one."""
    path = cert_spec(settings).cert_path
    return load_certificate(path) if path.exists() else None


def platform_certificates(settings: Settings) -> list[x509.Certificate]:
    """The certificates a PDF of the platform may be signed with: the current one, then
    those rotated out (a PDF signed before a rotation still verifies)."""
    return certs.trusted(cert_spec(settings))


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
        cert_registry=SimpleCertificateStore.from_certs(
            [_asn1_cert(c) for c in signer.intermediates]
        ),
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


def check_pdf(
    data: bytes, trusted: x509.Certificate | Sequence[x509.Certificate] | None = None
) -> PdfCheck:
    """Validate the signature of a PDF (the last one; HSSK signs once) with pyHanko.

    ``trusted``: the certificate(s) to trust (the platform's current and retired ones); without
    any the signature is still checked, and the answer says the signer was not compared with a
    trusted one."""
    try:
        sigs = PdfFileReader(io.BytesIO(data)).embedded_signatures
    except (PdfReadError, ValueError, KeyError) as exc:
        return PdfCheck(False, False, None, None, f"không đọc được PDF / not a readable PDF: {exc}")
    if not sigs:
        return PdfCheck(
            False, False, None, None, "tài liệu không có chữ ký / the PDF is not signed"
        )
    if trusted is None:
        trusted = []
    elif isinstance(trusted, x509.Certificate):
        trusted = [trusted]
    roots = [_asn1_cert(c) for c in trusted]
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
