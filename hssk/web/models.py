"""The health book as a versioned, documented shape (API v1 for partner apps and the pages).

Field names are English; labels are Vietnamese in the pages. Dates are ISO 8601. A section a
partner may not receive is ``null`` (not an empty list), so "not shared" differs from "none".
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field

BOOK_VERSION = "1"

# Sections of the book, in the order of the Ministry's content groups (QĐ 31/2026 Art. 2).
SECTIONS = (
    "admin",  # (a) hành chính
    "insurance",  # (a) thẻ BHYT
    "indicators",  # chỉ số sức khỏe
    "history",  # (b) tiền sử bệnh tật
    "allergies",  # (b) dị ứng
    "risk_factors",  # yếu tố nguy cơ
    "immunizations",  # (b) tiêm chủng
    "schedule",  # lịch TCMR của trẻ
    "visits",  # (c) từng lần khám chữa bệnh
    "prescriptions",
    "labs",
    "imaging",
    "summaries",  # (d) tóm tắt hồ sơ bệnh án
    "documents",  # giấy tờ: ra viện, chứng sinh, nghỉ dưỡng thai, nghỉ việc hưởng BHXH
    "referrals",  # giấy chuyển tuyến
    "appointments",  # giấy hẹn khám lại
    "checkups",  # khám sức khỏe định kỳ, học đường, sàng lọc
    "self_reported",  # do người dân tự nhập
)


class Admin(BaseModel):
    person_id: int
    full_name: str | None = None
    birth_date: str | None = Field(default=None, description="YYYY-MM-DD, YYYY-MM or YYYY")
    sex: str | None = Field(default=None, description="M, F or U")
    health_id: str | None = Field(
        default=None, description="mã định danh y tế (= số định danh cá nhân)"
    )
    cccd: str | None = None
    phone: str | None = None
    address: str | None = None
    commune_code: str | None = None
    deceased_at: datetime | None = None
    guardian_of: list[int] = Field(default_factory=list, description="children in my care")


class Insurance(BaseModel):
    card_number: str | None = Field(default=None, description="mã thẻ BHYT, 15 characters")
    initial_facility: str | None = Field(default=None, description="nơi ĐKKCB ban đầu")
    valid_from: str | None = None
    valid_to: str | None = None


class Point(BaseModel):
    date: datetime
    value: float
    value2: float | None = Field(default=None, description="diastolic pressure for blood pressure")


class Indicator(BaseModel):
    key: str = Field(description="height, weight, bmi, blood_pressure, glucose")
    unit: str
    points: list[Point]


class Condition(BaseModel):
    code: str | None = Field(default=None, description="ICD-10")
    display: str | None = None
    onset: datetime | None = None
    facility: str | None = None
    status: str | None = None


class Allergy(BaseModel):
    substance: str | None = None
    category: str | None = None
    criticality: str | None = None
    reaction: str | None = None
    recorded: datetime | None = None


class RiskFactor(BaseModel):
    label: str
    value: str | None = None
    date: datetime | None = None
    source: str = Field(default="clinical", description="clinical or self")


class Immunization(BaseModel):
    vaccine: str | None = None
    group: str | None = Field(default=None, description="TCMR group key when recognised")
    date: datetime | None = None
    dose: int | None = None
    facility: str | None = None
    lot: str | None = None


class ScheduleDose(BaseModel):
    group: str
    vaccine: str
    dose: int
    age: str
    due: date
    status: str = Field(description="done, overdue, due or upcoming")
    given: date | None = None


class Diagnosis(BaseModel):
    code: str | None = None
    display: str | None = None
    main: bool = False


class Visit(BaseModel):
    id: str
    facility: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    kind: str | None = Field(default=None, description="form of care: outpatient, inpatient, ...")
    reason: str | None = None
    diagnoses: list[Diagnosis] = Field(default_factory=list)
    discharge: str | None = None
    doctor: str | None = None


class Prescription(BaseModel):
    medication: str | None = None
    dosage: str | None = None
    quantity: str | None = None
    date: datetime | None = None
    facility: str | None = None
    visit_id: str | None = None


class LabResult(BaseModel):
    test: str | None = None
    code: str | None = None
    value: str | None = None
    unit: str | None = None
    low: float | None = None
    high: float | None = None
    range_text: str | None = None
    flag: str | None = Field(default=None, description="H, L, A (abnormal) or N")
    date: datetime | None = None
    facility: str | None = None
    visit_id: str | None = None


class ImagingReport(BaseModel):
    title: str | None = None
    conclusion: str | None = None
    date: datetime | None = None
    facility: str | None = None
    visit_id: str | None = None


class Summary(BaseModel):
    title: str | None = None
    date: datetime | None = None
    sections: list[tuple[str, str]] = Field(default_factory=list)
    visit_id: str | None = None


class Document(BaseModel):
    """A paper the facility issued (QĐ 130 XML7, XML9, XML10, XML11, XML13)."""

    title: str | None = None
    date: datetime | None = None
    facility: str | None = None
    number: str | None = Field(default=None, description="số seri / số chứng từ")
    diagnosis: str | None = None
    leave_from: datetime | None = Field(default=None, description="nghỉ từ ngày (XML10, XML11)")
    leave_to: datetime | None = None
    leave_days: str | None = Field(default=None, description="số ngày nghỉ")
    doctor: str | None = None
    visit_id: str | None = None


class Referral(BaseModel):
    id: str
    date: datetime | None = None
    from_facility: str | None = None
    to_facility: str | None = None
    reason: str | None = None
    diagnosis: str | None = None
    status: str | None = None
    author: str | None = None


class Appointment(BaseModel):
    id: str
    start: datetime | None = None
    facility: str | None = None
    reason: str | None = None
    status: str | None = None
    upcoming: bool = False


class CheckupResult(BaseModel):
    label: str
    value: str


class Checkup(BaseModel):
    id: str
    kind: str = Field(description="periodic, school or screening")
    date: datetime | None = None
    facility: str | None = None
    results: list[CheckupResult] = Field(default_factory=list)
    conclusion: str | None = None


class SelfEntry(BaseModel):
    id: int
    kind: str = Field(description="risk_factor, family_member or measurement")
    data: dict[str, str]
    created_at: datetime


class HealthBook(BaseModel):
    """Sổ sức khỏe điện tử, version 1."""

    version: str = BOOK_VERSION
    generated_at: datetime
    person_id: int
    sections: list[str] = Field(description="sections included in this response")
    admin: Admin | None = None
    insurance: Insurance | None = None
    indicators: list[Indicator] | None = None
    history: list[Condition] | None = None
    allergies: list[Allergy] | None = None
    risk_factors: list[RiskFactor] | None = None
    immunizations: list[Immunization] | None = None
    schedule: list[ScheduleDose] | None = None
    visits: list[Visit] | None = None
    prescriptions: list[Prescription] | None = None
    labs: list[LabResult] | None = None
    imaging: list[ImagingReport] | None = None
    summaries: list[Summary] | None = None
    documents: list[Document] | None = None
    referrals: list[Referral] | None = None
    appointments: list[Appointment] | None = None
    checkups: list[Checkup] | None = None
    self_reported: list[SelfEntry] | None = None


class CatalogValue(BaseModel):
    label: str
    values: list[Any]


class CatalogFields(BaseModel):
    """A person's record as the fields of a named catalog (e.g. QĐ 1332 Sổ SKĐT fields)."""

    catalog: str
    version: str
    provisional: bool = Field(description="true while the official field list is not confirmed")
    person_id: int
    fields: dict[str, CatalogValue]
