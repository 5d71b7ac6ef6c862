"""``hssk verify``: check a document signed by the platform, offline.

A PDF carries its own PAdES signature (``pdfsign``): the answer says whether the file is
intact, who signed it and when, in Vietnamese and English. Any other document is checked
against its detached JWS (``FILE.sig``)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from hssk.access import pdfsign, signing
from hssk.kernel.config import load_settings

console = Console()


def verify(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="The signed document."),
    signature: Path | None = typer.Option(
        None,
        "--signature",
        "-s",
        help="Detached signature (default: FILE.sig; a PDF without one is checked inside).",
    ),
    key: Path | None = typer.Option(
        None,
        "--key",
        "--cert",
        help="Trusted public key (PEM) or certificate; default: this platform's.",
    ),
) -> None:
    """Verify a platform-signed document (exit 0 valid, 1 invalid)."""
    data = path.read_bytes()
    sig_path = signature or path.with_name(path.name + ".sig")
    # a PDF carries its signature inside, unless one was issued beside it (older documents)
    if data.startswith(b"%PDF") and not sig_path.exists():
        _verify_pdf(path, data, key)
        return
    if not sig_path.exists():
        console.print(
            f"[red]không có chữ ký / no signature[/]: {sig_path} not found; pass --signature FILE"
        )
        raise typer.Exit(1)
    trusted = None
    text = sig_path.read_text()
    if key is not None:
        trusted = signing.load_public_file(key)
    else:
        settings = load_settings()
        if (settings.data_dir / signing.PLATFORM_KEY_FILE).exists():
            # the key the signature names, among the current and the retired ones still valid
            keys = signing.platform_public_keys(settings)
            kid = (signing.jws_header(text) or {}).get("kid")
            trusted = next((k for k in keys if signing.key_id(k) == kid), keys[0])
    ok, reason = signing.verify_document(data, text, trusted)
    if ok:
        console.print(f"[green]HỢP LỆ / VALID[/] {path.name}: {reason}")
        return
    console.print(f"[red]KHÔNG HỢP LỆ / INVALID[/] {path.name}: {reason}")
    raise typer.Exit(1)


def _verify_pdf(path: Path, data: bytes, cert: Path | None) -> None:
    # the platform's current certificate and those rotated out: a PDF signed before a rotation
    trusted = (
        [pdfsign.load_certificate(cert)]
        if cert is not None
        else pdfsign.platform_certificates(load_settings())
    )
    check = pdfsign.check_pdf(data, trusted)
    if check.intact:
        console.print(f"[green]HỢP LỆ / VALID[/] {path.name}: {check.reason}", soft_wrap=True)
        return
    console.print(f"[red]KHÔNG HỢP LỆ / INVALID[/] {path.name}: {check.reason}", soft_wrap=True)
    raise typer.Exit(1)
