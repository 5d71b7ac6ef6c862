"""Signing what the channels send: the XML signature of a QĐ 130 envelope (CHUKYDONVI,
enveloped XMLDSig, as a HIS signs) and the detached signature of a health-check record.

The signer is the platform or a unit (``Partner.signer``). The platform's Ed25519 key
(``access.signing``) has no certificate and XMLDSig has no Ed25519 method the gateways know,
so the platform signs XML with its own RSA key and self-signed certificate, generated into
the data directory on first use (never in the repository); an installation replaces them with
a certificate from a Vietnamese CA by putting its files there, or names a unit's key and
certificate in the partner file. What is signed is checked with the ingest side's own checker
(``ingest.xmlsig.check``), the one HSSK applies to the hồ sơ it receives.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

from hssk.kernel.config import Settings

KEY_FILE = "platform_xml_signing_key.pem"
CERT_FILE = "platform_xml_signing_cert.pem"
_DSIG = "http://www.w3.org/2000/09/xmldsig#"


class SignerError(ValueError):
    """The signing key or certificate cannot be used (says which file and why)."""


@dataclass(frozen=True)
class Signer:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def _self_signed(key: rsa.RSAPrivateKey, name: str) -> x509.Certificate:
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HSSK"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3 * 365))
        .sign(key, hashes.SHA256())
    )


def _load(key_path: Path, cert_path: Path) -> Signer:
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError) as exc:
        raise SignerError(
            f"khóa/chứng thư ký số không đọc được ({key_path}, {cert_path}): {exc} / "
            f"cannot read the signing key or certificate: {exc}"
        ) from exc
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SignerError(f"{key_path}: cần khóa RSA hoặc ECDSA / an RSA or ECDSA key is needed")
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    if key.public_key().public_bytes(
        serialization.Encoding.DER, spki
    ) != cert.public_key().public_bytes(serialization.Encoding.DER, spki):
        raise SignerError(
            f"{cert_path} không phải chứng thư của khóa {key_path} / the certificate is not "
            "the key's"
        )
    return Signer(key, cert)


def platform_signer(settings: Settings) -> Signer:
    """The platform's XML-signing key and certificate, generated on first use."""
    key_path, cert_path = settings.data_dir / KEY_FILE, settings.data_dir / CERT_FILE
    if not key_path.exists():
        key_path.parent.mkdir(parents=True, exist_ok=True)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        key_path.chmod(0o600)
        cert_path.write_bytes(
            _self_signed(key, "Nền tảng HSSK").public_bytes(serialization.Encoding.PEM)
        )
    return _load(key_path, cert_path)


def signer_for(settings: Settings, config: Any) -> Signer:
    """The signer a partner names: ``"platform"`` or a unit's {"key_file", "cert_file"}."""
    if config == "platform":
        return platform_signer(settings)
    return _load(Path(config["key_file"]), Path(config["cert_file"]))


def sign_envelope(envelope: bytes, signer: Signer) -> bytes:
    """``envelope`` (a GIAMDINHHS document with an empty CHUKYDONVI) signed as a HIS signs it:
    an enveloped XMLDSig (SHA-256) over the whole document, placed in CHUKYDONVI."""
    import signxml
    from lxml import etree

    root = etree.fromstring(envelope)
    slot = root.find("CHUKYDONVI")
    if slot is None:
        raise SignerError("envelope has no CHUKYDONVI / hồ sơ không có thẻ CHUKYDONVI")
    etree.SubElement(slot, f"{{{_DSIG}}}Signature", Id="placeholder")
    method = (
        signxml.SignatureMethod.ECDSA_SHA256
        if isinstance(signer.key, ec.EllipticCurvePrivateKey)
        else signxml.SignatureMethod.RSA_SHA256
    )
    signed = signxml.XMLSigner(signature_algorithm=method).sign(
        root, key=signer.key, cert=[signer.certificate]
    )
    return bytes(etree.tostring(signed, xml_declaration=True, encoding="utf-8"))


def sign_bytes(data: bytes, signer: Signer) -> str:
    """A detached signature (base64) of ``data``: RSA PKCS#1 v1.5 or ECDSA, SHA-256."""
    if isinstance(signer.key, rsa.RSAPrivateKey):
        raw = signer.key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    else:
        raw = signer.key.sign(data, ec.ECDSA(hashes.SHA256()))
    return base64.b64encode(raw).decode()
