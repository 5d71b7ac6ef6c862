"""``hssk demo``: a synthetic district of Hà Nội loaded into the embedded database, once.

Generates the district's source files (hssk.synth), loads them the way a province would
(facilities, registers, immunization, hospital check-ins and files, station entries), adds a
curated family whose book shows every section (hssk.web.demo), demo accounts, and computes
completeness. Every person is synthetic.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from hssk.db import Database, open_database
from hssk.kernel.config import load_settings

DISTRICT = "Hà Đông"  # an old district of Hà Nội; the curated family lives there too
SUPERVISOR = "syt.giamsat"
ADMIN = "admin"
INTEGRATION = "he-thong.bhyt"  # a national system client (FHIR API with system scopes)
# (kind, source files under the feeds directory), in the order a province would load them
LOADS = (
    ("facilities", "facilities.csv"),
    ("population", "population"),
    ("insurance", "insurance"),
    ("immunization", "immunization"),
    ("xml130", "checkin"),
    ("xml130", "his"),
    ("station", "station"),
)


def _loaded(db: Database) -> bool:
    from hssk.access import accounts

    with db.connection() as conn:
        return accounts.find_account(conn, ADMIN) is not None


def prepare_demo(persons: int, seed: int, console: Console) -> None:
    """Generate and load the demo district unless it is already there."""
    os.environ["HSSK_DEMO"] = "1"
    settings = load_settings()
    db = open_database(settings)
    try:
        if _loaded(db):
            console.print("[green]Demo data already loaded[/] (delete .hssk to start again).")
        else:
            _load(db, settings.data_dir / "demo-feeds", persons, seed, console)
        _show_accounts(db, console)
    finally:
        db.close()


def _load(db: Database, feeds: Path, persons: int, seed: int, console: Console) -> None:
    from hssk.access import accounts
    from hssk.catalog import completeness
    from hssk.ingest.runner import ingest
    from hssk.synth import generate
    from hssk.web.demo import PASSWORD, seed_family

    started = time.perf_counter()
    console.print(f"[bold]Tạo dữ liệu giả lập[/] / generating {persons:,} residents of {DISTRICT}…")
    generate(
        feeds, persons, province="01", seed=seed, district=DISTRICT, progress=True, console=console
    )
    columns = (
        TextColumn("{task.description:<28}"),
        BarColumn(),
        TextColumn("{task.completed:,} records"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as bar:
        for kind, rel in LOADS:
            task = bar.add_task(f"nạp / load {rel}", total=None)

            def tick(done: int, _files: int, _task: TaskID = task) -> None:
                bar.update(_task, completed=done)

            summary = ingest(db, kind, [feeds / rel], progress=tick)
            bar.update(task, total=summary.records or 1, completed=summary.records or 1)
    with db.connection() as conn:
        seed_family(conn)
        accounts.create_account(conn, ADMIN, "staff", unit_id="SYT01", roles=("admin",),
                                password=PASSWORD, display_name="Quản trị hệ thống")  # fmt: skip
        accounts.create_account(conn, SUPERVISOR, "staff", unit_id="SYT01", roles=("supervisor",),
                                password=PASSWORD, display_name="Giám sát Sở Y tế")  # fmt: skip
        accounts.create_unit(conn, "BHXH-VN", "external", "Cơ sở dữ liệu quốc gia về bảo hiểm")
        accounts.create_account(conn, INTEGRATION, "system", unit_id="BHXH-VN",
                                scopes=("system/*.read",), display_name="Hệ thống BHXH (thử)")  # fmt: skip
    result = completeness.run(db)
    console.print(
        f"[green]Đã nạp xong[/] / loaded in {time.perf_counter() - started:.0f} s "
        f"(completeness of {result.persons:,} persons computed)."
    )


def _show_accounts(db: Database, console: Console) -> None:
    from hssk.web.demo import PASSWORD

    table = Table(title="Tài khoản trình diễn / demo accounts (synthetic)")
    for col in ("who", "log in at", "user", "secret"):
        table.add_column(col)
    table.add_row("Người dân / resident", "/book/login", "CCCD 001190012345 or 0912345678",
                  "one-time code: see /dev/sms")  # fmt: skip
    table.add_row("Bác sĩ / clinician", "/staff/login", "bs.lan", PASSWORD)
    table.add_row("Trạm y tế / station", "/staff/login", "tyt.hung", PASSWORD)
    table.add_row("Sở Y tế / supervisor", "/staff/login", SUPERVISOR, PASSWORD)
    table.add_row("Quản trị / admin", "/staff/login", ADMIN, PASSWORD)
    table.add_row("Hệ thống / FHIR client", "/fhir", INTEGRATION,
                  f"TOKEN=$(hssk access token --account {INTEGRATION})")  # fmt: skip
    console.print(table)
