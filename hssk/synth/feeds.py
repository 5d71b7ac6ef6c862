"""CSV source feeds: population register, insurance register, immunization registry (TCMR and
COVID-19) and commune-station entries. Each row carries the demographics *as that source holds
them* (after the error model) and its own record id; the truth file links it to the person."""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from importlib import resources
from typing import ClassVar

from hssk.kernel.identifiers import OLD_PROVINCES
from hssk.synth.errors import (
    Demographics,
    ErrorModel,
    ErrorRates,
    perturb,
    registrations,
    source_era,
)
from hssk.synth.facilities import Facilities, Facility
from hssk.synth.output import Output
from hssk.synth.population import REF_DATE, WINDOW_START, Household, Person
from hssk.synth.rng import Sampler, permute, sub_rng

SEX_VI = {"M": "Nam", "F": "Nữ"}
TCMR_REGISTRY_START = date(2017, 1, 1)  # national immunization information system


@dataclass(frozen=True)
class ScheduleDose:
    code: str
    name: str
    dose: int
    age_days: int
    coverage: float
    delay_days: int


@lru_cache(maxsize=1)
def tcmr_schedule() -> tuple[ScheduleDose, ...]:
    """The TCMR child schedule, kept as data (``data/tcmr_schedule.csv``)."""
    text = resources.files("hssk.synth").joinpath("data/tcmr_schedule.csv").read_text("utf-8")
    return tuple(
        ScheduleDose(
            r["code"],
            r["name"],
            int(r["dose"]),
            int(r["age_days"]),
            float(r["coverage"]),
            int(r["delay_days"]),
        )
        for r in csv.DictReader(text.splitlines())
    )


@dataclass(frozen=True)
class CovidVaccine:
    code: str
    name: str
    primary: float
    booster: float
    lot_prefix: str


@lru_cache(maxsize=1)
def covid_vaccines() -> tuple[CovidVaccine, ...]:
    text = resources.files("hssk.synth").joinpath("data/covid_vaccines.csv").read_text("utf-8")
    return tuple(
        CovidVaccine(
            r["code"],
            r["name"],
            float(r["primary_share"]),
            float(r["booster_share"]),
            r["lot_prefix"],
        )
        for r in csv.DictReader(text.splitlines())
    )


def _dob(d: Demographics) -> str:
    return d.dob_iso


def _last_day(p: Person) -> date:
    return min(REF_DATE, p.death_date) if p.death_date else REF_DATE


class _PerRegistration:
    """A feed whose rows of one person repeat a registration (doses, station entries): the
    demographics of a registration are drawn once per person and commune-code era (what
    ``perturb`` gives depends on the date only through the era)."""

    rates: ErrorRates
    seed: int
    seen: dict[tuple[str, str], Demographics]

    def _demographics(self, p: Person, source: str, reg: str, when: date) -> Demographics:
        key = (reg, source_era(source, when))
        d = self.seen.get(key)
        if d is None:
            d = self.seen[key] = perturb(p, source, reg, self.rates, self.seed, when)
        return d


# --- population register ------------------------------------------------------------------
class PopulationFeed:
    HEADER: ClassVar[list[str]] = [
        "ma_ban_ghi", "so_dinh_danh", "ho_ten", "ngay_sinh", "gioi_tinh", "noi_dang_ky_khai_sinh",
        "ma_dan_toc", "ma_ho", "quan_he_chu_ho", "dia_chi_thuong_tru", "ma_xa", "ten_xa", "ma_tinh",
        "so_dien_thoai", "ho_ten_cha", "ho_ten_me", "tinh_trang", "ngay_mat",
    ]  # fmt: skip

    def __init__(self, out: Output, errors: ErrorModel, seed: int) -> None:
        self.sink = out.csv("population", "population/dan_cu.csv", self.HEADER,
                            "Population-register extract (Cơ sở dữ liệu quốc gia về dân cư)")  # fmt: skip
        self.out = out
        self.rates = errors.for_source("population")
        self.seed = seed

    def write(self, p: Person, hh: dict[str, Person]) -> None:
        if not p.cccd:  # birth not registered yet: not in the register
            return
        for reg in registrations(p, "population", p.key, self.rates, self.seed):
            d = perturb(p, "population", reg, self.rates, self.seed, REF_DATE)
            rid = f"DC{p.index + 1:08d}" + ("B" if reg.endswith("#2") else "")
            father, mother = hh.get(p.father_key), hh.get(p.mother_key)
            self.sink.write([
                rid, d.cccd, d.full_name, _dob(d), SEX_VI[p.sex], OLD_PROVINCES[p.birth_province],
                p.ethnicity, p.household_key, p.relation, d.address, d.commune_code, d.commune_name,
                p.commune.new_province_code, d.phone, father.full_name if father else "",
                mother.full_name if mother else "", "Đã mất" if p.death_date else "Còn sống",
                p.death_date.isoformat() if p.death_date else "",
            ])  # fmt: skip
            self.out.record("population", rid, p.key, "population/dan_cu.csv", d.errors)


