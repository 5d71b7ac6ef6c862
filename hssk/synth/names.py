"""Vietnamese names with realistic frequencies (NFC), from the duyet/vietnamese-namedb lists.

Family names are reweighted toward national statistics (the UIT list is skewed young and
southern); middle names depend on sex (Thị for most women, Văn for many men); given names by
sex come from the duyet boy/girl lists, weighted by the UIT given-name counts.
"""

from __future__ import annotations

import csv
import random
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from hssk.registry.namedata import read_name_file
from hssk.synth.rng import Sampler

# National shares of the commonest family names (Wikipedia, "Họ người Việt Nam", from the
# 2005 study usually quoted); Hoàng/Huỳnh and Vũ/Võ are split north/south style.
NATIONAL_FAMILY_SHARES: dict[str, float] = {
    "Nguyễn": 0.38,
    "Trần": 0.11,
    "Lê": 0.095,
    "Phạm": 0.07,
    "Hoàng": 0.034,
    "Huỳnh": 0.017,
    "Phan": 0.045,
    "Vũ": 0.022,
    "Võ": 0.017,
    "Đặng": 0.021,
    "Bùi": 0.02,
    "Đỗ": 0.014,
    "Hồ": 0.013,
    "Ngô": 0.013,
    "Dương": 0.01,
    "Lý": 0.005,
}
# Share of women whose middle name is exactly "Thị", and of men whose is "Văn".
P_THI = 0.55
P_THI_COMPOUND = 0.12  # "Thị Thu", "Thị Thanh" …
P_VAN = 0.38


def _nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip())


def _read(name: str) -> str:
    return read_name_file(name)


def _counts(name: str) -> dict[str, int]:
    rows = csv.reader(_read(name).splitlines()[1:])
    return {_nfc(r[0]): int(r[1]) for r in rows if r and r[0].strip()}


@dataclass(frozen=True)
class Name:
    family: str
    middle: str
    given: str

    @property
    def full(self) -> str:
        return " ".join(p for p in (self.family, self.middle, self.given) if p)


class NameModel:
    """Samplers for family, middle and given names."""

    def __init__(self) -> None:
        fam = _counts("uit_family_name_freq.csv")
        rest = {k: v for k, v in fam.items() if k not in NATIONAL_FAMILY_SHARES}
        rest_share = 1.0 - sum(NATIONAL_FAMILY_SHARES.values())
        rest_total = sum(rest.values())
        weights = dict(NATIONAL_FAMILY_SHARES)
        weights.update({k: rest_share * v / rest_total for k, v in rest.items()})
        self.family = Sampler(list(weights), list(weights.values()))

        middle = _counts("uit_middle_name_freq.csv")
        given = _counts("uit_given_name_freq.csv")
        self.given: dict[str, Sampler[str]] = {}
        self.middle: dict[str, Sampler[str]] = {}
        for sex, fname in (("M", "duyet_boy_given_names.txt"), ("F", "duyet_girl_given_names.txt")):
            pairs = [_nfc(line).split() for line in _read(fname).splitlines() if line.strip()]
            givens = sorted({p[-1] for p in pairs})
            self.given[sex] = Sampler(givens, [given.get(g, 0) + 1 for g in givens])
            firsts = sorted({p[0] for p in pairs if len(p) > 1} - {"Thị", "Văn"})
            self.middle[sex] = Sampler(firsts, [middle.get(m, 0) + 1 for m in firsts])
        thi = sorted(k for k in middle if k.startswith("Thị ") and len(k.split()) == 2)
        self.thi_compound = Sampler(thi, [middle[k] for k in thi])

    def middle_name(self, rng: random.Random, sex: str) -> str:
        r = rng.random()
        if sex == "F":
            if r < P_THI:
                return "Thị"
            if r < P_THI + P_THI_COMPOUND:
                return self.thi_compound(rng)
            return self.middle["F"](rng)
        if r < P_VAN:
            return "Văn"
        return self.middle["M"](rng)

    def sample(self, rng: random.Random, sex: str, family: str | None = None) -> Name:
        """A full name for ``sex`` ('M'/'F'); ``family`` fixes the family name (children)."""
        return Name(family or self.family(rng), self.middle_name(rng, sex), self.given[sex](rng))


@lru_cache(maxsize=1)
def name_model() -> NameModel:
    return NameModel()
