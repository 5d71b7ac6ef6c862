from hypothesis import given
from hypothesis import strategies as st

from hssk.kernel import identifiers as ids


def test_cccd_valid_and_consistent() -> None:
    # 001 Hà Nội, digit 2 = male born 2000s, year 05
    c = ids.check_cccd("001205012345", birth_year=2005, sex="M")
    assert c.ok, c.reason()
    assert ids.cccd_birth_year("001205012345") == 2005


def test_cccd_problems_are_specific() -> None:
    c = ids.check_cccd("001205012345", birth_year=1999, sex="F")
    codes = {p.code for p in c.problems}
    assert codes == {"cccd.birth_year", "cccd.sex"}
    assert "2005" in c.reason() and "1999" in c.reason()
    assert not ids.check_cccd("0012050123").ok
    assert ids.check_cccd("003205012345").problems[0].code == "cccd.province"


def test_cccd_digit_round_trip() -> None:
    for year in (1931, 1999, 2000, 2024):
        for sex in ("M", "F"):
            digit = ids.cccd_digit(year, sex)
            century, coded_sex = ids.cccd_century_sex(digit)
            assert coded_sex == sex and century <= year < century + 100


def test_bhyt_and_bhxh() -> None:
    assert ids.check_bhyt("DN4010123456789").ok
    assert ids.bhyt_bhxh("DN4010123456789") == "0123456789"
    bad = ids.check_bhyt("DN6010123456789")
    assert not bad.ok and bad.problems[0].code == "bhyt.format"
    assert ids.check_bhyt("DN4030123456789").problems[0].code == "bhyt.province"
    assert ids.check_bhxh("0123456789").ok and not ids.check_bhxh("12345").ok


def test_facility_and_gln() -> None:
    assert ids.check_facility_code("01001").ok
    assert not ids.check_facility_code("03001").ok
    gln = "893456789012"
    full = gln + str(ids.gln_check_digit(gln))
    assert ids.check_gln(full).ok
    wrong = full[:-1] + str((int(full[-1]) + 1) % 10)
    assert not ids.check_gln(wrong).ok


def test_classify_document() -> None:
    assert ids.classify_document("001205012345") == "cccd"
    assert ids.classify_document("012345678") == "cmnd"
    assert ids.classify_document("C1234567") == "passport"
    assert ids.classify_document("VNEID-abc") == "eid"


@given(st.text())
def test_checks_never_raise(text: str) -> None:
    for kind in ids.CHECKS:
        result = ids.check(kind, text)
        assert isinstance(result.ok, bool)
