"""The shipped files working together: hssk-web started as its systemd unit says, behind nginx
with the shipped site (TLS, HTTP/2, HSTS, redirect, request ids, the gateway's upload limit),
and the address nginx saw — not one a client forged — reaching the platform's login throttle
and its audit trail. Skipped where nginx is absent. (systemd units are checked by
``systemd-analyze verify`` in test_deploy_files; PID 1 of a test container is not systemd, so
the units themselves cannot be started here: their ExecStart and Environment are.)"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

DEPLOY = Path(__file__).parents[2] / "deploy"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not shutil.which("nginx") or not shutil.which("openssl"),
        reason="nginx or openssl not installed (Debian packages nginx, openssl)",
    ),
]


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(url, timeout=2, verify=False).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    pytest.fail(f"{url} did not answer:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def web(drill_url: str, tmp_path: Path) -> Iterator[int]:
    """hssk-web as the unit starts it (its ExecStart and Environment), on a free port."""
    unit = (DEPLOY / "systemd" / "hssk-web.service").read_text()
    exec_start = shlex.split(re.search(r"^ExecStart=(.*)$", unit, re.M).group(1))  # type: ignore[union-attr]
    env_lines = re.findall(r"^Environment=(\w+)=(.*)$", unit, re.M)
    port = _port()
    args = [a if a != "8000" else str(port) for a in exec_start[1:]]
    args[args.index("--workers") + 1] = "2"  # 2 cores shared by the test run
    env = {**os.environ, **dict(env_lines), "HSSK_DATABASE_URL": drill_url,
           "HSSK_DATA_DIR": str(tmp_path / "data"), "HSSK_LOG_FORMAT": "json",
           "PYTHONPATH": str(DEPLOY.parent)}  # fmt: skip
    log = tmp_path / "web.log"
    proc = subprocess.Popen([sys.executable, "-m", "hssk", *args], env=env, cwd=tmp_path,
                            stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
    try:
        _wait(f"http://127.0.0.1:{port}/health/live", proc, log)
        yield port
    finally:
        _stop(proc)


@pytest.fixture
def nginx(web: int, tmp_path: Path) -> Iterator[tuple[int, int]]:
    """nginx with the shipped site, its ports and upstream moved to free ones."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
         "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=hssk"],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    http, https = _port(), _port()
    site = (DEPLOY / "nginx" / "hssk.conf").read_text()
    site = re.sub(r"^\s*listen \[::\].*\n", "", site, flags=re.M)  # no IPv6 in test containers
    site = site.replace("listen 80;", f"listen 127.0.0.1:{http};")
    site = site.replace("listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;")
    site = site.replace("server 127.0.0.1:8000;", f"server 127.0.0.1:{web};")
    site = site.replace("/etc/ssl/hssk/fullchain.pem", str(cert))
    site = site.replace("/etc/ssl/hssk/privkey.pem", str(key))
    (tmp_path / "site.conf").write_text(site)
    (tmp_path / "logs").mkdir()
    user = "user root;\n" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(
        f"{user}daemon off;\npid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/logs/error.log;\n"
        f"events {{}}\nhttp {{\n  access_log off;\n  include {tmp_path}/site.conf;\n}}\n"
    )
    log = tmp_path / "logs" / "error.log"
    log.touch()
    proc = subprocess.Popen(["nginx", "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _wait(f"https://127.0.0.1:{https}/health/live", proc, log)
        yield http, https
    finally:
        _stop(proc)


def test_web_behind_nginx_as_shipped(nginx: tuple[int, int], drill_url: str) -> None:
    http, https = nginx
    plain = httpx.get(f"http://127.0.0.1:{http}/book", timeout=10)
    assert plain.status_code == 301 and plain.headers["location"].startswith("https://")
    # The client comes from 127.0.0.2 and forges X-Forwarded-For: the platform must see .2.
    transport = httpx.HTTPTransport(local_address="127.0.0.2", verify=False)
    with httpx.Client(transport=transport, base_url=f"https://127.0.0.1:{https}") as client:
        ready = client.get("/health/ready", headers={"X-Request-ID": "nginx-e2e-00001"})
        assert ready.json() == {"status": "ready"}
        assert ready.headers["strict-transport-security"].startswith("max-age=63072000")
        # nginx's own id replaces the client's: the same id is in nginx's and the web's logs
        assert re.fullmatch(r"[0-9a-f]{32}", ready.headers["x-request-id"])
        refused = client.post(
            "/auth/token",
            data={"grant_type": "password", "username": "khong-co", "password": "sai-mat-khau"},
            headers={"X-Forwarded-For": "203.0.113.9"},
        )
        assert refused.status_code in (400, 401)
    with psycopg.connect(drill_url) as conn:
        keys = {r[0] for r in conn.execute("SELECT key FROM login_failure")}
    # the throttle counts the address nginx saw (never the forged one, nor nginx's own)
    assert "addr:127.0.0.2" in keys, keys
    assert not any("203.0.113.9" in k or "127.0.0.1" in k for k in keys), keys


@pytest.mark.skipif(not shutil.which("curl"), reason="curl not installed (Debian package curl)")
def test_http2_and_the_gateways_upload_limit(nginx: tuple[int, int], tmp_path: Path) -> None:
    _, https = nginx
    base = f"https://127.0.0.1:{https}"

    body = tmp_path / "body"

    def curl(*args: str) -> str:
        res = subprocess.run(["curl", "-sk", "--http2", "-o", str(body), "-w",
                              "%{http_version} %{http_code}", *args],
                             capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
        assert res.returncode == 0, res.stderr
        return res.stdout

    assert curl(f"{base}/health/live") == "2 200"  # ALPN chose HTTP/2
    # A hồ sơ over the gateway's 30 MB limit: nginx answers 413 before hssk-web reads it.
    big = tmp_path / "big.bin"
    big.write_bytes(b"A" * (31 * 2**20))
    assert curl("-X", "POST", "--data-binary", f"@{big}", "-H", "Content-Type: text/plain",
                f"{base}/api/qd130/guiHoSoXmlQD4750") == "2 413"  # fmt: skip
    assert b"nginx" in body.read_bytes()  # nginx's own page: hssk-web never read the body


def test_a_refused_token_is_audited_with_the_address_nginx_saw(
    nginx: tuple[int, int], drill_url: str
) -> None:
    _, https = nginx
    transport = httpx.HTTPTransport(local_address="127.0.0.2", verify=False)
    with httpx.Client(transport=transport, base_url=f"https://127.0.0.1:{https}") as client:
        refused = client.post(
            "/api/qd130/guiHoSoXmlQD4750",
            data={"fileHSBase64": "PEdJQU1ESU5ISFMvPg==", "maCSKCB": "01001"},
            headers={"Authorization": "Bearer khong-phai-token", "X-Forwarded-For": "203.0.113.9"},
        )
    assert refused.status_code in (401, 403), refused.text
    with psycopg.connect(drill_url) as conn:
        rows = [r[0] for r in conn.execute(
            "SELECT detail FROM audit_event WHERE action = 'authenticate' AND outcome = 'deny'")]  # fmt: skip
    assert [d["address"] for d in rows] == ["127.0.0.2"], rows
