"""Generate a synthetic province (or district): population, facilities, source feeds, truth.

Streaming: households are generated, written to every feed and forgotten one at a time, so
memory stays flat whatever the population size.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hssk.synth.errors import ErrorModel, ErrorRates
from hssk.synth.facilities import Facilities, build_facilities
from hssk.synth.feeds import ImmunizationFeed, InsuranceFeed, PopulationFeed, StationFeed
from hssk.synth.geo import province_communes, resolve_province, select_communes
from hssk.synth.his import HisWriter, VisitPlanner
from hssk.synth.output import TRUTH_PERSONS, TRUTH_RECORDS, FileEntry, Manifest, Output
from hssk.synth.population import REF_DATE, Household, Person, PopulationBuilder, iter_households

PERSON_HEADER = [
    "person_key", "household_key", "relation", "family_name", "middle_name", "given_name",
    "full_name", "sex", "birth_date", "birth_province", "ethnicity", "cccd", "temp_card", "bhxh",
    "bhyt", "bhyt_object", "bhyt_from", "bhyt_to", "dkbd", "phone", "address_line",
    "address_new", "address_old", "old_commune_code", "old_commune_name", "old_district_code",
    "old_district_name", "province_code", "new_ward_code", "new_ward_name", "new_province_code",
    "ward_split", "mother_key", "father_key", "death_date", "conditions", "smoker", "alcohol",
    "height_cm", "weight_kg",
]  # fmt: skip


@dataclass(frozen=True)
class World:
    """Province, communes, facilities and the population builder for one run."""

    province: str
    facilities: Facilities
    builder: PopulationBuilder


def make_world(province: str = "01", seed: int = 1, district: str | None = None) -> World:
    code = resolve_province(province)
    communes = province_communes(code)
    selected = select_communes(code, district)
    facilities = build_facilities(communes, selected, seed)
    return World(code, facilities, PopulationBuilder(selected, facilities, seed, code))


def iter_population(
    persons: int, province: str = "01", seed: int = 1, district: str | None = None
) -> Iterator[Household]:
    """The households (with their persons) of a synthetic population, in memory, lazily."""
    world = make_world(province, seed, district)
    return iter_households(world.builder, persons)


def iter_persons(
    persons: int, province: str = "01", seed: int = 1, district: str | None = None
) -> Iterator[Person]:
    """Persons of the synthetic population (for small tests; no files written)."""
    for hh in iter_population(persons, province, seed, district):
        yield from hh.members


def _d(d: date | None) -> str:
    return d.isoformat() if d else ""


def person_row(p: Person) -> list[object]:
    c = p.commune
    return [
        p.key, p.household_key, p.relation, p.name.family, p.name.middle, p.name.given,
        p.full_name, p.sex, p.birth_date.isoformat(), p.birth_province, p.ethnicity, p.cccd,
        p.temp_card, p.bhxh, p.bhyt, p.bhyt_object, _d(p.bhyt_from), _d(p.bhyt_to), p.dkbd,
        p.phone, p.address_line, p.address(new=True), p.address(new=False), c.old_code,
        c.old_name, c.district_code, c.district_name, c.province_code, c.new_code, c.new_name,
        c.new_province_code, int(c.split), p.mother_key, p.father_key, _d(p.death_date),
        ";".join(p.conditions), int(p.smoker), int(p.alcohol), p.height_cm, p.weight_kg,
    ]  # fmt: skip


@dataclass(frozen=True)
class _Job:
    """What one shard of the run needs (picklable, sent to a worker process)."""

    out_dir: Path
    csv_dir: Path  # where this shard writes its CSV files (the output dir, or a part dir)
    persons: int
    lo: int  # households whose first person index is in [lo, hi)
    hi: int
    province: str
    district: str | None
    seed: int
    model: ErrorModel
    quirk_rate: float
    visit_rate: float
    visit_years: float


@dataclass
class _ShardResult:
    counts: dict[str, int]
    csv_rows: dict[str, int]
    trees: dict[str, tuple[int, int]]
    descriptions: dict[str, tuple[str, str]]


_progress: Any = None  # a shared counter of persons done (set in worker processes)


def _init_worker(counter: Any) -> None:
    global _progress
    _progress = counter


def _run_shard(job: _Job, tick: Callable[[int], None] | None = None) -> _ShardResult:
    """Generate the households of one shard; XML files go to the output dir directly."""
    world = make_world(job.province, job.seed, job.district)
    out = Output(job.out_dir, csv_dir=job.csv_dir)
    truth = out.csv(
        "truth_persons", TRUTH_PERSONS, PERSON_HEADER, "Ground truth: golden values of every person"
    )
    model, seed = job.model, job.seed
    population = PopulationFeed(out, model, seed)
    insurance = InsuranceFeed(out, model, seed, world.province)
    immunization = ImmunizationFeed(out, model, seed, world.facilities)
    station = StationFeed(out, model, seed, world.facilities)
    planner = VisitPlanner(
        world.facilities, REF_DATE - timedelta(days=round(job.visit_years * 365.25)), job.visit_rate
    )
    his = HisWriter(out, world.facilities, model.for_source("his"), seed, job.quirk_rate, {})
    counts = {"persons": 0, "households": 0, "deaths": 0, "births": 0, "visits": 0}
    first = 0
    for hh in iter_households(world.builder, job.persons):
        size = len(hh.members)
        first += size
        if not job.lo <= first - size < job.hi:
            continue  # another shard's household (building it is cheap; writing is not)
        members = {p.key: p for p in hh.members}
        his.household = members
        for p in hh.members:
            truth.write(person_row(p))
            population.write(p, members)
            insurance.write(p)
            immunization.write(p, members)
            station.write(p, hh)
            counts["visits"] += his.write(p, planner.plan(p, seed))
            counts["deaths"] += p.death_date is not None
            counts["births"] += p.birth_date >= planner.start
        counts["persons"] += size
        counts["households"] += 1
        if tick is not None:
            tick(size)
        elif _progress is not None:
            with _progress.get_lock():
                _progress.value += size
    counts.update({f"xml_{k}": v for k, v in his.tables.items()})
    for _, sink, _ in out.csvs.values():
        sink.close()
    return _ShardResult(
        counts,
        {k: sink.rows for k, (_, sink, _) in out.csvs.items()},
        {k: (t[1], t[2]) for k, t in out.trees.items()},
        {k: (t[0], t[3]) for k, t in out.trees.items()}
        | {k: (rel, d) for k, (rel, _, d) in out.csvs.items()},
    )


def _merge_csvs(out_dir: Path, parts: list[Path], rels: list[str]) -> None:
    """Concatenate the shards' CSV files in shard order (header once): same bytes as one run."""
    for rel in rels:
        (out_dir / rel).parent.mkdir(parents=True, exist_ok=True)
        with (out_dir / rel).open("wb") as dst:
            for i, part in enumerate(parts):
                with (part / rel).open("rb") as src:
                    if i:
                        src.readline()
                    shutil.copyfileobj(src, dst, 1 << 20)


