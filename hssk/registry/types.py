"""Data shapes of the master patient index, shared by linking, search and the FHIR view."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any


@dataclass(slots=True)
class SourceRecord:
    """One demographic record as a source system sent it (raw values; the registry normalizes)."""

    source: str  # e.g. 'population', 'insurance', 'immunization', 'xml130:01001', 'fhir'
    record_id: str  # the record's id within that source
    full_name: str | None = None
    birth_date: str | None = None  # 'YYYY-MM-DD' | 'YYYY-MM' | 'YYYY' (precision kept)
    sex: str | None = None  # 'M' | 'F' | 'U'
    cccd: str | None = None  # raw document number (may be a passport / e-ID: it is classified)
    passport: str | None = None
    bhxh: str | None = None
    bhyt: str | None = None
    temp_card: str | None = None
    phone: str | None = None
    address: str | None = None
    commune_code: str | None = None  # old (pre-2025) or new code
    province_code: str | None = None
    mother_person_id: int | None = None


@dataclass
class LinkResult:
    """Outcome of linking one source record to a person."""

    person_id: int
    created: bool
    score: float | None
    rule: str  # 'cccd', 'bhyt', 'bhxh', 'passport', 'temp_card', 'probabilistic', 'source', 'new'
    review: bool  # True when a match_review row was queued


@dataclass
class Person:
    """A golden record (row of ``person``)."""

    id: int
    health_id: str | None = None
    cccd: str | None = None
    cccd_verified: bool = False
    passport: str | None = None
    bhxh: str | None = None
    bhyt: str | None = None
    temp_card: str | None = None
    full_name: str | None = None
    name_key: str | None = None
    family_key: str | None = None
    given_key: str | None = None
    birth_date: date | None = None
    birth_precision: str | None = None
    sex: str | None = None
    phone: str | None = None
    address: str | None = None
    province_code: str | None = None
    commune_code: str | None = None
    commune_code_old: str | None = None
    household_id: int | None = None
    mother_id: int | None = None
    deceased_at: datetime | None = None
    verification: str = "unverified"
    merged_into: int | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    middle_key: str | None = None
    cmnd: str | None = None
    eid: str | None = None
    commune_ambiguous: bool = False
    name_sorted: str | None = None
    # The phone is the population register's or was confirmed in person: one-time codes may
    # go to it (a phone from any other source never receives one).
    phone_verified: bool = False
    # Filled by get_person: ids of persons merged into this one (Patient.link 'replaces').
    replaces: list[int] = field(default_factory=list)

    @property
    def birth_date_text(self) -> str | None:
        """Birth date at its precision: 'YYYY-MM-DD', 'YYYY-MM' or 'YYYY'."""
        if self.birth_date is None:
            return None
        iso = self.birth_date.isoformat()
        return {"Y": iso[:4], "M": iso[:7]}.get(self.birth_precision or "D", iso)


@dataclass
class Candidate:
    """A person found by search or matching, with its score and the evidence per field."""

    person: Person
    score: float  # match probability 0..1
    grade: str  # IHE PDQm: certain | probable | possible | certainly-not
    evidence: dict[str, Any] = field(default_factory=dict)


PERSON_COLUMNS = (
    "id, health_id, cccd, cccd_verified, passport, bhxh, bhyt, temp_card, full_name, name_key, "
    "family_key, given_key, birth_date, birth_precision, sex, phone, address, province_code, "
    "commune_code, commune_code_old, household_id, mother_id, deceased_at, verification, "
    "merged_into, created_at, updated_at, middle_key, cmnd, eid, commune_ambiguous, name_sorted, "
    "phone_verified"
)


def person_from_row(row: tuple[Any, ...]) -> Person:
    """Build a Person from a row selected with ``PERSON_COLUMNS``."""
    return Person(*row)
