"""``hssk access``: units, accounts, keys and tokens (operators on the server)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import typer
from rich.console import Console

from hssk.access import accounts, auth, signing
from hssk.access.actor import PLATFORM
from hssk.access.audit import record as audit
from hssk.db import open_database
from hssk.kernel.config import load_settings

app = typer.Typer(no_args_is_help=True)
console = Console()


@contextmanager
def _conn() -> Iterator[psycopg.Connection[Any]]:
    db = open_database()
    try:
        with db.connection() as conn:
            yield conn
    finally:
        db.close()


_Loader = Callable[[psycopg.Connection[Any], Path], accounts.ImportResult]


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]Lỗi / error:[/] {message}")
    return typer.Exit(1)


def _account(conn: psycopg.Connection[Any], username: str) -> accounts.Account:
    acc = accounts.find_account(conn, username)
    if acc is None:
        raise _fail(f"no account {username!r} (see `hssk access import-accounts`)")
    return acc


@app.command("add-unit")
def add_unit(
    unit_id: str,
    kind: str = typer.Argument(help=", ".join(sorted(accounts.UNIT_KINDS))),
    name: str = typer.Argument(...),
    parent: str | None = typer.Option(None, help="Parent unit id."),
    facility_code: str | None = typer.Option(None, help="Mã CSKCB (5 digits)."),
    province: str | None = typer.Option(None),
    commune: str | None = typer.Option(None, help="Commune code (2025)."),
    commune_old: str | None = typer.Option(None, help="Commune code before 2025."),
) -> None:
    """Create or update a unit (Sở Y tế, centre, station, hospital, clinic, external system)."""
    with _conn() as conn:
        try:
            accounts.create_unit(conn, unit_id, kind, name, parent_id=parent,
                                 facility_code=facility_code, province_code=province,
                                 commune_code=commune, commune_code_old=commune_old)  # fmt: skip
        except accounts.AccountError as exc:
            raise _fail(str(exc)) from None
        audit(conn, PLATFORM, "unit-create", outcome="allow", basis="operator",
              detail={"unit": unit_id})  # fmt: skip
    console.print(f"unit [bold]{unit_id}[/] ({kind}) saved")


@app.command("add-account")
def add_account(
    username: str,
    kind: str = typer.Argument(help="staff, clinician, citizen, system"),
    unit: str | None = typer.Option(None, help="Unit id (required except for citizens)."),
    roles: str = typer.Option("", help="Roles separated by ',' (admin, auditor, station ...)."),
    scopes: str | None = typer.Option(None, help="Scopes (space separated; system accounts)."),
    phone: str | None = typer.Option(None),
    person: int | None = typer.Option(None, help="Person id (citizens)."),
    name: str | None = typer.Option(None, help="Display name."),
    password: bool = typer.Option(False, "--password", help="Prompt for a password."),
) -> None:
    """Create one account (active)."""
    pw = typer.prompt("password", hide_input=True, confirmation_prompt=True) if password else None
    with _conn() as conn:
        try:
            acc = accounts.create_account(
                conn, username, kind, unit_id=unit, roles=[r for r in roles.split(",") if r],
                scopes=scopes.split() if scopes is not None else None, person_id=person,
                phone=phone, display_name=name, password=pw, operator=True)  # fmt: skip
        except accounts.AccountError as exc:
            raise _fail(str(exc)) from None
        # the operator alone grants the audit trail and sensitive scopes: kept in the trail
        audit(conn, PLATFORM, "account-create", outcome="allow", basis="operator",
              detail={"account": acc.id, "username": username, "roles": list(acc.roles),
                      "scopes": list(acc.scopes)})  # fmt: skip
    console.print(f"account [bold]{username}[/] id={acc.id} scopes={' '.join(acc.scopes)}")


def _import(file: Path, load: _Loader, action: str, done: str) -> accounts.ImportResult:
    """Load a CSV of units or accounts, audited as ``action``; the rejected lines are listed."""
    with _conn() as conn:
        try:
            result = load(conn, file)
        except accounts.AccountError as exc:
            raise _fail(str(exc)) from None
        audit(conn, PLATFORM, action, outcome="allow", basis="operator",
              detail={"file": file.name, done: result.created,
                      "rejected": len(result.errors)})  # fmt: skip
    return result


def _rejected(result: accounts.ImportResult) -> None:
    for line, name, why in result.errors[:50]:
        console.print(f"  [yellow]line {line}[/] {name}: {why}")
    if len(result.errors) > 50:
        console.print(f"  … and {len(result.errors) - 50:,} more")


@app.command("import-units")
def import_units(file: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Create or update units from a CSV: id,kind,name,parent_id,facility_code,gln,
    province_code,commune_code,commune_code_old,district_code_old."""
    result = _import(file, accounts.import_units, "unit-import", "saved")
    console.print(f"saved [bold green]{result.created:,}[/] units; rejected {len(result.errors):,}")
    _rejected(result)


