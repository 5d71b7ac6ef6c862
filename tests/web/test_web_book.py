"""Pure parts of the web layer: schedule, book assembly, forms, charts, PDF writer."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hssk.web import pdf
from hssk.web.book import CHECKUP_SYSTEM, PersonView, build_book, lab_flag, resource_types
from hssk.web.charts import trend_svg
from hssk.web.forms import Form
from hssk.web.models import SECTIONS, Point
from hssk.web.partners import PARTNER_SECTIONS, sections_for
from hssk.web.schedule import add_months, child_schedule, load_schedule, vaccine_group
from hssk.web.selfdata import validate_entry
from hssk.web.station import checkup_resources, validate_checkup

TODAY = date(2026, 11, 25)


@dataclass
class R:
    type: str
    id: str
    body: dict[str, Any]


def obs(code: str, when: str, value: float | None = None, **extra: Any) -> R:
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "code": {"coding": [{"system": "http://loinc.org", "code": code}], "text": code},
        "effectiveDateTime": when,
        **extra,
    }
    if value is not None:
        body["valueQuantity"] = {"value": value, "unit": extra.pop("unit", None) or "u"}
    return R("Observation", f"o-{code}-{when}", body)


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2090, 12, 31)), st.integers(0, 400))
def test_add_months_lands_in_the_right_month(day: date, months: int) -> None:
    out = add_months(day, months)
    assert (out.year * 12 + out.month) - (day.year * 12 + day.month) == months
    assert out.day <= day.day


def test_vaccine_groups_prefer_combinations_and_codes() -> None:
    assert vaccine_group({"text": "Sởi - Rubella (MR)"}) == "mr"
    assert vaccine_group({"text": "Sởi"}) == "measles"
    assert vaccine_group({"text": "DPT-VGB-Hib (5 trong 1)"}) == "penta"
    assert vaccine_group({"text": "Viêm gan B sơ sinh"}) == "hepb0"
    assert vaccine_group({"coding": [{"code": "19"}]}) == "bcg"
    assert vaccine_group({"text": "Viêm não Nhật Bản (Jevax)"}) == "je"
    assert vaccine_group({"text": "Cúm mùa"}) is None
    assert vaccine_group(None) is None


def test_child_schedule_statuses() -> None:
    birth = TODAY - timedelta(days=300)
    given_doses = [("hepb0", birth), ("bcg", birth), ("penta", birth + timedelta(days=62))]
    items = child_schedule(birth, given_doses, TODAY)
    assert len(items) == len(load_schedule().doses)
    by = {(i.group, i.dose): i for i in items}
    assert by[("hepb0", 1)].status == "done" and by[("hepb0", 1)].given == birth
    assert by[("penta", 1)].status == "done"
    assert by[("penta", 2)].status == "overdue"  # due at 3 months, 30-day grace long past
    assert by[("measles", 1)].status == "due"  # due at 9 months (≈270 days), within grace
    assert by[("je", 1)].status == "upcoming"
    assert by[("je", 2)].due == add_months(birth, 12) + timedelta(days=14)


def _mother() -> PersonView:
    return PersonView(
        id=7, full_name="Nguyễn Thị Hoà", birth_date=date(1990, 4, 12), birth_text="1990-04-12"
    )


def test_book_indicators_labs_and_flags() -> None:
    resources = [
        obs("29463-7", "2026-01-01", 60),
        obs("29463-7", "2026-06-01", 58),
        obs("8480-6", "2026-06-01T08:00:00Z", 140),
        obs("8462-4", "2026-06-01T08:00:00Z", 90),
        obs("2339-0", "2026-06-01", 126, unit="mg/dL"),
        obs(
            "4548-4",
            "2026-06-02",
            7.2,
            category=[{"coding": [{"code": "laboratory"}]}],
            referenceRange=[{"low": {"value": 4}, "high": {"value": 6}}],
        ),
        obs(
            "718-7",
            "2026-06-02",
            10.1,
            category=[{"coding": [{"code": "laboratory"}]}],
            interpretation=[{"coding": [{"code": "L"}]}],
        ),
    ]
    book = build_book(_mother(), resources, now=datetime(2026, 11, 25, tzinfo=UTC))
    ind = {i.key: i for i in book.indicators or []}
    assert [p.value for p in ind["weight"].points] == [60, 58]
    assert ind["blood_pressure"].points[0].value == 140
    assert ind["blood_pressure"].points[0].value2 == 90
    assert ind["glucose"].points[0].value == 7.0  # 126 mg/dL → 7.0 mmol/L
    labs = {x.code: x for x in book.labs or []}
    assert labs["4548-4"].flag == "H" and labs["4548-4"].range_text == "4 – 6"
    assert labs["718-7"].flag == "L"
    assert book.schedule == []  # an adult has no TCMR schedule


def test_lab_flag_from_range_only() -> None:
    assert lab_flag({"valueQuantity": {"value": 3}}, 4, 6) == "L"
    assert lab_flag({"valueQuantity": {"value": 5}}, 4, 6) == "N"
    assert lab_flag({"valueQuantity": {"value": 5}}, None, None) is None


def test_visits_diagnoses_and_sensitive_filter() -> None:
    cond = R(
        "Condition",
        "c1",
        {
            "resourceType": "Condition",
            "id": "c1",
            "code": {"coding": [{"code": "B20", "display": "HIV"}]},
            "encounter": {"reference": "Encounter/e1"},
        },
    )
    enc = R(
        "Encounter",
        "e1",
        {
            "resourceType": "Encounter",
            "id": "e1",
            "class": {"code": "AMB"},
            "period": {"start": "2026-05-01T08:00:00Z"},
            "serviceProvider": {"display": "BV A"},
            "diagnosis": [{"condition": {"reference": "Condition/c1"}, "rank": 1}],
        },
    )
    own = build_book(_mother(), [cond, enc])
    assert own.visits and own.visits[0].diagnoses[0].code == "B20"
    assert own.visits[0].diagnoses[0].main and own.visits[0].facility == "BV A"
    partner = build_book(
        _mother(), [cond, enc], sections=sections_for("vneid"), include_sensitive=False
    )
    assert partner.visits and partner.visits[0].diagnoses == []
    assert partner.history == []
    assert partner.self_reported is None  # citizens' own entries never go to partners


def test_partner_sections() -> None:
    assert set(sections_for("city-app")) < set(SECTIONS)
    assert "labs" not in sections_for("city-app")
    assert sections_for("unknown-app") == ("admin", "insurance")
    book = build_book(_mother(), [], sections=sections_for("city-app"))
    assert book.labs is None and book.appointments == []


@given(st.text(max_size=30))
def test_form_number_never_raises(text: str) -> None:
    form = Form({"x": text})
    value = form.number("x", 1, 300, "kg")
    assert value is None or 1 <= value <= 300
    assert (value is None) == (not form.ok) or not text.strip()


def test_station_checkup_validation() -> None:
    raw = {
        "cccd": "001190012345",
        "kind": "sang-loc",
        "date": "01/11/2026",
        "height": "156",
        "weight": "590",
        "systolic": "80",
        "diastolic": "120",
        "glucose": "6,1",
    }
    form, data = validate_checkup(raw, TODAY)
    errors = form.by_field("vi")
    assert "ngoài khoảng hợp lý" in errors["weight"]
    assert "nhỏ hơn tâm thu" in errors["diastolic"]
    assert data["glucose"] == 6.1
    form, _ = validate_checkup({**raw, "cccd": "12345", "date": "31/12/2027"}, TODAY)
    errors = form.by_field("en")
    assert "12 digits" in errors["cccd"] and "future" in errors["date"]
    form, data = validate_checkup(
        {**raw, "weight": "59", "systolic": "120", "diastolic": "80"}, TODAY
    )
    assert form.ok and data["bmi"] == 24.2
    station = {"display": "Trạm"}
    items = checkup_resources(7, "TYT", station, data, "k1")
    codes = [i.body.get("code", {}).get("coding", [{}])[0].get("code") for i in items[1:]]
    assert {"8302-2", "29463-7", "39156-5", "85354-9", "15074-8"} == set(codes)
    again = checkup_resources(7, "TYT", station, data, "k1")
    assert [i.source_key for i in items] == [i.source_key for i in again]  # idempotent


def test_self_entry_validation() -> None:
    form, _ = validate_entry("family_member", {"name": "", "relation": "uncle"}, TODAY)
    assert set(form.by_field("vi")) == {"name", "relation"}
    form, data = validate_entry(
        "risk_factor", {"factor": "smoking", "detail": "5 điếu/ngày"}, TODAY
    )
    assert form.ok and data == {"factor": "smoking", "detail": "5 điếu/ngày"}


def test_trend_svg() -> None:
    pts = [
        Point(date=datetime(2026, m, 1, tzinfo=UTC), value=120 + m, value2=80.0) for m in (1, 4, 9)
    ]
    svg = trend_svg(pts, "mmHg", "Huyết áp")
    assert svg.count("<circle") == 6 and "129/80 mmHg" in svg
    assert trend_svg([], "kg", "x") == ""


def test_pdf_font_is_vietnamese_and_subset() -> None:
    data = pdf.render_pdf("Sổ sức khỏe điện tử", [pdf.Line("Nguyễn Thị Hoà — Đường huyết")], None)
    assert data.startswith(b"%PDF-1.7") and data.rstrip().endswith(b"%%EOF")
    font = pdf.load_font()
    assert all(g > 0 for g in font.glyphs("ỄễĐđƯưỚớẶặ"))  # every Vietnamese letter has a glyph
    assert b"/ToUnicode" in data  # text can be copied and searched
    assert len(data) < 100_000  # the font is subset, not embedded whole


def test_font_subset_keeps_composite_components() -> None:
    import struct

    font = pdf.load_font()
    wanted = set(font.glyphs("ễ"))  # a composite glyph: e + circumflex + tilde
    sub = pdf.subset(font, wanted)
    n = len(font.widths)
    count = struct.unpack(">H", sub[4:6])[0]
    tables = {}
    for i in range(count):
        tag, _, off, length = struct.unpack(">4sIII", sub[12 + 16 * i : 28 + 16 * i])
        tables[tag.decode()] = (off, length)
    assert set(tables) <= {"cvt ", "fpgm", "glyf", "head", "hhea", "hmtx", "loca", "maxp", "prep"}
    loca_off = tables["loca"][0]
    loca = struct.unpack(f">{n + 1}I", sub[loca_off : loca_off + 4 * (n + 1)])
    drawn = {g for g in range(n) if loca[g + 1] > loca[g]}
    assert wanted < drawn  # the components were kept too
    assert len(drawn) < 10 and len(sub) < len(font.data) // 5


def test_missing_labels_show_the_code() -> None:
    from hssk.web.i18n import t

    assert t("kind_VR", "vi") == "VR" and t("kind_AMB", "en") == "Outpatient"
    assert t("sex_F", "vi") == "Nữ"


def _rich_record() -> list[R]:
    """One resource of every type a section reads; what was recorded during visit e1 names
    no facility itself (the visit's does)."""
    at, e1 = "2026-05-01T08:00:00Z", {"reference": "Encounter/e1"}
    bodies: list[dict[str, Any]] = [
        {"resourceType": "Coverage", "subscriberId": "GD4010123456789",
         "period": {"start": "2026-01-01", "end": "2026-12-31"}, "payor": [{"display": "BHXH"}]},
        {"resourceType": "Claim", "created": at},
        {"resourceType": "Encounter", "id": "e1", "status": "finished", "class": {"code": "AMB"},
         "period": {"start": at}, "serviceProvider": {"display": "BV A"}},
        {"resourceType": "Encounter", "id": "e2", "status": "finished", "period": {"start": at},
         "type": [{"coding": [{"system": CHECKUP_SYSTEM, "code": "ksk-dinh-ky"}]}],
         "serviceProvider": {"display": "TYT B"}},
        {"resourceType": "Condition", "id": "c1", "code": {"coding": [{"code": "I10"}]},
         "encounter": e1, "recordedDate": at},
        {"resourceType": "Immunization", "status": "completed", "vaccineCode": {"text": "BCG"},
         "occurrenceDateTime": "2026-05-01", "encounter": e1},
        {"resourceType": "MedicationRequest", "authoredOn": at, "encounter": e1,
         "medicationCodeableConcept": {"text": "Amlodipin 5mg"}},
        {"resourceType": "Observation", "id": "lab", "effectiveDateTime": at, "encounter": e1,
         "category": [{"coding": [{"code": "laboratory"}]}], "code": {"text": "Glucose"},
         "valueQuantity": {"value": 5.1, "unit": "mmol/L"}},
        {"resourceType": "Observation", "id": "w", "effectiveDateTime": at,
         "encounter": {"reference": "Encounter/e2"},
         "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
         "valueQuantity": {"value": 60, "unit": "kg"}},
        {"resourceType": "Observation", "id": "smoke", "effectiveDateTime": at,
         "category": [{"coding": [{"code": "social-history"}]}], "code": {"text": "Hút thuốc"},
         "valueString": "có"},
        {"resourceType": "AllergyIntolerance", "code": {"text": "Penicillin"}, "recordedDate": at},
        {"resourceType": "DiagnosticReport", "effectiveDateTime": at, "encounter": e1,
         "category": [{"coding": [{"code": "RAD"}]}], "code": {"text": "X-quang ngực"}},
        {"resourceType": "Composition", "title": "Tóm tắt", "date": at, "encounter": e1},
        {"resourceType": "DocumentReference", "status": "current", "date": at,
         "type": {"coding": [{"code": "giay-nghi-viec-bhxh",
                              "display": "Giấy chứng nhận nghỉ việc hưởng BHXH"}]},
         "identifier": [{"value": "CT07-0001"}], "context": {"encounter": [e1],
         "period": {"start": "2026-05-01", "end": "2026-05-05"}},
         "extension": [{"url": "https://fhir.hssk.vn/StructureDefinition/xml130-fields",
                        "extension": [{"url": "SO_NGAY_NGHI", "valueString": "5"},
                                      {"url": "CHAN_DOAN_RV", "valueString": "Viêm phổi"}]}]},
        {"resourceType": "ServiceRequest", "id": "ref", "authoredOn": at, "encounter": e1,
         "code": {"text": "Chuyển tuyến"}},
        {"resourceType": "Appointment", "id": "ap", "status": "booked",
         "start": "2026-12-01T08:00:00Z"},
    ]  # fmt: skip
    return [R(b["resourceType"], b.get("id") or f"x{i}", b) for i, b in enumerate(bodies)]


@pytest.mark.parametrize(
    "sections",
    [(s,) for s in SECTIONS] + [sections_for(c) for c in PARTNER_SECTIONS] + [sections_for(None)],
)
def test_a_section_needs_only_its_resource_types(sections: tuple[str, ...]) -> None:
    rich, now = _rich_record(), datetime(2026, 11, 25, tzinfo=UTC)
    types = resource_types(sections) or frozenset()
    child = PersonView(id=8, full_name="Trần Minh An", birth_date=date(2025, 11, 1))
    for person in (_mother(), child):  # the child has a vaccination schedule
        whole = build_book(person, rich, sections=sections, now=now)
        part = build_book(person, [r for r in rich if r.type in types], sections=sections, now=now)
        assert part == whole


def test_the_rich_record_fills_every_section() -> None:
    # (so that the test above compares something in each section)
    book = build_book(_mother(), _rich_record(), now=datetime(2026, 11, 25, tzinfo=UTC))
    assert book.insurance and book.insurance.card_number == "GD4010123456789"
    assert book.history and book.history[0].facility == "BV A"
    assert book.immunizations and book.immunizations[0].facility == "BV A"
    assert book.prescriptions and book.prescriptions[0].facility == "BV A"
    assert book.labs and book.labs[0].facility == "BV A"
    assert book.imaging and book.imaging[0].facility == "BV A"
    assert book.referrals and book.referrals[0].from_facility == "BV A"
    assert book.checkups and book.checkups[0].facility == "TYT B" and book.checkups[0].results
    assert book.visits and book.indicators and book.risk_factors and book.allergies
    assert book.summaries and book.appointments
    assert book.documents and book.documents[0].facility == "BV A"
    assert book.documents[0].leave_days == "5" and book.documents[0].number == "CT07-0001"
