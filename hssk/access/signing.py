"""Digital signatures: unit keys, signed submissions (kept for non-repudiation), platform key.

Signature formats accepted on a submission:

* JWS compact with detached payload (``header..signature``, RFC 7515 appendix F; the RFC 7797
  ``b64: false`` form too), ``alg`` ES256 or EdDSA, ``kid`` naming the unit's key;
* a bare base64 / base64url signature over the payload bytes, tried with each active key.

Documents the platform issues are signed with the platform key (Ed25519), generated into the
data directory on first use (never in the repository), as detached JWS with the public key in
the header (``jwk``) — verifiable offline with ``hssk verify``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import psycopg
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from psycopg.types.json import Jsonb

from hssk.kernel.config import Settings, write_private

ALGORITHMS = ("ES256", "EdDSA", "RS256")  # RS256: the RSA certificates of Vietnam's CAs
PLATFORM_KEY_FILE = "platform_signing_key.pem"
# Public halves of platform keys replaced by ``hssk keys rotate signing``: documents they
# signed still verify until ``until`` (JSON list of {"kid", "pem", "retired_at", "until"}).
RETIRED_PLATFORM_KEYS = "platform_signing_keys.retired.json"

PublicKey = ed25519.Ed25519PublicKey | ec.EllipticCurvePublicKey | rsa.RSAPublicKey
PrivateKey = ed25519.Ed25519PrivateKey | ec.EllipticCurvePrivateKey


class KeyError_(ValueError):
    """A key or certificate that cannot be used (message says why)."""


def _alg_of(key: Any) -> str:
    if isinstance(key, ed25519.Ed25519PublicKey | ed25519.Ed25519PrivateKey):
        return "EdDSA"
    if isinstance(key, ec.EllipticCurvePublicKey | ec.EllipticCurvePrivateKey):
        if key.curve.name != "secp256r1":
            raise KeyError_(f"EC curve {key.curve.name} not accepted: use P-256 (secp256r1)")
        return "ES256"
    if isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey):
        if key.key_size < 2048:
            raise KeyError_(
                f"RSA key of {key.key_size} bits not accepted: use 2048 bits or more / "
                f"khóa RSA {key.key_size} bit không được chấp nhận: cần từ 2048 bit trở lên"
            )
        return "RS256"
    raise KeyError_(
        "only Ed25519, ECDSA P-256 and RSA (≥ 2048 bits) keys are accepted / "
        "chỉ nhận khóa Ed25519, P-256, RSA từ 2048 bit"
    )


def _spki(key: PublicKey) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def key_id(key: PublicKey) -> str:
    """A stable id of a public key: the start of its SHA-256 thumbprint."""
    return hashlib.sha256(_spki(key)).hexdigest()[:16]


def generate_keypair(alg: str = "EdDSA") -> tuple[bytes, bytes]:
    """A new (private PEM, public PEM) pair for a unit (``EdDSA`` or ``ES256``)."""
    priv: PrivateKey
    if alg == "EdDSA":
        priv = ed25519.Ed25519PrivateKey.generate()
    elif alg == "ES256":
        priv = ec.generate_private_key(ec.SECP256R1())
    else:
        raise KeyError_(f"algorithm {alg!r} not supported; use EdDSA or ES256")
    private_pem = priv.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public_pem = priv.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private_pem, public_pem


def parse_public(data: bytes) -> tuple[PublicKey, dict[str, Any]]:
    """A public key from a PEM/DER public key or an X.509 certificate (checked for validity)."""
    info: dict[str, Any] = {}
    key: Any
    try:
        if b"BEGIN CERTIFICATE" in data:
            cert = x509.load_pem_x509_certificate(data)
        elif b"BEGIN" not in data and data[:1] == b"\x30":
            try:
                cert = x509.load_der_x509_certificate(data)
            except ValueError:
                cert = None
                key = serialization.load_der_public_key(data)
        else:
            cert = None
            key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise KeyError_(f"not a PEM/DER public key or X.509 certificate: {exc}") from exc
    if cert is not None:
        now = datetime.now(UTC)
        if not (cert.not_valid_before_utc <= now < cert.not_valid_after_utc):
            raise KeyError_(
                f"certificate not valid now (valid {cert.not_valid_before_utc:%Y-%m-%d} → "
                f"{cert.not_valid_after_utc:%Y-%m-%d})"
            )
        key = cert.public_key()
        info = {
            "subject": cert.subject.rfc4514_string(),
            "issuer": cert.issuer.rfc4514_string(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "certificate": base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode(),
        }
    _alg_of(key)
    return key, info


def register_key(conn: psycopg.Connection[Any], unit_id: str, data: bytes) -> dict[str, Any]:
    """Add a public key (or certificate) to a unit; returns the stored entry."""
    key, info = parse_public(data)
    row = conn.execute(
        "SELECT public_keys FROM unit WHERE id = %s FOR UPDATE", (unit_id,)
    ).fetchone()
    if row is None:
        raise KeyError_(f"unit {unit_id!r} does not exist")
    kid = key_id(key)
    pem = key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    entry = {"kid": kid, "alg": _alg_of(key), "pem": pem.decode(), "added_at":
             datetime.now(UTC).isoformat(), **info}  # fmt: skip
    keys = [k for k in row[0] if k.get("kid") != kid] + [entry]
    conn.execute("UPDATE unit SET public_keys = %s WHERE id = %s", (Jsonb(keys), unit_id))
    return entry


def revoke_key(conn: psycopg.Connection[Any], unit_id: str, kid: str) -> bool:
    row = conn.execute(
        "SELECT public_keys FROM unit WHERE id = %s FOR UPDATE", (unit_id,)
    ).fetchone()
    if row is None:
        return False
    found = False
    for k in row[0]:
        if k.get("kid") == kid and not k.get("revoked_at"):
            k["revoked_at"] = datetime.now(UTC).isoformat()
            found = True
    conn.execute("UPDATE unit SET public_keys = %s WHERE id = %s", (Jsonb(row[0]), unit_id))
    return found


def _active(entry: dict[str, Any], now: datetime) -> bool:
    """A unit key not revoked, not past its certificate's end nor the end of its overlap
    after a rotation (``retire_at``)."""
    if entry.get("revoked_at"):
        return False
    return not any(
        entry.get(end) and datetime.fromisoformat(entry[end]) <= now
        for end in ("not_after", "retire_at")
    )


def rotate_unit_key(
    conn: psycopg.Connection[Any], unit_id: str, data: bytes, overlap: timedelta
) -> tuple[dict[str, Any], list[str]]:
    """Register a unit's new key or certificate; its other keys keep verifying for
    ``overlap`` (submissions signed just before), then stop. Returns the new entry and the
    kids retired."""
    entry = register_key(conn, unit_id, data)
    row = conn.execute("SELECT public_keys FROM unit WHERE id = %s", (unit_id,)).fetchone()
    now = datetime.now(UTC)
    until = (now + overlap).isoformat()
    retired = []
    for k in row[0] if row else ():
        if k["kid"] != entry["kid"] and _active(k, now):
            if not k.get("retire_at") or k["retire_at"] > until:
                k["retire_at"] = until
            retired.append(k["kid"])
    conn.execute(
        "UPDATE unit SET public_keys = %s WHERE id = %s", (Jsonb(row[0] if row else []), unit_id)
    )
    return entry, retired


def unit_keys(conn: psycopg.Connection[Any], unit_id: str) -> list[tuple[str, str, PublicKey]]:
    """Active keys of an active unit: (kid, alg, key)."""
    row = conn.execute(
        "SELECT public_keys FROM unit WHERE id = %s AND active", (unit_id,)
    ).fetchone()
    out: list[tuple[str, str, PublicKey]] = []
    for k in row[0] if row else ():
        if not _active(k, datetime.now(UTC)):
            continue
        key = serialization.load_pem_public_key(k["pem"].encode())
        out.append((k["kid"], k["alg"], key))  # type: ignore[arg-type]
    return out


def unit_certificates(conn: psycopg.Connection[Any], unit_id: str) -> list[x509.Certificate]:
    """X.509 certificates among the active keys of an active unit (XML signatures name their
    signer by certificate)."""
    row = conn.execute(
        "SELECT public_keys FROM unit WHERE id = %s AND active", (unit_id,)
    ).fetchone()
    now = datetime.now(UTC)
    out = []
    for k in row[0] if row else ():
        if not _active(k, now) or not k.get("certificate"):
            continue
        cert = x509.load_der_x509_certificate(base64.b64decode(k["certificate"]))
        if cert.not_valid_before_utc <= now < cert.not_valid_after_utc:
            out.append(cert)
    return out


def _b64decode(text: str) -> bytes:
    text = text.strip()
    pad = "=" * (-len(text) % 4)
    if "-" in text or "_" in text:
        return base64.urlsafe_b64decode(text + pad)
    return base64.b64decode(text + pad, validate=True)


def _raw_verify(key: PublicKey, alg: str, signature: bytes, payload: bytes) -> bool:
    try:
        if isinstance(key, ed25519.Ed25519PublicKey):
            key.verify(signature, payload)
        elif isinstance(key, rsa.RSAPublicKey):
            key.verify(signature, payload, padding.PKCS1v15(), hashes.SHA256())
        else:
            if len(signature) == 64:  # JOSE form r||s → DER
                from cryptography.hazmat.primitives.asymmetric.utils import (
                    encode_dss_signature,
                )

                signature = encode_dss_signature(
                    int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
                )
            key.verify(signature, payload, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        return False
    return True


def jws_header(signature: str) -> dict[str, Any] | None:
    """The protected header of a detached JWS (None when it is not one)."""
    parts = signature.strip().split(".")
    if len(parts) != 3 or parts[1] != "":
        return None
    try:
        header = json.loads(_b64decode(parts[0]))
    except (ValueError, binascii.Error):
        return None
    return header if isinstance(header, dict) else None


def _jws_verify(signature: str, payload: bytes, key: Any, alg: str) -> bool:
    try:
        jwt.api_jws.decode_complete(
            signature.strip(), key, algorithms=[alg], detached_payload=payload
        )
    except (jwt.PyJWTError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class SignatureCheck:
    valid: bool
    key_id: str | None
    alg: str | None
    reason: str
    payload_sha256: str
    record_id: int | None = None


def check_signature(
    keys: list[tuple[str, str, PublicKey]], payload: bytes, signature: str
) -> tuple[bool, str | None, str | None, str]:
    """(valid, kid, alg, reason) of a detached JWS or bare signature against these keys."""
    if not keys:
        return False, None, None, "no active public key registered for the unit"
    header = jws_header(signature)
    if header is not None:
        alg = header.get("alg")
        if alg not in ALGORITHMS:
            return False, None, str(alg), f"JWS alg {alg!r} not accepted (ES256, EdDSA)"
        kid = header.get("kid")
        candidates = [k for k in keys if (kid is None or k[0] == kid) and k[1] == alg]
        if not candidates:
            return False, kid, alg, f"no active key {kid!r} with alg {alg} for the unit"
        for k_id, k_alg, key in candidates:
            if _jws_verify(signature, payload, key, k_alg):
                return True, k_id, k_alg, "valid JWS signature"
        return False, kid, alg, "JWS signature does not match the payload"
    try:
        raw = _b64decode(signature)
    except (ValueError, binascii.Error):
        return False, None, None, "signature is neither a detached JWS nor base64"
    for k_id, k_alg, key in keys:
        if _raw_verify(key, k_alg, raw, payload):
            return True, k_id, k_alg, "valid signature"
    return False, None, None, "signature does not match the payload with any active key"


def verify_submission(
    conn: psycopg.Connection[Any],
    unit_id: str,
    payload: bytes,
    signature: str,
    *,
    job_id: str | None = None,
) -> SignatureCheck:
    """Verify a submission's detached signature with the unit's keys and keep the result."""
    sha = hashlib.sha256(payload).hexdigest()
    valid, kid, alg, reason = check_signature(unit_keys(conn, unit_id), payload, signature)
    row = conn.execute(
        """INSERT INTO received_signature (unit_id, key_id, alg, payload_sha256, signature,
               valid, reason, job_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (unit_id, kid, alg, sha, signature[:8192], valid, reason, job_id),
    ).fetchone()
    return SignatureCheck(valid, kid, alg, reason, sha, row[0] if row else None)


