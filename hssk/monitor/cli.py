"""``hssk report``: scheduled jobs (completeness, data quality, daily snapshot) and exports."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from hssk.db import open_database

app = typer.Typer(no_args_is_help=True, help="Báo cáo giám sát / supervision reports.")
console = Console()


def _area(key: str | None):  # type: ignore[no-untyped-def]
    from hssk.monitor import areas

    return areas.parse(key) if key else areas.ALL


@app.command()
def completeness(batch: int = typer.Option(500, min=1, help="Persons per transaction.")) -> None:
    """Recompute the completeness of persons whose record changed (incremental job)."""
    from hssk.catalog import completeness as comp
    from hssk.monitor import rollups

    db = open_database()
    # the monitor's rollups folded on the way too, as the scheduled job does (a whole
    # registry's scoring would otherwise pile up its facility deltas until the end)
    result = comp.run(db, batch=batch, compact=rollups.compact)
    with db.connection() as conn:
        rollups.compact(conn)
    db.close()
    rate = result.persons / result.seconds if result.seconds else 0
    console.print(f"{result.persons:,} persons scored in {result.seconds:.1f}s ({rate:,.0f}/s)")


@app.command("rollups")
def rollups_cmd(
    rebuild: bool = typer.Option(False, help="Recompute them from the registry (a repair)."),
) -> None:
    """Check the per-area rollups against a full recomputation (reads the whole registry)."""
    from hssk.monitor import rollups

    db = open_database()
    with db.connection() as conn:
        if rebuild:
            rollups.rebuild(conn)
        wrong = rollups.check(conn)
    db.close()
    for name, rows in wrong.items():
        console.print(f"[red]{name}[/]: {len(rows)} rows differ, e.g. {rows[:2]}")
    if wrong:
        raise typer.Exit(1)
    console.print("rollups = recomputation / rollups agree with the registry")


@app.command()
def quality(kind: list[str] = typer.Option([], help="Only these kinds.")) -> None:
    """Find persons with conflicting ids, suspected duplicates, visits after death, children
    without a guardian: lists for commune staff (see /supervision/quality)."""
    from hssk.monitor import quality as q

    db = open_database()
    with db.connection() as conn:
        found = q.run(conn, kind or None)
    db.close()
    table = Table("loại / kind", "số lượng / count")
    for k, n in found.items():
        table.add_row(f"{q.KINDS[k][0]} / {q.KINDS[k][1]}", f"{n:,}")
    console.print(table)


@app.command()
def snapshot(area: list[str] = typer.Option([], help="Area keys, e.g. province:01.")) -> None:
    """Store today's key shares per area (the trend charts read them); run daily."""
    from hssk.monitor import areas, metrics

    db = open_database()
    with db.connection() as conn:
        keys = area or metrics.snapshot_area_keys(conn)
        for key in keys:
            metrics.snapshot(conn, areas.parse(key))
    db.close()
    console.print(f"snapshot stored for {len(keys)} areas")


@app.command()
def summary(
    area: str | None = typer.Option(None, help="Area key (default: everything)."),
    catalog: str | None = typer.Option(None, help="Field catalog (default hanoi-73)."),
) -> None:
    """Print the coverage and target progress of an area."""
    from hssk.monitor import metrics

    db = open_database()
    with db.connection() as conn:
        data = metrics.summary(conn, _area(area), catalog=catalog)
    db.close()
    cov = data["coverage"]
    table = Table("chỉ số / metric", "giá trị / value")
    for key in ("residents", "with_record", "standardized", "verified", "households", "deaths",
                "with_bhyt", "with_cccd", "children_u6", "children_u6_with_id"):  # fmt: skip
        share = cov.get(f"{key}_share")
        table.add_row(key, f"{cov[key]:,}" + (f"  ({share:.1%})" if share is not None else ""))
    table.add_row("completeness", f"{cov['completeness']:.1%} ({data['catalog']['name']})")
    for p in data["progress"]:
        mark = "✓" if p["reached"] else "✗"
        table.add_row(f"target: {p['metric']}", f"{p['value']:.1%} / {p['goal']:.0%} {mark}")
    f = data["facilities"]
    table.add_row("facilities", f"{f['ok']} ok, {f['stopped']} stopped, {f['never']} never")
    console.print(table)


@app.command("export")
def export_table(
    out: Path = typer.Argument(..., help="File to write (.csv or .xlsx)."),
    table: str = typer.Option("communes", help="communes, districts or facilities."),
    area: str | None = typer.Option(None, help="Area key (default: everything)."),
    catalog: str | None = typer.Option(None),
    lang: str = typer.Option("vi", help="vi or en (headers, statuses, field names)."),
) -> None:
    """Export a supervision table to CSV or Excel, as the supervision page exports it."""
    from hssk.monitor import export, metrics, tables

    if out.suffix not in (".csv", ".xlsx"):
        raise typer.BadParameter("the file must end in .csv or .xlsx")
    if table not in ("communes", "districts", "facilities"):  # no named lists from here
        raise typer.BadParameter("table must be communes, districts or facilities")
    scope = _area(area)
    db = open_database()
    with db.connection() as conn:
        header, rows = tables.export_table(conn, scope, table,
                                           catalog or metrics.completeness_default(),
                                           "en" if lang == "en" else "vi", named=False)  # fmt: skip
    db.close()
    data = export.to_csv(header, rows) if out.suffix == ".csv" else export.to_xlsx(header, rows)
    out.write_bytes(data)
    console.print(f"{len(rows)} rows → {out}")