# --- insurance register -------------------------------------------------------------------
class InsuranceFeed:
    HEADER: ClassVar[list[str]] = [
        "ma_ban_ghi", "ma_so_bhxh", "ma_the_bhyt", "ho_ten", "ngay_sinh", "gioi_tinh", "so_cccd",
        "so_dien_thoai", "dia_chi", "ma_xa", "ma_tinh", "ma_dkbd", "gt_the_tu", "gt_the_den",
        "ma_doi_tuong", "muc_huong", "trang_thai",
    ]  # fmt: skip

    def __init__(self, out: Output, errors: ErrorModel, seed: int, province: str) -> None:
        self.sink = out.csv("insurance", "insurance/bhyt.csv", self.HEADER,
                            "Insurance-register extract (BHXH/BHYT participants)")  # fmt: skip
        self.out = out
        self.rates = errors.for_source("insurance")
        self.seed = seed
        self.province = province
        self.salt = sub_rng(seed, "salt", "bhxh").randrange(10**12)

    def write(self, p: Person) -> None:
        if not p.bhyt:
            return
        for reg in registrations(p, "insurance", p.key, self.rates, self.seed):
            d = perturb(p, "insurance", reg, self.rates, self.seed, REF_DATE)
            bhxh, card = p.bhxh, p.bhyt
            if reg.endswith("#2"):  # a second social-insurance number: the classic duplicate
                bhxh = (
                    f"{self.province}{permute(p.index + 50_000_000, 10**8, self.salt, 'bhxh'):08d}"
                )
                card = card[:5] + bhxh
            rid = f"BH{p.index + 1:08d}" + ("B" if reg.endswith("#2") else "")
            status = "Báo giảm (tử vong)" if p.death_date else "Đang tham gia"
            self.sink.write([
                rid, bhxh, card, d.full_name, _dob(d), SEX_VI[p.sex], d.cccd, d.phone, d.address,
                d.commune_code, p.commune.new_province_code, p.dkbd,
                p.bhyt_from.isoformat() if p.bhyt_from else "", p.bhyt_to.isoformat() if p.bhyt_to else "",
                p.bhyt_object, card[2], status,
            ])  # fmt: skip
            self.out.record("insurance", rid, p.key, "insurance/bhyt.csv", d.errors)


