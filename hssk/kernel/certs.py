"""The platform's own X.509 certificates: made self-signed on first use, rotated, or replaced
by one a CA issued (``hssk keys rotate pdf-cert|xml-cert``, ``hssk keys import-cert``).

Two documents carry one: PDFs (PAdES, ``access.pdfsign``, ECDSA P-256) and the XML the
channels send (XMLDSig, ``share.xmlsign``, RSA 2048). Each lives in the data directory as a
certificate and its private key (PEM, key mode 600). A rotation or an import keeps the old
*certificate* (not its key) in ``<cert>.retired.json``, so what it signed still verifies.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from hssk.kernel.config import write_private

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
MIN_RSA_BITS = 2048


class CertificateError(ValueError):
    """A certificate or key that cannot be used (the message says which file and why)."""


class KeyType(StrEnum):
    ec_p256 = "ec-p256"
    rsa_2048 = "rsa-2048"


@dataclass(frozen=True)
class CertSpec:
    """Where one platform certificate lives and how a self-signed one is made."""

    data_dir: Path
    cert_name: str
    key_name: str
    key_type: KeyType
    common_name: str
    years: int

    @property
    def cert_path(self) -> Path:
        return self.data_dir / self.cert_name

    @property
    def key_path(self) -> Path:
        return self.data_dir / self.key_name

    @property
    def retired_path(self) -> Path:
        return self.data_dir / f"{self.cert_name.removesuffix('.pem')}.retired.json"


def pdf_spec(data_dir: Path) -> CertSpec:
    """The PDF-signing certificate (PAdES: readers check ECDSA P-256 everywhere)."""
    return CertSpec(data_dir, "platform_certificate.pem", "platform_certificate_key.pem",
                    KeyType.ec_p256, "Nền tảng Hồ sơ sức khỏe điện tử (HSSK)", 10)  # fmt: skip


def xml_spec(data_dir: Path) -> CertSpec:
    """The XML-signing certificate of the channels (XMLDSig RSA-SHA256, what gateways know)."""
    return CertSpec(data_dir, "platform_xml_signing_cert.pem", "platform_xml_signing_key.pem",
                    KeyType.rsa_2048, "Nền tảng HSSK", 3)  # fmt: skip


@dataclass(frozen=True)
class PlatformCert:
    """A private key and its X.509 certificate."""

    key: PrivateKey
    certificate: x509.Certificate
    intermediates: tuple[x509.Certificate, ...] = ()  # the CA's, when an import gave them

    @property
    def name(self) -> str:
        names = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else self.certificate.subject.rfc4514_string()

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


@dataclass(frozen=True)
class Replaced:
    """What a rotation or an import did: fingerprints of the old and new certificates."""

    old: str | None
    new: str
    not_after: datetime


def fingerprint(cert: x509.Certificate) -> str:
    """The certificate's SHA-256 fingerprint, first 16 hex digits (as the logs and audit name it)."""
    return cert.fingerprint(hashes.SHA256()).hex()[:16]


def new_key(key_type: KeyType) -> PrivateKey:
    if key_type is KeyType.ec_p256:
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def self_signed(key: PrivateKey, common_name: str, years: int) -> x509.Certificate:
    """A self-signed document-signing certificate (its own root: readers trust it as one)."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HSSK"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    start = datetime.now(UTC) - timedelta(days=1)
    usage = x509.KeyUsage(
        digital_signature=True, content_commitment=True, key_encipherment=False,
        data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=False,
        encipher_only=False, decipher_only=False,
    )  # fmt: skip
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=365 * years))
        .add_extension(usage, critical=True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )


def load_certificate(path: Path) -> x509.Certificate:
    """The first certificate of a PEM (or DER) file."""
    try:
        data = path.read_bytes()
        if b"BEGIN CERTIFICATE" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except (OSError, ValueError) as exc:
        raise CertificateError(
            f"{path}: không đọc được chứng thư X.509 / cannot read an X.509 certificate: {exc}"
        ) from None


def load_key(path: Path) -> PrivateKey:
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        raise CertificateError(
            f"{path}: không đọc được khóa bí mật (PEM, không mật khẩu) / cannot read the private "
            f"key (PEM, no passphrase): {exc}"
        ) from None
    if isinstance(key, rsa.RSAPrivateKey) and key.key_size < MIN_RSA_BITS:
        raise CertificateError(f"{path}: khóa RSA < 2048 bit / an RSA key under 2048 bits")
    if not isinstance(key, ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey):
        raise CertificateError(f"{path}: cần khóa ECDSA hoặc RSA / an ECDSA or RSA key is needed")
    return key


def _spki(public: object) -> bytes:
    assert isinstance(public, ec.EllipticCurvePublicKey | rsa.RSAPublicKey)
    return public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def matched(key: PrivateKey, cert: x509.Certificate, where: str) -> PlatformCert:
    """The pair, once the certificate is shown to be the key's."""
    try:
        same = _spki(key.public_key()) == _spki(cert.public_key())
    except AssertionError:
        same = False
    if not same:
        raise CertificateError(
            f"{where}: chứng thư không phải của khóa này / the certificate is not the key's"
        )
    return PlatformCert(key, cert)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def load(spec: CertSpec) -> PlatformCert:
    """The installed certificate and key (they must match)."""
    pair = matched(load_key(spec.key_path), load_certificate(spec.cert_path), str(spec.cert_path))
    return PlatformCert(pair.key, pair.certificate, tuple(chain(spec.cert_path)[1:]))


