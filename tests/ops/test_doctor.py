"""`hssk doctor`: each check finds its problem and says how to fix it; exit 1 on a failure."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from hssk.access.audit_cli import ANCHOR_FILE
from hssk.cli import app
from hssk.db import Database
from hssk.kernel.config import load_settings
from hssk.ops import doctor, jobs
from hssk.ops.doctor import FAIL, OK, WARN
from hssk.ops.tasks import TASKS


def _cert(path: Path, days_left: float) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hssk.soyte.example.vn")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now - dt.timedelta(days=90))
        .not_valid_after(now + dt.timedelta(days=days_left))
        .sign(key, hashes.SHA256())
    )  # fmt: skip
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def test_a_healthy_install_passes(clean_db: Database, data_dir: Path, tmp_path: Path) -> None:
    with clean_db.connection() as conn:
        jobs.sync_schedule(conn, TASKS)
    cert = _cert(tmp_path / "cert.pem", 80)
    out = CliRunner().invoke(app, ["doctor", "--tls-cert", str(cert), "--json"])
    assert out.exit_code == 0, out.output
    for check in ("secrets", "disk", "tls", "database", "migrations", "clock", "outbox", "jobs"):
        assert f'"{check}"' in out.output


def test_secrets_readable_by_others_fail_and_say_chmod(clean_db: Database, data_dir: Path) -> None:
    (data_dir / "secret.key").chmod(0o644)
    found = doctor.check_secrets(load_settings())
    assert found.status == FAIL and "chmod 600" in found.en and "chmod 600" in found.vi
    out = CliRunner().invoke(app, ["doctor"])
    assert out.exit_code == 1 and "secret.key" in out.output


def test_a_pending_migration_fails(db: Database) -> None:
    with db.connection() as conn:
        assert doctor.check_migrations(conn).status == OK
        conn.execute("DELETE FROM schema_migration WHERE version = '0700'")
        found = doctor.check_migrations(conn)
        conn.rollback()
    assert found.status == FAIL and "hssk db migrate" in found.en


def test_clock_skew_warns_then_fails(db: Database) -> None:
    now = dt.datetime.now(dt.UTC)
    with db.connection() as conn:
        assert doctor.check_clock(conn, now).status == OK
        assert doctor.check_clock(conn, now + dt.timedelta(seconds=10)).status == WARN
        late = doctor.check_clock(conn, now - dt.timedelta(minutes=5))
    assert late.status == FAIL and "NTP" in late.en


def test_certificate_expiry(tmp_path: Path) -> None:
    assert doctor.check_certificate(_cert(tmp_path / "a.pem", 200)).status == OK
    soon = doctor.check_certificate(_cert(tmp_path / "b.pem", 5))
    assert soon.status == WARN and "renew" in soon.en
    assert doctor.check_certificate(_cert(tmp_path / "c.pem", -1)).status == FAIL
    (tmp_path / "d.pem").write_text("not a certificate")
    assert doctor.check_certificate(tmp_path / "d.pem").status == FAIL


def test_a_stuck_outbox_and_dead_letters(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        assert doctor.check_outbox(conn).status == OK
        conn.execute(
            "INSERT INTO outbox (partner, person_id, idempotency_key, status) "
            "VALUES ('bhxh', 1, 'd', 'dead')"
        )
        assert doctor.check_outbox(conn).status == WARN
        conn.execute(
            "INSERT INTO outbox (partner, person_id, idempotency_key, next_try) "
            "VALUES ('bhxh', 2, 'p', now() - interval '7 hours')"
        )
        stuck = doctor.check_outbox(conn)
    assert stuck.status == FAIL and "hssk-worker" in stuck.en


def test_overdue_jobs_mean_the_runner_is_down(clean_db: Database) -> None:
    with clean_db.connection() as conn:
        assert doctor.check_jobs(conn).status == WARN  # never ran
        jobs.sync_schedule(conn, TASKS)
        assert doctor.check_jobs(conn).status == OK
        conn.execute("UPDATE job_schedule SET next_run = now() - interval '1 day'")
        down = doctor.check_jobs(conn)
    assert down.status == FAIL and "systemctl status hssk-worker" in down.en


def test_an_unreachable_database_fails(data_dir: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends: nobody listens
    url = f"postgresql://hssk@127.0.0.1:{port}/hssk"
    found = {f.check: f for f in doctor.run_checks(load_settings(), url)}
    assert found["database"].status == FAIL and "HSSK_DATABASE_URL" in found["database"].en


def test_a_nearly_full_disk(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(doctor, "DISK_FAIL", 1.01)  # every disk is "full"
    found = doctor.check_disk([data_dir])
    assert found.status == FAIL and "free space" in found.en


def test_the_audit_anchor_file_is_written_private(clean_db: Database, data_dir: Path) -> None:
    import os

    from hssk.access.actor import ANONYMOUS
    from hssk.access.audit import record, verify_chain

    anchor = data_dir / ANCHOR_FILE
    anchor.unlink()
    old = os.umask(0o022)  # an administrator's shell
    try:
        with clean_db.connection() as conn:
            record(conn, ANONYMOUS, "authenticate", outcome="deny", basis="token")
            verify_chain(conn, anchor_file=anchor)
    finally:
        os.umask(old)
    assert anchor.stat().st_mode & 0o777 == 0o600
    assert doctor.check_secrets(load_settings()).status == OK
