"""The error model: how each source system distorts the true demographics of a person.

Errors are drawn per *registration* (a person as known to one source, e.g. one patient number at
one hospital), from a stream keyed by (seed, source, registration), so every record of that
registration carries the same mistakes, as in real systems, and without any shared state.
The applied error codes are written to the ground truth, so observed rates can be checked.
"""

from __future__ import annotations

import json
import random
import unicodedata
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import date
from pathlib import Path
from typing import Any

from hssk.synth.population import Person
from hssk.synth.rng import sub_rng

SOURCES = ("population", "insurance", "immunization", "his", "station")
NEW_CODES_FROM = date(2025, 7, 1)  # communes use their 2025 codes from this day


@dataclass(frozen=True)
class ErrorRates:
    """Probability of each kind of error in one source record (registration)."""

    diacritics_lost: float = 0.04  # "Nguyen Van An"
    diacritics_wrong: float = 0.02  # one tone mark changed: "Nguyễn" -> "Nguyến"
    typo: float = 0.02  # one letter substituted, dropped, doubled or swapped
    name_order: float = 0.01  # given name first: "An Nguyễn Văn"
    day_month_swap: float = 0.01  # 2001-03-07 -> 2001-07-03 (only when day ≤ 12 ≠ month)
    year_only_dob: float = 0.01  # only the year is known
    cccd_missing: float = 0.08
    cccd_typo: float = 0.01  # one of the 6 serial digits mistyped (still well formed)
    address_code_era: float = 0.1  # the commune code of the other era (old vs 2025)
    phone_changed: float = 0.08  # an older or another number of the person
    duplicate: float = 0.02  # the same person registered a second time in this source

    def scaled(self, factor: float) -> ErrorRates:
        return ErrorRates(**{k: min(1.0, v * factor) for k, v in asdict(self).items()})


# Defaults per source: the population register is the cleanest, the insurance register keeps
# old year-only birth dates and lacks many CCCD, the immunization drive of 2021 was hurried.
DEFAULT_RATES: dict[str, ErrorRates] = {
    "population": ErrorRates(
        diacritics_lost=0.0,
        diacritics_wrong=0.003,
        typo=0.003,
        name_order=0.0,
        day_month_swap=0.002,
        year_only_dob=0.002,
        cccd_missing=0.0,
        cccd_typo=0.0,
        address_code_era=0.02,
        phone_changed=0.05,
        duplicate=0.005,
    ),
    "insurance": ErrorRates(year_only_dob=0.05, cccd_missing=0.25, duplicate=0.01),
    "immunization": ErrorRates(
        diacritics_lost=0.06, typo=0.03, day_month_swap=0.02, cccd_missing=0.15, duplicate=0.03
    ),
    "his": ErrorRates(),
    "station": ErrorRates(diacritics_lost=0.02, cccd_missing=0.1),
}


@dataclass
class ErrorModel:
    """Rates per source (``hssk synth --errors`` JSON: {"default": {...}, "his": {...}})."""

    rates: dict[str, ErrorRates] = field(default_factory=lambda: dict(DEFAULT_RATES))

    def for_source(self, source: str) -> ErrorRates:
        return self.rates.get(source, ErrorRates())

    @classmethod
    def none(cls) -> ErrorModel:
        zero = ErrorRates(**{f.name: 0.0 for f in fields(ErrorRates)})
        return cls({s: zero for s in SOURCES})

    @classmethod
    def uniform(cls, rates: ErrorRates) -> ErrorModel:
        return cls({s: rates for s in SOURCES})

    def scaled(self, factor: float) -> ErrorModel:
        return ErrorModel({s: r.scaled(factor) for s, r in self.rates.items()})

    def to_json(self) -> dict[str, Any]:
        return {s: asdict(r) for s, r in self.rates.items()}

    @classmethod
    def from_json(cls, spec: str | dict[str, Any]) -> ErrorModel:
        """From a dict, a JSON text or a path to a JSON file; unknown keys are an error."""
        if isinstance(spec, str):
            text = Path(spec).read_text("utf-8") if Path(spec).is_file() else spec
            try:
                spec = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(
                    f"--errors: not JSON and not a readable file ({exc}); expected e.g. "
                    '{"default": {"typo": 0.05}, "insurance": {"cccd_missing": 0.3}}'
                ) from None
        assert isinstance(spec, dict)
        known = {f.name for f in fields(ErrorRates)}
        model = cls()
        default = spec.get("default", {})
        for src in SOURCES:
            over = {**default, **spec.get(src, {})}
            bad = set(over) - known
            if bad:
                raise ValueError(
                    f"--errors: unknown error kind(s) {sorted(bad)} for source '{src}'; "
                    f"known: {sorted(known)}"
                )
            for k, v in over.items():
                if not isinstance(v, int | float) or not 0 <= v <= 1:
                    raise ValueError(f"--errors: {src}.{k}={v!r} must be a number in [0, 1]")
            model.rates[src] = replace(DEFAULT_RATES[src], **over) if over else DEFAULT_RATES[src]
        unknown_src = set(spec) - {*SOURCES, "default"}
        if unknown_src:
            raise ValueError(f"--errors: unknown source(s) {sorted(unknown_src)}; known: {SOURCES}")
        return model


