"""The shipped systemd units and nginx site are valid (checked by the real tools where they
are installed, skipped with the reason where not), and they call commands that exist."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DEPLOY = Path(__file__).parents[2] / "deploy"
UNITS = sorted((DEPLOY / "systemd").iterdir())
INSTALLED_HSSK = "/opt/hssk/venv/bin/hssk"


def _hssk() -> str:
    found = Path(sys.executable).parent / "hssk"
    return str(found) if found.exists() else shutil.which("hssk") or "hssk"


@pytest.mark.skipif(
    not shutil.which("systemd-analyze"),
    reason="systemd-analyze not installed (Debian package systemd)",
)
def test_systemd_units_verify(tmp_path: Path) -> None:
    for unit in UNITS:
        (tmp_path / unit.name).write_text(unit.read_text().replace(INSTALLED_HSSK, _hssk()))
    res = subprocess.run(
        ["systemd-analyze", "verify", *sorted(str(p) for p in tmp_path.iterdir())],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    ours = [line for line in (res.stdout + res.stderr).splitlines() if "hssk" in line]
    assert res.returncode == 0 and not ours, res.stdout + res.stderr


def test_units_run_hssk_commands_that_exist() -> None:
    commands = [
        shlex.split(m.group(1))
        for unit in UNITS
        for m in re.finditer(r"^ExecStart=(\S*hssk\b.*)$", unit.read_text(), re.M)
    ]
    assert {c[1] for c in commands} == {"serve", "jobs", "backup"}
    for cmd in commands:
        sub = [a for a in cmd[1:] if not a.startswith("-")][:2]  # e.g. ["jobs", "run"]
        if sub[0] == "serve":
            sub = sub[:1]
        res = subprocess.run([sys.executable, "-m", "hssk", *sub, "--help"], capture_output=True,
                             text=True, timeout=60, check=False)  # fmt: skip
        assert res.returncode == 0, f"{cmd}: {res.stdout}{res.stderr}"
        for opt in (a.split("=")[0] for a in cmd if a.startswith("--")):
            assert opt in res.stdout, f"{cmd}: no option {opt}"


def test_env_example_names_only_settings_the_code_reads() -> None:
    names = re.findall(r"^(HSSK_\w+)=", (DEPLOY / "env" / "hssk.env.example").read_text(), re.M)
    source = "\n".join(p.read_text() for p in (DEPLOY.parent / "hssk").rglob("*.py"))
    unknown = [n for n in names if n not in source]
    assert names and not unknown, unknown


@pytest.mark.skipif(not shutil.which("nginx"), reason="nginx not installed (Debian package nginx)")
def test_nginx_site_passes_nginx_t(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=hssk"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    site = (DEPLOY / "nginx" / "hssk.conf").read_text()
    site = site.replace("/etc/ssl/hssk/fullchain.pem", str(cert))
    site = site.replace("/etc/ssl/hssk/privkey.pem", str(key))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "logs").mkdir()
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\nevents {{}}\n"
        f"http {{\n  access_log off;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    res = subprocess.run(
        ["nginx", "-t", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 0 and "test is successful" in res.stderr, res.stderr
    for needed in ("http2", "Strict-Transport-Security", "client_max_body_size",
                   "X-Forwarded-For $remote_addr", "ssl_protocols TLSv1.2 TLSv1.3"):  # fmt: skip
        assert needed in site
