"""``hssk doctor``: checks a running installation and says what to fix (Vietnamese, English).

Each check returns a ``Finding``: ok, warn (works, but act soon) or fail (broken now, or
unsafe). The command exits non-zero when anything fails, so a monitoring system can run it.
"""

from __future__ import annotations

import os
import shutil
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg

from hssk.kernel.config import Settings

OK, WARN, FAIL = "ok", "warn", "fail"
CLOCK_WARN_S, CLOCK_FAIL_S = 2.0, 30.0
DISK_WARN, DISK_FAIL = 0.15, 0.05  # share of the disk free
CERT_WARN_DAYS = 21
OUTBOX_WARN_S, OUTBOX_FAIL_S = 15 * 60, 6 * 3600
JOB_LATE_FACTOR = 3  # a job not run for 3 periods: the runner is down


@dataclass(frozen=True)
class Finding:
    check: str
    status: str
    vi: str
    en: str

    @property
    def failed(self) -> bool:
        return self.status == FAIL


def _f(check: str, status: str, vi: str, en: str) -> Finding:
    return Finding(check, status, vi, en)


def check_migrations(conn: psycopg.Connection[Any]) -> Finding:
    from hssk.db.migrate import discover

    shipped = {m.version: m for m in discover()}
    rows = conn.execute("SELECT version, checksum FROM schema_migration").fetchall()
    applied = dict(rows)
    pending = sorted(set(shipped) - set(applied))
    unknown = sorted(set(applied) - set(shipped))
    changed = sorted(v for v in set(shipped) & set(applied) if shipped[v].checksum != applied[v])
    if unknown:
        return _f("migrations", FAIL,
                  f"CSDL mới hơn phần mềm (migration {', '.join(unknown)}): cài đúng phiên bản HSSK",
                  f"the database is newer than this HSSK (migrations {', '.join(unknown)}): "
                  "install the matching HSSK version")  # fmt: skip
    if pending:
        return _f("migrations", FAIL,
                  f"{len(pending)} migration chưa chạy: chạy 'hssk db migrate'",
                  f"{len(pending)} migrations pending: run 'hssk db migrate'")  # fmt: skip
    if changed:
        return _f("migrations", WARN,
                  f"migration {', '.join(changed)} đã sửa sau khi chạy: kiểm tra bản cài",
                  f"migrations {', '.join(changed)} changed after they ran: check the install")  # fmt: skip
    return _f(
        "migrations", OK, f"đủ {len(shipped)} migration", f"all {len(shipped)} migrations applied"
    )


def _private_problem(path: Path) -> str | None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return f"{path} mode {mode:o}"
    return None


def check_secrets(settings: Settings) -> Finding:
    from hssk.access.audit_cli import ANCHOR_FILE
    from hssk.access.signing import PLATFORM_KEY_FILE, RETIRED_PLATFORM_KEYS
    from hssk.kernel import certs

    d = settings.data_dir
    if not d.is_dir():
        return _f("secrets", FAIL, f"không có thư mục dữ liệu {d}: đặt HSSK_DATA_DIR",
                  f"data dir {d} is missing: set HSSK_DATA_DIR")  # fmt: skip
    missing = []
    if not os.environ.get("HSSK_SECRET_KEY") and not settings.secret_file.exists():
        missing.append(settings.secret_file.name)
    key_files = (settings.secret_file.name, settings.retired_secrets_file.name, PLATFORM_KEY_FILE,
             RETIRED_PLATFORM_KEYS, ANCHOR_FILE, certs.pdf_spec(d).key_name,
             certs.xml_spec(d).key_name)  # fmt: skip
    files = [d / n for n in key_files]
    open_files = [p for p in (_private_problem(f) for f in files if f.exists()) if p]
    if open_files:
        names = "; ".join(open_files)
        return _f("secrets", FAIL,
                  f"khóa bí mật ai cũng đọc được ({names}): chmod 600 các tệp, chmod 700 {d}",
                  f"secrets readable by others ({names}): chmod 600 the files, chmod 700 {d}")  # fmt: skip
    if missing:
        return _f("secrets", WARN,
                  f"chưa có {', '.join(missing)} (sẽ tạo khi cần): sao lưu sau lần tạo đầu",
                  f"{', '.join(missing)} not created yet (made on first use): back up after")  # fmt: skip
    if stat.S_IMODE(d.stat().st_mode) & 0o007:
        return _f("secrets", WARN, f"thư mục {d} mở cho mọi người: chmod 700 {d}",
                  f"{d} is open to every user: chmod 700 {d}")  # fmt: skip
    return _f(
        "secrets", OK, "khóa bí mật có và riêng tư (600)", "secrets present and private (600)"
    )


