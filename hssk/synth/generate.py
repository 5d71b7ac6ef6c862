"""Generate a synthetic province (or district): population, facilities, source feeds, truth.

Streaming: households are generated, written to every feed and forgotten one at a time, so
memory stays flat whatever the population size.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from hssk.synth.errors import ErrorModel, ErrorRates
from hssk.synth.facilities import Facilities, build_facilities
from hssk.synth.feeds import ImmunizationFeed, InsuranceFeed, PopulationFeed, StationFeed
from hssk.synth.geo import province_communes, resolve_province, select_communes
from hssk.synth.his import HisWriter, VisitPlanner
from hssk.synth.output import TRUTH_PERSONS, FileEntry, Manifest, Output
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
) -> Manifest:
    """Write a synthetic population and its source feeds to ``out_dir``; return the manifest.

    ``errors``: an ``ErrorModel`` (rates per source), one ``ErrorRates`` for every source, or
    None for the defaults. ``quirk_rate``: share of XML files showing real-export quirks.
    ``visit_rate`` scales visit frequency; visits cover the last ``visit_years`` years.
    """
    if persons < 1:
        raise ValueError(f"persons must be at least 1 (got {persons})")
    if not 0 <= quirk_rate <= 1:
        raise ValueError(f"quirk_rate must be in [0, 1] (got {quirk_rate})")
    model = (
        ErrorModel()
        if errors is None
        else ErrorModel.uniform(errors)
        if isinstance(errors, ErrorRates)
        else errors
    )
    started = time.perf_counter()
    world = make_world(province, seed, district)
    out = Output(Path(out_dir))
    n_fac = world.facilities.write_csv(out.dir / "facilities.csv")
    truth = out.csv(
        "truth_persons", TRUTH_PERSONS, PERSON_HEADER, "Ground truth: golden values of every person"
    )
    population = PopulationFeed(out, model, seed)
    insurance = InsuranceFeed(out, model, seed, world.province)
    immunization = ImmunizationFeed(out, model, seed, world.facilities)
    station = StationFeed(out, model, seed, world.facilities)
    planner = VisitPlanner(
        world.facilities, REF_DATE - timedelta(days=round(visit_years * 365.25)), visit_rate
    )
    his = HisWriter(out, world.facilities, model.for_source("his"), seed, quirk_rate, {})
    counts = {"persons": 0, "households": 0, "deaths": 0, "births": 0, "visits": 0}
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
        for hh in iter_households(world.builder, persons):
            members = {p.key: p for p in hh.members}
            his.household = members
            for p in hh.members:
                truth.write(person_row(p))
                population.write(p, members)
                insurance.write(p)
                immunization.write(p, members)
                station.write(p, hh)
                visits = planner.plan(p, seed)
                counts["visits"] += his.write(p, visits)
                counts["deaths"] += p.death_date is not None
                counts["births"] += p.birth_date >= planner.start
            counts["persons"] += len(hh.members)
            counts["households"] += 1
            bar.advance(task, len(hh.members))
    counts.update({f"xml_{k}": v for k, v in sorted(his.tables.items())})
    counts["facilities"] = n_fac - 1  # the Sở Y tế is a unit, not a facility
    manifest = Manifest(
        out_dir=str(out.dir),
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
    )
    manifest.files.append(
        FileEntry(
            "facilities.csv", "facilities", n_fac, "csv", "Facilities and units with parent ids"
        )
    )
    out.close(manifest)
    source_records = manifest.entry("truth_records").records
    manifest.seconds = round(time.perf_counter() - started, 3)
    manifest.records_per_second = round(source_records / max(manifest.seconds, 1e-9), 1)
    counts["source_records"] = source_records
    out.write_manifest(manifest)
    return manifest
