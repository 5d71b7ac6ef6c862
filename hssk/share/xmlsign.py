"""Signing what the channels send: the XML signature of a QĐ 130 envelope (CHUKYDONVI,
enveloped XMLDSig, as a HIS signs) and the detached signature of a health-check record.

The signer is the platform or a unit (``Partner.signer``). The platform's Ed25519 key
(``access.signing``) has no certificate and XMLDSig has no Ed25519 method the gateways know,
so the platform signs XML with its own RSA key and self-signed certificate, generated into
the data directory on first use (never in the repository, ``kernel.certs``); an installation
rotates it (``hssk keys rotate xml-cert``), replaces it with a certificate from a Vietnamese CA
(``hssk keys import-cert xml-cert``), or names a unit's key and certificate in the partner
file. What is signed is checked with the ingest side's own checker
(``ingest.xmlsig.check``), the one HSSK applies to the hồ sơ it receives.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from hssk.kernel import certs
from hssk.kernel.config import Settings

_DSIG = "http://www.w3.org/2000/09/xmldsig#"

SignerError = certs.CertificateError
Signer = certs.PlatformCert


def _self_signed(key: certs.PrivateKey, name: str) -> x509.Certificate:
    return certs.self_signed(key, name, certs.xml_spec(Path(".")).years)


def _load(key_path: Path, cert_path: Path) -> Signer:
    return certs.matched(certs.load_key(key_path), certs.load_certificate(cert_path),
                         f"{cert_path}, {key_path}")  # fmt: skip


def platform_signer(settings: Settings) -> Signer:
    """The platform's XML-signing key and certificate, generated on first use."""
    return certs.load_or_create(certs.xml_spec(settings.data_dir))


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