def check_clock(conn: psycopg.Connection[Any], local_now: datetime | None = None) -> Finding:
    row = conn.execute("SELECT clock_timestamp()").fetchone()
    here = local_now or datetime.now(UTC)
    skew = abs((here - row[0]).total_seconds()) if row else 0.0
    if skew >= CLOCK_FAIL_S:
        status = FAIL
    elif skew >= CLOCK_WARN_S:
        status = WARN
    else:
        return _f("clock", OK, f"đồng hồ lệch {skew:.1f} s", f"clock skew {skew:.1f} s")
    return _f("clock", status,
              f"đồng hồ máy chủ và CSDL lệch {skew:.0f} s: bật NTP (timedatectl set-ntp true)",
              f"server and database clocks differ by {skew:.0f} s: enable NTP "
              "(timedatectl set-ntp true)")  # fmt: skip


def check_disk(paths: list[Path]) -> Finding:
    worst: tuple[float, Path, int] | None = None
    for p in paths:
        if not p.exists():
            continue
        u = shutil.disk_usage(p)
        share = u.free / u.total if u.total else 1.0
        if worst is None or share < worst[0]:
            worst = (share, p, u.free)
    if worst is None:
        return _f("disk", OK, "không có đường dẫn để đo", "nothing to measure")
    share, p, free = worst
    gb = free / 2**30
    text_vi = f"ổ chứa {p} còn {share:.0%} ({gb:,.1f} GB)"
    text_en = f"the disk of {p} has {share:.0%} free ({gb:,.1f} GB)"
    if share < DISK_FAIL:
        return _f("disk", FAIL, text_vi + ": giải phóng hoặc mở rộng ngay",
                  text_en + ": free space or grow it now")  # fmt: skip
    if share < DISK_WARN:
        return _f("disk", WARN, text_vi + ": sắp đầy, lên kế hoạch mở rộng",
                  text_en + ": filling up, plan to grow it")  # fmt: skip
    return _f("disk", OK, text_vi, text_en)


@dataclass(frozen=True)
class CertKind:
    """A certificate ``hssk doctor`` watches: its check's name, what it is, how to renew it."""

    check: str
    vi: str
    en: str
    renew_vi: str
    renew_en: str


TLS = CertKind("tls", "chứng chỉ TLS", "the TLS certificate", "gia hạn rồi reload nginx",
               "renew it, then reload nginx")  # fmt: skip
PLATFORM_CERTS = {
    "pdf-cert": CertKind("pdf-cert", "chứng thư ký PDF", "the PDF-signing certificate",
                         "hssk keys rotate pdf-cert, hoặc hssk keys import-cert pdf-cert",
                         "hssk keys rotate pdf-cert, or hssk keys import-cert pdf-cert"),
    "xml-cert": CertKind("xml-cert", "chứng thư ký XML", "the XML-signing certificate",
                         "hssk keys rotate xml-cert (hoặc import-cert), gửi cho cổng giám định",
                         "hssk keys rotate xml-cert (or import-cert), give it to the gateway"),
}  # fmt: skip


