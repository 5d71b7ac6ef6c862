"""`hssk keys rotate`: the new key signs at once, the old one verifies until its overlap ends,
every rotation is in the audit trail."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest
from typer.testing import CliRunner

from hssk.access import signing, tokens
from hssk.access.actor import Actor
from hssk.access.audit import verify_chain
from hssk.cli import app
from hssk.db import Database
from hssk.kernel.config import load_settings, secret_id

runner = CliRunner()
CLERK = Actor(account_id="7", kind="staff", unit_id="U1", roles=frozenset({"station"}))


def _rotations(db: Database) -> list[dict]:
    with db.connection() as conn:
        return [
            r[0]
            for r in conn.execute(
                "SELECT detail FROM audit_event WHERE action = 'key-rotate' ORDER BY seq"
            )
        ]


def _verify(token: str) -> Actor:
    tokens._verified.clear()  # each check decodes again (the per-process cache lives 30 s)
    return tokens.verify(load_settings(), token)


def test_token_secret_rotation_keeps_old_tokens_until_the_overlap_ends(
    clean_db: Database, data_dir: Path
) -> None:
    settings = load_settings()
    old_token = tokens.issue(settings, CLERK, ttl=600)
    old_id = secret_id(settings.secret_key())
    out = runner.invoke(app, ["keys", "rotate", "token", "--overlap-hours", "1"])
    assert out.exit_code == 0, out.output
    new_id = secret_id(settings.secret_key())
    assert new_id != old_id and f"{old_id} → {new_id}" in out.output
    assert _verify(old_token).account_id == "7"  # still valid within the overlap
    new_token = tokens.issue(settings, CLERK)
    assert jwt.get_unverified_header(new_token)["kid"] == new_id  # names the new secret
    assert _verify(new_token).account_id == "7"
    assert (data_dir / "secret.key.retired").stat().st_mode & 0o077 == 0
    # the overlap ends: the old token is refused, the new one is not
    retired = json.loads((data_dir / "secret.key.retired").read_text())
    retired[0]["until"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    (data_dir / "secret.key.retired").write_text(json.dumps(retired))
    with pytest.raises(tokens.TokenError):
        _verify(old_token)
    assert _verify(new_token).account_id == "7"
    # a suspected leak: --overlap-hours 0 voids every token signed before at once
    assert runner.invoke(app, ["keys", "rotate", "token", "--overlap-hours", "0"]).exit_code == 0
    with pytest.raises(tokens.TokenError):
        _verify(new_token)
    (first, second) = _rotations(clean_db)
    assert first["what"] == "token" and first["old"] == old_id and first["new"] == new_id
    assert first["overlap_hours"] == 1 and first["os_user"] and second["overlap_hours"] == 0
    with clean_db.connection() as conn:
        assert verify_chain(conn).ok


def test_a_rotation_refuses_a_secret_set_in_the_environment(
    clean_db: Database, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HSSK_SECRET_KEY", "x" * 40)
    out = runner.invoke(app, ["keys", "rotate", "token"])
    assert out.exit_code == 1 and "HSSK_SECRET_KEY" in out.output
    assert _rotations(clean_db) == []


def test_platform_signing_key_rotation_keeps_old_documents_verifiable(
    clean_db: Database, data_dir: Path, tmp_path: Path
) -> None:
    settings = load_settings()
    before, after = tmp_path / "before.pdf", tmp_path / "after.pdf"
    before.write_bytes(b"%PDF giay hen kham lai 1")
    after.write_bytes(b"%PDF giay hen kham lai 2")
    (tmp_path / "before.pdf.sig").write_text(signing.sign_document(settings, before.read_bytes()))
    old_kid = signing.platform_public_jwk(settings)["kid"]
    out = runner.invoke(app, ["keys", "rotate", "signing"])
    assert out.exit_code == 0, out.output
    new_kid = signing.platform_public_jwk(settings)["kid"]
    assert new_kid != old_kid
    (tmp_path / "after.pdf.sig").write_text(signing.sign_document(settings, after.read_bytes()))
    assert [k["kid"] for k in signing.platform_public_jwks(settings)] == [new_kid, old_kid]
    for doc in (before, after):
        checked = runner.invoke(app, ["verify", str(doc)])
        assert checked.exit_code == 0 and "trusted key" in checked.output, checked.output
    # past the keep period the old key is gone from the key set: its documents no longer check
    path = data_dir / signing.RETIRED_PLATFORM_KEYS
    retired = json.loads(path.read_text())
    retired[0]["until"] = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    path.write_text(json.dumps(retired))
    assert runner.invoke(app, ["verify", str(before)]).exit_code == 1
    assert runner.invoke(app, ["verify", str(after)]).exit_code == 0
    listed = runner.invoke(app, ["keys", "list"])
    assert new_kid in listed.output and old_kid not in listed.output
    (rotation,) = _rotations(clean_db)
    assert (rotation["old"], rotation["new"]) == (old_kid, new_kid)


def test_a_units_key_rotation_overlaps_then_only_the_new_key_verifies(
    clean_db: Database, data_dir: Path, tmp_path: Path
) -> None:
    with clean_db.connection() as conn:
        conn.execute("INSERT INTO unit (id, kind, name) VALUES ('BV01', 'hospital', 'Bệnh viện')")
        _, old_pub = signing.generate_keypair()
        old = signing.register_key(conn, "BV01", old_pub)
    _, new_pub = signing.generate_keypair("ES256")
    (tmp_path / "new.pem").write_bytes(new_pub)
    args = ["keys", "rotate", "unit", "--unit", "BV01", "--file", str(tmp_path / "new.pem")]
    out = runner.invoke(app, [*args, "--overlap-hours", "2"])
    assert out.exit_code == 0, out.output
    with clean_db.connection() as conn:
        kids = {k[0] for k in signing.unit_keys(conn, "BV01")}
        assert old["kid"] in kids and len(kids) == 2  # both verify during the overlap
        conn.execute(
            """UPDATE unit SET public_keys = (SELECT jsonb_agg(CASE WHEN k ? 'retire_at'
                 THEN k || jsonb_build_object('retire_at', (now() - interval '1 s')::text)
                 ELSE k END) FROM jsonb_array_elements(public_keys) k) WHERE id = 'BV01'"""
        )
        (only,) = signing.unit_keys(conn, "BV01")
        assert only[0] != old["kid"] and only[1] == "ES256"
    (rotation,) = _rotations(clean_db)
    assert rotation["unit"] == "BV01" and rotation["old"] == old["kid"]
    missing = runner.invoke(app, ["keys", "rotate", "unit", "--unit", "BV01"])
    assert missing.exit_code != 0 and "--file" in missing.output
