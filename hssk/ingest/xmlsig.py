"""The facility's XML signature (CHUKYDONVI) of a QĐ 130 file: XMLDSig, enveloped.

A HIS signs each file with its facility's certificate (RSA-SHA256 from a Vietnamese CA, or
ECDSA); the signature sits in ``CHUKYDONVI``. It is checked against the certificates the
facility registered with HSSK (``hssk access add-key``, ``access.signing.register_key``):

* ``valid``: signed by one of them, content unchanged since;
* ``invalid``: the content changed after signing (a digest mismatch), whoever signed;
* ``unknown-signer``: intact, but signed by a certificate the facility did not register;
* ``unsigned``: empty ``CHUKYDONVI`` (allowed by the standard);
* ``unchecked``: too large to check in memory (bulk files; the gateway's one-hồ-sơ calls
  are small), or XML that only the tolerant file parser reads (the malformed ``xsi``
  namespace of some exports: fixing it would change the signed bytes).

Trust comes from registration, not from a CA chain: the CA roots of Vietnam's signature
providers are not shipped, and a certificate is registered by an administrator who checked it.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509

MAX_CHECKED_BYTES = 50 * 1024 * 1024
_DSIG = b"http://www.w3.org/2000/09/xmldsig#"


@dataclass(frozen=True)
class SignatureResult:
    status: str  # valid, invalid, unknown-signer, unsigned, unchecked
    signer: str | None  # subject of the certificate that verified it
    reason: str
    reason_vi: str

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "signer": self.signer, "reason": self.reason}


def _parser() -> Any:
    from lxml import etree

    from hssk.ingest.xmlparse import parser_kwargs

    # the file parser's hardening, but comments and processing instructions are kept: they
    # are part of the canonical form the signature covers
    return etree.XMLParser(**{**parser_kwargs(), "remove_comments": False, "remove_pis": False})


def check(data: bytes, certificates: Sequence[x509.Certificate]) -> SignatureResult:
    """Check the XML signature of ``data`` against the facility's ``certificates``."""
    if _DSIG not in data or b"SignatureValue" not in data:
        return SignatureResult(
            "unsigned", None, "CHUKYDONVI is empty: the file is not signed.",
            "CHUKYDONVI trống: tệp không có chữ ký số.",
        )  # fmt: skip
    if len(data) > MAX_CHECKED_BYTES:
        return SignatureResult(
            "unchecked", None,
            f"the file is over {MAX_CHECKED_BYTES // 2**20} MB: its signature is not checked.",
            f"tệp lớn hơn {MAX_CHECKED_BYTES // 2**20} MB: chữ ký số không được kiểm tra.",
        )  # fmt: skip
    from lxml import etree
    from signxml.exceptions import InvalidDigest

    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:  # e.g. the malformed xsi namespace of some exports
        return SignatureResult(
            "unchecked", None,
            f"the signature cannot be checked: the XML does not parse strictly ({exc}).",
            f"không kiểm tra được chữ ký số: XML không đọc được ở chế độ chặt chẽ ({exc}).",
        )  # fmt: skip
    try:
        registered = next((c for c in certificates if _verified_by(data, c)), None)
        if registered is not None:
            subject = registered.subject.rfc4514_string()
            return SignatureResult(
                "valid", subject, f"signed by {subject}; content unchanged since.",
                f"chữ ký số hợp lệ của {subject}; nội dung không bị sửa sau khi ký.",
            )  # fmt: skip
        # None of the registered certificates: is it intact with the one it carries?
        own = next((c for c in _embedded_certificates(root) if _verified_by(data, c)), None)
    except InvalidDigest:
        return _invalid()
    signer = own.subject.rfc4514_string() if own is not None else None
    why = "no certificate is registered for the facility" if not certificates else (
        "its certificate is not among those the facility registered"
    )  # fmt: skip
    return SignatureResult(
        "unknown-signer", signer,
        f"the file is signed{f' by {signer}' if signer else ''}, but {why}; register the "
        "facility's certificate (hssk access add-key) or sign with a registered one.",
        f"tệp có chữ ký số{f' của {signer}' if signer else ''} nhưng chứng thư chưa được đăng ký "
        "cho cơ sở; hãy đăng ký chứng thư số của cơ sở (hssk access add-key) hoặc ký bằng chứng "
        "thư đã đăng ký.",
    )  # fmt: skip


def _verified_by(data: bytes, cert: x509.Certificate) -> bool:
    """Whether ``cert`` verifies the signature; raises InvalidDigest when the signed content
    was changed (whoever signed)."""
    from signxml import XMLVerifier
    from signxml.exceptions import InvalidDigest

    try:
        XMLVerifier().verify(data, x509_cert=cert, parser=_parser())
    except InvalidDigest:
        raise
    except Exception:  # hostile input: any other failure means "not this certificate"
        return False
    return True


def _invalid() -> SignatureResult:
    return SignatureResult(
        "invalid", None,
        "the content was changed after it was signed (XML signature digest mismatch); send "
        "the file exactly as the HIS signed it.",
        "nội dung tệp đã bị thay đổi sau khi ký (sai giá trị băm của chữ ký số); hãy gửi "
        "đúng tệp HIS đã ký.",
    )  # fmt: skip


def _embedded_certificates(root: Any) -> list[x509.Certificate]:
    """The X.509 certificates the signature carries in its KeyInfo."""
    out = []
    for el in root.iter(f"{{{_DSIG.decode()}}}X509Certificate"):
        try:
            out.append(x509.load_der_x509_certificate(base64.b64decode("".join(el.text.split()))))
        except (ValueError, AttributeError):
            continue
    return out