def check_certificate(path: Path, now: datetime | None = None, kind: CertKind = TLS) -> Finding:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(path.read_bytes())
    except (OSError, ValueError) as exc:
        return _f(kind.check, FAIL, f"không đọc được {kind.vi} {path}: {exc}",
                  f"cannot read {kind.en} {path}: {exc}")  # fmt: skip
    left = (cert.not_valid_after_utc - (now or datetime.now(UTC))).total_seconds() / 86400
    until = f"{cert.not_valid_after_utc:%Y-%m-%d}"
    if left < 0:
        return _f(kind.check, FAIL, f"{kind.vi} đã hết hạn ngày {until}: {kind.renew_vi}",
                  f"{kind.en} expired on {until}: {kind.renew_en}")  # fmt: skip
    if left < CERT_WARN_DAYS:
        return _f(kind.check, WARN, f"{kind.vi} hết hạn sau {left:.0f} ngày ({until}): "
                  f"{kind.renew_vi}", f"{kind.en} expires in {left:.0f} days ({until}): "
                  f"{kind.renew_en}")  # fmt: skip
    return _f(kind.check, OK, f"{kind.vi} còn {left:.0f} ngày",
              f"{kind.en[0].upper()}{kind.en[1:]} valid {left:.0f} days")  # fmt: skip


def check_platform_certificates(settings: Settings, now: datetime | None = None) -> list[Finding]:
    """Expiry of the platform's own certificates (PDF and XML signing), those made already."""
    from hssk.kernel import certs

    found = []
    for spec in (certs.pdf_spec(settings.data_dir), certs.xml_spec(settings.data_dir)):
        if spec.cert_path.exists():
            kind = PLATFORM_CERTS["pdf-cert" if spec.key_type is certs.KeyType.ec_p256
                                  else "xml-cert"]  # fmt: skip
            found.append(check_certificate(spec.cert_path, now, kind))
    return found


def check_outbox(conn: psycopg.Connection[Any]) -> Finding:
    row = conn.execute(
        """SELECT extract(epoch FROM now() - min(next_try)),
                  count(*) FILTER (WHERE status = 'dead')
           FROM outbox WHERE status IN ('pending', 'sending', 'dead')
             AND (status = 'dead' OR next_try <= now())"""
    ).fetchone()
    age, dead = (float(row[0] or 0), int(row[1])) if row else (0.0, 0)
    if age >= OUTBOX_FAIL_S:
        status = FAIL
    elif age >= OUTBOX_WARN_S:
        status = WARN
    else:
        status = OK
    vi = f"sự kiện chờ gửi lâu nhất {age / 60:.0f} phút, {dead} sự kiện hỏng (dead)"
    en = f"oldest due outbox event waits {age / 60:.0f} min, {dead} dead-lettered"
    if status != OK:
        vi += ": xem 'hssk jobs list --job outbox.deliver', 'systemctl status hssk-worker'"
        en += ": see 'hssk jobs list --job outbox.deliver', 'systemctl status hssk-worker'"
    elif dead:
        status = WARN
        vi += ": xem 'hssk share dead', gửi lại bằng 'hssk share replay'"
        en += ": see 'hssk share dead', send again with 'hssk share replay'"
    return _f("outbox", status, vi, en)


