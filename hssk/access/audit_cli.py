"""``hssk audit``: verify the hash chain of the audit trail."""

from __future__ import annotations

import time

import typer
from rich.console import Console

from hssk.access.audit import verify_chain
from hssk.db import open_database
from hssk.kernel.config import load_settings

ANCHOR_FILE = "audit_anchor.json"  # outside the database: survives a superuser's TRUNCATE

app = typer.Typer(no_args_is_help=True)
console = Console()


@app.command()
def verify(
    anchor: bool = typer.Option(True, help="Record the head seen, to catch a deleted tail later."),
    since_anchor: bool = typer.Option(
        False, "--since-anchor", help="Only rows after the last verified head (quick run)."
    ),
) -> None:
    """Recompute the chain; exit 1 and name the first bad row if anything was altered."""
    settings = load_settings()
    db = open_database(settings)
    t0 = time.perf_counter()
    try:
        with db.connection() as conn:
            report = verify_chain(conn, anchor=anchor, anchor_file=settings.data_dir / ANCHOR_FILE,
                                  since_anchor=since_anchor)  # fmt: skip
    finally:
        db.close()
    dt = time.perf_counter() - t0
    if report.ok:
        console.print(
            f"[green]OK[/] — chuỗi nhật ký nguyên vẹn / audit chain intact: "
            f"{report.checked:,} events up to seq {report.last_seq} ({dt:.1f} s)"
        )
        return
    where = f" at seq [bold]{report.first_bad_seq}[/]" if report.first_bad_seq is not None else ""
    console.print(
        f"[red]TAMPERED[/] — nhật ký bị sửa / audit chain broken{where}: {report.reason} "
        f"({report.checked:,} events verified)"
    )
    raise typer.Exit(1)


@app.command()
def stats() -> None:
    """Counts of audit events by action and outcome."""
    db = open_database()
    try:
        with db.connection() as conn:
            rows = conn.execute(
                "SELECT action, outcome, count(*) FROM audit_event GROUP BY 1, 2 ORDER BY 3 DESC"
            ).fetchall()
    finally:
        db.close()
    for action, outcome, n in rows:
        console.print(f"{action:>22} {outcome:>6} {n:>10,}")


@app.command("break-glass")
def break_glass(
    all_: bool = typer.Option(False, "--all", help="Include reviewed ones."),
    limit: int = typer.Option(50),
) -> None:
    """Emergency accesses awaiting review (who, whose record, why, when)."""
    db = open_database()
    try:
        with db.connection() as conn:
            rows = conn.execute(
                """SELECT b.id, b.opened_at, coalesce(a.display_name, b.account_id), b.unit_id,
                          b.person_id, b.reason, b.review_outcome
                   FROM break_glass b LEFT JOIN account a ON a.id::text = b.account_id
                   WHERE %s OR b.reviewed_at IS NULL ORDER BY b.id DESC LIMIT %s""",
                (all_, limit),
            ).fetchall()
    finally:
        db.close()
    if not rows:
        console.print("không có truy cập khẩn cấp chờ xem xét / no emergency access pending review")
    for bid, at, who, unit, person, reason, outcome in rows:
        console.print(
            f"#{bid} {at:%Y-%m-%d %H:%M} [bold]{who}[/] ({unit}) → person {person}: {reason} "
            f"[dim]{outcome or 'chờ xem xét / pending'}[/]"
        )
