"""The audit chain (tampering detected by `hssk audit verify`) and digital signatures."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from pathlib import Path

import psycopg
import pytest
from access_world import World
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from hssk.access import signing
from hssk.access.actor import PLATFORM
from hssk.access.audit import defer, flush, record, verify_chain
from hssk.access.audit_cli import ANCHOR_FILE
from hssk.access.audit_cli import app as audit_app
from hssk.access.signing_cli import verify as verify_cmd
from hssk.kernel.config import load_settings


def _events(world: World, n: int) -> None:
    with world.db.connection() as conn:
        for i in range(n):
            record(conn, PLATFORM, "read", outcome="allow", basis="scope", resource_type="Observation",
                   resource_id=f"r{i}", person_id=world.persons["parent"],
                   detail={"i": i, "tên": "Nguyễn", "f": 1.5, "nested": {"b": [1, 2]}})  # fmt: skip


def _verify_cli() -> tuple[int, str]:
    result = CliRunner().invoke(audit_app, ["verify"])
    return result.exit_code, result.output


def _superuser_sql(world: World, sql: str, *params: object) -> None:
    """What an attacker with superuser rights would do: switch the trigger off, edit, back on."""
    with psycopg.connect(world.db.url, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_event DISABLE TRIGGER audit_event_no_update")
        try:
            conn.execute(sql.encode() if not params else sql, params or None)  # type: ignore[arg-type]
        finally:
            conn.execute("ALTER TABLE audit_event ENABLE TRIGGER audit_event_no_update")


def test_trigger_refuses_update_and_delete(world: World) -> None:
    _events(world, 2)
    with world.db.connection() as conn, pytest.raises(psycopg.errors.RaiseException):
        conn.execute("UPDATE audit_event SET outcome = 'allow' WHERE seq = 1")
    with world.db.connection() as conn, pytest.raises(psycopg.errors.RaiseException):
        conn.execute("DELETE FROM audit_event WHERE seq = 1")


def test_deferred_events_survive_a_rollback(world: World) -> None:
    with world.db.connection() as conn:
        before = conn.execute("SELECT count(*) FROM audit_event").fetchone()[0]  # type: ignore[index]
        defer(conn)
        record(conn, PLATFORM, "read", outcome="deny", basis="deny")
        record(conn, PLATFORM, "read", outcome="deny", basis="deny")
        conn.rollback()  # the request failed
        assert flush(conn) == 2
        after = conn.execute("SELECT count(*) FROM audit_event").fetchone()[0]  # type: ignore[index]
    assert after == before + 2


def test_flush_leaves_the_connection_as_lent(world: World) -> None:
    with world.db.connection() as conn:
        before = conn.execute("SELECT count(*) FROM audit_event").fetchone()[0]  # type: ignore[index]
        conn.commit()
        defer(conn)
        record(conn, PLATFORM, "read", outcome="allow", basis="scope")
        assert flush(conn) == 1  # idle connection: BEGIN, lock and last hash in one message
        assert conn.autocommit is False
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        defer(conn)
        record(conn, PLATFORM, "read", outcome="allow", basis="scope")
        conn.execute("SELECT 1")  # a transaction still open: written (and committed) in it
        assert flush(conn) == 1
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        after = conn.execute("SELECT count(*) FROM audit_event").fetchone()[0]  # type: ignore[index]
        assert after == before + 2
        assert verify_chain(conn, anchor=False).ok


@pytest.mark.parametrize(
    "tamper", ["update", "delete_middle", "delete_tail", "insert_forged", "truncate_everything"]
)
def test_tampering_is_detected(
    world: World, tamper: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HSSK_DATA_DIR", str(tmp_path))  # a fresh anchor file per case
    _events(world, 5)
    code, out = _verify_cli()
    assert code == 0 and "OK" in out, out
    with world.db.connection() as conn:
        seqs = [r[0] for r in conn.execute("SELECT seq FROM audit_event ORDER BY seq").fetchall()]
    target = seqs[-3]
    if tamper == "update":
        _superuser_sql(world, "UPDATE audit_event SET outcome = 'allow', basis = 'consent' "
                              f"WHERE seq = {target}")  # fmt: skip
        expected = target
    elif tamper == "delete_middle":
        _superuser_sql(world, f"DELETE FROM audit_event WHERE seq = {target}")
        expected = seqs[-2]
    elif tamper == "delete_tail":
        _superuser_sql(world, f"DELETE FROM audit_event WHERE seq >= {seqs[-1]}")
        expected = seqs[-1]
    elif tamper == "truncate_everything":  # chain and in-database anchors emptied
        _superuser_sql(world, "TRUNCATE audit_event, audit_anchor RESTART IDENTITY")
        _events(world, 2)  # life goes on: a new, internally consistent chain
        expected = seqs[-1]
    else:  # a forged row with a self-consistent hash but a wrong link
        _superuser_sql(world, "INSERT INTO audit_event (action, outcome, prev_hash, hash) "
                              "VALUES ('read', 'allow', 'x', 'y')")  # fmt: skip
        expected = None
    code, out = _verify_cli()
    assert code == 1 and "TAMPERED" in out, out
    with world.db.connection() as conn:
        report = verify_chain(conn, anchor=False, anchor_file=tmp_path / ANCHOR_FILE)
    assert not report.ok
    if expected is not None:
        assert report.first_bad_seq == expected, report
        assert str(expected) in out
    # repair for the next case: start a fresh chain (the test database only)
    with psycopg.connect(world.db.url, autocommit=True) as conn:
        conn.execute("TRUNCATE audit_event, audit_anchor RESTART IDENTITY")


# --- signatures ------------------------------------------------------------------------------


def _cert(key: ec.EllipticCurvePrivateKey, days: int) -> bytes:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Bệnh viện 02")])
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=400)).not_valid_after(now + dt.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    return cert.public_bytes(serialization.Encoding.PEM)


def test_submission_signatures(world: World) -> None:
    payload = "<GIAMDINHHS>hồ sơ</GIAMDINHHS>".encode()
    ed_priv = ed25519.Ed25519PrivateKey.generate()
    ec_priv = ec.generate_private_key(ec.SECP256R1())
    import jwt

    with world.db.connection() as conn:
        ed_entry = signing.register_key(conn, "BV-02", ed_priv.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
        cert_entry = signing.register_key(conn, "BV-02", _cert(ec_priv, 30))
        assert cert_entry["alg"] == "ES256" and "Bệnh viện 02" in cert_entry["subject"]
        with pytest.raises(signing.KeyError_, match="not valid now"):
            signing.register_key(conn, "BV-02", _cert(ec.generate_private_key(ec.SECP256R1()), -1))
        with pytest.raises(signing.KeyError_, match="P-256"):
            signing.register_key(conn, "BV-02", ec.generate_private_key(ec.SECP384R1()).public_key()
                                 .public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
        with pytest.raises(signing.KeyError_, match="PEM"):
            signing.register_key(conn, "BV-02", b"-----BEGIN PUBLIC KEY-----\nnonsense\n")

        jws_ed = jwt.api_jws.encode(payload, ed_priv, algorithm="EdDSA",
                                    headers={"kid": ed_entry["kid"]}, is_payload_detached=True)  # fmt: skip
        jws_ec = jwt.api_jws.encode(payload, ec_priv, algorithm="ES256", is_payload_detached=True)
        raw_ed = base64.b64encode(ed_priv.sign(payload)).decode()
        raw_ec = base64.b64encode(ec_priv.sign(payload, ec.ECDSA(hashes.SHA256()))).decode()
        for sig in (jws_ed, jws_ec, raw_ed, raw_ec):
            check = signing.verify_submission(conn, "BV-02", payload, sig, job_id="job-1")
            assert check.valid, check
            assert check.payload_sha256 == hashlib.sha256(payload).hexdigest()
        tampered = payload.replace("hồ sơ".encode(), b"ho so")
        for sig in (jws_ed, raw_ec):
            assert not signing.verify_submission(conn, "BV-02", tampered, sig).valid
        assert not signing.verify_submission(conn, "BV-01", payload, raw_ed).valid  # other unit
        bad = signing.verify_submission(conn, "BV-02", payload, "%%% not base64 %%%")
        assert not bad.valid and "base64" in bad.reason
        none_alg = jwt.api_jws.encode(payload, None, algorithm="none", is_payload_detached=True)
        assert "alg" in signing.verify_submission(conn, "BV-02", payload, none_alg).reason
        assert signing.revoke_key(conn, "BV-02", ed_entry["kid"])
        assert not signing.verify_submission(conn, "BV-02", payload, jws_ed).valid
        kept = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE valid) FROM received_signature "
            "WHERE unit_id = 'BV-02'"
        ).fetchone()
    assert kept == (9, 4)  # every check is kept, valid or not


def test_platform_signed_document_verifies_offline(world: World, tmp_path: Path) -> None:
    settings = load_settings()
    doc = tmp_path / "so-suc-khoe.json"
    doc.write_text('{"resourceType": "Bundle", "tên": "Nguyễn Thị Lan"}', encoding="utf-8")
    (tmp_path / "so-suc-khoe.json.sig").write_text(
        signing.sign_document(settings, doc.read_bytes())
    )
    key_file = settings.data_dir / signing.PLATFORM_KEY_FILE
    assert key_file.stat().st_mode & 0o777 == 0o600
    import typer

    app = typer.Typer()
    app.command()(verify_cmd)
    runner = CliRunner()
    ok = runner.invoke(app, [str(doc)])
    assert ok.exit_code == 0 and "VALID" in ok.output, ok.output
    pub = tmp_path / "platform.pem"
    pub.write_bytes(signing.platform_private_key(settings).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))  # fmt: skip
    assert runner.invoke(app, [str(doc), "--key", str(pub)]).exit_code == 0
    doc.write_text('{"resourceType": "Bundle", "tên": "Nguyễn Thị Lam"}', encoding="utf-8")
    bad = runner.invoke(app, [str(doc)])
    assert bad.exit_code == 1 and "INVALID" in bad.output
    other, _ = signing.generate_keypair("EdDSA")
    stranger = serialization.load_pem_private_key(other, None)
    assert isinstance(stranger, ed25519.Ed25519PrivateKey)
    assert not signing.verify_document(b"x", signing.sign_document(settings, b"x"),
                                       stranger.public_key())[0]  # fmt: skip


def test_group_commit_under_concurrency_keeps_one_chain(world: World) -> None:
    import threading

    with world.db.connection() as conn:
        start = conn.execute("SELECT count(*) FROM audit_event").fetchone()[0]  # type: ignore[index]

    def request(n: int) -> None:
        for i in range(n):
            with world.db.connection() as conn:
                defer(conn)
                record(conn, PLATFORM, "read", outcome="allow", basis="scope", detail={"i": i})
                record(conn, PLATFORM, "search", outcome="allow", basis="scope")
                conn.commit()
                assert flush(conn) == 2

    threads = [threading.Thread(target=request, args=(40,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with world.db.connection() as conn:
        total = conn.execute("SELECT count(*) FROM audit_event").fetchone()[0]  # type: ignore[index]
        report = verify_chain(conn, anchor=False)
    assert total == start + 6 * 40 * 2
    assert report.ok, report


def test_quick_verification_since_the_last_anchor(world: World) -> None:
    with psycopg.connect(world.db.url, autocommit=True) as conn:
        conn.execute("TRUNCATE audit_event, audit_anchor RESTART IDENTITY")
    _events(world, 4)
    with world.db.connection() as conn:
        assert verify_chain(conn).ok  # anchors seq 4
    _events(world, 3)
    with world.db.connection() as conn:
        quick = verify_chain(conn, since_anchor=True, anchor=False)
    assert quick.ok and quick.checked == 3 and quick.last_seq == 7
    _superuser_sql(world, "UPDATE audit_event SET basis = 'consent' WHERE seq = 6")
    with world.db.connection() as conn:
        after = verify_chain(conn, since_anchor=True, anchor=False)
    assert not after.ok and after.first_bad_seq == 6
    _superuser_sql(world, "DELETE FROM audit_event WHERE seq = 4")  # the anchored row itself
    with world.db.connection() as conn:
        gone = verify_chain(conn, since_anchor=True, anchor=False)
    assert not gone.ok and gone.first_bad_seq == 4
    with psycopg.connect(world.db.url, autocommit=True) as conn:
        conn.execute("TRUNCATE audit_event, audit_anchor RESTART IDENTITY")
