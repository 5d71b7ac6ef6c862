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
from hssk.kernel.config import load_settings, rotate_secret, secret_id

app = typer.Typer(no_args_is_help=True, help="Khóa của nền tảng / the platform's keys.")
console = Console()


class What(StrEnum):
    token = "token"  # the installation secret: access tokens, one-time codes
    signing = "signing"  # the platform's document signing key (PDFs, hssk access sign)
    unit = "unit"  # a facility's or partner's key / certificate


# How long the old key verifies by default: the longest token an operator issues is a day;
# a signed document is kept for years; a facility switches its HIS over within a week.
DEFAULT_OVERLAP_H = {What.token: 24, What.signing: 24 * 3650, What.unit: 24 * 7}


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
    ends. Audited (action key-rotate). Back up afterwards (systemctl start hssk-backup)."""
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
    console.print(table)
