"""``hssk keys``: rotate the platform's keys with an overlap (the new key signs at once, the old
one still verifies what it signed until the overlap ends), each rotation audited."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from hssk.access import signing
from hssk.access.actor import PLATFORM
from hssk.access.audit import operator_detail
from hssk.access.audit import record as audit
from hssk.db import open_database
from hssk.kernel import certs
from hssk.kernel.config import Settings, load_settings, rotate_secret, secret_id

app = typer.Typer(no_args_is_help=True, help="Khóa của nền tảng / the platform's keys.")
console = Console()


class What(StrEnum):
    token = "token"  # the installation secret: access tokens, one-time codes
    signing = "signing"  # the platform's document signing key (PDFs, hssk access sign)
    unit = "unit"  # a facility's or partner's key / certificate
    pdf_cert = "pdf-cert"  # the certificate PDFs are signed with (PAdES, ECDSA P-256)
    xml_cert = "xml-cert"  # the certificate the channels' XML is signed with (RSA)


class Cert(StrEnum):
    pdf_cert = "pdf-cert"
    xml_cert = "xml-cert"


# How long the old key verifies by default: the longest token an operator issues is a day;
# a signed document is kept for years; a facility switches its HIS over within a week.
# A rotated certificate is kept for good: it verifies the documents it signed while valid.
DEFAULT_OVERLAP_H = {What.token: 24, What.signing: 24 * 3650, What.unit: 24 * 7,
                     What.pdf_cert: 0, What.xml_cert: 0}  # fmt: skip


def cert_spec(settings: Settings, which: str) -> certs.CertSpec:
    return (certs.pdf_spec if which == Cert.pdf_cert else certs.xml_spec)(settings.data_dir)


_AFTER_CERT = {
    Cert.pdf_cert: "PDF ký từ nay dùng chứng thư mới; PDF ký trước vẫn xác minh được / new PDFs "
    "carry the new certificate; PDFs signed before still verify",
    Cert.xml_cert: "gửi chứng thư mới cho cổng giám định và sàn (hssk share certificate) / give "
    "the new certificate to the gateway and the hub (hssk share certificate)",
}


def _audit_cert(settings: Settings, detail: dict[str, object]) -> None:
    db = open_database(settings)
    try:
        with db.connection() as conn:
            audit(conn, PLATFORM, "key-rotate", outcome="allow", basis="operator",
                  detail={**detail, **operator_detail()})  # fmt: skip
    finally:
        db.close()


def _cert_done(which: Cert, verb: str, done: certs.Replaced) -> None:
    console.print(
        f"[green]{verb}[/] {which.value}: {done.old or '—'} → {done.new} (SHA-256), hết hạn / "
        f"expires {done.not_after:%Y-%m-%d}. {_AFTER_CERT[which]}. "
        "Sao lưu ngay / back up now: systemctl start hssk-backup",
        soft_wrap=True,
    )


@app.command()
def rotate(
    what: What = typer.Argument(..., help="token | signing | unit"),
    overlap_hours: float | None = typer.Option(
        None,
        "--overlap-hours",
        help="Hours the old key still verifies (default: token 24, signing 87600, unit 168); "
        "0 = void at once (a suspected leak).",
    ),
    unit: str | None = typer.Option(None, "--unit", help="unit: the unit id."),
    file: Path | None = typer.Option(
        None, "--file", exists=True, dir_okay=False, help="unit: the new public key or certificate."
    ),
) -> None:
    """Đổi khóa / rotate a key: the new one signs now, the old one verifies until the overlap
    ends (a certificate: for good). Audited (action key-rotate). Back up afterwards
    (systemctl start hssk-backup)."""
    if what in (What.pdf_cert, What.xml_cert):
        which = Cert(what.value)
        settings = load_settings()
        spec = cert_spec(settings, which)
        done = certs.rotate(spec)
        _audit_cert(settings, {"what": which.value, "old": done.old, "new": done.new,
                               "source": "self-signed"})  # fmt: skip
        _cert_done(which, "Đã đổi chứng thư / rotated", done)
        return
    overlap = timedelta(hours=DEFAULT_OVERLAP_H[what] if overlap_hours is None else overlap_hours)
    if overlap < timedelta(0):
        raise typer.BadParameter("--overlap-hours must be 0 or more")
    settings = load_settings()
    detail: dict[str, object] = {"what": what.value, "overlap_hours": overlap / timedelta(hours=1),
                                 **operator_detail()}  # fmt: skip
    db = open_database(settings)
    try:
        with db.connection() as conn:
            if what is What.unit:
                if not unit or file is None:
                    raise typer.BadParameter(
                        "cần --unit và --file / unit rotation needs --unit ID --file NEW.pem"
                    )
                try:
                    entry, retired = signing.rotate_unit_key(conn, unit, file.read_bytes(), overlap)
                except signing.KeyError_ as exc:
                    console.print(f"[red]Lỗi / error:[/] {exc}")
                    raise typer.Exit(1) from None
                old, new, until = (
                    ",".join(retired) or None,
                    entry["kid"],
                    datetime.now(UTC) + overlap,
                )
                detail["unit"] = unit
            elif what is What.signing:
                old, new, until = signing.rotate_platform_key(settings, overlap)
            else:
                try:
                    old, new, until = rotate_secret(settings, overlap)
                except ValueError as exc:
                    console.print(f"[red]Lỗi / error:[/] {exc}")
                    raise typer.Exit(1) from None
            detail.update({"old": old, "new": new, "old_valid_until": until.isoformat()})
            audit(conn, PLATFORM, "key-rotate", outcome="allow", basis="operator", detail=detail)
    finally:
        db.close()
    console.print(
        f"[green]Đã đổi khóa[/] / rotated {what.value}: {old or '—'} → {new}; khóa cũ còn xác "
        f"minh đến / the old key verifies until {until:%Y-%m-%d %H:%M} UTC. "
        "Sao lưu ngay / back up now: systemctl start hssk-backup"
    )


@app.command("import-cert")
def import_cert(
    which: Cert = typer.Argument(..., help="pdf-cert | xml-cert"),
    cert: Path = typer.Option(..., "--cert", exists=True, dir_okay=False,
                              help="The CA's certificate (PEM; the chain may follow the leaf)."),
    key: Path = typer.Option(..., "--key", exists=True, dir_okay=False,
                             help="Its private key (PEM, unencrypted; deleted by you after)."),
) -> None:  # fmt: skip
    """Dùng chứng thư do CA cấp / install a certificate a CA issued (e.g. a Vietnamese public
    CA's organisation certificate) with its key: checked to match and be valid now; the old
    certificate is kept so what it signed still verifies. Audited (action key-rotate)."""
    settings = load_settings()
    try:
        done = certs.import_pair(cert_spec(settings, which), cert, key)
    except certs.CertificateError as exc:
        console.print(f"[red]Lỗi / error:[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    issuer = certs.load_certificate(cert).issuer.rfc4514_string()
    _audit_cert(settings, {"what": which.value, "old": done.old, "new": done.new,
                           "source": "import", "issuer": issuer})  # fmt: skip
    _cert_done(which, "Đã cài chứng thư / installed", done)


@app.command("list")
def list_keys() -> None:
    """The platform's keys: which one signs, which retired ones still verify, until when."""
    settings = load_settings()
    table = Table("khóa / key", "id", "vai trò / role", "đến / until (UTC)")
    table.add_row("token", secret_id(settings.secret_key()), "ký / signs", "")
    valid = set(settings.secret_keys()[1:])
    if settings.retired_secrets_file.exists():
        for k in json.loads(settings.retired_secrets_file.read_text()):
            if k["key"] in valid:
                table.add_row("token", secret_id(k["key"]), "xác minh / verifies", k["until"][:16])
    keys = signing.platform_public_keys(settings)
    table.add_row("signing", signing.key_id(keys[0]), "ký / signs", "")
    now = datetime.now(UTC).isoformat()
    for k in signing.retired_platform_keys(settings):
        if k["until"] > now:
            table.add_row("signing", k["kid"], "xác minh / verifies", k["until"][:16])
    for which in Cert:
        spec = cert_spec(settings, which)
        for n, c in enumerate(certs.trusted(spec)):
            role = "ký / signs" if n == 0 and spec.cert_path.exists() else "xác minh / verifies"
            table.add_row(which.value, certs.fingerprint(c), role,
                          f"{c.not_valid_after_utc:%Y-%m-%d %H:%M}")  # fmt: skip
    console.print(table)
