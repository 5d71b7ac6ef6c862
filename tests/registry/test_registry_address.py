"""Free-text addresses: the normalizer is total, ignores spelling variants, and the levels."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hssk.registry.address import (
    AddressKey,
    compare_address,
    house_slip,
    houses_agree,
    normalize_address,
)


def _fold(text: str) -> str:
    out = "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))
    return out.replace("đ", "d").replace("Đ", "D")


STREETS = ["Lê Lợi", "Trần Hưng Đạo", "Nguyễn Thị Minh Khai", "Điện Biên Phủ", "Hai Bà Trưng"]
WARDS = ["Phúc Xá", "Tân Định", "Yên Hòa", "Cầu Đất", "Bình Thọ"]
DISTRICTS = ["Ba Đình", "Cầu Giấy", "Bình Thạnh", "Ngô Quyền", "Thủ Đức"]
PROVINCES = ["Thành phố Hà Nội", "Thành phố Hồ Chí Minh", "Tỉnh Nghệ An", "Thành phố Hải Phòng"]


@st.composite
def urban_address(draw: st.DrawFn) -> tuple[str, str]:
    """(formal address, the same written with abbreviations and another lane notation)."""
    house = draw(st.integers(1, 999))
    lane = draw(st.none() | st.integers(1, 500))
    street = draw(st.sampled_from(STREETS))
    ward = draw(st.sampled_from(WARDS))
    district = draw(st.sampled_from(DISTRICTS))
    province = draw(st.sampled_from(PROVINCES))
    lane_text = f" ngõ {lane}" if lane else ""
    formal = f"Số {house}{lane_text}, đường {street}, Phường {ward}, Quận {district}, {province}"
    head = f"{house}/{lane} {street}" if lane else f"số nhà {house}, Đ. {street}"
    short = f"{head} - P.{ward} - Q. {district} - {province.split(' ', 2)[-1]}"
    return formal, short


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_any_text_gives_a_key(text: str) -> None:
    key = normalize_address(text)
    assert isinstance(key, AddressKey)
    assert normalize_address(text) == key  # the same text, the same key


@given(urban_address())
@settings(max_examples=200, deadline=None)
def test_spelling_variants_give_the_same_dwelling(pair: tuple[str, str]) -> None:
    formal, short = pair
    a = normalize_address(formal)
    for variant in (short, _fold(formal), formal.upper(), _fold(short).lower()):
        b = normalize_address(variant)
        assert a.house == b.house and a.local == b.local, (formal, variant, a, b)
        assert compare_address(a, b) == "same", (formal, variant)


@given(urban_address(), st.integers(1, 999))
@settings(max_examples=100, deadline=None)
def test_another_house_number_is_another_dwelling(pair: tuple[str, str], other: int) -> None:
    formal, _ = pair
    a = normalize_address(formal)
    moved = formal.replace(f"Số {next(iter(a.house))}", f"Số {other}", 1)
    if str(other) in a.house:
        return
    b = normalize_address(moved)
    if houses_agree(a.house, b.house):
        # two digits typed in the other order ('210' / '120'): the same house, mistyped
        assert compare_address(a, b) == "same"
        return
    if house_slip(a.house, b.house):
        # one keystroke off ('22' / '82'): maybe the same house mistyped, never 'same'
        assert compare_address(a, b) == "street"
        return
    assert compare_address(a, b) == "else"


def test_a_house_number_one_keystroke_off_is_not_another_dwelling() -> None:
    a = normalize_address("Số 22, đường Lê Lợi, Phường Phúc Xá, Quận Ba Đình, Hà Nội")
    typo = normalize_address("Số 82, đường Lê Lợi, Phường Phúc Xá, Quận Ba Đình, Hà Nội")
    neighbour = normalize_address("Số 23, đường Lê Lợi, Phường Phúc Xá, Quận Ba Đình, Hà Nội")
    assert compare_address(a, typo) == "street"
    assert compare_address(a, neighbour) == "else"  # the house next door


@pytest.mark.parametrize(
    ("text", "house", "lane", "local", "area"),
    [
        (
            "Số 12 ngõ 34, đường Lê Lợi, P. Phúc Xá, Q. Ba Đình, TP Hà Nội",
            {"12"}, {"34"}, {"leloi"}, {"phucxa", "badinh"},
        ),
        ("so 12/34 Le Loi - Phuc Xa - Ba Dinh - Ha Noi", {"12"}, {"34"}, {"leloi"}, {"phucxa", "badinh"}),
        ("Số 62 ngách 57/66, đường Phan Chu Trinh", {"62"}, {"57", "66"}, {"phanchutrinh"}, set()),
        ("Thôn 3, xã Ea Ktur, huyện Cư Kuin, tỉnh Đắk Lắk", set(), set(), {"thon3"}, {"eaktur", "cukuin"}),
        ("Tổ 5, Phường 05, Quận 3, TP.HCM", set(), set(), {"to5"}, {"5", "3"}),
        ("8 stanley street, miami, nsw 4223", {"8"}, set(), {"stanleystreet"}, {"miami", "nsw", "4223"}),
    ],
)  # fmt: skip
def test_parts(text: str, house: set[str], lane: set[str], local: set[str], area: set[str]) -> None:
    key = normalize_address(text)
    assert (set(key.house), set(key.lane), set(key.local), set(key.area)) == (
        house,
        lane,
        local,
        area,
    )


def test_levels() -> None:
    n = normalize_address
    assert compare_address(n("Buôn 6, Xã Cẩm Yên"), n("Buôn 6, Xa Cam Yen, Ha Noi")) == "street"
    assert compare_address(n("Phường Tân Định, Quận 1"), n("P. Tân Định, TP.HCM")) == "area"
    assert compare_address(n("Số 3 ngõ 4, Lê Lợi"), n("Số 3 ngõ 9, Lê Lợi")) == "else"
    assert compare_address(n(None), n("Số 3, Lê Lợi")) is None
    assert compare_address(n("Thôn Đông, Xã A"), n("Thôn Tây, Xã B")) == "else"


def test_typed_slips_keep_the_dwelling() -> None:
    """A long street name with one letter wrong or two swapped, the parts after the house
    number in the other order, two digits of the house number swapped: the same dwelling.
    A neighbour's number, or a short street one letter from another, is not."""
    n = normalize_address
    assert (
        compare_address(n("16 hurley street, mittagong"), n("16 hurly street, mittagong")) == "same"
    )
    assert (
        compare_address(n("378 namatjira drive, pullenvale"), n("378 namatjiar drive, pullenvale"))
        == "same"
    )
    assert (
        compare_address(
            n("113 audas place, clanville, robina"), n("113 clanville, audas place, robina")
        )
        == "same"
    )
    assert (
        compare_address(n("562 delegate street, oak valley"), n("526 delegate street, oak valley"))
        == "same"
    )
    assert (
        compare_address(n("12 wanganeen avenue, toowoomba"), n("13 wanganeen avenue, toowoomba"))
        == "else"
    )
    assert compare_address(n("Số 5 Lê Lợi, P. Bến Nghé"), n("Số 5 Lê Lai, P. Bến Nghé")) != "same"


def test_review_evidence_shows_address_tokens_as_json() -> None:
    """Review rows store a pair's evidence as JSON: the address tokens are listed."""
    import orjson

    from hssk.registry import SourceRecord
    from hssk.registry.link import features_of
    from hssk.registry.model import compare
    from hssk.registry.prepare import prepare

    addr = "Số 12 ngõ 34, đường Lê Lợi, P. Phúc Xá, Q. Ba Đình, TP Hà Nội"
    a, b = (
        features_of(prepare(SourceRecord(src, rid, "Trần Văn Hùng", "1980", "M", address=addr)))
        for src, rid in (("population", "1"), ("station", "2"))
    )
    ev = orjson.loads(orjson.dumps(compare(a, b).evidence(a, b)))
    assert ev["address"]["level"] == "same"
    assert ev["address"]["values"][0] == ["a:badinh", "a:phucxa", "h:12", "l:34", "s:leloi"]