def generate(
    out_dir: Path,
    persons: int,
    province: str = "01",
    seed: int = 1,
    errors: ErrorModel | ErrorRates | None = None,
    progress: bool = False,
    district: str | None = None,
    quirk_rate: float = 0.1,
    visit_rate: float = 1.0,
    visit_years: float = 2.0,
    console: Console | None = None,
    workers: int = 1,
) -> Manifest:
    """Write a synthetic population and its source feeds to ``out_dir``; return the manifest.

    ``errors``: an ``ErrorModel`` (rates per source), one ``ErrorRates`` for every source, or
    None for the defaults. ``quirk_rate``: share of XML files showing real-export quirks.
    ``visit_rate`` scales visit frequency; visits cover the last ``visit_years`` years.
    ``workers`` > 1 splits the households among processes; the files are the same bytes.
    """
    if persons < 1:
        raise ValueError(f"persons must be at least 1 (got {persons})")
    if not 0 <= quirk_rate <= 1:
        raise ValueError(f"quirk_rate must be in [0, 1] (got {quirk_rate})")
    if workers < 1:
        raise ValueError(f"workers must be at least 1 (got {workers})")
    model = (
        ErrorModel()
        if errors is None
        else ErrorModel.uniform(errors)
        if isinstance(errors, ErrorRates)
        else errors
    )
    started = time.perf_counter()
    world = make_world(province, seed, district)  # validates province/district before any work
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_fac = world.facilities.write_csv(out_dir / "facilities.csv")
    workers = min(workers, max(1, persons // 500))  # tiny runs are not worth the processes
    bounds = [persons * i // workers for i in range(workers + 1)]
    parts = [out_dir / ".parts" / f"{i:02d}" for i in range(workers)] if workers > 1 else [out_dir]
    jobs = [
        _Job(out_dir, parts[i], persons, bounds[i], bounds[i + 1], world.province, district,
             seed, model, quirk_rate, visit_rate, visit_years)
        for i in range(workers)
    ]  # fmt: skip
    bar = Progress(
        TextColumn("[bold]hssk synth[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("persons"),
        TimeRemainingColumn(),
        console=console,
        disable=not progress,
        transient=False,
    )
    with bar:
        task = bar.add_task("persons", total=persons)
        if workers == 1:
            results = [_run_shard(jobs[0], lambda n: bar.advance(task, n))]
        else:
            ctx = multiprocessing.get_context("fork")
            counter = ctx.Value("q", 0)
            with ProcessPoolExecutor(workers, ctx, _init_worker, (counter,)) as pool:
                futures = [pool.submit(_run_shard, j) for j in jobs]
                while not all(f.done() for f in futures):
                    time.sleep(0.2)
                    bar.update(task, completed=counter.value)
                results = [f.result() for f in futures]
            bar.update(task, completed=persons)
    first = results[0]
    counts: dict[str, int] = {}
    for r in results:
        for k, v in r.counts.items():
            counts[k] = counts.get(k, 0) + v
    counts = {k: counts[k] for k in sorted(counts, key=lambda k: (k.startswith("xml_"), k))}
    counts["facilities"] = n_fac - 1  # the Sở Y tế is a unit, not a facility
    if workers > 1:
        _merge_csvs(out_dir, parts, [first.descriptions[k][0] for k in first.csv_rows])
        shutil.rmtree(out_dir / ".parts", ignore_errors=True)
    manifest = Manifest(
        out_dir=str(out_dir),
        params={
            "persons": persons,
            "province": world.province,
            "district": district,
            "seed": seed,
            "quirk_rate": quirk_rate,
            "visit_rate": visit_rate,
            "visit_years": visit_years,
            "ref_date": REF_DATE.isoformat(),
            "errors": model.to_json(),
        },
        counts=counts,
        truth={"source_records": TRUTH_RECORDS, "persons": TRUTH_PERSONS},
    )
    manifest.files.append(
        FileEntry(
            "facilities.csv", "facilities", n_fac, "csv", "Facilities and units with parent ids"
        )
    )
    for kind in first.csv_rows:
        rel, desc = first.descriptions[kind]
        rows = sum(r.csv_rows[kind] for r in results)
        manifest.files.append(FileEntry(rel, kind, rows, "csv", desc))
    for kind in first.trees:
        rel, desc = first.descriptions[kind]
        files = sum(r.trees[kind][0] for r in results)
        recs = sum(r.trees[kind][1] for r in results)
        manifest.files.append(FileEntry(rel, kind, recs, "dir", desc, files))
    source_records = manifest.entry("truth_records").records
    counts["source_records"] = source_records
    manifest.seconds = round(time.perf_counter() - started, 3)
    manifest.records_per_second = round(source_records / max(manifest.seconds, 1e-9), 1)
    (out_dir / "manifest.json").write_text(
        json.dumps(manifest.to_json(), ensure_ascii=False, indent=2), "utf-8"
    )
    return manifest
