"""HIS visit exports (QĐ 130 XML): which visits a person makes, and their hồ sơ files.

One hồ sơ (one MA_LK) per file, in ``his/<MA_CSKCB>/<yyyymmdd>/<MA_LK>.xml`` (day of discharge,
when the HIS exports it), and the XML0 check-in of the visit in ``checkin/<MA_CSKCB>/<day>/``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from hssk.ingest.xml130_tables import LEGACY_4210_FIELDS, QD4750_FROM
from hssk.synth.clinical import CONDITIONS, Condition, acute_choices, lab_value, vitals
from hssk.synth.errors import Demographics, ErrorRates, perturb, registrations
from hssk.synth.facilities import Facilities, Facility
from hssk.synth.output import Output
from hssk.synth.population import REF_DATE, Person
from hssk.synth.rng import Sampler, sub_rng
from hssk.synth.xmlgen import Quirks, checkin_xml, envelope, inner_xml

MUC_HUONG = {"1": 100, "2": 100, "3": 95, "4": 80, "5": 100}
NEW_CODES_FROM = date(2025, 7, 1)
UPPER_CASE_HIS = 0.2  # share of facilities whose HIS writes names in capitals


@dataclass
class Visit:
    ma_lk: str
    facility: Facility
    cond: Condition
    start: datetime
    end: datetime
    inpatient: bool
    kind: str  # acute | chronic | delivery | death (the patient dies at the end of the stay)
    secondary: tuple[str, ...]
    refer_to: Facility | None = None
    revisit: datetime | None = None
    baby: Person | None = None


def poisson(rng: random.Random, lam: float) -> int:
    """Knuth's method (small means only)."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


def _ts(d: datetime) -> str:
    return d.strftime("%Y%m%d%H%M")


def _d(d: date | datetime | None) -> str:
    return d.strftime("%Y%m%d") if d else ""


