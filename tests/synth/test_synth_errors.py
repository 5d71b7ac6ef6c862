"""The error model: observed rates match the parameters, errors do what they say."""

from __future__ import annotations

import csv
import math
import unicodedata
from dataclasses import fields
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hssk.kernel.identifiers import check_cccd
from hssk.synth import ErrorModel, ErrorRates, generate, iter_persons
from hssk.synth.errors import perturb, registrations, strip_diacritics, typo, wrong_tone
from hssk.synth.population import Person
from hssk.synth.rng import sub_rng

RATES = ErrorRates(
    diacritics_lost=0.2,
    diacritics_wrong=0.1,
    typo=0.15,
    name_order=0.05,
    day_month_swap=0.3,
    year_only_dob=0.1,
    cccd_missing=0.25,
    cccd_typo=0.1,
    address_code_era=0.2,
    phone_changed=0.2,
    duplicate=0.1,
)


@pytest.fixture(scope="module")
def people() -> list[Person]:
    return list(iter_persons(4000, "01", seed=21))


def _within(observed: int, n: int, p: float) -> bool:
    sigma = math.sqrt(n * p * (1 - p)) or 1.0
    return abs(observed - n * p) <= 4.5 * sigma + 1


def test_observed_rates_match_parameters(people: list[Person]) -> None:
    demos = [(p, perturb(p, "his", f"X:{p.key}", RATES, 7, date(2025, 1, 1))) for p in people]
    count = {f.name: 0 for f in fields(ErrorRates)}
    for _, d in demos:
        for e in d.errors:
            count[e] += 1
    n = len(demos)
    # errors applied unconditionally (given the field exists)
    for kind in ("typo", "name_order", "year_only_dob", "address_code_era"):
        assert _within(count[kind], n, getattr(RATES, kind)), (kind, count[kind] / n)
    with_phone = sum(bool(p.phone) for p in people)
    assert _within(count["phone_changed"], with_phone, RATES.phone_changed)
    with_cccd = sum(bool(p.cccd) for p in people)
    assert _within(count["cccd_missing"], with_cccd, RATES.cccd_missing)
    # a day/month swap is possible only when the day is 12 or less and differs from the month
    eligible = sum(
        p.birth_date.day <= 12 and p.birth_date.day != p.birth_date.month for p in people
    )
    assert _within(count["day_month_swap"], eligible, RATES.day_month_swap)
    lost = count["diacritics_lost"] / n
    assert 0.15 < lost < 0.22  # a few names have no diacritics to lose


def test_errors_change_what_they_claim(people: list[Person]) -> None:
    for p in people[:2000]:
        d = perturb(p, "immunization", p.key, RATES, 3, date(2021, 9, 1))
        if not d.errors:
            assert d.full_name == p.full_name and d.birth_date == p.birth_date and d.cccd == p.cccd
            assert d.commune_code == p.commune.old_code  # 2021: old codes
        if (
            "diacritics_lost" in d.errors
            and "typo" not in d.errors
            and "diacritics_wrong" not in d.errors
        ):
            assert d.full_name == strip_diacritics(d.full_name) != p.full_name
        if "day_month_swap" in d.errors and "year_only_dob" not in d.errors:
            assert (d.birth_date.day, d.birth_date.month) == (p.birth_date.month, p.birth_date.day)
        if "year_only_dob" in d.errors:
            assert d.dob_precision == "year" and d.dob_iso == str(p.birth_date.year)
        if "cccd_missing" in d.errors:
            assert d.cccd == ""
        if "cccd_typo" in d.errors:
            assert d.cccd != p.cccd and d.cccd[:6] == p.cccd[:6]
            assert check_cccd(d.cccd, birth_year=p.birth_date.year, sex=p.sex).ok
        if "address_code_era" in d.errors:
            assert d.commune_code == p.commune.new_code
        if "name_order" in d.errors and len(d.errors) == 1:
            assert d.full_name.split()[0] == p.name.given


def test_same_registration_same_errors(people: list[Person]) -> None:
    p = people[0]
    a = perturb(p, "his", "01001:P1", RATES, 1, date(2025, 1, 1))
    b = perturb(p, "his", "01001:P1", RATES, 1, date(2025, 1, 1))
    assert a == b