# --- immunization registry ----------------------------------------------------------------
class ImmunizationFeed(_PerRegistration):
    HEADER: ClassVar[list[str]] = [
        "ma_ban_ghi", "ma_doi_tuong", "chuong_trinh", "ho_ten", "ngay_sinh", "gioi_tinh", "so_cccd",
        "dien_thoai", "dia_chi", "ma_xa", "ten_xa", "ho_ten_me", "ma_vac_xin", "ten_vac_xin",
        "mui_so", "ngay_tiem", "so_lo", "vi_tri_tiem", "ma_co_so", "ten_co_so",
    ]  # fmt: skip
    SITES_CHILD = ("Đùi trái", "Đùi phải", "Uống", "Cánh tay trái")
    SITES_ADULT = ("Cánh tay trái", "Cánh tay phải")

    def __init__(self, out: Output, errors: ErrorModel, seed: int, facilities: Facilities) -> None:
        self.sink = out.csv("immunization", "immunization/tiem_chung.csv", self.HEADER,
                            "Immunization-registry extract: TCMR child schedule and COVID-19 doses")  # fmt: skip
        self.out = out
        self.rates = errors.for_source("immunization")
        self.seed = seed
        self.f = facilities
        self.n = 0
        self.k = 0
        self.seen: dict[tuple[str, str], Demographics] = {}
        vax = covid_vaccines()
        self.primary = Sampler(list(vax), [v.primary for v in vax])
        self.booster = Sampler(
            [v for v in vax if v.booster > 0.02], [v.booster for v in vax if v.booster > 0.02]
        )

    def _site(self, rng: random.Random, p: Person) -> Facility:
        r = rng.random()
        if r < 0.82:
            return self.f.station_of(p.commune)
        if r < 0.92:
            return self.f.centre_of(p.commune)
        return rng.choice(self.f.hospitals)

    def _row(self, p: Person, regs: list[str], program: str, code: str, name: str, dose: int,
             when: date, lot: str, site: str, fac: Facility, mother: Person | None,
             rng: random.Random) -> None:  # fmt: skip
        reg = regs[-1] if len(regs) > 1 and rng.random() < 0.5 else regs[0]
        d = self._demographics(p, "immunization", reg, when)
        self.n += 1
        self.k += 1  # ids from the person and a per-person number: independent of run order
        rid = f"TC{p.index + 1:08d}{self.k:03d}"
        phone = d.phone or (mother.phone if mother else "")
        subject = f"{'TE' if program == 'TCMR' else 'CV'}{p.index + 1:08d}{'B' if reg.endswith('#2') else ''}"
        self.sink.write([
            rid, subject, program, d.full_name, _dob(d), SEX_VI[p.sex], d.cccd, phone, d.address,
            d.commune_code, d.commune_name, mother.full_name if mother else "", code, name, dose,
            when.isoformat(), lot, site, fac.code, fac.name,
        ])  # fmt: skip
        self.out.record("immunization", rid, p.key, "immunization/tiem_chung.csv", d.errors)

    def write(self, p: Person, hh: dict[str, Person]) -> int:
        rng = sub_rng(self.seed, "imm", p.key)
        before = self.n
        self.k = 0
        self.seen.clear()
        last = _last_day(p)
        mother = hh.get(p.mother_key)
        if p.birth_date >= TCMR_REGISTRY_START:
            regs = registrations(p, "immunization", f"TCMR:{p.key}", self.rates, self.seed)
            compliance = 1.0 if rng.random() < 0.85 else 0.7
            given: dict[str, bool] = {}
            for s in tcmr_schedule():
                prev_ok = given.get(s.code, True) if s.dose > 1 else True
                if not prev_ok or rng.random() >= s.coverage * compliance:
                    given[s.code] = False
                    continue
                delay = int(
                    rng.expovariate(1 / max(1, s.delay_days)) * (1 if compliance == 1.0 else 3)
                )
                when = p.birth_date + timedelta(days=s.age_days + delay)
                if when > last:
                    given[s.code] = False
                    continue
                given[s.code] = True
                fac = (
                    self.f.centre_of(p.commune)
                    if s.age_days == 0 and rng.random() < 0.5
                    else self._site(rng, p)
                )
                lot = f"{s.code[:3].replace('-', '')}{rng.randint(100000, 999999)}"
                site = "Uống" if s.code == "OPV" else rng.choice(self.SITES_CHILD[:2])
                self._row(
                    p, regs, "TCMR", s.code, s.name, s.dose, when, lot, site, fac, mother, rng
                )
        for baby in p.children_born:  # tetanus (VAT) in pregnancy
            if rng.random() < 0.8:
                regs = registrations(p, "immunization", f"VAT:{p.key}", self.rates, self.seed)
                for dose, before_days in ((1, 150), (2, 120)):
                    when = baby.birth_date - timedelta(days=before_days + rng.randint(0, 20))
                    if when >= TCMR_REGISTRY_START:
                        fac = self.f.station_of(p.commune)
                        self._row(p, regs, "TCMR", "VAT", "Uốn ván (phụ nữ có thai)", dose, when,
                                  f"VAT{rng.randint(100000, 999999)}", "Cánh tay trái", fac, None, rng)  # fmt: skip
        self._covid(p, rng, last, mother)
        return self.n - before

    def _covid(self, p: Person, rng: random.Random, last: date, mother: Person | None) -> None:
        def age_on(d: date) -> int:
            return p.age(d)

        if age_on(date(2021, 7, 15)) >= 18:
            start, uptake, gap = (date(2021, 7, 1), 183), 0.95, (28, 84)
        elif age_on(date(2021, 11, 1)) >= 12:
            start, uptake, gap = (date(2021, 11, 1), 60), 0.9, (21, 35)
        elif age_on(date(2022, 4, 15)) >= 5:
            start, uptake, gap = (date(2022, 4, 15), 75), 0.65, (56, 70)
        else:
            return
        if rng.random() >= uptake:
            return
        regs = registrations(p, "immunization", f"COVID:{p.key}", self.rates, self.seed)
        vax = self.primary(rng)
        d1 = start[0] + timedelta(days=rng.randint(0, start[1]))
        doses = [(1, d1, vax)]
        if rng.random() < 0.95:
            doses.append((2, d1 + timedelta(days=rng.randint(*gap)), vax))
            adult = age_on(d1) >= 18
            if adult and rng.random() < 0.68:
                d3 = max(doses[-1][1] + timedelta(days=120), date(2022, 1, 5)) + timedelta(
                    days=rng.randint(0, 120)
                )
                doses.append((3, d3, self.booster(rng)))
                if rng.random() < (0.5 if age_on(d3) >= 50 else 0.2):
                    d4 = d3 + timedelta(days=120 + rng.randint(0, 90))
                    doses.append((4, d4, self.booster(rng)))
        fac = self._site(rng, p)
        for n, when, v in doses:
            if when > last or when > date(2022, 12, 31):
                break
            lot = f"{v.lot_prefix}{rng.randint(1000, 9999)}"
            site = self.SITES_ADULT[rng.randrange(2)]
            self._row(p, regs, "COVID19", v.code, v.name, n, when, lot, site, fac, mother, rng)


