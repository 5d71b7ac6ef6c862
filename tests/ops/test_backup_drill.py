"""Restore drill: load data, back up, change and delete things, restore, compare everything."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from hssk.access import accounts
from hssk.access.audit import record, verify_chain
from hssk.access.audit_cli import ANCHOR_FILE
from hssk.access.signing import PLATFORM_KEY_FILE, platform_private_key
from hssk.db import Database, open_database
from hssk.db.digest import table_digests
from hssk.kernel.config import load_settings
from hssk.ops.backup import BackupError, create_backup, read_manifest, restore_backup
from hssk.ops.sealed import SealError

sys.path.insert(0, str(Path(__file__).parents[1] / "access"))
from access_world import build_world

PASS = b"mat-khau-sao-luu-thu"


def _audit_verify(url: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HSSK_DATABASE_URL": url, "HSSK_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-m", "hssk", "audit", "verify"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _load(db: Database, data_dir: Path) -> None:
    world = build_world(db)
    doctor = world.accounts["doctor"].actor(None, client="tests")
    with db.connection() as conn:
        for person in world.persons.values():
            record(conn, doctor, "read", outcome="allowed", basis="treatment",
                         resource_type="Patient", person_id=person)  # fmt: skip
        verify_chain(conn, anchor_file=data_dir / ANCHOR_FILE)


def test_restore_drill_gives_back_every_table_the_keys_and_a_valid_audit_chain(
    drill_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    monkeypatch.setenv("HSSK_DATA_DIR", str(data_dir))
    monkeypatch.setenv("HSSK_DATABASE_URL", drill_url)
    settings = load_settings()
    db = open_database(settings, url=drill_url)
    _load(db, data_dir)
    secret = settings.secret_key()
    platform_private_key(settings)  # creates the platform signing key in the data dir
    key_pem = (data_dir / PLATFORM_KEY_FILE).read_bytes()
    with db.connection() as conn:
        before = table_digests(conn)
    assert before["person"][0] == 4 and before["audit_event"][0] >= 4

    path, manifest = create_backup(drill_url, data_dir, tmp_path / "backups", PASS)
    assert path.stat().st_mode & 0o777 == 0o600
    assert set(manifest.files) >= {"secret.key", PLATFORM_KEY_FILE, ANCHOR_FILE}
    assert (
        b"BEGIN PRIVATE KEY" not in path.read_bytes() and secret.encode() not in path.read_bytes()
    )
    assert read_manifest(path, PASS).migrations == manifest.migrations

    # Damage: rows deleted and changed, a table added, new audit events anchored past the
    # backup, keys replaced.
    with db.connection() as conn:
        conn.execute("DELETE FROM resource WHERE person_id = (SELECT min(id) FROM person)")
        conn.execute("UPDATE person SET full_name = 'Kẻ Giả Mạo'")
        conn.execute("CREATE TABLE intruder (x int)")
        admin = accounts.find_account(conn, "quantri")
        assert admin is not None
        actor = admin.actor(None)
        record(conn, actor, "export", outcome="allowed", resource_type="Patient")
        verify_chain(conn, anchor_file=data_dir / ANCHOR_FILE)
        changed = table_digests(conn)
    assert changed != before
    (data_dir / "secret.key").write_text("khac")
    (data_dir / PLATFORM_KEY_FILE).unlink()

    # The web still holds connections: the restore refuses and says what to stop.
    with pytest.raises(BackupError, match="hssk-web"):
        restore_backup(path, drill_url, data_dir, PASS)
    db.close()
    restore_backup(path, drill_url, data_dir, PASS)

    with psycopg.connect(drill_url) as conn:
        after = table_digests(conn)
        # the restore wrote itself into the trail it brought back: who, when, which backup
        (seq, detail) = conn.execute(
            "SELECT seq, detail FROM audit_event WHERE action = 'restore'"
        ).fetchone()  # type: ignore[misc]
        assert seq == before["audit_event"][0] + 1
        assert detail["point_in_time"] == manifest.created_at and detail["file"] == path.name
        assert detail["method"] == "backup" and detail["os_user"]
        conn.execute("SET session_replication_role = replica")  # past the append-only guard
        conn.execute("DELETE FROM audit_event WHERE seq = %s", (seq,))
        assert table_digests(conn) == before  # every other row as it was
        conn.rollback()
    assert after["audit_event"][0] == before["audit_event"][0] + 1
    assert (data_dir / "secret.key").read_text() == secret
    assert (data_dir / "secret.key").stat().st_mode & 0o777 == 0o600
    assert (data_dir / "secret.key.before-restore").read_text() == "khac"
    assert (data_dir / PLATFORM_KEY_FILE).read_bytes() == key_pem
    verified = _audit_verify(drill_url, data_dir)
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_wrong_passphrase_or_a_cut_or_altered_backup_restores_nothing(
    drill_url: str, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    db = open_database(load_settings(), url=drill_url)
    with db.connection() as conn:
        conn.execute("INSERT INTO audit_anchor (seq, hash) VALUES (1, 'x')")
        before = table_digests(conn)
    db.close()
    path, _ = create_backup(drill_url, data_dir, tmp_path / "b.hsskbak", PASS)
    raw = path.read_bytes()
    with pytest.raises(SealError, match="wrong backup passphrase"):
        restore_backup(path, drill_url, data_dir, b"sai")
    cut = tmp_path / "cut.hsskbak"
    cut.write_bytes(raw[: len(raw) - 40])
    with pytest.raises(SealError, match=r"truncated|altered"):
        restore_backup(cut, drill_url, data_dir, PASS)
    flipped = bytearray(raw)
    flipped[len(raw) // 2] ^= 1
    bad = tmp_path / "bad.hsskbak"
    bad.write_bytes(bytes(flipped))
    with pytest.raises(SealError, match="altered"):
        restore_backup(bad, drill_url, data_dir, PASS)
    with psycopg.connect(drill_url) as conn:
        assert table_digests(conn) == before