@app.command("import-accounts")
def import_accounts(file: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Create accounts from a CSV: username,kind,display_name,unit_id,roles,phone,cccd
    (roles separated by ';'). They start inactive: send activation codes afterwards."""
    t0 = time.perf_counter()
    result = _import(file, accounts.import_accounts, "account-import", "created")
    dt = time.perf_counter() - t0
    console.print(
        f"created [bold green]{result.created:,}[/] accounts in {dt:.2f} s "
        f"({result.created / dt if dt else 0:,.0f}/s); rejected {len(result.errors):,}"
    )
    _rejected(result)


@app.command()
def disable(username: str, reason: str = typer.Option(..., help="Why (kept).")) -> None:
    """Disable an account and revoke its refresh tokens."""
    with _conn() as conn:
        acc = _account(conn, username)
        accounts.set_active(conn, acc.id, False, reason)
        audit(conn, PLATFORM, "account-disable", outcome="allow", basis="operator",
              detail={"account": acc.id, "reason": reason})  # fmt: skip
    console.print(f"{username} disabled")


@app.command()
def enable(username: str) -> None:
    """(Re-)enable an account."""
    with _conn() as conn:
        acc = _account(conn, username)
        conn.execute("UPDATE account SET disabled_at = NULL WHERE id = %s", (acc.id,))
        accounts.set_active(conn, acc.id, True)
        audit(conn, PLATFORM, "account-enable", outcome="allow", basis="operator",
              detail={"account": acc.id})  # fmt: skip
    console.print(f"{username} enabled")


@app.command("send-activation")
def send_activation(username: str) -> None:
    """Send an activation / password-reset code to the account's phone (gateway)."""
    with _conn() as conn:
        acc = _account(conn, username)
        if not auth.send_code(conn, load_settings(), acc, "activate"):
            raise _fail("no phone on the account, or too many codes sent recently")
        audit(conn, PLATFORM, "account-activation", outcome="allow", basis="operator",
              detail={"account": acc.id})  # fmt: skip
        phone = accounts.code_phone(conn, acc)
    console.print(f"code sent to {phone}")


@app.command("set-password")
def set_password(username: str) -> None:
    """Set an account's password (prompted) and activate it."""
    pw = typer.prompt("new password", hide_input=True, confirmation_prompt=True)
    with _conn() as conn:
        acc = _account(conn, username)
        try:
            accounts.set_password(conn, acc.id, pw)
        except accounts.AccountError as exc:
            raise _fail(str(exc)) from None
        accounts.set_active(conn, acc.id, True)
        audit(conn, PLATFORM, "password-set", outcome="allow", basis="operator",
              detail={"account": acc.id})  # fmt: skip
    console.print(f"password of {username} set")


@app.command()
def totp(username: str) -> None:
    """Enrol the account in TOTP; prints the otpauth:// URI for the authenticator app."""
    with _conn() as conn:
        acc = _account(conn, username)
        uri = accounts.enroll_totp(conn, acc.id)
        audit(conn, PLATFORM, "totp-enrol", outcome="allow", basis="operator",
              detail={"account": acc.id})  # fmt: skip
    console.print(uri)


@app.command()
def token(
    account: str = typer.Option(..., help="Username."),
    scope: str | None = typer.Option(None, help="Space-separated scopes (default: all)."),
    ttl: int = typer.Option(3600, help="Seconds."),
) -> None:
    """Issue an access token for an account (development, administration)."""
    with _conn() as conn:
        try:
            tok = auth.operator_token(conn, load_settings(), account, scope, ttl)
        except auth.AuthError as exc:
            raise _fail(exc.description) from None
    print(tok.token)


@app.command()
def keygen(
    unit: str,
    out: Path = typer.Option(Path("."), help="Folder for the private key file."),
    alg: str = typer.Option("EdDSA", help="EdDSA (Ed25519) or ES256 (P-256)."),
) -> None:
    """Generate a key pair for a unit: register the public key, write the private one."""
    try:
        private_pem, public_pem = signing.generate_keypair(alg)
    except signing.KeyError_ as exc:
        raise _fail(str(exc)) from None
    with _conn() as conn:
        try:
            entry = signing.register_key(conn, unit, public_pem)
        except signing.KeyError_ as exc:
            raise _fail(str(exc)) from None
        audit(conn, PLATFORM, "key-add", outcome="allow", basis="operator",
              detail={"unit": unit, "kid": entry["kid"]})  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{unit}-{entry['kid']}.pem"
    path.write_bytes(private_pem)
    path.chmod(0o600)
    console.print(f"key {entry['kid']} ({alg}) registered for {unit}; private key: {path}")


@app.command("add-key")
def add_key(unit: str, file: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Register a unit's public key (PEM/DER) or X.509 certificate."""
    with _conn() as conn:
        try:
            entry = signing.register_key(conn, unit, file.read_bytes())
        except signing.KeyError_ as exc:
            raise _fail(str(exc)) from None
        audit(conn, PLATFORM, "key-add", outcome="allow", basis="operator",
              detail={"unit": unit, "kid": entry["kid"]})  # fmt: skip
    console.print(f"key {entry['kid']} ({entry['alg']}) registered for {unit}")


@app.command("revoke-key")
def revoke_key(unit: str, kid: str) -> None:
    """Revoke a unit's key (after registering its successor: key rotation)."""
    with _conn() as conn:
        if not signing.revoke_key(conn, unit, kid):
            raise _fail(f"no active key {kid!r} of unit {unit!r}")
        audit(conn, PLATFORM, "key-revoke", outcome="allow", basis="operator",
              detail={"unit": unit, "kid": kid})  # fmt: skip
    console.print(f"key {kid} of {unit} revoked")


@app.command()
def sign(file: Path = typer.Argument(..., exists=True, dir_okay=False)) -> None:
    """Sign a document with the platform key; writes FILE.sig (detached JWS)."""
    sig = signing.sign_document(load_settings(), file.read_bytes())
    target = file.with_name(file.name + ".sig")
    target.write_text(sig)
    console.print(f"signature written to {target}")