# --- the platform's own key -------------------------------------------------------------


def platform_private_key(settings: Settings) -> ed25519.Ed25519PrivateKey:
    """The platform signing key, generated into the data directory on first use."""
    path = settings.data_dir / PLATFORM_KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise KeyError_(f"{path} is not an Ed25519 private key")
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    private_pem, _ = generate_keypair("EdDSA")
    write_private(path, private_pem)
    return platform_private_key(settings)


def platform_public_jwk(settings: Settings) -> dict[str, Any]:
    return _jwk(platform_private_key(settings).public_key())


def _jwk(pub: Any) -> dict[str, Any]:
    jwk = json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(pub))
    jwk.update({"kid": key_id(pub), "alg": "EdDSA", "use": "sig"})
    return dict(jwk)


def retired_platform_keys(settings: Settings) -> list[dict[str, Any]]:
    """Platform keys rotated out: {"kid", "pem", "retired_at", "until"}."""
    path = settings.data_dir / RETIRED_PLATFORM_KEYS
    return list(json.loads(path.read_text())) if path.exists() else []


def platform_public_keys(settings: Settings) -> list[PublicKey]:
    """The keys a platform document may be signed with: the current one, then the retired
    ones still within their overlap."""
    now = datetime.now(UTC)
    keys: list[PublicKey] = [platform_private_key(settings).public_key()]
    for k in retired_platform_keys(settings):
        if datetime.fromisoformat(k["until"]) > now:
            keys.append(serialization.load_pem_public_key(k["pem"].encode()))  # type: ignore[arg-type]
    return keys


