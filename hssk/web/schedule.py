"""The child immunization schedule of the expanded programme (TCMR), kept as data.

``data/tcmr_schedule.json`` lists the vaccine groups (with the words and codes that identify a
given vaccine) and the doses by age. ``child_schedule`` matches a child's Immunization
resources to the doses and says, for each, done / overdue / due / upcoming.
"""

from __future__ import annotations

import calendar
import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources
from typing import Any

from hssk.registry.normalize import fold

# A child is shown the schedule until this age (the last TCMR dose is at 24 months).
SCHEDULE_MAX_AGE_YEARS = 6
_TOKEN = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True)
class VaccineGroup:
    key: str
    vi: str
    en: str
    match: tuple[tuple[str, ...], ...]  # phrases, each as a tuple of folded tokens
    codes: frozenset[str]


@dataclass(frozen=True)
class Dose:
    group: str
    dose: int
    age_days: int
    age_months: int
    after_days: int
    grace_days: int
    vi: str
    en: str


@dataclass(frozen=True)
class Schedule:
    source: str
    groups: tuple[VaccineGroup, ...]
    doses: tuple[Dose, ...]

    def group(self, key: str) -> VaccineGroup:
        return next(g for g in self.groups if g.key == key)


@dataclass(frozen=True)
class ScheduleItem:
    """One dose of the schedule for one child."""

    group: str
    vaccine_vi: str
    vaccine_en: str
    dose: int
    age_vi: str
    age_en: str
    due: date
    status: str  # done | overdue | due | upcoming
    given: date | None = None


def tokens(text: str) -> list[str]:
    """Folded lower-case word tokens ('Sởi-Rubella' → ['soi', 'rubella'])."""
    return _TOKEN.findall(fold(text).lower())


@lru_cache(maxsize=1)
def load_schedule() -> Schedule:
    """The packaged TCMR schedule."""
    raw = json.loads(
        resources.files("hssk.web").joinpath("data/tcmr_schedule.json").read_text("utf-8")
    )
    groups = tuple(
        VaccineGroup(
            key=g["key"],
            vi=g["vi"],
            en=g["en"],
            match=tuple(tuple(tokens(p)) for p in g["match"]),
            codes=frozenset(g.get("codes", ())),
        )
        for g in raw["groups"]
    )
    doses = tuple(
        Dose(
            group=d["group"],
            dose=d["dose"],
            age_days=d.get("age_days", 0),
            age_months=d.get("age_months", 0),
            after_days=d.get("after_days", 0),
            grace_days=d["grace_days"],
            vi=d["vi"],
            en=d["en"],
        )
        for d in raw["doses"]
    )
    return Schedule(raw["source"], groups, doses)


def _contains(words: list[str], phrase: tuple[str, ...]) -> bool:
    n = len(phrase)
    return any(tuple(words[i : i + n]) == phrase for i in range(len(words) - n + 1))


def vaccine_group(concept: dict[str, Any] | None, schedule: Schedule | None = None) -> str | None:
    """The TCMR group of a vaccineCode (by code, then by words of its text), or None."""
    if not concept:
        return None
    codings = [c for c in concept.get("coding") or () if isinstance(c, dict)]
    codes = frozenset(str(c.get("code")) for c in codings if c.get("code"))
    texts = [concept.get("text") or ""] + [c.get("display") or "" for c in codings]
    text = " ".join(t for t in texts if isinstance(t, str)) + " " + " ".join(sorted(codes))
    if schedule is None:
        return _packaged_group(codes, text)
    return _group_of(schedule, codes, text)


@lru_cache(maxsize=4096)
def _packaged_group(codes: frozenset[str], text: str) -> str | None:
    """:func:`_group_of` the packaged schedule, remembered: a book of immunizations asks it
    for every dose, and a province's vaccines are a few dozen names and codes (the schedule
    is read once per process, so nothing to invalidate)."""
    return _group_of(load_schedule(), codes, text)


def _group_of(schedule: Schedule, codes: frozenset[str], text: str) -> str | None:
    words = tokens(text)
    for group in schedule.groups:  # ordered: specific combinations before single antigens
        if group.codes & codes or any(_contains(words, p) for p in group.match):
            return group.key
    return None


def add_months(day: date, months: int) -> date:
    """Same day ``months`` later (clamped to the month's last day)."""
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def child_schedule(
    birth_date: date, given: list[tuple[str, date]], today: date
) -> list[ScheduleItem]:
    """Status of every TCMR dose for a child born ``birth_date``.

    ``given`` is the list of (group key, date given). The n-th dose given of a group fills the
    n-th dose of that group in the schedule. A dose not given is *overdue* once its grace
    period has passed, *due* from its due date, *upcoming* before.
    """
    schedule = load_schedule()
    by_group: dict[str, list[date]] = {}
    for key, day in sorted(given, key=lambda g: g[1]):
        by_group.setdefault(key, []).append(day)
    seen: dict[str, int] = {}
    items: list[ScheduleItem] = []
    previous_given: dict[str, date | None] = {}
    for dose in schedule.doses:
        index = seen.get(dose.group, 0)
        seen[dose.group] = index + 1
        done = by_group.get(dose.group, [])
        given_day = done[index] if index < len(done) else None
        due = add_months(birth_date, dose.age_months) + timedelta(days=dose.age_days)
        prev = previous_given.get(dose.group)
        if dose.after_days and prev is not None:
            due = max(due, prev + timedelta(days=dose.after_days))
        else:
            due += timedelta(days=dose.after_days)
        previous_given[dose.group] = given_day
        if given_day is not None:
            status = "done"
        elif today > due + timedelta(days=dose.grace_days):
            status = "overdue"
        elif today >= due:
            status = "due"
        else:
            status = "upcoming"
        group = schedule.group(dose.group)
        items.append(
            ScheduleItem(
                group=dose.group,
                vaccine_vi=group.vi,
                vaccine_en=group.en,
                dose=dose.dose,
                age_vi=dose.vi,
                age_en=dose.en,
                due=due,
                status=status,
                given=given_day,
            )
        )
    return items
