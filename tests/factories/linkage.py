"""A compact generator of demographic records with known truth, for tests and the benchmark.

Persons are drawn with realistic Vietnamese name concentration (national family-name shares,
name counts from duyet/vietnamese-namedb, MIT — see data/LICENSE.duyet-vietnamese-namedb-MIT),
plus the hard cases: twins, fathers and sons with the same name, namesakes in one commune and
birth year, and newborns with a temporary card linked to their mother. Each person then yields
records from several sources with typing errors: missing diacritics, typos, old tone placement,
swapped day/month, year-only birth dates, name order variants, old 11-digit phones, old
(pre-2025) commune codes, moves. The larger generator of the project is hssk.synth; this one
only needs to be fast and to know the truth.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import random
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

from hssk.kernel.identifiers import cccd_digit
from hssk.registry.adminunits import _tables
from hssk.registry.namedata import name_data_dir
from hssk.registry.normalize import OLD_MOBILE_PREFIXES, fold
from hssk.registry.types import SourceRecord

DATA = name_data_dir()
# National shares (GSO-style estimates); the rest of the mass goes to the long tail of the file.
FAMILY_SHARES = {
    "Nguyễn": 0.38,
    "Trần": 0.11,
    "Lê": 0.095,
    "Phạm": 0.07,
    "Hoàng": 0.051,
    "Phan": 0.045,
}
_MOBILE_PREFIXES = (
    "090",
    "091",
    "093",
    "094",
    "096",
    "097",
    "098",
    *sorted(set(OLD_MOBILE_PREFIXES.values())),
)
SOURCES = ("population", "insurance", "immunization", "xml130:01001", "xml130:01002", "station")


@dataclass(frozen=True)
class ErrorRates:
    """Probability of each error per record (the defaults are 'the default error rates')."""

    no_diacritics: float = 0.25
    name_typo: float = 0.04
    tone_variant: float = 0.05
    name_order: float = 0.02
    drop_middle: float = 0.03
    swap_day_month: float = 0.02
    date_typo: float = 0.02
    year_only: float = 0.06
    month_only: float = 0.03
    missing_birth: float = 0.01
    missing_cccd: float = 0.45
    cccd_typo: float = 0.01
    missing_bhyt: float = 0.5
    missing_phone: float = 0.4
    old_phone: float = 0.05
    missing_sex: float = 0.03
    old_commune: float = 0.3
    moved: float = 0.03
    missing_commune: float = 0.05


@dataclass
class TruePerson:
    name: str
    sex: str
    birth: date
    cccd: str | None
    bhxh: str
    phone: str | None
    commune: str
    kind: str = "plain"  # plain | twin | father | son | namesake | newborn
    temp_card: str | None = None
    mother: int | None = None  # index of the mother in the person list


def _read_counts(name: str) -> tuple[list[str], list[float]]:
    with (DATA / name).open(encoding="utf-8") as fh:
        rows = [
            (r[0], float(r[1])) for r in itertools.islice(csv.reader(fh), 1, None) if len(r) == 2
        ]
    return [r[0] for r in rows], [r[1] for r in rows]


@lru_cache(maxsize=1)
def _names() -> dict[str, tuple[list[str], list[float]]]:
    fam, fam_w = _read_counts("uit_family_name_freq.csv")
    total = sum(fam_w)
    tail = 1 - sum(FAMILY_SHARES.values())
    tail_total = sum(w for f, w in zip(fam, fam_w, strict=True) if f not in FAMILY_SHARES)
    fam_w = [
        FAMILY_SHARES.get(f, w / tail_total * tail) if total else w
        for f, w in zip(fam, fam_w, strict=True)
    ]
    mid, mid_w = _read_counts("uit_middle_name_freq.csv")
    giv, giv_w = _read_counts("uit_given_name_freq.csv")
    boys = {
        line.split()[-1]
        for line in (DATA / "duyet_boy_given_names.txt").read_text("utf-8").splitlines()
        if line.strip()
    }
    girls = {
        line.split()[-1]
        for line in (DATA / "duyet_girl_given_names.txt").read_text("utf-8").splitlines()
        if line.strip()
    }
    out = {"family": (fam, fam_w), "middle": (mid, mid_w)}
    for sex, pool in (("M", boys - girls), ("F", girls - boys)):
        pairs = [
            (g, w) for g, w in zip(giv, giv_w, strict=True) if g in pool or g not in boys | girls
        ]
        out[f"given_{sex}"] = ([p[0] for p in pairs], [p[1] for p in pairs])
    return out


class _Picker:
    def __init__(self, items: list[str], weights: list[float]) -> None:
        self.items = items
        self.cum = list(itertools.accumulate(weights))

    def __call__(self, rng: random.Random) -> str:
        return self.items[bisect.bisect(self.cum, rng.random() * self.cum[-1])]


def _communes(province: str) -> tuple[list[str], dict[str, str]]:
    """New commune codes of a province and, for each, one old code that maps to it."""
    t = _tables()
    new = sorted(c for c, p in t.new.items() if p == province)
    back: dict[str, str] = {}
    for old, nw in t.old_to_new.items():
        if nw in t.new and t.new[nw] == province:
            back.setdefault(nw, old)
    return new, back


def generate_people(n: int, seed: int = 1, province: str = "01") -> list[TruePerson]:
    """``n`` persons of one province, with the hard cases mixed in."""
    rng = random.Random(seed)
    names = _names()
    fam = _Picker(*names["family"])
    mid = _Picker(*names["middle"])
    giv = {s: _Picker(*names[f"given_{s}"]) for s in "MF"}
    communes, _ = _communes(province)
    used: set[str] = set()
    people: list[TruePerson] = []
    serial = itertools.count(rng.randrange(10**5))

    def ident(birth: date, sex: str) -> tuple[str, str]:
        s = next(serial)
        r = (s * 7_919_393 + 12_345) % 10**8  # distinct for distinct s, and scattered
        cccd = f"0{province}{cccd_digit(birth.year, sex)}{birth.year % 100:02d}{r % 10**6:06d}"
        return cccd, f"{province}{r:08d}"

    def person(
        sex: str, birth: date, commune: str, name: str | None = None, kind: str = "plain"
    ) -> TruePerson:
        if name is None:
            middle = (
                "Thị"
                if sex == "F" and rng.random() < 0.6
                else ("Văn" if sex == "M" and rng.random() < 0.4 else mid(rng))
            )
            name = f"{fam(rng)} {middle} {giv[sex](rng)}"
        cccd, bhxh = ident(birth, sex)
        phone = None
        if rng.random() < 0.8:
            phone = rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**7):07d}"
            while phone in used:
                phone = rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**7):07d}"
            used.add(phone)
        return TruePerson(
            name, sex, birth, cccd if birth.year < 2022 else None, bhxh, phone, commune, kind
        )

    def rand_birth(lo: int = 1940, hi: int = 2021) -> date:
        return date(lo, 1, 1) + timedelta(
            days=rng.randrange((date(hi, 12, 31) - date(lo, 1, 1)).days)
        )

    while len(people) < n:
        r = rng.random()
        sex = rng.choice("MF")
        commune = rng.choice(communes)
        if r < 0.01:  # twins: same family and middle name, birth date, commune, phone
            a = person(sex, rand_birth(1960, 2020), commune, kind="twin")
            fam_mid = a.name.rsplit(" ", 1)[0]
            sex2 = rng.choice("MF")
            g = giv[sex2](rng)
            while g == a.name.rsplit(" ", 1)[1]:
                g = giv[sex2](rng)
            b = person(sex2, a.birth, commune, f"{fam_mid} {g}", kind="twin")
            b.phone = a.phone
            people += [a, b]
        elif r < 0.02:  # father and son with the same name, same commune
            father = person("M", rand_birth(1945, 1975), commune, kind="father")
            son = person(
                "M",
                rand_birth(father.birth.year + 20, min(father.birth.year + 40, 2015)),
                commune,
                father.name,
                "son",
            )
            son.phone = father.phone if rng.random() < 0.5 else son.phone
            people += [father, son]
        elif r < 0.04:  # namesakes: same name, commune and birth year, different persons
            a = person(sex, rand_birth(), commune, kind="namesake")
            b = person(sex, rand_birth(a.birth.year, a.birth.year), commune, a.name, "namesake")
            people += [a, b]
        elif r < 0.05:  # a mother and her newborn with a temporary card
            mother = person("F", rand_birth(1985, 2000), commune, kind="mother")
            people.append(mother)
            child_sex = rng.choice("MF")
            born = rand_birth(2024, 2024)
            child = person(
                child_sex,
                born,
                commune,
                f"{mother.name.split()[0]} {giv[child_sex](rng)}",
                "newborn",
            )
            child.name = f"Con bà {mother.name}" if rng.random() < 0.5 else child.name
            child.temp_card = f"TE1{province}{rng.randrange(10**10):010d}"
            child.mother = len(people) - 1
            child.phone = mother.phone
            people.append(child)
        else:
            people.append(person(sex, rand_birth(), commune))
    return people[:n]


# --- record errors ----------------------------------------------------------------------
_OLD_TONE = {
    "òa": "oà",
    "óa": "oá",
    "ỏa": "oả",
    "õa": "oã",
    "ọa": "oạ",
    "ủy": "uỷ",
    "úy": "uý",
    "ùy": "uỳ",
    "ụy": "uỵ",
}
_NEW_PREFIX_TO_OLD = {v: k for k, v in OLD_MOBILE_PREFIXES.items()}


def _typo(text: str, rng: random.Random) -> str:
    if len(text) < 4:
        return text
    i = rng.randrange(1, len(text) - 1)
    if " " in text[i - 1 : i + 2]:
        return text
    op = rng.randrange(3)
    if op == 0:
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if op == 1:
        return text[:i] + text[i + 1 :]
    return text[:i] + text[i] + text[i:]


def make_record(
    p: TruePerson,
    rid: str,
    source: str,
    rng: random.Random,
    rates: ErrorRates,
    commune_of: dict[str, str],
    communes: list[str],
) -> SourceRecord:
    """One noisy source record of a true person."""
    name = p.name
    if rng.random() < rates.tone_variant:
        for a, b in _OLD_TONE.items():
            name = name.replace(a, b)
    if rng.random() < rates.drop_middle and name.count(" ") >= 2:
        w = name.split()
        name = f"{w[0]} {w[-1]}"
    if rng.random() < rates.name_order and " " in name:
        w = name.split()
        name = " ".join([*w[1:], w[0]])
    if rng.random() < rates.name_typo:
        name = _typo(name, rng)
    if rng.random() < rates.no_diacritics:
        name = fold(name)
    if rng.random() < 0.1:
        name = name.upper()
    born = p.birth
    bd: str | None = born.isoformat()
    x = rng.random()
    if x < rates.swap_day_month and born.day <= 12 and born.day != born.month:
        bd = date(born.year, born.day, born.month).isoformat()
    elif x < rates.swap_day_month + rates.date_typo:
        d = born.day + rng.choice((-1, 1)) * (10 if born.day > 10 else 1)
        bd = date(born.year, born.month, min(max(d, 1), 28)).isoformat()
    elif x < rates.swap_day_month + rates.date_typo + rates.year_only:
        bd = str(born.year)
    elif x < rates.swap_day_month + rates.date_typo + rates.year_only + rates.month_only:
        bd = born.isoformat()[:7]
    elif (
        x
        < rates.swap_day_month
        + rates.date_typo
        + rates.year_only
        + rates.month_only
        + rates.missing_birth
    ):
        bd = None
    cccd = None
    if p.cccd and rng.random() > rates.missing_cccd:
        cccd = p.cccd if rng.random() > rates.cccd_typo else _typo(p.cccd, rng)
    bhyt = None
    if rng.random() > rates.missing_bhyt and (p.cccd or p.kind == "newborn"):
        bhyt = (
            f"{'TE' if p.kind == 'newborn' else 'GD'}4{p.bhxh[:2]}{p.bhxh}"
            if p.kind != "newborn"
            else None
        )
    phone = p.phone if p.phone and rng.random() > rates.missing_phone else None
    if phone and rng.random() < rates.old_phone and phone[:3] in _NEW_PREFIX_TO_OLD:
        phone = _NEW_PREFIX_TO_OLD[phone[:3]] + phone[3:]
    commune: str | None = p.commune
    if rng.random() < rates.moved:
        commune = rng.choice(communes)
    if commune and rng.random() < rates.old_commune:
        commune = commune_of.get(commune, commune)
    if rng.random() < rates.missing_commune:
        commune = None
    sex = None if rng.random() < rates.missing_sex else p.sex
    return SourceRecord(
        source=source, record_id=rid, full_name=name, birth_date=bd, sex=sex, cccd=cccd, bhyt=bhyt,
        phone=phone, commune_code=commune, temp_card=p.temp_card,
    )  # fmt: skip


def generate(
    n_records: int,
    *,
    seed: int = 1,
    dup_rate: float = 0.6,
    rates: ErrorRates | None = None,
    province: str = "01",
) -> tuple[list[SourceRecord], list[int]]:
    """About ``n_records`` noisy records and, for each, the index of its true person.

    On average a person has ``1 + dup_rate`` records (records of one person come from
    different sources).
    """
    rates = rates or ErrorRates()
    rng = random.Random(seed + 7)
    n_people = max(2, int(n_records / (1 + dup_rate)))
    people = generate_people(n_people, seed, province)
    communes, back = _communes(province)
    recs: list[SourceRecord] = []
    truth: list[int] = []
    for i, p in enumerate(people):
        k = 1
        while rng.random() < dup_rate / (1 + dup_rate) and k < 6:
            k += 1
        for j in range(k):
            src = SOURCES[(i + j) % len(SOURCES)]
            recs.append(make_record(p, f"{i}-{j}", src, rng, rates, back, communes))
            truth.append(i)
        if len(recs) >= n_records:
            break
    order = list(range(len(recs)))
    rng.shuffle(order)
    return [recs[i] for i in order][:n_records], [truth[i] for i in order][:n_records]