def check_log_partitions(conn: psycopg.Connection[Any]) -> Finding:
    """The month partitions of the logs: next month's made ahead, no row in a default one."""
    from hssk.db import monthly
    from hssk.ops.tasks import LOGS

    stray = {t: n for t in LOGS if (n := monthly.stray_rows(conn, t))}
    ahead = conn.execute(
        "SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + interval '1 month')"
        " AT TIME ZONE 'UTC'"
    ).fetchone()[0]  # type: ignore[index]
    missing = [
        t for t in LOGS
        if not any(m.start is not None and m.start <= ahead < m.end  # type: ignore[operator]
                   for m in monthly.months(conn, t))
    ]  # fmt: skip
    if not stray and not missing:
        return _f("log_partitions", OK, "nhật ký có sẵn phân vùng tháng tới",
                  "the logs have next month's partitions")  # fmt: skip
    rows = ", ".join(f"{t} {n:,}" for t, n in stray.items())
    vi = "; ".join(
        ([f"dòng nằm ở phân vùng mặc định ({rows})"] if stray else [])
        + ([f"chưa có phân vùng tháng tới ({', '.join(missing)})"] if missing else [])
    )
    en = "; ".join(
        ([f"rows in a default partition ({rows})"] if stray else [])
        + ([f"next month's partition missing ({', '.join(missing)})"] if missing else [])
    )
    return _f("log_partitions", WARN, f"{vi}: chạy 'hssk jobs run --job logs.partitions'",
              f"{en}: run 'hssk jobs run --job logs.partitions'")  # fmt: skip


def check_jobs(conn: psycopg.Connection[Any]) -> Finding:
    from hssk.ops.jobs import schedule

    found = schedule(conn)
    if not found:
        return _f("jobs", WARN, "tác vụ định kỳ chưa chạy lần nào: bật hssk-worker",
                  "recurring jobs never ran: start hssk-worker (systemctl enable --now hssk-worker)")  # fmt: skip
    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    late = [s.name for s in found
            if (now - s.next_run).total_seconds() > JOB_LATE_FACTOR * max(s.every_s, 60)]  # fmt: skip
    failing = [s.name for s in found if s.last_status == "failed"]
    if late:
        return _f("jobs", FAIL,
                  f"tác vụ quá hạn ({', '.join(late)}): hssk-worker không chạy? "
                  "systemctl status hssk-worker",
                  f"jobs overdue ({', '.join(late)}): is hssk-worker running? "
                  "systemctl status hssk-worker")  # fmt: skip
    if failing:
        return _f("jobs", WARN if "audit.verify" not in failing else FAIL,
                  f"tác vụ lỗi lần chạy cuối ({', '.join(failing)}): hssk jobs list --failed",
                  f"jobs failed on their last run ({', '.join(failing)}): hssk jobs list --failed")  # fmt: skip
    return _f("jobs", OK, f"{len(found)} tác vụ đúng lịch", f"{len(found)} jobs on schedule")


def run_checks(
    settings: Settings, url: str | None, *, tls_cert: Path | None = None
) -> Iterator[Finding]:
    """Every check, in order; the database checks only when it answers."""
    yield check_secrets(settings)
    disks = [settings.data_dir]
    if not settings.database_url:
        disks.append(settings.data_dir / "pg")
    yield check_disk(disks)
    if tls_cert:
        yield check_certificate(tls_cert)
    yield from check_platform_certificates(settings)
    if url is None:
        return
    try:
        conn = psycopg.connect(url, connect_timeout=5, autocommit=True)
    except psycopg.Error as exc:
        yield _f("database", FAIL,
                 f"không kết nối được CSDL: {str(exc).strip()[:200]}; kiểm tra HSSK_DATABASE_URL "
                 "và 'systemctl status postgresql'",
                 f"cannot reach the database: {str(exc).strip()[:200]}; check HSSK_DATABASE_URL "
                 "and 'systemctl status postgresql'")  # fmt: skip
        return
    with conn:
        version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
        yield _f("database", OK, f"CSDL trả lời (PostgreSQL {version})",
                 f"database answers (PostgreSQL {version})")  # fmt: skip
        checks: list[Callable[[psycopg.Connection[Any]], Finding]] = [
            check_migrations, check_clock, check_outbox, check_log_partitions, check_jobs,
        ]  # fmt: skip
        for check in checks:
            try:
                yield check(conn)
            except psycopg.errors.UndefinedTable:
                yield _f(check.__name__.removeprefix("check_"), FAIL,
                         "bảng chưa có: chạy 'hssk db migrate'",
                         "table missing: run 'hssk db migrate'")  # fmt: skip
