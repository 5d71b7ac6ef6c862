"""Normalizers: properties (idempotent, diacritics-insensitive, total) and known cases."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hssk.registry.adminunits import old_to_new, resolve_commune
from hssk.registry.normalize import (
    display_name,
    fold,
    name_key,
    normalize_phone,
    normalize_sex,
    parse_birth_date,
    split_name,
)
from hssk.registry.prepare import prepare
from hssk.registry.types import SourceRecord

VIET = "aăâbcdđeêghiklmnoôơpqrstuưvxyàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ"
viet_names = st.lists(
    st.text(alphabet=VIET + VIET.upper(), min_size=1, max_size=8), min_size=1, max_size=5
).map(" ".join)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalizers_never_crash_and_are_idempotent(text: str) -> None:
    key = name_key(text)
    assert key is None or name_key(key) == key
    disp = display_name(text)
    assert disp is None or display_name(disp) == disp
    parts = split_name(text)
    assert parts.key is None or split_name(parts.key) == parts
    phone = normalize_phone(text)
    assert phone is None or normalize_phone(phone) == phone
    assert normalize_sex(text) in (None, "M", "F", "U")
    bd = parse_birth_date(text)
    assert bd is None or parse_birth_date(bd.text) == bd
    resolve_commune(text, text, text[:50])
    prepare(
        SourceRecord(
            "x", "1", text, text, text, text, text, text, text, text, text, text, text, text
        )
    )


@settings(max_examples=300, deadline=None)
@given(viet_names)
def test_keys_ignore_diacritics_and_case(name: str) -> None:
    assert name_key(name) == name_key(fold(name)) == name_key(name.upper())
    assert split_name(name).key == split_name(fold(name).lower()).key


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ("Nguyễn Thị Hoà", "nguyen thi hoa"),
        ("  NGUYỄN   thị  hòa ", "nguyen thi hoa"),
        ("Đặng Văn Đức", "dang van duc"),
        ("Nguyeenx Thij Hoaf", "nguyen thi hoa"),  # Telex typed without the IME
        ("Nguye64n Thi5 Hoa2", "nguyen thi hoa"),  # VNI remnants
        ("Nguyễn Thị Hoà", "nguyen thi hoa"),  # decomposed (NFD) input
    ],
)
def test_name_key_variants(raw: str, key: str) -> None:
    assert name_key(raw) == key


def test_display_name_unifies_tone_placement() -> None:
    assert display_name("nguyễn thị hoà") == display_name("Nguyễn Thị Hòa") == "Nguyễn Thị Hòa"
    assert display_name("Lê Thuỷ") == display_name("Lê Thủy")
    assert display_name("hoàng tuấn") == "Hoàng Tuấn"


def test_name_order_variants() -> None:
    parts = [split_name(raw) for raw in ("Nguyễn Văn An", "Văn An Nguyễn", "An Nguyễn Văn")]
    assert {p.sorted for p in parts} == {"an nguyen van"}
    assert [p.western_order for p in parts] == [False, True, False]
    # a typo in the family name never turns the name around
    assert split_name("Tần Văn Hoàng").family == "tan"
    assert split_name("Nguyễn Văn An").given == "an"


def test_birth_dates_keep_precision() -> None:
    assert parse_birth_date("1990").text == "1990"  # type: ignore[union-attr]
    assert parse_birth_date("1990-07").text == "1990-07"  # type: ignore[union-attr]
    assert parse_birth_date("05/07/1990").text == "1990-07-05"  # type: ignore[union-attr]
    assert parse_birth_date("199007050000").text == "1990-07-05"  # type: ignore[union-attr]
    assert parse_birth_date("1990-02-30") is None
    assert parse_birth_date("2990-01-01") is None


@pytest.mark.parametrize(
    ("raw", "out"),
    [
        ("+84 912 345 678", "0912345678"),
        ("0084912345678", "0912345678"),
        ("84912345678", "0912345678"),
        ("0912.345.678", "0912345678"),
        ("01682345678", "0382345678"),  # old Viettel 11-digit number
        ("0123 456 7890", "0834567890"),  # old VinaPhone 0123 → 083
        ("12345", None),
    ],
)
def test_phones(raw: str, out: str | None) -> None:
    assert normalize_phone(raw) == out


def test_sex() -> None:
    assert [normalize_sex(x) for x in ("Nam", "nữ", "F", "1", "2", None, "?")] == [
        "M",
        "F",
        "F",
        "M",
        "F",
        None,
        "U",
    ]


def test_admin_units_old_to_new_and_split_ward() -> None:
    phuc_xa = resolve_commune("1")  # Phường Phúc Xá (old 00001) merged into Hồng Hà (00097)
    assert (phuc_xa.new_code, phuc_xa.old_code, phuc_xa.province_code) == ("00097", "00001", "01")
    assert resolve_commune(None, None, "Phường Phúc Xá, Quận Ba Đình, Hà Nội").new_code == "00097"
    from hssk.registry.adminunits import _tables

    split_code = next(iter(_tables().split))
    unit = old_to_new(split_code)
    assert unit.ambiguous and unit.new_code is None and len(unit.candidates) >= 2


def test_failing_identifier_is_kept_unverified() -> None:
    p = prepare(SourceRecord("x", "1", "Lê An", "1990-01-01", "M", cccd="001195012345", bhyt="XX9"))
    assert p.cccd == "001195012345" and not p.cccd_ok  # encodes 1995, record says 1990
    assert p.bhyt == "XX9" and not p.bhyt_ok
    assert any(pr.startswith("cccd") for pr in p.problems) and any(
        pr.startswith("bhyt") for pr in p.problems
    )
    assert prepare(SourceRecord("x", "1", cccd="B1234567")).passport == "B1234567"