def load_or_create(spec: CertSpec) -> PlatformCert:
    """The installed pair, or a new self-signed one made now. When several workers start at
    once, the one that creates the key file makes both; the others wait for the certificate."""
    if not spec.key_path.exists():
        spec.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(spec.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            fd = -1  # another worker is making it
        if fd >= 0:
            key = new_key(spec.key_type)
            cert = self_signed(key, spec.common_name, spec.years)
            with os.fdopen(fd, "wb") as out:
                out.write(_key_pem(key))
            write_private(spec.cert_path, cert.public_bytes(serialization.Encoding.PEM))
            return PlatformCert(key, cert)
    for _ in range(50):  # the worker that made the key writes the certificate next
        if spec.cert_path.exists() and spec.key_path.stat().st_size:
            break
        time.sleep(0.1)
    for _ in range(20):  # a rotation in another process: between its key and its certificate
        try:
            return load(spec)
        except CertificateError:
            time.sleep(0.05)
    return load(spec)


def retired(spec: CertSpec) -> list[x509.Certificate]:
    """Certificates rotated out, newest first: what they signed still verifies."""
    if not spec.retired_path.exists():
        return []
    entries = json.loads(spec.retired_path.read_text())
    return [x509.load_pem_x509_certificate(e["pem"].encode()) for e in reversed(entries)]


def trusted(spec: CertSpec) -> list[x509.Certificate]:
    """The certificates a document of the platform may carry: the current one (if any), then
    the retired ones."""
    current = [load_certificate(spec.cert_path)] if spec.cert_path.exists() else []
    return current + retired(spec)


def chain(path: Path) -> list[x509.Certificate]:
    """Every certificate of a PEM file: the leaf, then the CA's intermediates an import kept."""
    data = path.read_bytes()
    return x509.load_pem_x509_certificates(data) if b"BEGIN CERTIFICATE" in data else []


def _install(spec: CertSpec, pair: PlatformCert, cert_pem: bytes | None = None) -> Replaced:
    """Put ``pair`` in place, the current certificate moving to the retired list first (so a
    crash between the two writes loses nothing that verifies)."""
    old = load_certificate(spec.cert_path) if spec.cert_path.exists() else None
    if old is not None and fingerprint(old) != fingerprint(pair.certificate):
        entries = json.loads(spec.retired_path.read_text()) if spec.retired_path.exists() else []
        entries = [e for e in entries if e["fingerprint"] != fingerprint(old)]
        entries.append({"fingerprint": fingerprint(old),
                        "pem": old.public_bytes(serialization.Encoding.PEM).decode(),
                        "subject": old.subject.rfc4514_string(),
                        "retired_at": datetime.now(UTC).isoformat()})  # fmt: skip
        write_private(spec.retired_path, json.dumps(entries, indent=1, ensure_ascii=False).encode())
    spec.data_dir.mkdir(parents=True, exist_ok=True)
    # the key first: a reader pairing the old certificate with the new key is refused by
    # ``matched`` and tries again (``load_or_create``), never signs with a mismatched pair
    write_private(spec.key_path, _key_pem(pair.key))
    write_private(spec.cert_path, cert_pem or pair.certificate_pem())
    return Replaced(
        fingerprint(old) if old else None,
        fingerprint(pair.certificate),
        pair.certificate.not_valid_after_utc,
    )


def rotate(spec: CertSpec) -> Replaced:
    """A new key and self-signed certificate sign from now on; the old certificate is kept."""
    key = new_key(spec.key_type)
    return _install(spec, PlatformCert(key, self_signed(key, spec.common_name, spec.years)))


def import_pair(spec: CertSpec, cert_file: Path, key_file: Path) -> Replaced:
    """Install a certificate a CA issued (PEM, the chain's first certificate is the leaf's) and
    its key, after checking that they match and the certificate is valid now."""
    pair = matched(load_key(key_file), load_certificate(cert_file), str(cert_file))
    now = datetime.now(UTC)
    cert = pair.certificate
    if not cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
        raise CertificateError(
            f"{cert_file}: chứng thư không còn hiệu lực ({cert.not_valid_before_utc:%Y-%m-%d} – "
            f"{cert.not_valid_after_utc:%Y-%m-%d}) / the certificate is not valid now"
        )
    return _install(spec, pair, cert_file.read_bytes() if len(chain(cert_file)) > 1 else None)
