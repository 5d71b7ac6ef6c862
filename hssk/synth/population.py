"""The synthetic population: households of persons with true ("golden") demographics.

Households are generated one at a time from their own random stream (seed, household number),
so the population streams with flat memory and any household can be regenerated alone.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta

from hssk.kernel.identifiers import OLD_PROVINCES, cccd_digit
from hssk.synth.facilities import Facilities
from hssk.synth.geo import Commune
from hssk.synth.names import Name, name_model
from hssk.synth.rng import Sampler, permute, sub_rng

REF_DATE = date(2026, 6, 30)  # "today" of the synthetic world
WINDOW_START = date(2021, 1, 1)  # births, deaths and registry events are simulated from here

# Vietnam age pyramid, share by 5-year group 0-4 … 80+ (GSO 2024 estimates, rounded).
AGE_GROUP_SHARES = (7.3, 8.0, 7.9, 7.0, 6.9, 7.5, 8.1, 8.2, 7.4, 6.8, 6.0, 5.4, 4.6, 3.6, 2.4, 1.4)
AGE_80_PLUS = 1.9
MAX_AGE = 99

# Mobile prefixes in use (after the 2018 renumbering), by network.
PHONE_PREFIXES: dict[str, tuple[str, ...]] = {
    "Viettel": ("086", "096", "097", "098", "032", "033", "034", "035", "036", "037", "038", "039"),
    "Vinaphone": ("088", "091", "094", "081", "082", "083", "084", "085"),
    "Mobifone": ("089", "090", "093", "070", "076", "077", "078", "079"),
    "Vietnamobile": ("092", "056", "058"),
}
NETWORK_SHARE = {"Viettel": 0.53, "Vinaphone": 0.24, "Mobifone": 0.2, "Vietnamobile": 0.03}
# MA_DANTOC (QĐ 121-TCTK 1979): Kinh 01 … ; shares for a mostly Kinh province.
ETHNICITIES = (("01", 0.9), ("02", 0.02), ("03", 0.02), ("04", 0.01), ("06", 0.03), ("07", 0.02))
INSURED_SHARE = 0.93


def _age_weights() -> list[float]:
    w: list[float] = []
    for share in AGE_GROUP_SHARES:
        w += [share / 5] * 5
    w += [AGE_80_PLUS / 20 * (1.0 - (i / 20)) * 2 for i in range(MAX_AGE + 1 - 80)]
    return w


AGE_WEIGHTS = _age_weights()


def target_age_share(lo: int, hi: int) -> float:
    """Share of the target pyramid with age in [lo, hi] years (for tests and reports)."""
    return sum(AGE_WEIGHTS[lo : hi + 1]) / sum(AGE_WEIGHTS)


@dataclass
class Person:
    """The truth about one resident (``person_key`` is what every source record points to)."""

    key: str
    index: int
    household_key: str
    relation: str  # to the head: Chủ hộ, Vợ, Chồng, Con, Bố, Mẹ
    name: Name
    sex: str  # M | F
    birth_date: date
    birth_province: str  # old code where the birth was registered (CCCD digits 2–3)
    ethnicity: str
    commune: Commune
    address_line: str
    cccd: str = ""
    temp_card: str = ""  # MA_THE_TAM of a newborn
    bhxh: str = ""
    bhyt: str = ""
    bhyt_object: str = ""
    bhyt_from: date | None = None
    bhyt_to: date | None = None
    dkbd: str = ""  # facility code of primary-care registration
    phone: str = ""
    mother_key: str = ""
    father_key: str = ""
    death_date: date | None = None
    conditions: tuple[str, ...] = ()  # chronic ICD-10: I10, E11
    smoker: bool = False
    alcohol: bool = False
    height_cm: float = 0.0
    weight_kg: float = 0.0
    children_born: list[Person] = field(default_factory=list)  # babies born in the window

    def age(self, on: date = REF_DATE) -> int:
        b = self.birth_date
        return on.year - b.year - ((on.month, on.day) < (b.month, b.day))

    def alive(self, on: date = REF_DATE) -> bool:
        return self.death_date is None or self.death_date > on

    @property
    def full_name(self) -> str:
        return self.name.full

    def address(self, new: bool = True) -> str:
        c = self.commune
        if new:
            return f"{self.address_line}, {c.new_name}, {c.new_province_name}"
        return f"{self.address_line}, {c.old_name}, {c.district_name}, {c.province_name}"


@dataclass
class Household:
    key: str
    index: int
    commune: Commune
    members: list[Person]

    @property
    def head(self) -> Person:
        return self.members[0]


HOUSEHOLD_TYPES = Sampler(
    ["single", "couple", "nuclear", "three_gen", "single_parent"], [0.1, 0.12, 0.5, 0.2, 0.08]
)
N_CHILDREN = Sampler([1, 2, 3], [0.25, 0.5, 0.25])


def annual_mortality(age: int) -> float:
    """Rough Vietnamese life-table death rates (per year)."""
    if age < 1:
        return 0.012
    if age < 15:
        return 0.0005
    if age < 50:
        return 0.0015
    if age < 60:
        return 0.005
    if age < 70:
        return 0.012
    if age < 80:
        return 0.035
    return 0.1


class PopulationBuilder:
    """Builds households for a set of communes, deterministically from a seed."""

    def __init__(
        self, communes: Sequence[Commune], facilities: Facilities, seed: int, province: str
    ) -> None:
        if not communes:
            raise ValueError("no communes to place the population in")
        self.communes = Sampler(list(communes), [1.6 if c.urban else 1.0 for c in communes])
        self.facilities = facilities
        self.seed = seed
        self.province = province
        self.names = name_model()
        self.ages = Sampler(list(range(MAX_AGE + 1)), AGE_WEIGHTS)
        self.others = [p for p in OLD_PROVINCES if p != province]
        nets = list(NETWORK_SHARE)
        self.network = Sampler(nets, [NETWORK_SHARE[n] for n in nets])
        self.ethnicity = Sampler([e for e, _ in ETHNICITIES], [w for _, w in ETHNICITIES])
        self.salts = {
            k: sub_rng(seed, "salt", k).randrange(10**12) for k in ("cccd", "bhxh", "phone", "card")
        }

    # --- ages -----------------------------------------------------------------------------
    def age_between(self, rng: random.Random, lo: int, hi: int) -> int:
        lo, hi = max(0, lo), min(MAX_AGE, hi)
        if lo > hi:
            return lo
        for _ in range(30):
            a = self.ages(rng)
            if lo <= a <= hi:
                return a
        return rng.randint(lo, hi)

    @staticmethod
    def birth_date(rng: random.Random, age: int) -> date:
        """A birth date giving ``age`` full years on REF_DATE."""
        end = date(REF_DATE.year - age, REF_DATE.month, REF_DATE.day)
        return end - timedelta(days=rng.randint(0, 364))

    # --- household ------------------------------------------------------------------------
    def household(self, index: int, first_person: int) -> Household:
        rng = sub_rng(self.seed, "household", index)
        commune = self.communes(rng)
        key = f"H{index + 1:07d}"
        if commune.urban:
            line = f"Số {rng.randint(1, 120)}, ngõ {rng.randint(1, 300)}, tổ {rng.randint(1, 40)}"
        else:
            line = f"{rng.choice(('Thôn', 'Xóm', 'Đội'))} {rng.randint(1, 15)}"
        plan = self._plan(rng)
        family = self.names.family(rng)
        members: list[Person] = []
        for role, sex, age, fam in plan:
            p = self._person(rng, first_person + len(members), key, role, sex, age, commune, line)
            if fam == "head":
                p.name = self.names.sample(rng, sex, family)
            members.append(p)
        self._link(members)
        for p in members:
            self._finish(rng, p)
        return Household(key, index, commune, members)

    def _plan(self, rng: random.Random) -> list[tuple[str, str, int, str]]:
        """(relation, sex, age, family-name rule) of each member, the head first."""
        kind = HOUSEHOLD_TYPES(rng)
        head_sex = "M" if rng.random() < 0.75 else "F"
        other = "F" if head_sex == "M" else "M"
        if kind == "single":
            lo = 60 if rng.random() < 0.5 else 20  # many living alone are widowed elders
            return [("Chủ hộ", head_sex, self.age_between(rng, lo, MAX_AGE), "own")]
        if kind == "couple":  # young couples and empty nests
            a = self.age_between(rng, 50 if rng.random() < 0.6 else 22, 90)
            return [
                ("Chủ hộ", head_sex, a, "head"),
                ("Vợ" if other == "F" else "Chồng", other, self._spouse_age(rng, a), "own"),
            ]
        if kind == "single_parent":
            sex = "F" if rng.random() < 0.8 else "M"
            a = self.age_between(rng, 22, 60)
            out = [("Chủ hộ", sex, a, "head")]
            out += [("Con", s, c, "head") for s, c in self._children(rng, a, 2)]
            return out
        if kind == "nuclear":
            a = self.age_between(rng, 22, 60)
            out = [
                ("Chủ hộ", head_sex, a, "head"),
                ("Vợ" if other == "F" else "Chồng", other, self._spouse_age(rng, a), "own"),
            ]
            out += [("Con", s, c, "head") for s, c in self._children(rng, min(a, out[1][2]), 3)]
            return out
        # three generations: a grandparent head (or two), their child's couple, grandchildren
        g = self.age_between(rng, 55, 95)
        parent = max(20, min(g - rng.randint(20, 35), 65))
        out = [("Chủ hộ", head_sex, g, "head")]
        if rng.random() < 0.6:
            out.append(("Vợ" if other == "F" else "Chồng", other, self._spouse_age(rng, g), "own"))
        son = "M" if rng.random() < 0.7 else "F"
        out.append(("Con", son, parent, "head"))
        in_law = "F" if son == "M" else "M"
        if rng.random() < 0.9:
            out.append(("Con dâu" if in_law == "F" else "Con rể", in_law, parent, "own"))
        kids_family = "head" if son == "M" else "own"
        out += [("Cháu", s, c, kids_family) for s, c in self._children(rng, parent, 3)]
        return out

    def _spouse_age(self, rng: random.Random, age: int) -> int:
        return max(18, min(MAX_AGE, age + rng.randint(-6, 3)))

    def _children(self, rng: random.Random, parent_age: int, max_n: int) -> list[tuple[str, int]]:
        """Children ages from the mother's age at each birth (first near 25, then 2–5 years apart)."""
        n = min(N_CHILDREN(rng), max_n)
        out: list[tuple[str, int]] = []
        at_birth = max(18.0, rng.gauss(25, 4))
        for _ in range(n):
            age = parent_age - int(at_birth)
            if age < 0:
                break
            out.append(("M" if rng.random() < 0.51 else "F", age))
            at_birth += rng.uniform(2, 6)
        return out

    def _person(
        self,
        rng: random.Random,
        index: int,
        hh: str,
        role: str,
        sex: str,
        age: int,
        commune: Commune,
        line: str,
    ) -> Person:
        return Person(
            key=f"P{index + 1:08d}",
            index=index,
            household_key=hh,
            relation=role,
            name=self.names.sample(rng, sex),
            sex=sex,
            birth_date=self.birth_date(rng, age),
            birth_province=self.province
            if rng.random() < 0.8 or age < 18
            else rng.choice(self.others),
            ethnicity=self.ethnicity(rng),
            commune=commune,
            address_line=line,
        )

    def _link(self, members: list[Person]) -> None:
        """Link children to their parents; children take the family name of their father."""
        head = members[0]
        by_role: dict[str, list[Person]] = {}
        for p in members:
            by_role.setdefault(p.relation, []).append(p)

        def first(*roles: str) -> Person | None:
            return next((by_role[r][0] for r in roles if by_role.get(r)), None)

        spouse = first("Vợ", "Chồng")
        gen2 = by_role.get("Con", [])
        if "Cháu" in by_role:  # three generations: parents are the Con and the in-law
            child = gen2[0] if gen2 else None
            if child is not None:
                self._parents(child, head, spouse)
            a, b = child, first("Con dâu", "Con rể")
            kids = by_role["Cháu"]
        else:
            a, b, kids = head, spouse, gen2
        for k in kids:
            self._parents(k, a, b)

    @staticmethod
    def _parents(kid: Person, a: Person | None, b: Person | None) -> None:
        for par in (a, b):
            if par is None:
                continue
            if par.sex == "F":
                kid.mother_key = par.key
                if WINDOW_START <= kid.birth_date <= REF_DATE:
                    par.children_born.append(kid)
            else:
                kid.father_key = par.key
                kid.name = Name(par.name.family, kid.name.middle, kid.name.given)

    def _finish(self, rng: random.Random, p: Person) -> None:
        """Identifiers, insurance, phone, health facts and death of one person."""
        age = p.age()
        days_old = (REF_DATE - p.birth_date).days
        prov = p.birth_province
        if days_old >= 60 or rng.random() < 0.5:
            p.cccd = (
                f"0{prov}{cccd_digit(p.birth_date.year, p.sex)}{p.birth_date.year % 100:02d}"
                f"{permute(p.index, 10**6, self.salts['cccd']):06d}"
            )
        if p.birth_date >= WINDOW_START:
            p.temp_card = (
                f"TE1{self.province}{permute(p.index, 10**10, self.salts['card'], 'card'):010d}"
            )
        insured = rng.random() < (0.99 if age < 6 else INSURED_SHARE - 0.005)
        if insured:
            p.bhxh = f"{self.province}{permute(p.index, 10**8, self.salts['bhxh'], 'bhxh'):08d}"
            obj, level = self._bhyt_object(rng, age)
            p.bhyt_object = obj
            p.bhyt = f"{obj}{level}{self.province}{p.bhxh}"
            p.bhyt_from = max(p.birth_date, date(REF_DATE.year, 1, 1))
            p.bhyt_to = date(REF_DATE.year, 12, 31)
            if obj == "TE":
                p.bhyt_to = date(p.birth_date.year + 6, p.birth_date.month, 1) - timedelta(days=1)
            p.dkbd = self.facilities.registered(p.commune, rng).code
        if age >= 15 and rng.random() < 0.93:
            prefix = rng.choice(PHONE_PREFIXES[self.network(rng)])
            p.phone = f"{prefix}{permute(p.index, 10**7, self.salts['phone'], 'phone'):07d}"
        if age >= 40:
            if rng.random() < (0.45 if age >= 60 else 0.22):
                p.conditions += ("I10",)
            if rng.random() < (0.12 if age >= 60 else 0.06):
                p.conditions += ("E11",)
        p.smoker = age >= 15 and rng.random() < (0.42 if p.sex == "M" else 0.02)
        p.alcohol = age >= 18 and rng.random() < (0.5 if p.sex == "M" else 0.05)
        p.height_cm, p.weight_kg = self._body(rng, p, age)
        start = max(WINDOW_START, p.birth_date)
        span = (REF_DATE - start).days
        if span > 0 and rng.random() < annual_mortality(age) * span / 365.25:
            p.death_date = start + timedelta(days=rng.randint(1, span))

    @staticmethod
    def _bhyt_object(rng: random.Random, age: int) -> tuple[str, int]:
        if age < 6:
            return "TE", 1
        if age < 18 or (age < 23 and rng.random() < 0.6):
            return "HS", 4
        r = rng.random()
        if age >= 80 and r < 0.6:
            return "BT", 2
        if age >= 60 and r < 0.4:
            return "HT", 2
        if r < 0.05:
            return "HN", 2
        if r < 0.09:
            return "CN", 3
        if age < 60 and r < 0.12:
            return ("QN", 1) if rng.random() < 0.5 else ("CA", 1)
        if age < 60 and r < 0.55:
            return ("DN", 4) if rng.random() < 0.85 else ("HC", 4)
        return "GD", 4

    @staticmethod
    def _body(rng: random.Random, p: Person, age: int) -> tuple[float, float]:
        if age < 18:
            h = 50 + min(age, 17) * (7.0 if age < 12 else 5.0) + rng.gauss(0, 4)
            bmi = 16 + min(age, 17) * 0.25 + rng.gauss(0, 1.5)
        else:
            h = (165 if p.sex == "M" else 154) + rng.gauss(0, 6)
            bmi = 22 + rng.gauss(0, 2.8) + (1.5 if "E11" in p.conditions else 0)
        h = max(45.0, h)
        return round(h, 1), round(max(2.5, bmi * (h / 100) ** 2), 1)


def iter_households(builder: PopulationBuilder, persons: int) -> Iterator[Household]:
    """Households until ``persons`` residents exist (the last one is trimmed to fit)."""
    made = 0
    index = 0
    while made < persons:
        hh = builder.household(index, made)
        if made + len(hh.members) > persons:
            hh.members = hh.members[: persons - made]
            kept = {p.key for p in hh.members}
            for p in hh.members:  # babies cut off with the household are not in the population
                p.children_born = [b for b in p.children_born if b.key in kept]
        made += len(hh.members)
        index += 1
        yield hh
