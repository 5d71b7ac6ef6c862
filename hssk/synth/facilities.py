"""Health facilities of a synthetic province and the unit hierarchy.

Sở Y tế → hospitals and district health centres (TTYT) → commune health stations (one per old
commune) and area polyclinics; private clinics are licensed by the Sở. Facility codes are
5 digits, the first two the old province code, allocated over the whole province so that
restricting the population to one district keeps the same codes.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

from hssk.kernel.identifiers import gln_check_digit
from hssk.synth.geo import Commune

HOSPITAL_KINDS = (
    ("Bệnh viện Đa khoa {p}", "general"),
    ("Bệnh viện Sản Nhi {p}", "obstetrics-paediatrics"),
    ("Bệnh viện Y học cổ truyền {p}", "traditional"),
    ("Bệnh viện Phổi {p}", "lung"),
    ("Bệnh viện Mắt {p}", "eye"),
)
CLINIC_NAMES = ("An Khang", "Bình An", "Hồng Phúc", "Thiện Tâm", "Việt Đức", "Hòa Bình", "Medic")


@dataclass(frozen=True)
class Facility:
    id: str
    code: str  # mã CSKCB, 5 digits ('' for the Sở Y tế, which treats nobody)
    gln: str  # 13-digit GS1 location number (QĐ 1551), synthetic under Vietnam's 893 prefix
    name: str
    kind: str  # department | hospital | district_centre | polyclinic | station | clinic
    specialty: str
    parent_id: str
    province_code: str
    district_code: str
    old_commune_code: str
    new_ward_code: str


def _gln(prov: str, serial: int) -> str:
    first12 = f"893{prov}{serial:07d}"
    return first12 + str(gln_check_digit(first12))


@dataclass
class Facilities:
    """The facilities of the province (or of the selected district plus provincial ones)."""

    items: list[Facility]

    def __post_init__(self) -> None:
        self.by_id = {f.id: f for f in self.items}
        self.station = {f.old_commune_code: f for f in self.items if f.kind == "station"}
        self.centre = {f.district_code: f for f in self.items if f.kind == "district_centre"}
        self.hospitals = [f for f in self.items if f.kind == "hospital"]
        self.general = [f for f in self.hospitals if f.specialty == "general"] or self.hospitals
        self.maternity = [f for f in self.hospitals if f.specialty == "obstetrics-paediatrics"]
        self.clinics: dict[str, list[Facility]] = {}
        for f in self.items:
            if f.kind in ("clinic", "polyclinic"):
                self.clinics.setdefault(f.district_code, []).append(f)

    def station_of(self, commune: Commune) -> Facility:
        return self.station[commune.old_code]

    def centre_of(self, commune: Commune) -> Facility:
        return self.centre[commune.district_code]

    def registered(self, commune: Commune, rng: random.Random) -> Facility:
        """Where a resident registers for primary care (nơi ĐKKCB ban đầu)."""
        r = rng.random()
        if r < 0.5:
            return self.station_of(commune)
        if r < 0.85:
            return self.centre_of(commune)
        return rng.choice(self.general)

    def write_csv(self, path: Path) -> int:
        with path.open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow([f.name for f in fields(Facility)])
            for f in self.items:
                w.writerow(asdict(f).values())
        return len(self.items)


def build_facilities(
    all_communes: Sequence[Commune], selected: Sequence[Commune], seed: int
) -> Facilities:
    """Facilities for the whole province, kept only where they serve ``selected`` communes."""
    first = all_communes[0]
    prov = first.province_code
    pname = first.province_name.removeprefix("Thành phố ").removeprefix("Tỉnh ")
    rng = random.Random(seed * 7919 + int(prov))
    out: list[Facility] = []
    serial = 0

    def add(name: str, kind: str, spec: str, parent: str, c: Commune | None, dist: str) -> str:
        nonlocal serial
        serial += 1
        code = f"{prov}{serial:03d}"
        out.append(
            Facility(
                id=code,
                code=code,
                gln=_gln(prov, serial),
                name=name,
                kind=kind,
                specialty=spec,
                parent_id=parent,
                province_code=prov,
                district_code=dist,
                old_commune_code=c.old_code if c else "",
                new_ward_code=c.new_code if c else "",
            )
        )
        return code

    dept = f"SYT{prov}"
    out.append(
        Facility(
            dept, "", "", f"Sở Y tế {first.province_name}", "department", "", "", prov, "", "", ""
        )
    )
    districts: dict[str, list[Commune]] = {}
    for c in all_communes:
        districts.setdefault(c.district_code, []).append(c)
    n_general = 3 if len(all_communes) > 400 else 1
    for i in range(n_general):
        suffix = f" số {i + 1}" if n_general > 1 else ""
        add(f"Bệnh viện Đa khoa {pname}{suffix}", "hospital", "general", dept, None, "")
    for template, spec in HOSPITAL_KINDS[1:]:
        add(template.format(p=pname), "hospital", spec, dept, None, "")
    for dcode, communes in sorted(districts.items()):
        dname = communes[0].district_name
        centre = add(f"Trung tâm Y tế {dname}", "district_centre", "", dept, None, dcode)
        if not communes[0].urban:
            add(f"Phòng khám đa khoa khu vực {dname}", "polyclinic", "", centre, None, dcode)
        for c in communes:
            add(f"Trạm Y tế {c.old_name}", "station", "", centre, c, dcode)
        for _ in range(2):
            cname = rng.choice(CLINIC_NAMES)
            add(f"Phòng khám đa khoa {cname} {dname}", "clinic", "", dept, None, dcode)
    if serial > 999:
        raise ValueError(f"province {prov} needs {serial} facility codes, more than 999")
    keep_d = {c.district_code for c in selected}
    items = [f for f in out if f.district_code in ("", *keep_d)]
    return Facilities(items)