def test_duplicate_registration_rate(people: list[Person]) -> None:
    dups = sum(len(registrations(p, "insurance", p.key, RATES, 5)) == 2 for p in people)
    assert _within(dups, len(people), RATES.duplicate)


def test_zero_rates_mean_clean_feeds(tmp_path: Path) -> None:
    generate(tmp_path, 200, "01", seed=2, errors=ErrorModel.none(), quirk_rate=0)
    with (tmp_path / "truth/source_records.csv").open(encoding="utf-8") as fh:
        for r in csv.DictReader(fh):  # formats (capitals at some HIS) remain, errors do not
            assert all(e.startswith("format:") for e in r["errors"].split(";") if e), r


def test_end_to_end_rates_in_a_feed(tmp_path: Path) -> None:
    model = ErrorModel.from_json(
        {"insurance": {"typo": 0.2, "cccd_missing": 0.3, "duplicate": 0.1}}
    )
    generate(tmp_path, 1500, "01", seed=8, errors=model, visit_rate=0)
    with (tmp_path / "truth/persons.csv").open(encoding="utf-8") as fh:
        truth = {r["person_key"]: r for r in csv.DictReader(fh)}
    with (tmp_path / "truth/source_records.csv").open(encoding="utf-8") as fh:
        link = {r["record_id"]: r for r in csv.DictReader(fh) if r["source"] == "insurance"}
    with (tmp_path / "insurance/bhyt.csv").open(encoding="utf-8") as fh:
        recs = list(csv.DictReader(fh))
    typos = missing = 0
    for r in recs:
        t = truth[link[r["ma_ban_ghi"]]["person_key"]]
        errs = link[r["ma_ban_ghi"]]["errors"].split(";")
        if r["ho_ten"] != t["full_name"]:
            assert {"typo", "diacritics_lost", "diacritics_wrong", "name_order"} & set(errs)
        typos += "typo" in errs
        missing += t["cccd"] != "" and r["so_cccd"] == ""
    assert _within(typos, len(recs), 0.2)
    with_cccd = sum(truth[link[r["ma_ban_ghi"]]["person_key"]]["cccd"] != "" for r in recs)
    assert _within(missing, with_cccd, 0.3)
    persons_insured = len({link[r["ma_ban_ghi"]]["person_key"] for r in recs})
    assert _within(len(recs) - persons_insured, persons_insured, 0.1)


def test_error_json_is_validated() -> None:
    with pytest.raises(ValueError, match="unknown error kind"):
        ErrorModel.from_json({"default": {"typos": 0.1}})
    with pytest.raises(ValueError, match="unknown source"):
        ErrorModel.from_json({"hospital": {"typo": 0.1}})
    with pytest.raises(ValueError, match=r"must be a number in \[0, 1\]"):
        ErrorModel.from_json('{"his": {"typo": 3}}')
    with pytest.raises(ValueError, match="not JSON"):
        ErrorModel.from_json("{oops")
    m = ErrorModel.from_json('{"default": {"typo": 0.5}, "his": {"typo": 0.1}}')
    assert m.for_source("his").typo == 0.1 and m.for_source("station").typo == 0.5
    assert ErrorModel().scaled(0).for_source("his").typo == 0


names = st.text(alphabet="aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ ", min_size=3, max_size=30).filter(lambda s: any(c.isalpha() for c in s))  # fmt: skip


@given(names)
def test_strip_diacritics_is_ascii_letters(text: str) -> None:
    out = strip_diacritics(unicodedata.normalize("NFC", text))
    assert out.isascii() and len(out) == len(text)


@given(names, st.integers(0, 1000))
def test_typo_is_one_slip(text: str, seed: int) -> None:
    out = typo(text, sub_rng(seed))
    assert abs(len(out) - len(text)) <= 1 and out.count(" ") == text.count(" ")


@given(names, st.integers(0, 1000))
def test_wrong_tone_keeps_letters(text: str, seed: int) -> None:
    text = unicodedata.normalize("NFC", text)
    out = wrong_tone(text, sub_rng(seed))
    if out is not None:
        assert out != text and unicodedata.is_normalized("NFC", out)
        assert len(out) == len(text)