def platform_public_jwks(settings: Settings) -> list[dict[str, Any]]:
    """The platform's JWKS: the current key first, then the retired ones still valid."""
    return [_jwk(k) for k in platform_public_keys(settings)]


def rotate_platform_key(settings: Settings, keep: timedelta) -> tuple[str, str, datetime]:
    """A new platform signing key signs from now on; the old one's public half verifies the
    documents it signed for ``keep``. Returns (old kid, new kid, until)."""
    old = platform_private_key(settings).public_key()
    now = datetime.now(UTC)
    until = now + keep
    pem = old.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    retired = [k for k in retired_platform_keys(settings) if k["kid"] != key_id(old)]
    retired.append({"kid": key_id(old), "pem": pem, "retired_at": now.isoformat(),
                    "until": until.isoformat()})  # fmt: skip
    write_private(settings.data_dir / RETIRED_PLATFORM_KEYS, json.dumps(retired, indent=1).encode())
    private_pem, _ = generate_keypair("EdDSA")
    write_private(settings.data_dir / PLATFORM_KEY_FILE, private_pem)
    return key_id(old), key_id(platform_private_key(settings).public_key()), until


def sign_document(settings: Settings, payload: bytes) -> str:
    """A detached JWS of ``payload`` with the platform key (public key in the header)."""
    key = platform_private_key(settings)
    jwk = platform_public_jwk(settings)
    return jwt.api_jws.encode(
        payload,
        key,
        algorithm="EdDSA",
        headers={
            "kid": jwk["kid"],
            "jwk": {k: jwk[k] for k in ("kty", "crv", "x")},
            "iss": "hssk",
            "iat": int(datetime.now(UTC).timestamp()),
        },
        is_payload_detached=True,
    )


