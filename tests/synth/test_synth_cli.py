"""``hssk synth`` command and the benchmark function."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from benchmarks.synth import run_bench
from hssk.synth.cli import app


def test_cli_writes_manifest_and_rate(tmp_path: Path) -> None:
    out = tmp_path / "o"
    res = CliRunner().invoke(
        app,
        ["--persons", "120", "--province", "01", "--district", "001", "--seed", "2", "--out", str(out),
         "--errors", '{"default": {"typo": 0.1}}', "--quirk-rate", "0.5"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "records/s" in res.output
    manifest = json.loads((out / "manifest.json").read_text("utf-8"))
    assert manifest["params"]["district"] == "001" and manifest["counts"]["persons"] == 120
    assert manifest["params"]["errors"]["his"]["typo"] == 0.1


def test_cli_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app, ["--persons", "5", "--province", "Atlantis", "--out", str(tmp_path)]
    )
    assert res.exit_code == 2 and "unknown province" in res.output
    res = CliRunner().invoke(
        app, ["--persons", "5", "--errors", '{"his": {"tyop": 1}}', "--out", str(tmp_path)]
    )
    assert res.exit_code == 2 and "unknown error kind" in res.output


def test_run_bench_reports_rate_and_memory(tmp_path: Path) -> None:
    result = run_bench(300, tmp_path)
    assert result["persons"] == 300 and result["records_per_second"] > 0
    assert result["peak_rss_mb"] > 10 and result["his_files"] > 0


def test_run_bench_defaults_to_a_temporary_directory() -> None:
    result = run_bench(size=50)
    assert result["persons"] == 50 and result["source_records"] > 50
