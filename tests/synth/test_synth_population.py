"""Statistical shape and identifier validity of the synthetic population."""

from __future__ import annotations

import sqlite3
import unicodedata
from collections import Counter
from pathlib import Path

import pytest
import vietnamadminunits

from hssk.kernel.identifiers import (
    BHYT_OBJECT_CODES,
    check_bhxh,
    check_bhyt,
    check_cccd,
    check_facility_code,
    check_gln,
)
from hssk.synth import iter_persons, make_world
from hssk.synth.geo import GeoError, resolve_province, select_communes
from hssk.synth.population import PHONE_PREFIXES, REF_DATE, Person, target_age_share

N = 5000


@pytest.fixture(scope="module")
def people() -> list[Person]:
    return list(iter_persons(N, "01", seed=11))


def test_population_size_and_keys(people: list[Person]) -> None:
    assert len(people) == N
    assert len({p.key for p in people}) == N


def test_family_names_follow_national_shares(people: list[Person]) -> None:
    share = Counter(p.name.family for p in people)
    # households share a family name, so the tolerance is wider than a plain binomial one
    for name, target in (("Nguyễn", 0.38), ("Trần", 0.11), ("Lê", 0.095), ("Phạm", 0.07)):
        assert abs(share[name] / N - target) < 0.04, (name, share[name] / N)
    assert len(share) > 40  # a long tail of rarer names


def test_middle_names_by_sex(people: list[Person]) -> None:
    women = [p for p in people if p.sex == "F"]
    men = [p for p in people if p.sex == "M"]
    thi = sum(p.name.middle.split()[0] == "Thị" for p in women) / len(women)
    van = sum(p.name.middle == "Văn" for p in men) / len(men)
    assert 0.55 < thi < 0.8
    assert 0.3 < van < 0.46
    assert not any(p.name.middle.split()[0] == "Thị" for p in men)


def test_names_are_nfc(people: list[Person]) -> None:
    for p in people:
        assert unicodedata.normalize("NFC", p.full_name) == p.full_name
        assert p.full_name == p.full_name.strip() and "  " not in p.full_name


def test_age_pyramid(people: list[Person]) -> None:
    ages = [p.age() for p in people]
    for lo, hi in ((0, 14), (15, 29), (30, 44), (45, 59), (60, 99)):
        got = sum(lo <= a <= hi for a in ages) / N
        assert abs(got - target_age_share(lo, hi)) < 0.06, (lo, hi, got)
    assert max(ages) <= 99 and min(ages) >= 0


def test_household_sizes_and_heads(people: list[Person]) -> None:
    sizes = Counter(p.household_key for p in people)
    mean = N / len(sizes)
    assert 3.0 < mean < 4.2
    dist = Counter(sizes.values())
    assert 0.05 < dist[1] / len(sizes) < 0.2
    assert max(sizes.values()) <= 10
    heads = Counter(p.household_key for p in people if p.relation == "Chủ hộ")
    assert set(heads.values()) == {1} and set(heads) == set(sizes)


def test_identifiers_pass_structural_checks(people: list[Person]) -> None:
    for p in people:
        if p.cccd:
            c = check_cccd(p.cccd, birth_year=p.birth_date.year, sex=p.sex)
            assert c.ok and not c.problems, (p.cccd, c.reason())
            assert p.cccd[1:3] == p.birth_province
        if p.bhyt:
            b = check_bhyt(p.bhyt)
            assert b.ok and not b.problems, (p.bhyt, b.reason())
            assert check_bhxh(p.bhxh).ok and p.bhyt[5:] == p.bhxh
            assert p.bhyt[:2] in BHYT_OBJECT_CODES
        if p.temp_card:
            assert check_bhyt(p.temp_card).ok and p.temp_card.startswith("TE1")
        if p.phone:
            assert len(p.phone) == 10 and p.phone.isdigit()
            assert any(p.phone.startswith(x) for pre in PHONE_PREFIXES.values() for x in pre)
    for attr in ("cccd", "bhxh", "phone"):
        values = [getattr(p, attr) for p in people if getattr(p, attr)]
        assert len(values) == len(set(values)), f"duplicate {attr}"