def verify_document(
    payload: bytes, signature: str, trusted: PublicKey | None = None
) -> tuple[bool, str]:
    """Offline check of a platform-signed document. Without ``trusted`` the key in the
    header is used, and the answer says the key was not pinned."""
    header = jws_header(signature)
    if header is None:
        return False, "not a detached JWS (expected 'header..signature')"
    if header.get("alg") not in ALGORITHMS:
        return False, f"alg {header.get('alg')!r} not accepted"
    if trusted is None:
        try:
            key: Any = jwt.PyJWK(header.get("jwk") or {}).key
        except (jwt.PyJWTError, ValueError, KeyError):
            return False, "no trusted key given and the header carries no usable jwk"
        pinned = False
    else:
        key, pinned = trusted, True
    if not _jws_verify(signature, payload, key, str(header["alg"])):
        return False, "signature does not match the document / chữ ký không khớp tài liệu"
    kid = key_id(key)
    if pinned:
        return True, f"valid signature by trusted key {kid} / chữ ký hợp lệ"
    return True, f"valid signature by key {kid} (from the document; compare with the platform's)"


def load_public_file(path: Path) -> PublicKey:
    return parse_public(path.read_bytes())[0]


def sign_claims(settings: Settings, claims: dict[str, Any]) -> str:
    """A compact JWS of ``claims`` with the platform key (what a document's QR code carries:
    short enough for a QR code, checked by ``read_claims`` on the verification page)."""
    key = platform_private_key(settings)
    body = json.dumps(claims, ensure_ascii=False, separators=(",", ":")).encode()
    return jwt.api_jws.encode(
        body, key, algorithm="EdDSA", headers={"kid": key_id(key.public_key())}
    )


def read_claims(settings: Settings, token: str) -> dict[str, Any] | None:
    """The claims of a token ``sign_claims`` made, or None when it was not made by this
    platform's key (the current one, or one rotated out whose overlap runs: a QR code printed
    before a rotation still verifies) or was changed."""
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None
    keys = platform_public_keys(settings)
    key = next((k for k in keys if key_id(k) == kid), keys[0])
    try:
        body = jwt.api_jws.decode(token, key, algorithms=["EdDSA"])
        claims = json.loads(body)
    except (jwt.PyJWTError, ValueError):
        return None
    return claims if isinstance(claims, dict) else None