# --- commune health station entries -------------------------------------------------------
DEATH_CAUSES = Sampler(
    [("I64", "Đột quỵ"), ("I21.9", "Nhồi máu cơ tim cấp"), ("C34.9", "Ung thư phổi"),
     ("J44.9", "Bệnh phổi tắc nghẽn mạn tính"), ("C22.0", "Ung thư gan"), ("V89.2", "Tai nạn giao thông"),
     ("R54", "Già yếu")],
    [0.22, 0.12, 0.08, 0.08, 0.07, 0.06, 0.37],
)  # fmt: skip


class StationFeed(_PerRegistration):
    HEADER: ClassVar[list[str]] = [
        "ma_ban_ghi", "loai", "ngay", "ma_tram", "ho_ten", "ngay_sinh", "gioi_tinh", "so_cccd",
        "dien_thoai", "dia_chi", "ma_xa", "ma_ho", "quan_he_chu_ho", "chieu_cao_cm", "can_nang_kg",
        "bmi", "huyet_ap", "duong_huyet_mmol_l", "hut_thuoc", "uong_ruou", "ma_icd", "ket_luan",
        "ngay_mat", "nguyen_nhan_tu_vong",
    ]  # fmt: skip

    def __init__(self, out: Output, errors: ErrorModel, seed: int, facilities: Facilities) -> None:
        self.sink = out.csv("station", "station/tram_y_te.csv", self.HEADER,
                            "Commune health-station entries: households, check-ups, school health, "
                            "NCD screening, deaths")  # fmt: skip
        self.out = out
        self.rates = errors.for_source("station")
        self.seed = seed
        self.f = facilities
        self.n = 0
        self.k = 0
        self.seen: dict[tuple[str, str], Demographics] = {}

    def _row(self, p: Person, kind: str, when: date, reg: str, extra: dict[str, object]) -> None:
        d = self._demographics(p, "station", reg, when)
        self.n += 1
        self.k += 1
        rid = f"TYT{p.index + 1:08d}{self.k:02d}"
        station = self.f.station_of(p.commune)
        cols = {
            "ma_ban_ghi": rid, "loai": kind, "ngay": when.isoformat(), "ma_tram": station.code,
            "ho_ten": d.full_name, "ngay_sinh": _dob(d), "gioi_tinh": SEX_VI[p.sex], "so_cccd": d.cccd,
            "dien_thoai": d.phone, "dia_chi": d.address, "ma_xa": d.commune_code,
            "ma_ho": p.household_key, "quan_he_chu_ho": p.relation, **extra,
        }  # fmt: skip
        self.sink.write([cols.get(h, "") for h in self.HEADER])
        self.out.record("station", rid, p.key, "station/tram_y_te.csv", d.errors)

    def _exam(
        self, p: Person, rng: random.Random, when: date, screening: bool
    ) -> dict[str, object]:
        age = p.age(when)
        h, w = p.height_cm, p.weight_kg
        sys_bp = (
            rng.randint(140, 175)
            if "I10" in p.conditions and rng.random() < 0.6
            else rng.randint(100, 135)
        )
        glucose = rng.uniform(7.2, 13.5) if "E11" in p.conditions else rng.uniform(4.2, 6.3)
        if "I10" in p.conditions or "E11" in p.conditions:
            icd = "I10" if "I10" in p.conditions else "E11"
            conclusion = "Theo dõi, quản lý bệnh mạn tính tại trạm"
        else:
            icd, conclusion = ("Z13.6" if screening else "Z00.0"), "Bình thường"
        out: dict[str, object] = {
            "chieu_cao_cm": h, "can_nang_kg": w, "bmi": round(w / (h / 100) ** 2, 1),
            "ma_icd": icd, "ket_luan": conclusion,
        }  # fmt: skip
        if age >= 15:
            out["huyet_ap"] = f"{sys_bp}/{rng.randint(65, 100)}"
            out["hut_thuoc"] = "Có" if p.smoker else "Không"
            out["uong_ruou"] = "Có" if p.alcohol else "Không"
        if screening or age >= 40:
            out["duong_huyet_mmol_l"] = f"{glucose:.1f}"
        return out

    def write(self, p: Person, hh: Household) -> int:
        rng = sub_rng(self.seed, "station", p.key)
        before = self.n
        self.k = 0
        self.seen.clear()
        regs = registrations(p, "station", p.key, self.rates, self.seed)
        last = _last_day(p)

        def reg() -> str:
            return regs[-1] if len(regs) > 1 and rng.random() < 0.5 else regs[0]

        listed = date(2023, 1, 1) + timedelta(days=rng.randint(0, 900))
        if rng.random() < 0.85 and p.birth_date <= listed <= last:
            self._row(p, "ho_gia_dinh", listed, reg(), {})
        age = p.age()
        for year in (2024, 2025):
            when = date(year, 9, 15) + timedelta(days=rng.randint(0, 45))
            a = p.age(when)
            if 6 <= a <= 17 and when <= last and rng.random() < 0.9:
                self._row(p, "kham_hoc_duong", when, reg(), self._exam(p, rng, when, False))
            elif a >= 18 and when <= last and rng.random() < 0.3:
                self._row(p, "kham_dinh_ky", when, reg(), self._exam(p, rng, when, False))
        if age >= 40 and rng.random() < 0.5:
            when = WINDOW_START + timedelta(days=rng.randint(365, (REF_DATE - WINDOW_START).days))
            if when <= last:
                self._row(p, "sang_loc_ncd", when, reg(), self._exam(p, rng, when, True))
        if p.death_date is not None:
            icd, cause = (
                DEATH_CAUSES(rng) if p.age(p.death_date) >= 40 else ("V89.2", "Tai nạn giao thông")
            )
            when = min(REF_DATE, p.death_date + timedelta(days=rng.randint(0, 10)))
            self._row(p, "tu_vong", when, reg(), {
                "ngay_mat": p.death_date.isoformat(), "ma_icd": icd, "nguyen_nhan_tu_vong": cause,
            })  # fmt: skip
        return self.n - before
