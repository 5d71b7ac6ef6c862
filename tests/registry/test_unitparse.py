"""The address parser with compiled patterns places every text where the package's does."""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from unidecode import unidecode
from vietnamadminunits import ParseMode, parse_address

from hssk.registry import adminunits, unitparse


def _package(text: str) -> tuple[Any, ...]:
    """What ``adminunits`` reads of the package's two parsers (or that one raised)."""
    out: list[Any] = []
    try:
        old = parse_address(text, mode=ParseMode.LEGACY, level=3, keep_street=False)
        out.append((old.ward_code, bool(old.district), old.province_code))
    except Exception as exc:
        out.append(type(exc).__name__)
    try:
        new = parse_address(text, mode=ParseMode.FROM_2025, level=2, keep_street=False)
        out.append((new.ward_code, new.province_code))
    except Exception as exc:
        out.append(type(exc).__name__)
    return tuple(out)


def _ours(text: str) -> tuple[Any, ...]:
    keys = unitparse.keys_of(text)
    out: list[Any] = []
    try:
        old = unitparse.parse_legacy(keys)
        out.append((old.ward_code, bool(old.district_key), old.province_code))
    except Exception as exc:
        out.append(type(exc).__name__)
    try:
        new = unitparse.parse_2025(keys)
        out.append((new.ward_code, new.province_code))
    except Exception as exc:
        out.append(type(exc).__name__)
    return tuple(out)


@lru_cache(maxsize=1)
def _units() -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """(ward, district, province) before 2025 and (ward, province) since, as the data names
    them."""
    with sqlite3.connect(unitparse.data_dir() / "dataset.db") as conn:
        old = conn.execute("SELECT ward, district, province FROM admin_units_legacy").fetchall()
        new = conn.execute("SELECT ward, province FROM admin_units").fetchall()
    return old, new


_TYPES = ("Phường ", "Xã ", "Thị trấn ", "Quận ", "Huyện ", "Thành phố ", "Tỉnh ", "Thị xã ")
_SHORT = {"Phường ": "P.", "Xã ": "X.", "Quận ": "Q.", "Huyện ": "H.", "Thành phố ": "TP "}


def _styled(draw: st.DrawFn, name: str) -> str:
    """A unit's name as people write it: with or without its type, abbreviated, folded,
    upper case, or with a dropped letter."""
    style = draw(st.sampled_from(("as is", "bare", "short", "folded", "upper", "typo")))
    if style == "bare":
        for t in _TYPES:
            name = name.removeprefix(t)
    elif style == "short":
        for t, s in _SHORT.items():
            if name.startswith(t):
                name = s + name[len(t) :]
    elif style == "folded":
        name = unidecode(name)
    elif style == "upper":
        name = name.upper()
    elif style == "typo" and len(name) > 4:
        at = draw(st.integers(1, len(name) - 1))
        name = name[:at] + name[at + 1 :]
    return name


@st.composite
def addresses(draw: st.DrawFn) -> str:
    old, new = _units()
    head = draw(
        st.sampled_from(("", "Số 12, ", "45 ngõ 3 Lê Lợi, ", "Thôn Đông, ", "Tổ 5 - ", "12/3 "))
    )
    if draw(st.booleans()):
        ward, district, province = draw(st.sampled_from(old))
        parts = [ward, district, province]
        if draw(st.booleans()):  # the province or the district left out
            parts.pop(draw(st.integers(1, 2)))
    else:
        ward, province = draw(st.sampled_from(new))
        parts = [ward, province]
    sep = draw(st.sampled_from((", ", " - ", " ", ",")))
    return head + sep.join(_styled(draw, p) for p in parts)


@given(addresses())
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_generated_addresses_are_placed_as_the_package_places_them(text: str) -> None:
    assert _ours(text) == _package(text), text


@given(st.text(max_size=80))
@settings(max_examples=200, deadline=None)
def test_any_text_is_placed_as_the_package_places_it(text: str) -> None:
    assert _ours(text) == _package(text)


@pytest.mark.parametrize(
    "text",
    [
        "",
        ",,,",
        "12 Baker Street, London",
        "⒫⒣⒰⒞⒳⒜ ⒝⒜⒟⒤⒩⒣ ⒣⒜⒩⒪⒤",  # the accented key is empty, the plain one is not
        "Phường Thuận Hòa, Thành phố Huế, Thừa Thiên Huế",  # Huế's hidden ward words
        "Phường Thủy Biều, Huế",
        "Xã Thạch Hạ, Thành Phố Hà Tĩnh, Hà Tĩnh",  # a ward named like a district
        "Phường Tân Định, Quận 1, TP HCM",
        "Xã Ba Tô, Huyện Ba Tơ, Quảng Ngãi",  # told apart only by diacritics
        "Thị trấn Tân Thạnh, Tân Thạnh, Long An",
        "Phường Sa Pa, Lào Cai",
        "Ba Đình, Hà Nội",
        "Bản Hạ, Thanh Lâm, Mê Linh, Hà Nội",
    ],
)
def test_known_texts_are_placed_as_the_package_places_them(text: str) -> None:
    assert _ours(text) == _package(text)


def test_a_placed_address_resolves_to_its_2025_commune() -> None:
    adminunits._from_address.cache_clear()
    unit = adminunits.resolve_commune(address="Số 1, Phường Phúc Xá, Quận Ba Đình, Hà Nội")
    assert unit.old_code == "00001" and unit.new_code and unit.province_code == "01"


def test_the_unidecode_table_is_unidecode() -> None:
    text = "Đường Nguyễn Trãi, Phường Bến Thành — 東京 ß ﬁ ½ \u0301"
    assert text.translate(unitparse._UNIDECODE) == unidecode(text)
