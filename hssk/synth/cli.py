"""``hssk synth``: write a synthetic province (or district) and its source feeds, with truth."""

from __future__ import annotations

import os
from pathlib import Path

import typer
from rich.console import Console

from hssk.synth.errors import ErrorModel
from hssk.synth.generate import generate
from hssk.synth.geo import GeoError

app = typer.Typer(
    help="Dân số và dữ liệu nguồn tổng hợp / synthetic population and source feeds.",
    add_completion=False,
)
console = Console()


@app.callback(invoke_without_command=True)
def synth(
    persons: int = typer.Option(2000, "--persons", "-n", min=1, help="Number of residents."),
    province: str = typer.Option(
        "01", help="Old (pre-2025) province code or name, e.g. 01 or 'Hà Nội'."
    ),
    district: str | None = typer.Option(
        None, help="Only this old district (code like 001 or name)."
    ),
    seed: int = typer.Option(1, help="Random seed: same seed, same files."),
    out: Path = typer.Option(Path("synth-out"), "--out", "-o", help="Output directory."),
    errors: str | None = typer.Option(
        None, help='Error rates: JSON text or file, e.g. {"default": {"typo": 0.05}, "his": {...}}.'
    ),
    error_scale: float = typer.Option(1.0, min=0.0, help="Multiply every error rate (0 = clean)."),
    quirk_rate: float = typer.Option(
        0.1, min=0.0, max=1.0, help="Share of XML files with real-export quirks."
    ),
    visit_rate: float = typer.Option(1.0, min=0.0, help="Scale of the number of visits."),
    visit_years: float = typer.Option(
        2.0, min=0.1, help="Years of HIS visits before the reference date."
    ),
    workers: int = typer.Option(
        min(4, os.cpu_count() or 1),
        min=1,
        help="Processes (the output is the same for any number).",
    ),
) -> None:
    """Generate persons, facilities, HIS XML, registries and station entries into --out."""
    try:
        model = ErrorModel.from_json(errors) if errors else ErrorModel()
        if error_scale != 1.0:
            model = model.scaled(error_scale)
        manifest = generate(
            out, persons, province, seed, model, progress=True, district=district,
            quirk_rate=quirk_rate, visit_rate=visit_rate, visit_years=visit_years, console=console,
            workers=workers,
        )  # fmt: skip
    except (GeoError, ValueError) as exc:
        console.print(f"[red]Lỗi / error:[/] {exc}")
        raise typer.Exit(2) from None
    for f in manifest.files:
        console.print(f"  {f.kind:<16} {f.records:>10,} records  {f.path}")
    console.print(
        f"[bold green]{manifest.counts['source_records']:,}[/] source records for "
        f"{manifest.counts['persons']:,} persons in {manifest.seconds:.1f} s — "
        f"[bold]{manifest.records_per_second:,.0f} records/s[/]; manifest: {out / 'manifest.json'}"
    )
