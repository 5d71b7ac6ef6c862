"""The shared kernel: Vietnam clock, the one sensitivity rule, text folding."""

from __future__ import annotations

from datetime import UTC, date, datetime

from hypothesis import given
from hypothesis import strategies as st

from hssk.kernel import clock
from hssk.kernel.sensitivity import sensitivity_of
from hssk.kernel.text import fold


def test_today_is_the_vietnam_date_at_half_past_midnight() -> None:
    # 00:30 in Hà Nội is 17:30 UTC of the day before
    with clock.frozen(datetime(2026, 12, 31, 17, 30, tzinfo=UTC)):
        assert clock.today() == date(2027, 1, 1)
        assert clock.now().date() == date(2026, 12, 31)
        assert clock.now_vn().hour == 0


def test_clock_from_the_environment_for_servers_in_another_process(monkeypatch) -> None:
    monkeypatch.setenv("HSSK_CLOCK", "2026-06-01T23:30:00Z")
    assert clock.today() == date(2026, 6, 2)
    monkeypatch.setenv("HSSK_CLOCK", "2026-06-01T06:59:00")  # no offset: Vietnam time
    assert clock.now() == datetime(2026, 5, 31, 23, 59, tzinfo=UTC)


def test_to_vn_takes_naive_instants_as_utc() -> None:
    assert clock.to_vn(datetime(2026, 12, 31, 17, 0)).date() == date(2027, 1, 1)


def _condition(code: str, system: str = "http://hl7.org/fhir/sid/icd-10") -> dict:
    return {"resourceType": "Condition", "code": {"coding": [{"system": system, "code": code}]}}


def test_sensitivity_from_labels_and_diagnoses() -> None:
    assert sensitivity_of(_condition("B20.1")) == "HIV"
    assert sensitivity_of(_condition("Z21")) == "HIV"
    assert sensitivity_of(_condition("F32.0")) == "PSY"
    assert sensitivity_of(_condition("I10")) is None
    labelled = {"resourceType": "Observation", "meta": {"security": [{"code": "SDV"}]}}
    assert sensitivity_of(labelled) == "SDV"
    restricted = {"resourceType": "Observation", "meta": {"security": [{"code": "R"}]}}
    assert sensitivity_of(restricted) == "R"
    reason = {"resourceType": "Encounter", "reasonCode": [{"coding": [{"code": "F20"}]}]}
    assert sensitivity_of(reason) == "PSY"


@given(
    st.recursive(
        st.none() | st.text() | st.integers(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=20,
    )
)
def test_sensitivity_never_fails_on_junk(junk) -> None:
    for meta in (junk, {"security": junk}):
        body = {"resourceType": "Observation", "meta": meta, "code": junk, "reasonCode": junk}
        assert sensitivity_of(body) in (None, "HIV", "PSY", "ETH", "SDV", "STD", "R")


@given(st.text())
def test_fold_is_idempotent_and_removes_marks(text: str) -> None:
    once = fold(text)
    assert fold(once) == once
    assert "đ" not in once and "Đ" not in once


def test_a_stored_instant_is_shown_on_its_vietnam_day() -> None:
    from datetime import date

    from hssk.kernel import clock
    from hssk.web.render import fmt_date

    # 18:30 UTC on 06/12 is 01:30 on 07/12 in Vietnam: people see the 7th, not the UTC date
    assert clock.day_of("2026-12-06T18:30:00Z") == date(2026, 12, 7)
    assert clock.day_of("2026-12-06T18:30:00+00:00") == date(2026, 12, 7)
    assert clock.day_of("2026-12-06") == date(2026, 12, 6)
    assert clock.day_of("not a date") is None
    assert fmt_date("2026-12-06T18:30:00Z") == "07/12/2026"
    assert fmt_date("2026-12-06") == "06/12/2026"
