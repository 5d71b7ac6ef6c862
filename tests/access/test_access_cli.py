"""The operator commands: `hssk access ...` and `hssk audit verify`."""

from __future__ import annotations

from pathlib import Path

from access_world import World
from typer.testing import CliRunner

from hssk.access import tokens
from hssk.access.cli import app
from hssk.kernel.config import load_settings


def test_import_accounts_and_token(world: World, tmp_path: Path) -> None:
    csv_file = tmp_path / "tai-khoan.csv"
    csv_file.write_text(
        "username,kind,display_name,unit_id,roles,phone,cccd\n"
        "yta.01,staff,Y tá Một,TYT-A,station,0913000001,\n"
        "yta.02,staff,Y tá Hai,KHONG-CO,station,,\n",
        encoding="utf-8",
    )
    runner = CliRunner()
    out = runner.invoke(app, ["import-accounts", str(csv_file)])
    assert out.exit_code == 0, out.output
    assert "created 1" in out.output and "unknown unit KHONG-CO" in out.output
    # imported accounts start inactive: no token until activated
    refused = runner.invoke(app, ["token", "--account", "yta.01"])
    assert refused.exit_code == 1 and "not activated" in refused.output
    assert runner.invoke(app, ["enable", "yta.01"]).exit_code == 0
    issued = runner.invoke(app, ["token", "--account", "yta.01", "--scope", "user/*.read"])
    assert issued.exit_code == 0, issued.output
    actor = tokens.verify(load_settings(), issued.output.strip())
    assert actor.unit_id == "TYT-A" and actor.scopes == frozenset({"user/*.read"})
    escalate = runner.invoke(app, ["token", "--account", "yta.01", "--scope", "system/*.read"])
    assert escalate.exit_code == 1
    assert runner.invoke(app, ["disable", "yta.01", "--reason", "nghỉ"]).exit_code == 0
    assert runner.invoke(app, ["token", "--account", "yta.01"]).exit_code == 1


def test_keygen_and_sign(world: World, tmp_path: Path) -> None:
    runner = CliRunner()
    out = runner.invoke(app, ["keygen", "BV-02", "--out", str(tmp_path), "--alg", "ES256"])
    assert out.exit_code == 0, out.output
    (key_file,) = tmp_path.glob("BV-02-*.pem")
    assert key_file.stat().st_mode & 0o777 == 0o600
    kid = key_file.stem.removeprefix("BV-02-")
    assert runner.invoke(app, ["revoke-key", "BV-02", kid]).exit_code == 0  # rotation's end
    again = runner.invoke(app, ["revoke-key", "BV-02", kid])
    assert again.exit_code == 1 and "no active key" in again.output
    bad = runner.invoke(app, ["keygen", "NO-UNIT", "--out", str(tmp_path)])
    assert bad.exit_code == 1 and "does not exist" in bad.output
    doc = tmp_path / "giay-chuyen-tuyen.json"
    doc.write_text("{}")
    assert runner.invoke(app, ["sign", str(doc)]).exit_code == 0
    assert (tmp_path / "giay-chuyen-tuyen.json.sig").read_text().count(".") == 2


def test_import_units(world: World, tmp_path: Path) -> None:
    f = tmp_path / "don-vi.csv"
    f.write_text(
        "id,kind,name,parent_id,facility_code,gln,province_code,commune_code\n"
        "TYT-C,station,Trạm Y tế phường C,TTYT-BD,,,01,00007\n"
        "PK-01,clinic,Phòng khám tư nhân,SYT-HN,01099,,01,\n"
        "PK-02,clinic,Phòng khám trùng mã,SYT-HN,01001,,01,\n"
        "TYT-D,station,Trạm D,KHONG-CO,,,01,00010\n"
        "TYT-E,nursery,Trạm E,TTYT-BD,,,01,\n"
        "PK-03,clinic,Mã sai,SYT-HN,1234,,01,\n",
        encoding="utf-8",
    )
    out = CliRunner().invoke(app, ["import-units", str(f)])
    assert out.exit_code == 0, out.output
    assert "saved 2" in out.output
    for why in ("already used", "unknown parent", "unknown kind", "5 digits"):
        assert why in out.output
    with world.db.connection() as conn:
        row = conn.execute(
            "SELECT kind, parent_id, commune_code FROM unit WHERE id = 'TYT-C'"
        ).fetchone()
    assert row == ("station", "TTYT-BD", "00007")


def test_audit_break_glass_listing(world: World) -> None:
    from hssk.access.audit_cli import app as audit_app

    with world.db.connection() as conn:
        conn.execute(
            "INSERT INTO break_glass (account_id, unit_id, person_id, reason, expires_at) "
            "VALUES (%s, 'BV-02', %s, 'bệnh nhân bất tỉnh, cần tiền sử dị ứng', now())",
            (str(world.accounts["doctor2"].id), world.persons["other"]),
        )
    out = CliRunner().invoke(audit_app, ["break-glass"])
    assert out.exit_code == 0 and "bất tỉnh" in out.output


def test_bench_runs_small(world: World) -> None:
    from benchmarks.access import run_bench

    figures = run_bench(world.db, requests=40, threads=2, decisions=20, import_rows=50)
    assert set(figures) >= {"audited_requests_per_s", "decisions_per_s", "accounts_imported_per_s",
                            "audit_verified_per_s"}  # fmt: skip
    assert all(v > 0 for v in figures.values())
