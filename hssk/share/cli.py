"""``hssk share``: delivery worker, simulators, partners, events (list, dead letters, replay /
resend) and the platform's signing certificate."""

from __future__ import annotations

import logging
import signal
import threading
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from hssk.db import open_database

app = typer.Typer(
    no_args_is_help=True, help="Chia sẻ dữ liệu ra hệ thống quốc gia / outbound sharing."
)
console = Console()


@app.command()
def simulator(
    port: int = typer.Option(8790, help="Port on 127.0.0.1."),
    fail_rate: float = typer.Option(0.0, "--fail-rate", min=0, max=1, help="Share of 503 answers."),
    slow_ms: int = typer.Option(0, "--slow-ms", min=0, help="Delay of every answer (ms)."),
    reject_rate: float = typer.Option(0.0, "--reject-rate", min=0, max=1, help="Share of 422."),
    seed: int | None = typer.Option(None, help="Random seed (reproducible failures)."),
    record: Path | None = typer.Option(None, help="JSON-lines file of accepted events."),
) -> None:
    """Run a partner simulator on loopback (records events, dedupes by Idempotency-Key)."""
    from hssk.share.simulator import SimState, serve

    if fail_rate + reject_rate > 1:
        raise typer.BadParameter("--fail-rate + --reject-rate must not exceed 1")
    state = SimState(fail_rate, slow_ms, reject_rate, seed, record)
    server = serve(port, state)
    console.print(f"partner simulator on http://127.0.0.1:{port} (stats: /_stats)", highlight=False)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@app.command("channel-simulator")
def channel_simulator(
    port: int = typer.Option(8791, help="Port on 127.0.0.1."),
    trust: list[Path] = typer.Option(
        [],
        "--trust",
        exists=True,
        dir_okay=False,
        help="Certificate (PEM) whose signatures are accepted; repeat for several.",
    ),
    token: str | None = typer.Option(None, help="accessToken required on every call."),
    password: str | None = typer.Option(
        None, help="Issue tokens at /api/token/take for this password (then required)."
    ),
    fail_rate: float = typer.Option(0.0, "--fail-rate", min=0, max=1, help="Share of 503."),
    seed: int | None = typer.Option(None, help="Random seed (reproducible failures)."),
) -> None:
    """Run the insurance gateway and health-check hub simulators (strict format checks)."""
    from cryptography import x509

    from hssk.share.channel_sim import GATEWAY_PATHS, HUB_PATH, ChannelState, serve
    from hssk.share.ksk import hub

    certs = [x509.load_pem_x509_certificate(p.read_bytes()) for p in trust]
    hub()  # the templates load before the first call, not while a sender waits
    server = serve(port, ChannelState(certs, token, password, fail_rate, seed))
    console.print(
        f"channel simulator on http://127.0.0.1:{port}{GATEWAY_PATHS[0]} and {HUB_PATH}",
        highlight=False,
    )
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@app.command()
def certificate() -> None:
    """Print the platform's XML-signing certificate (PEM): register it with the gateway and
    the hub (and give it to the simulator with --trust)."""
    from hssk.kernel.config import load_settings
    from hssk.share.xmlsign import platform_signer

    print(platform_signer(load_settings()).certificate_pem().decode(), end="")


@app.command()
def worker(
    batch: int = typer.Option(200, min=1, help="Events claimed per round."),
    concurrency: int = typer.Option(8, min=1, help="Parallel requests."),
    lease: float = typer.Option(60.0, help="Seconds an event stays leased to this worker."),
    base_delay: float = typer.Option(1.0, help="First retry delay (s); doubles each attempt."),
    max_delay: float = typer.Option(600.0, help="Longest retry delay (s)."),
    until_idle: bool = typer.Option(False, help="Stop when nothing is pending."),
    max_seconds: float | None = typer.Option(None, help="Stop after this many seconds."),
    partners_file: Path | None = typer.Option(
        None, "--partners", help="Load this partner file into the database first."
    ),
) -> None:
    """Deliver outbox events to the partners (retries, backoff, dead letters)."""
    from hssk.share import partners
    from hssk.share.worker import WorkerConfig, run

    logging.basicConfig(level=logging.INFO)
    db = open_database()
    if partners_file:
        with db.connection() as conn:
            partners.sync(conn, partners.read_file(partners_file))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    cfg = WorkerConfig(batch, concurrency, lease, base_delay, max_delay)
    try:
        stats = run(db, cfg, stop=stop, until_idle=until_idle, max_seconds=max_seconds)
    except KeyboardInterrupt:
        return
    finally:
        db.close()
    rate = stats.delivered / stats.seconds if stats.seconds else 0.0
    console.print(
        f"delivered {stats.delivered}, retried {stats.retried}, dead {stats.dead} "
        f"in {stats.seconds:.1f}s ({rate:.0f}/s)"
    )


