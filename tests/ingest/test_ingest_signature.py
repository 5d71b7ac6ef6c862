"""The facility's XML signature (CHUKYDONVI) on gateway submissions: checked against the
certificates the facility registered; tampered or foreign-signed files refused."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Iterator

import pytest
import signxml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from test_ingest_http import SECRET, _token  # the gateway account's secret and token

from hssk.access import accounts
from hssk.access.signing import register_key
from hssk.app import create_app
from hssk.db import Database
from hssk.ingest import xmlsig
from hssk.ingest.xmlparse import build_envelope
from hssk.kernel.config import load_settings
from tests.factories.samples import visit

DSIG = "{http://www.w3.org/2000/09/xmldsig#}"


def _certificate(name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.COUNTRY_NAME, "VN")])  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=90))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return key, cert


def _signed(envelope: bytes, key: rsa.RSAPrivateKey, cert: x509.Certificate) -> bytes:
    """The envelope signed as a HIS does: enveloped XMLDSig (RSA-SHA256) in CHUKYDONVI."""
    root = etree.fromstring(envelope)
    etree.SubElement(root.find("CHUKYDONVI"), f"{DSIG}Signature", Id="placeholder")
    signed = signxml.XMLSigner().sign(root, key=key, cert=[cert])
    return etree.tostring(signed, xml_declaration=True, encoding="utf-8")  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def hospital() -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    return _certificate("Bệnh viện Đa khoa 01001")


def test_check_tells_valid_tampered_foreign_and_unsigned(hospital) -> None:  # type: ignore[no-untyped-def]
    key, cert = hospital
    env = build_envelope("01001", [visit(1)])
    data = _signed(env, key, cert)
    valid = xmlsig.check(data, [cert])
    assert valid.status == "valid" and "Bệnh viện Đa khoa 01001" in (valid.signer or "")
    tampered = data.replace(b"<MACSKCB>01001", b"<MACSKCB>01002", 1)
    assert xmlsig.check(tampered, [cert]).status == "invalid"
    _, other = _certificate("Phòng khám khác")
    foreign = xmlsig.check(data, [other])
    assert foreign.status == "unknown-signer" and "01001" in (foreign.signer or "")
    assert xmlsig.check(data, []).status == "unknown-signer"
    assert xmlsig.check(env, [cert]).status == "unsigned"


@pytest.fixture
def client(idb: Database) -> Iterator[TestClient]:
    with idb.connection() as conn:
        accounts.create_account(conn, "his01001", "system", unit_id="F01001",
                                scopes=["system/*.write", "system/*.read"], password=SECRET)  # fmt: skip
    with TestClient(create_app(load_settings(), idb)) as c:
        yield c


def _send(client: TestClient, data: bytes) -> dict[str, str]:
    form = {"username": "his01001", "loaiHoSo": "130", "maTinh": "01", "maCSKCB": "01001",
            "fileHSBase64": base64.b64encode(data).decode()}  # fmt: skip
    r = client.post("/api/qd130/guiHoSoXmlQD3176", data=form,
                    headers={"accessToken": _token(client)})  # fmt: skip
    return {"status": str(r.status_code), **r.json()}


def _encounters(idb: Database) -> int:
    with idb.connection() as conn:
        row = conn.execute("SELECT count(*) FROM resource WHERE type = 'Encounter'").fetchone()
    return int(row[0]) if row else 0


def test_gateway_accepts_a_registered_signature_and_refuses_tampering(
    client: TestClient, idb: Database, hospital
) -> None:  # type: ignore[no-untyped-def]
    key, cert = hospital
    with idb.connection() as conn:
        register_key(conn, "F01001", cert.public_bytes(serialization.Encoding.PEM))
    data = _signed(build_envelope("01001", [visit(1)]), key, cert)
    tampered = data.replace(b"<MACSKCB>01001", b"<MACSKCB>01001 ", 1)
    r = _send(client, tampered)
    assert r["status"] == "400" and r["maKetQua"] == "400"
    assert "bị thay đổi sau khi ký" in r["thongDiep"]
    assert _encounters(idb) == 0  # nothing of a tampered file is stored
    r = _send(client, data)
    assert r["maKetQua"] == "200" and "Chữ ký số hợp lệ" in r["thongDiep"], r
    assert _encounters(idb) == 1
    foreign = _signed(build_envelope("01001", [visit(2)]), *_certificate("Kẻ giả mạo"))
    r = _send(client, foreign)
    assert r["status"] == "403" and "chưa được đăng ký" in r["thongDiep"]
    with idb.connection() as conn:
        events = conn.execute(
            "SELECT outcome, detail->'signature'->>'status' FROM audit_event"
            " WHERE action = 'ingest' ORDER BY seq"
        ).fetchall()
    assert events == [("deny", "invalid"), ("allow", "valid"), ("deny", "unknown-signer")]


def test_unsigned_files_pass_unless_the_installation_requires_signatures(
    client: TestClient, idb: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = build_envelope("01001", [visit(3)])
    assert _send(client, env)["maKetQua"] == "200"
    monkeypatch.setenv("HSSK_REQUIRE_XML_SIGNATURE", "1")
    with TestClient(create_app(load_settings(), idb)) as strict:
        r = _send(strict, build_envelope("01001", [visit(4)]))
    assert r["status"] == "403" and "không có chữ ký số" in r["thongDiep"]


@given(st.binary(max_size=400), st.sampled_from([b"", b"<SignatureValue>", b"</Signature>"]))
def test_check_never_raises_on_hostile_bytes(noise: bytes, tail: bytes) -> None:
    data = (
        b'<GIAMDINHHS><CHUKYDONVI><Signature xmlns="http://www.w3.org/2000/09/xmldsig#">'
        + noise + b"<SignatureValue>" + tail + b"</CHUKYDONVI></GIAMDINHHS>"
    )  # fmt: skip
    result = xmlsig.check(data, [])
    assert result.status in {"unchecked", "unknown-signer", "invalid", "unsigned"}
    assert result.reason and result.reason_vi


def test_upload_checks_each_files_signature(client: TestClient, idb: Database, hospital) -> None:  # type: ignore[no-untyped-def]
    key, cert = hospital
    with idb.connection() as conn:
        register_key(conn, "F01001", cert.public_bytes(serialization.Encoding.PEM))
    good = _signed(build_envelope("01001", [visit(5)]), key, cert)
    bad = good.replace(b"<MACSKCB>01001", b"<MACSKCB>01001 ", 1)
    headers = {"Authorization": f"Bearer {_token(client)}"}
    r = client.post("/api/v1/ingest/xml130", headers=headers,
                    files=[("files", ("a.xml", good)), ("files", ("b.xml", bad))])  # fmt: skip
    assert r.status_code == 400 and "b.xml" in r.json()["thongDiep"], r.text
    assert "bị thay đổi sau khi ký" in r.json()["thongDiep"]
    r = client.post("/api/v1/ingest/xml130", headers=headers, files=[("files", ("a.xml", good))])
    assert r.status_code == 202, r.text
    with idb.connection() as conn:
        detail = conn.execute(
            "SELECT detail FROM audit_event WHERE action = 'ingest' AND outcome = 'allow'"
        ).fetchone()
    assert detail is not None and detail[0]["signatures"]["a.xml"]["status"] == "valid"