@dataclass
class Demographics:
    """A person as one source registration records them."""

    full_name: str
    birth_date: date
    dob_precision: str  # day | year
    sex: str
    cccd: str
    phone: str
    commune_code: str
    commune_name: str
    address: str
    errors: list[str]

    @property
    def dob_iso(self) -> str:
        return (
            str(self.birth_date.year)
            if self.dob_precision == "year"
            else self.birth_date.isoformat()
        )


TONES = ("\u0300", "\u0301", "\u0309", "\u0303", "\u0323")
NEIGHBOURS = "qwertyuiopasdfghjklzxcvbnm"


def strip_diacritics(text: str) -> str:
    t = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    return unicodedata.normalize("NFC", "".join(c for c in t if not unicodedata.combining(c)))


def wrong_tone(text: str, rng: random.Random) -> str | None:
    """Change one tone mark (or add one to a toneless vowel); None if the name has no vowel."""
    chars = list(text)
    spots = [i for i, c in enumerate(chars) if strip_diacritics(c).lower() in "aeiouy"]
    if not spots:
        return None
    i = rng.choice(spots)
    decomposed = unicodedata.normalize("NFD", chars[i])
    base = "".join(c for c in decomposed if c not in TONES)
    tone = next((c for c in decomposed if c in TONES), "")
    new_tone = rng.choice([t for t in TONES if t != tone])
    chars[i] = unicodedata.normalize("NFC", base + new_tone)
    return "".join(chars)


def typo(text: str, rng: random.Random) -> str:
    """One keyboard slip inside a word (never touching the spaces)."""
    letters = [i for i, c in enumerate(text) if c.isalpha()]
    i = rng.choice(letters)
    op = rng.randrange(4)
    if op == 0:
        c = rng.choice(NEIGHBOURS)
        return text[:i] + (c.upper() if text[i].isupper() else c) + text[i + 1 :]
    if op == 1 and len(letters) > 3:
        return text[:i] + text[i + 1 :]
    if op == 2:
        return text[:i] + text[i] + text[i:]
    j = i + 1
    if j < len(text) and text[j].isalpha():
        return text[:i] + text[j] + text[i] + text[j + 1 :]
    return text[:i] + text[i] + text[i:]


def source_era(source: str, when: date) -> str:
    """Which commune codes a source uses at a date: 'old' before 07/2025, 'new' after."""
    if source in ("population", "insurance"):
        return "new"  # extracts taken now
    return "old" if when < NEW_CODES_FROM else "new"


def perturb(
    person: Person,
    source: str,
    registration: str,
    rates: ErrorRates,
    seed: int,
    when: date,
) -> Demographics:
    """The demographics a source holds for ``person`` under ``registration`` (deterministic)."""
    rng = sub_rng(seed, "err", source, registration)
    errs: list[str] = ["duplicate"] if registration.endswith("#2") else []
    name = person.name
    full = name.full
    if rng.random() < rates.name_order:
        full = " ".join(p for p in (name.given, name.family, name.middle) if p)
        errs.append("name_order")
    if rng.random() < rates.diacritics_lost:
        stripped = strip_diacritics(full)
        if stripped != full:
            full = stripped
            errs.append("diacritics_lost")
    if rng.random() < rates.diacritics_wrong:
        changed = wrong_tone(full, rng)
        if changed and changed != full:
            full = changed
            errs.append("diacritics_wrong")
    if rng.random() < rates.typo:
        full = typo(full, rng)
        errs.append("typo")
    dob = person.birth_date
    precision = "day"
    if rng.random() < rates.day_month_swap and dob.day <= 12 and dob.day != dob.month:
        dob = date(dob.year, dob.day, dob.month)
        errs.append("day_month_swap")
    if rng.random() < rates.year_only_dob:
        precision = "year"
        dob = date(dob.year, 1, 1)
        errs.append("year_only_dob")
    cccd = person.cccd
    if cccd and rng.random() < rates.cccd_missing:
        cccd = ""
        errs.append("cccd_missing")
    if cccd and rng.random() < rates.cccd_typo:
        i = rng.randrange(6, 12)
        cccd = cccd[:i] + str((int(cccd[i]) + rng.randint(1, 9)) % 10) + cccd[i + 1 :]
        errs.append("cccd_typo")
    phone = person.phone
    if phone and rng.random() < rates.phone_changed:
        phone = phone[:3] + f"{rng.randrange(10**7):07d}"
        errs.append("phone_changed")
    era = source_era(source, when)
    if rng.random() < rates.address_code_era:
        era = "old" if era == "new" else "new"
        errs.append("address_code_era")
    c = person.commune
    code, cname = (c.new_code, c.new_name) if era == "new" else (c.old_code, c.old_name)
    return Demographics(
        full_name=unicodedata.normalize("NFC", full),
        birth_date=dob,
        dob_precision=precision,
        sex=person.sex,
        cccd=cccd,
        phone=phone,
        commune_code=code,
        commune_name=cname,
        address=person.address(new=era == "new"),
        errors=errs,
    )


def registrations(
    person: Person, source: str, base: str, rates: ErrorRates, seed: int
) -> list[str]:
    """Registration keys of a person in a source: one, or two when registered twice."""
    rng = sub_rng(seed, "dup", source, base)
    regs = [base]
    if rng.random() < rates.duplicate:
        regs.append(f"{base}#2")
    return regs