def test_bhyt_object_codes_by_age(people: list[Person]) -> None:
    for p in people:
        if not p.bhyt:
            continue
        age = p.age()
        if age < 6:
            assert p.bhyt_object == "TE" and p.bhyt[2] == "1"
        elif age < 18:
            assert p.bhyt_object == "HS"
    retired = [p for p in people if p.bhyt and p.age() >= 60]
    assert sum(p.bhyt_object == "HT" for p in retired) / len(retired) > 0.2
    insured = sum(bool(p.bhyt) for p in people) / N
    assert 0.9 < insured < 0.96


def test_recent_newborns_may_lack_cccd(people: list[Person]) -> None:
    assert all(p.cccd for p in people if (REF_DATE - p.birth_date).days >= 60)
    born_in_window = [p for p in people if p.temp_card]
    assert born_in_window and all(p.birth_date.year >= 2021 for p in born_in_window)


def test_children_linked_to_mothers(people: list[Person]) -> None:
    by_key = {p.key: p for p in people}
    young = [p for p in people if p.age() < 6]
    linked = [p for p in young if p.mother_key in by_key]
    assert len(linked) / len(young) > 0.85
    for kid in linked:
        mother = by_key[kid.mother_key]
        assert mother.sex == "F" and mother.household_key == kid.household_key
        assert 15 <= mother.age() - kid.age() <= 50
        if kid.father_key in by_key:
            assert kid.name.family == by_key[kid.father_key].name.family


def test_births_and_deaths_over_time(people: list[Person]) -> None:
    deaths = [p for p in people if p.death_date]
    assert 0.005 < len(deaths) / N < 0.06
    assert all(p.birth_date < p.death_date <= REF_DATE for p in deaths if p.death_date)
    older = sum(p.age() >= 60 for p in deaths) / len(deaths)
    assert older > 0.5  # deaths concentrate among the old


def test_addresses_on_real_units(people: list[Person]) -> None:
    db = Path(vietnamadminunits.__file__).parent / "data" / "dataset.db"
    with sqlite3.connect(db) as conn:
        old = {
            r[0]
            for r in conn.execute("SELECT wardCode FROM admin_units_legacy WHERE provinceCode='01'")
        }
        new = {
            r[0] for r in conn.execute("SELECT wardCode FROM admin_units WHERE provinceCode='01'")
        }
    for p in people:
        assert p.commune.old_code in old
        assert p.commune.new_code in new
    assert len({p.commune.old_code for p in people}) > 300


def test_facilities_and_hierarchy() -> None:
    world = make_world("01", seed=1)
    fac = world.facilities
    units = {f.id: f for f in fac.items}
    dept = [f for f in fac.items if f.kind == "department"]
    assert len(dept) == 1 and dept[0].parent_id == ""
    for f in fac.items:
        if f.kind == "department":
            continue
        assert check_facility_code(f.code).ok and f.code[:2] == "01"
        assert check_gln(f.gln).ok
        assert f.parent_id in units
        if f.kind == "station":
            assert units[f.parent_id].kind == "district_centre"
        if f.kind in ("hospital", "district_centre"):
            assert units[f.parent_id].kind == "department"
    assert len(fac.station) == len(select_communes("01"))
    codes = [f.code for f in fac.items if f.code]
    assert len(codes) == len(set(codes))


def test_district_restriction_and_errors() -> None:
    persons = list(iter_persons(300, "01", seed=2, district="Ba Đình"))
    assert {p.commune.district_name for p in persons} == {"Quận Ba Đình"}
    assert resolve_province("Hà Nội") == "01" and resolve_province("79") == "79"
    with pytest.raises(GeoError, match="unknown province"):
        resolve_province("Atlantis")
    with pytest.raises(GeoError, match="no district"):
        select_communes("01", "Nowhere")