class VisitPlanner:
    """Decides the visits of one person over the visit window."""

    def __init__(self, facilities: Facilities, start: date, rate: float) -> None:
        self.f = facilities
        self.start = start
        self.rate = rate
        self.days = (REF_DATE - start).days

    def _when(self, rng: random.Random, p: Person) -> datetime | None:
        first = max(self.start, p.birth_date)
        last = min(REF_DATE, p.death_date - timedelta(days=1)) if p.death_date else REF_DATE
        if last < first:
            return None
        day = first + timedelta(days=rng.randint(0, (last - first).days))
        return datetime(
            day.year, day.month, day.day, rng.randint(7, 16), rng.choice((0, 15, 30, 45))
        )

    def _where(self, rng: random.Random, p: Person, cond: Condition, inpatient: bool) -> Facility:
        c = p.commune
        if cond.icd == "O80":
            return rng.choice(self.f.maternity or self.f.general)
        if inpatient:
            return rng.choice(self.f.general) if rng.random() < 0.5 else self.f.centre_of(c)
        r = rng.random()
        if cond.station_ok and r < 0.45:
            return self.f.station_of(c)
        if r < 0.6 and self.f.clinics.get(c.district_code):
            return rng.choice(self.f.clinics[c.district_code])
        return self.f.centre_of(c) if r < 0.9 else rng.choice(self.f.general)

    def plan(self, p: Person, seed: int) -> list[Visit]:
        rng = sub_rng(seed, "visits", p.key)
        years = self.days / 365.25
        age = p.age()
        episodes: list[tuple[Condition, datetime, str]] = []
        acute_rate = (1.2 if age < 6 else 0.6 if age >= 60 else 0.35) * self.rate
        choices = acute_choices(age)
        acute = Sampler([c for c, _ in choices], [w for _, w in choices])
        for _ in range(poisson(rng, acute_rate * years)):
            when = self._when(rng, p)
            if when:
                episodes.append((CONDITIONS[acute(rng)], when, "acute"))
        for icd in p.conditions:  # chronic: check-up and refill about every quarter
            for _ in range(poisson(rng, 2.0 * years * self.rate)):
                when = self._when(rng, p)
                if when:
                    episodes.append((CONDITIONS[icd], when, "chronic"))
        for baby in p.children_born:
            if self.start <= baby.birth_date <= REF_DATE:
                b = baby.birth_date
                episodes.append(
                    (CONDITIONS["O80"], datetime(b.year, b.month, b.day, 6, 0), "delivery")
                )
        death = p.death_date
        if death and self.start < death <= REF_DATE and p.age(death) >= 40 and rng.random() < 0.35:
            # about a third of adult deaths happen in hospital: the last hồ sơ says so
            icd = p.conditions[0] if p.conditions and rng.random() < 0.5 else "J18.9"
            when = datetime(death.year, death.month, death.day, 10) - timedelta(
                days=rng.randint(2, 9)
            )
            if when.date() >= self.start:
                episodes.append((CONDITIONS[icd], when, "death"))
        visits = []
        for n, (cond, when, kind) in enumerate(sorted(episodes, key=lambda e: e[1])):
            inpatient = kind == "death" or rng.random() < cond.inpatient
            fac = self._where(rng, p, cond, inpatient)
            if kind == "death" and death:
                end = datetime(
                    death.year, death.month, death.day, rng.randint(0, 23), rng.randint(0, 59)
                )
            elif inpatient:
                end = when + timedelta(days=rng.randint(*cond.los), hours=rng.randint(0, 5))
            else:
                end = when + timedelta(minutes=rng.randint(20, 150))
            if death and kind != "death" and end.date() >= death:
                continue  # would outlive the patient
            sec = tuple(c for c in p.conditions if c != cond.icd)
            if cond.extra_icd and rng.random() < 0.3:
                sec += cond.extra_icd
            v = Visit(
                ma_lk=f"{fac.code}{when:%y%m%d}{p.index:08d}{n:02d}",
                facility=fac,
                cond=cond,
                start=when,
                end=end,
                inpatient=inpatient,
                kind=kind,
                secondary=sec,
            )
            if kind == "death":
                visits.append(v)
                continue
            if fac.kind in ("station", "clinic", "polyclinic") and rng.random() < 0.05:
                v.refer_to = (
                    self.f.centre_of(p.commune)
                    if fac.kind == "station"
                    else rng.choice(self.f.general)
                )
            if kind == "chronic" or (inpatient and rng.random() < 0.5):
                v.revisit = end + timedelta(days=30 if kind == "chronic" else 14)
            if kind == "delivery":
                v.baby = next(b for b in p.children_born if b.birth_date == when.date())
            visits.append(v)
        return visits