partners_app = typer.Typer(no_args_is_help=True, help="Partner configuration.")
app.add_typer(partners_app, name="partners")


@partners_app.command("sync")
def partners_sync(file: Path | None = typer.Option(None, help="Partner JSON file.")) -> None:
    """Load the partner file (default: the shipped one or HSSK_SHARE_PARTNERS)."""
    from hssk.share import partners

    found = partners.read_file(file)
    db = open_database()
    with db.connection() as conn:
        partners.sync(conn, found)
    db.close()
    console.print(f"{len(found)} partners loaded: {', '.join(p.id for p in found)}")


@partners_app.command("list")
def partners_list() -> None:
    """Show the configured partners."""
    from hssk.share import partners

    db = open_database()
    with db.connection() as conn:
        found = partners.load(conn, enabled_only=False)
    db.close()
    table = Table("id", "enabled", "catalog", "endpoint", "sensitive allowed")
    for p in found.values():
        table.add_row(p.id, str(p.enabled), p.catalog, p.endpoint, ", ".join(p.sensitive_labels))
    console.print(table)


@app.command()
def status() -> None:
    """Events per partner and status."""
    from hssk.share import outbox

    db = open_database()
    with db.connection() as conn:
        counts = outbox.counts(conn)
    db.close()
    table = Table("partner", "status", "events")
    for (partner, state), n in sorted(counts.items()):
        table.add_row(partner, state, f"{n:,}")
    console.print(table)


@app.command("list")
def list_events(
    partner: str | None = typer.Option(None, help="Only this partner or channel."),
    status: str | None = typer.Option(None, help="pending, sending, delivered or dead."),
    overdue: bool = typer.Option(False, help="Only events past their due time."),
    limit: int = typer.Option(50, min=1),
) -> None:
    """Events, oldest first: what each is about, its state, due time and lag."""
    from hssk.share import outbox

    db = open_database()
    with db.connection() as conn:
        rows = outbox.events(conn, partner=partner, status=status, overdue=overdue, limit=limit)
    db.close()
    table = Table("id", "partner", "subject / person", "status", "tries", "due", "lag",
                  "result")  # fmt: skip
    for r in rows:
        late = " quá hạn/overdue" if r["overdue"] else ""
        table.add_row(
            str(r["id"]), r["partner"], r["subject"] or f"person {r['person_id']}", r["status"],
            str(r["attempts"]), f"{r['due_at']:%Y-%m-%d %H:%M}{late}" if r["due_at"] else "",
            f"{r['lag_s'] / 60:.0f} min", str(r["last_status"] or "") + " "
            + (r["last_error"] or "")[:60],
        )  # fmt: skip
    console.print(table)


@app.command()
def dead(partner: str | None = typer.Option(None), limit: int = typer.Option(100)) -> None:
    """List dead-lettered events (partner refused, or out of attempts)."""
    from hssk.share import outbox

    db = open_database()
    with db.connection() as conn:
        rows = outbox.dead_letters(conn, partner, limit)
    db.close()
    table = Table("id", "partner", "person", "attempts", "HTTP", "error")
    for r in rows:
        table.add_row(
            str(r["id"]), r["partner"], str(r["person_id"]), str(r["attempts"]),
            str(r["last_status"] or ""), (r["last_error"] or "")[:80],
        )  # fmt: skip
    console.print(table)


@app.command()
def replay(
    partner: str | None = typer.Option(None, help="Only this partner's events."),
    event_id: list[int] = typer.Option([], "--id", help="Only these outbox ids."),
    status: str = typer.Option("dead", help="Status of the events to send again."),
    rebuild: bool = typer.Option(
        False, help="Channels: build the content again from the current record (after a fix)."
    ),
) -> None:
    """Send events again (same idempotency key; same content unless --rebuild)."""
    from hssk.share import outbox

    db = open_database()
    with db.connection() as conn:
        n = outbox.replay(conn, partner=partner, ids=event_id, status=status, rebuild=rebuild)
    db.close()
    console.print(f"{n} events queued again{' (rebuilt)' if rebuild else ''}")


app.command("resend", help="Same as replay.")(replay)


@app.command()
def purge(
    days: int | None = typer.Option(
        None, min=0, help="Keep this many days (default: HSSK_OUTBOX_RETENTION_DAYS, 30)."
    ),
) -> None:
    """Delete delivered events older than the retention period (run daily)."""
    from hssk.kernel.config import load_settings
    from hssk.share import outbox

    keep = days if days is not None else load_settings().outbox_retention_days
    db = open_database()
    total = outbox.purge_all(db, keep)
    db.close()
    console.print(f"{total:,} delivered events older than {keep} days purged")