class HisWriter:
    """Writes the hồ sơ files of visits, with source-side demographics and quirks."""

    def __init__(
        self,
        out: Output,
        facilities: Facilities,
        rates: ErrorRates,
        seed: int,
        quirk_rate: float,
        persons_by_key: dict[str, Person],
    ) -> None:
        self.out = out
        self.f = facilities
        self.rates = rates
        self.seed = seed
        self.quirk_rate = quirk_rate
        self.household = persons_by_key  # members of the current household (parents' names)
        out.tree(
            "his",
            "his",
            "QĐ 130 hồ sơ files (GIAMDINHHS envelope), one MA_LK per file, per facility and day;"
            " visits that ended before 2024-07-01 in QĐ 4210 (XML1–XML5)",
        )
        out.tree(
            "checkin", "checkin", "QĐ 130 XML0 check-in files, one per visit, per facility and day"
        )
        self.tables: dict[str, int] = {}

    def write(self, p: Person, visits: list[Visit]) -> int:
        regs: dict[str, list[str]] = {}
        n = 0
        for v in visits:
            code = v.facility.code
            if code not in regs:
                regs[code] = registrations(p, "his", f"{code}:{p.key}", self.rates, self.seed)
            rng = sub_rng(self.seed, "his", v.ma_lk)
            reg = rng.choice(regs[code])
            demo = perturb(p, "his", reg, self.rates, self.seed, v.start.date())
            if sub_rng(self.seed, "upper", code).random() < UPPER_CASE_HIS:
                # some HIS keep names in capitals (as the KSK templates require): not an error,
                # a format the matcher must normalise
                demo.full_name = demo.full_name.upper()
                demo.errors = [*demo.errors, "format:upper_case_name"]
            ma_bn = f"{code}{p.index + (50_000_000 if reg.endswith('#2') else 0):08d}"
            n += self._write_visit(p, v, demo, ma_bn, rng)
        return n

    # --- one hồ sơ --------------------------------------------------------------------------
    def _write_visit(
        self, p: Person, v: Visit, demo: Demographics, ma_bn: str, rng: random.Random
    ) -> int:
        q = Quirks.draw(rng, self.quirk_rate)
        fac = v.facility
        cond = v.cond
        insured = bool(p.bhyt)
        level = p.bhyt[2] if insured else ""
        muc = MUC_HUONG.get(level, 0)
        days = (v.end.date() - v.start.date()).days + 1 if v.inpatient else 0
        doctor = f"{rng.randint(1, 9999):06d}/{'HNO' if fac.province_code == '01' else 'BYT'}-CCHN"
        dept = "K03" if v.inpatient else "K01"
        if cond.icd == "O80":
            dept = "K23"
        head_code = f"{fac.province_code}{int(fac.code[2:]):08d}"
        # visits that ended before QĐ 4750 took effect were exported in QĐ 4210 (XML1–XML5)
        legacy = _d(v.end) < QD4750_FROM
        base_row = {"MA_LK": v.ma_lk, "MA_KHOA": dept, "MA_BAC_SI": doctor, "NGAY_YL": _ts(v.start)}

        def money(total: int) -> dict[str, object]:
            bh = total if insured else 0
            bncct = round(bh * (100 - muc) / 100)
            return {
                "THANH_TIEN_BV": total,
                "THANH_TIEN_BH": bh,
                "MUC_HUONG": muc if insured else "",
                "T_BNTT": total - bh,
                "T_BNCCT": bncct,
                "T_BHTT": bh - bncct,
                "T_NGUONKHAC": 0,
            }

        supply = days if v.inpatient else (30 if v.kind == "chronic" else rng.randint(3, 7))
        drugs = []
        for i, d in enumerate(cond.drugs, 1):
            qty = d.per_day * supply
            drugs.append(
                {
                    **base_row,
                    "STT": i,
                    "MA_THUOC": d.code,
                    "MA_NHOM": "4",
                    "TEN_THUOC": d.name,
                    "DON_VI_TINH": d.unit,
                    "HAM_LUONG": d.strength,
                    "DUONG_DUNG": d.route,
                    "DANG_BAO_CHE": d.form,
                    "LIEU_DUNG": f"{d.per_day} {d.unit.lower()}/ngày",
                    "CACH_DUNG": d.usage,
                    "SO_DANG_KY": f"VD-{rng.randint(10000, 39999)}-{rng.randint(17, 24)}",
                    "TT_THAU": f"G1;N{rng.randint(1, 5)};{v.start.year - 1}",
                    "PHAM_VI": 1,
                    "TYLE_TT_BH": 100,
                    "SO_LUONG": qty,
                    "DON_GIA": d.price,
                    **money(qty * d.price),
                    "NGAY_TH_YL": _ts(v.start + timedelta(minutes=30)),
                    "NGUON_CTRA": 1,
                }
            )
        services = list(cond.services)
        svc_rows = []
        for i, s in enumerate(services, 1):
            qty = 1
            svc_rows.append(
                {
                    **base_row,
                    "STT": i,
                    "MA_DICH_VU": s.code,
                    "MA_NHOM": s.group,
                    "TEN_DICH_VU": s.name,
                    "DON_VI_TINH": "Lần",
                    "PHAM_VI": 1,
                    "SO_LUONG": qty,
                    "DON_GIA_BV": s.price,
                    "DON_GIA_BH": s.price if insured else "",
                    "TYLE_TT_DV": 100,
                    "TYLE_TT_BH": 100,
                    **money(s.price),
                    "T_TRANTT": "",
                    "MA_BENH": ";".join((cond.icd, *v.secondary)),
                    "NGAY_TH_YL": _ts(v.start + timedelta(minutes=20)),
                    "NGAY_KQ": _ts(v.start + timedelta(minutes=90)) if s.group in "123" else "",
                }
            )
        if v.inpatient:
            bed = {
                **base_row,
                "STT": len(svc_rows) + 1,
                "MA_DICH_VU": "15.0001",
                "MA_NHOM": "15",
                "TEN_DICH_VU": "Ngày giường bệnh Nội khoa",
                "DON_VI_TINH": "Ngày",
                "SO_LUONG": days,
                "DON_GIA_BV": 214_000,
                "DON_GIA_BH": 214_000 if insured else "",
                "TYLE_TT_DV": 100,
                "TYLE_TT_BH": 100,
                **money(days * 214_000),
                "MA_GIUONG": f"H{rng.randint(1, 999):03d}",
                "MA_BENH": cond.icd,
            }
            svc_rows.append(bed)
        labs = []
        for i, lab in enumerate(cond.labs, 1):
            value = lab_value(lab, rng)
            finding = lab.high == 0
            labs.append(
                {
                    "MA_LK": v.ma_lk,
                    "STT": i,
                    "MA_DICH_VU": lab.service,
                    "MA_CHI_SO": lab.code,
                    "TEN_CHI_SO": lab.name,
                    "GIA_TRI": "" if finding else value,
                    "DON_VI_DO": lab.unit,
                    "MO_TA": "" if finding else f"Bình thường: {lab.normal}",
                    "KET_LUAN": value if finding else "",
                    "NGAY_KQ": _ts(v.start + timedelta(minutes=90)),
                    "MA_BS_DOC_KQ": doctor,
                }
            )
        t_thuoc = sum(int(r["THANH_TIEN_BV"]) for r in drugs)  # type: ignore[call-overload]
        t_dv = sum(int(r["THANH_TIEN_BV"]) for r in svc_rows)  # type: ignore[call-overload]
        total = t_thuoc + t_dv
        bh = total if insured else 0
        bncct = round(bh * (100 - muc) / 100)
        icds = ";".join(v.secondary)
        diag = cond.name + "".join(
            f"; {CONDITIONS[c].name}" for c in v.secondary if c in CONDITIONS
        )
        course = vitals(cond, rng)
        address = demo.address
        if q.empty_district and demo.commune_code == p.commune.new_code:
            c = p.commune
            address = f"{p.address_line},{c.new_name},,{c.new_province_name}"
        old_era = (
            demo.commune_code == p.commune.old_code and p.commune.old_code != p.commune.new_code
        )
        matinh = p.commune.province_code if old_era else p.commune.new_province_code
        dob = demo.birth_date
        ngay_sinh = f"{dob.year}00000000" if demo.dob_precision == "year" else f"{dob:%Y%m%d}0000"
        if legacy:  # 4210 dates of birth have 8 digits
            ngay_sinh = ngay_sinh[:8]
        ra = "2" if v.refer_to else "1"
        # the patient as both the visit (XML1) and its check-in (XML0) open
        patient = {
            "MA_LK": v.ma_lk,
            "STT": 1,
            "MA_BN": ma_bn,
            "HO_TEN": demo.full_name,
            "SO_CCCD": demo.cccd,
            "NGAY_SINH": ngay_sinh,
        }
        xml1 = {
            **patient,
            "GIOI_TINH": "1" if p.sex == "M" else "2",
            "MA_QUOCTICH": "000",
            "MA_DANTOC": p.ethnicity,
            "MA_NGHE_NGHIEP": "00000",
            "DIA_CHI": address,
            "MATINH_CU_TRU": matinh,
            "MAHUYEN_CU_TRU": p.commune.district_code if old_era else "",
            "MAXA_CU_TRU": demo.commune_code,
            "DIEN_THOAI": demo.phone,
            "MA_THE_BHYT": p.bhyt,
            "MA_DKBD": p.dkbd,
            "GT_THE_TU": _d(p.bhyt_from),
            "GT_THE_DEN": _d(p.bhyt_to),
            "LY_DO_VV": course.split(",")[0],
            "LY_DO_VNT": cond.name if v.inpatient else "",
            "CHAN_DOAN_VAO": cond.name,
            "CHAN_DOAN_RV": diag,
            "MA_BENH_CHINH": cond.icd,
            "MA_BENH_KT": icds,
            "MA_DOITUONG_KCB": "1.1" if insured else "",
            "MA_NOI_DEN": v.refer_to.code if v.refer_to else "",
            "MA_TAI_NAN": "",
            "NGAY_VAO": _ts(v.start),
            "NGAY_VAO_NOI_TRU": _ts(v.start) if v.inpatient else "",
            "NGAY_RA": _ts(v.end),
            "GIAY_CHUYEN_TUYEN": f"CT{v.ma_lk[-10:]}" if v.refer_to else "",
            "SO_NGAY_DTRI": days,
            "PP_DIEU_TRI": "Điều trị nội khoa" if cond.icd != "O80" else "Đỡ đẻ thường",
            "KET_QUA_DTRI": "5" if v.kind == "death" else "1" if v.inpatient else "2",
            "MA_LOAI_RV": ra,
            "GHI_CHU": "Tử vong"
            if v.kind == "death"
            else "Tái khám theo hẹn"
            if v.revisit
            else "Tái khám khi có dấu hiệu bất thường",
            "NGAY_TTOAN": _ts(v.end),
            "T_THUOC": t_thuoc,
            "T_VTYT": 0,
            "T_TONGCHI_BV": total,
            "T_TONGCHI_BH": bh,
            "T_BNTT": total - bh,
            "T_BNCCT": bncct,
            "T_BHTT": bh - bncct,
            "T_NGUONKHAC": 0,
            "T_BHTT_GDV": 0,
            "NAM_QT": v.end.year,
            "THANG_QT": v.end.month,
            "MA_LOAI_KCB": ("3" if v.inpatient else "1")
            if legacy
            else ("03" if v.inpatient else "01"),
            "MA_KHOA": dept,
            "MA_CSKCB": fac.code,
            "MA_KHUVUC": "",
            "CAN_NANG": f"{p.weight_kg:.2f}",
            "CAN_NANG_CON": "",
            "NGAY_TAI_KHAM": _d(v.revisit),
            "MA_HSBA": f"{v.ma_lk[-12:]}" if v.inpatient else "",
            "MA_TTDV": head_code,
        }
        files: list[tuple[str, str]] = [("XML1", inner_xml("XML1", [xml1], q, legacy=legacy))]
        if drugs:
            files.append(("XML2", inner_xml("XML2", drugs, q, legacy=legacy)))
        files.append(("XML3", inner_xml("XML3", svc_rows, q, legacy=legacy)))
        if labs:
            files.append(("XML4", inner_xml("XML4", labs, q, legacy=legacy)))
        if v.inpatient:
            course_rows = []
            for i in range(min(days, 4)):
                at = v.start + timedelta(days=i, hours=1)
                course_rows.append(
                    {
                        "MA_LK": v.ma_lk,
                        "STT": i + 1,
                        "DIEN_BIEN_LS": vitals(cond, rng)
                        if i < 2
                        else "Tỉnh, ăn uống được, hết sốt",
                        "GIAI_DOAN_BENH": "",
                        "THOI_DIEM_DBLS": _ts(at),
                        "NGUOI_THUC_HIEN": doctor,
                    }
                )
            files.append(("XML5", inner_xml("XML5", course_rows, q, legacy=legacy)))
        mother = self.household.get(p.mother_key)
        father = self.household.get(p.father_key)
        young = p.age(v.start.date()) < 16
        if v.inpatient and v.kind != "death":  # no discharge paper for a death (giấy báo tử)
            xml7 = {
                "MA_LK": v.ma_lk,
                "SO_LUU_TRU": f"{v.end.year}/{v.ma_lk[-6:]}",
                "MA_YTE": ma_bn,
                "MA_KHOA_RV": dept,
                "NGAY_VAO": _ts(v.start),
                "NGAY_RA": _ts(v.end),
                "MA_DINH_CHI_THAI": 0,
                "CHAN_DOAN_RV": diag,
                "PP_DIEUTRI": xml1["PP_DIEU_TRI"],
                "GHI_CHU": "Ăn uống đủ chất, tái khám theo hẹn",
                "MA_TTDV": head_code,
                "MA_BS": doctor,
                "TEN_BS": "",
                "NGAY_CT": _d(v.end),
                "MA_CHA": father.bhxh if young and father else "",
                "MA_ME": mother.bhxh if young and mother else "",
                "MA_THE_TAM": p.temp_card if young and not p.cccd else "",
                "HO_TEN_CHA": father.full_name if young and father else "",
                "HO_TEN_ME": mother.full_name if young and mother else "",
            }
            files.append(("XML7", inner_xml("XML7", [xml7], q)))
        summary = "; ".join(
            f"{x['TEN_CHI_SO']}: {x['GIA_TRI'] or x['KET_LUAN']} {x['DON_VI_DO']}".strip()
            for x in labs
        )
        if v.inpatient or rng.random() < 0.7:
            xml8 = {
                "MA_LK": v.ma_lk,
                "MA_LOAI_KCB": xml1["MA_LOAI_KCB"],
                "HO_TEN_CHA": father.full_name if young and father else "",
                "HO_TEN_ME": mother.full_name if young and mother else "",
                "DON_VI": fac.name,
                "NGAY_VAO": _ts(v.start),
                "NGAY_RA": _ts(v.end),
                "CHAN_DOAN_VAO": cond.name,
                "CHAN_DOAN_RV": diag,
                "QT_BENHLY": course,
                "TOMTAT_KQ": summary,
                "PP_DIEUTRI": xml1["PP_DIEU_TRI"],
                "NGAY_SINHCON": _d(v.baby.birth_date) if v.baby else "",
                "KET_QUA_DTRI": xml1["KET_QUA_DTRI"],
                "GHI_CHU": xml1["GHI_CHU"],
                "MA_TTDV": head_code,
                "NGAY_CT": _d(v.end),
            }
            files.append(("XML8", inner_xml("XML8", [xml8], q)))
        if v.baby is not None:
            b = v.baby
            father_of_baby = self.household.get(b.father_key)
            xml9 = {
                "MA_LK": v.ma_lk,
                "MA_BHXH_NND": p.bhxh,
                "MA_THE_NND": p.bhyt,
                "HO_TEN_NND": demo.full_name,
                "NGAYSINH_NND": f"{p.birth_date:%Y%m%d}",
                "MA_DANTOC_NND": p.ethnicity,
                "SO_CCCD_NND": demo.cccd,
                "NOI_CU_TRU_NND": address,
                "MA_QUOCTICH": "000",
                "MATINH_CU_TRU": matinh,
                "MAHUYEN_CU_TRU": xml1["MAHUYEN_CU_TRU"],
                "MAXA_CU_TRU": demo.commune_code,
                "HO_TEN_CHA": father_of_baby.full_name if father_of_baby else "",
                "MA_THE_TAM": b.temp_card,
                "HO_TEN_CON": b.full_name if rng.random() < 0.6 else "",  # often not named yet
                "GIOI_TINH_CON": "1" if b.sex == "M" else "2",
                "SO_CON": 1,
                "LAN_SINH": 1 + sum(1 for _ in p.children_born if _.birth_date < b.birth_date),
                "SO_CON_SONG": 1,
                "CAN_NANG_CON": rng.randint(2600, 3900),
                "NGAY_SINH_CON": f"{b.birth_date:%Y%m%d}{rng.randint(0, 23):02d}{rng.randint(0, 59):02d}",
                "NOI_SINH_CON": fac.name,
                "TINH_TRANG_CON": "Khỏe mạnh",
                "SINHCON_PHAUTHUAT": 0,
                "SINHCON_DUOI32TUAN": 0,
                "NGUOI_DO_DE": doctor,
                "NGUOI_GHI_PHIEU": doctor,
                "NGAY_CT": _d(v.end),
                "SO": v.ma_lk[-6:],
                "QUYEN_SO": str(v.end.year),
                "MA_TTDV": head_code,
            }
            files.append(("XML9", inner_xml("XML9", [xml9], q)))
            if not legacy:
                self.out.record(
                    "his_birth", f"birth:{fac.code}:{v.ma_lk}", b.key, f"his/{fac.code}", []
                )
        common = {
            "MA_LK": v.ma_lk,
            "HO_TEN": demo.full_name,
            "NGAY_SINH": ngay_sinh,
            "GIOI_TINH": xml1["GIOI_TINH"],
            "DIA_CHI": address,
            "MA_THE_BHYT": p.bhyt,
            "GT_THE_DEN": _d(p.bhyt_to),
            "NGAY_VAO": _ts(v.start),
            "NGAY_VAO_NOI_TRU": xml1["NGAY_VAO_NOI_TRU"],
            "NGAY_RA": _ts(v.end),
            "CHAN_DOAN_RV": diag,
            "MA_BENH_CHINH": cond.icd,
            "MA_BENH_KT": icds,
            "MA_BAC_SI": doctor,
            "MA_TTDV": head_code,
        }
        if v.refer_to is not None:
            xml13 = {
                **common,
                "SO_HOSO": v.ma_lk[-10:],
                "SO_CHUYENTUYEN": f"{v.end.year}/{v.ma_lk[-5:]}",
                "GIAY_CHUYEN_TUYEN": xml1["GIAY_CHUYEN_TUYEN"],
                "MA_CSKCB": fac.code,
                "MA_NOI_DI": fac.code,
                "MA_NOI_DEN": v.refer_to.code,
                "MA_QUOCTICH": "000",
                "MA_DANTOC": p.ethnicity,
                "MA_NGHE_NGHIEP": "00000",
                "DAU_HIEU_LS": course,
                "QT_BENHLY": course,
                "TOMTAT_KQ": summary,
                "PP_DIEUTRI": xml1["PP_DIEU_TRI"],
                "TEN_DICH_VU": "; ".join(s.name for s in services),
                "TEN_THUOC": "; ".join(d.name for d in cond.drugs),
                "MA_LOAI_RV": ra,
                "MA_LYDO_CT": 2,
                "HUONG_DIEU_TRI": "Chuyển tuyến trên điều trị tiếp",
                "PHUONGTIEN_VC": "Xe cứu thương",
            }
            files.append(("XML13", inner_xml("XML13", [xml13], q)))
        if v.revisit is not None:
            xml14 = {
                **common,
                "SO_GIAYHEN_KL": f"HK{v.ma_lk[-10:]}",
                "MA_CSKCB": fac.code,
                "NGAY_HEN_KL": _ts(v.revisit.replace(hour=8, minute=0)),
                "MA_DOITUONG_KCB": xml1["MA_DOITUONG_KCB"],
                "NGAY_CT": _d(v.end),
            }
            files.append(("XML14", inner_xml("XML14", [xml14], q)))
        # 4210 had no papers (XML7–XML14): they came with QĐ 130/4750. They are built all the
        # same, so a visit draws the same random numbers whichever format it is written in.
        if legacy:
            files = [(name, xml) for name, xml in files if name in LEGACY_4210_FIELDS]
        day = _d(v.end)
        rel = f"his/{fac.code}/{day}/{v.ma_lk}.xml"
        self.out.write_file("his", rel, envelope(fac.code, day, files, q))
        for name, _ in files:
            self.tables[name] = self.tables.get(name, 0) + 1
        errs = demo.errors + [f"quirk:{n}" for n in q.names]
        self.out.record("his", f"his:{fac.code}:{v.ma_lk}", p.key, rel, errs)
        if xml1["MA_DOITUONG_KCB"] != "2" and not legacy:  # none for emergencies, nor in 4210
            checkin = {
                **patient,
                "GIOI_TINH": xml1["GIOI_TINH"],
                "MA_THE_BHYT": p.bhyt,
                "MA_DKBD": p.dkbd,
                "GT_THE_TU": _d(p.bhyt_from),
                "GT_THE_DEN": _d(p.bhyt_to),
                "MA_DOITUONG_KCB": xml1["MA_DOITUONG_KCB"],
                "NGAY_VAO": _ts(v.start),
                "NGAY_VAO_NOI_TRU": xml1["NGAY_VAO_NOI_TRU"],
                "LY_DO_VNT": xml1["LY_DO_VNT"],
                "MA_LOAI_KCB": xml1["MA_LOAI_KCB"],
                "MA_CSKCB": fac.code,
                "MA_DICH_VU": services[0].code,
                "TEN_DICH_VU": services[0].name,
                "NGAY_YL": _ts(v.start),
            }
            crel = f"checkin/{fac.code}/{_d(v.start)}/{v.ma_lk}.xml"
            self.out.write_file("checkin", crel, checkin_xml(checkin, q))
            self.out.record(
                "his_checkin", f"checkin:{fac.code}:{v.ma_lk}", p.key, crel, demo.errors
            )
        return 1
