"""Vietnamese identifier systems, fixed in one place, with structural validation.

Facts: ../shared/spec/identifiers.md. A check never raises on bad input: it returns the
problems found, each with a stable code and a message in Vietnamese and English, so callers
can quarantine, or keep the value as unverified evidence (the registry does), with a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum

# --- systems (FHIR Identifier.system) -------------------------------------------------------
BASE = "https://fhir.hssk.vn/sid"
CCCD = f"{BASE}/cccd"  # số định danh cá nhân; also the health id (NĐ 102/2025 Art. 6)
HEALTH_ID = f"{BASE}/health-id"  # alias accepted on search; stored as CCCD
CMND = f"{BASE}/cmnd"  # old 9-digit identity card
PASSPORT = f"{BASE}/passport"
EID = f"{BASE}/eid"  # mã tài khoản định danh điện tử
BHXH = f"{BASE}/bhxh"  # mã số BHXH, 10 digits
BHYT = f"{BASE}/bhyt"  # thẻ BHYT, 15 characters
TEMP_CARD = f"{BASE}/the-tam"  # newborn temporary card (MA_THE_TAM)
FACILITY = f"{BASE}/cskcb"  # mã CSKCB, 5 characters
GLN = "https://www.gs1.org/gln"  # 13 digits, QĐ 1551
MA_BN = f"{BASE}/ma-bn"  # a facility's own patient number (system suffixed by facility)
MA_LK = f"{BASE}/ma-lk"  # a visit key of QĐ 130 (suffixed by facility)

PERSON_SYSTEMS = {
    "cccd": CCCD,
    "health-id": CCCD,
    "cmnd": CMND,
    "passport": PASSPORT,
    "eid": EID,
    "bhxh": BHXH,
    "bhyt": BHYT,
    "the-tam": TEMP_CARD,
}
# The Vietnamese core FHIR guides name the same identifiers under their own bases; a system
# under one of these bases whose last segment names one of ours is read as ours. [unconfirmed:
# the guides' exact segment names are configuration, extend VN_GUIDE_SEGMENTS as they publish]
VN_GUIDE_BASES = ("https://fhir.hl7.org.vn/core/sid", "http://fhir.hl7.org.vn/core/sid",
                  "https://fhir.ehealth.gov.vn/core/sid", "http://fhir.ehealth.gov.vn/core/sid")  # fmt: skip
VN_GUIDE_SEGMENTS = {
    "cccd": CCCD, "so-dinh-danh": CCCD, "dinh-danh-ca-nhan": CCCD, "health-id": CCCD,
    "ma-dinh-danh-y-te": CCCD, "cmnd": CMND, "passport": PASSPORT, "ho-chieu": PASSPORT,
    "bhxh": BHXH, "ma-bhxh": BHXH, "so-bhxh": BHXH, "bhyt": BHYT, "the-bhyt": BHYT,
    "ma-the-bhyt": BHYT, "cskcb": FACILITY, "ma-cskcb": FACILITY,
}  # fmt: skip
SYSTEM_ALIASES = {HEALTH_ID: CCCD} | {
    f"{base}/{segment}": ours
    for base in VN_GUIDE_BASES
    for segment, ours in VN_GUIDE_SEGMENTS.items()
}


def canonical_system(system: str) -> str:
    """Our identifier system for ``system`` (itself when it is not an alias)."""
    return SYSTEM_ALIASES.get(system, system)


# Old (pre-2025, 63 provinces) GSO codes: used by CCCD digits 1–3, BHYT chars 4–5 and
# facility codes. They remain valid in identifiers issued before the reform.
OLD_PROVINCES: dict[str, str] = {
    "01": "Hà Nội", "02": "Hà Giang", "04": "Cao Bằng", "06": "Bắc Kạn", "08": "Tuyên Quang",
    "10": "Lào Cai", "11": "Điện Biên", "12": "Lai Châu", "14": "Sơn La", "15": "Yên Bái",
    "17": "Hòa Bình", "19": "Thái Nguyên", "20": "Lạng Sơn", "22": "Quảng Ninh",
    "24": "Bắc Giang", "25": "Phú Thọ", "26": "Vĩnh Phúc", "27": "Bắc Ninh", "30": "Hải Dương",
    "31": "Hải Phòng", "33": "Hưng Yên", "34": "Thái Bình", "35": "Hà Nam", "36": "Nam Định",
    "37": "Ninh Bình", "38": "Thanh Hóa", "40": "Nghệ An", "42": "Hà Tĩnh", "44": "Quảng Bình",
    "45": "Quảng Trị", "46": "Thừa Thiên Huế", "48": "Đà Nẵng", "49": "Quảng Nam",
    "51": "Quảng Ngãi", "52": "Bình Định", "54": "Phú Yên", "56": "Khánh Hòa",
    "58": "Ninh Thuận", "60": "Bình Thuận", "62": "Kon Tum", "64": "Gia Lai", "66": "Đắk Lắk",
    "67": "Đắk Nông", "68": "Lâm Đồng", "70": "Bình Phước", "72": "Tây Ninh",
    "74": "Bình Dương", "75": "Đồng Nai", "77": "Bà Rịa - Vũng Tàu", "79": "Hồ Chí Minh",
    "80": "Long An", "82": "Tiền Giang", "83": "Bến Tre", "84": "Trà Vinh", "86": "Vĩnh Long",
    "87": "Đồng Tháp", "89": "An Giang", "91": "Kiên Giang", "92": "Cần Thơ",
    "93": "Hậu Giang", "94": "Sóc Trăng", "95": "Bạc Liêu", "96": "Cà Mau",
}  # fmt: skip

# BHYT object codes (mã đối tượng, 2 letters) seen in BHXH practice.
BHYT_OBJECT_CODES = frozenset(
    [
        "DN",
        "HX",
        "CH",
        "NN",
        "TK",
        "HC",
        "XK",
        "CA",
        "CY",
        "QN",
        "HT",
        "TB",
        "NO",
        "XB",
        "TN",
        "CS",
        "XN",
        "MS",
        "HD",
        "TQ",
        "TA",
        "TY",
        "HG",
        "LS",
        "PV",
        "CC",
        "CK",
        "CB",
        "KC",
        "HS",
        "TC",
        "TE",
        "GD",
        "NC",
        "NS",
        "HN",
        "CN",
        "DK",
        "XD",
        "BT",
        "TS",
        "GB",
        "GK",
        "HK",
        "XV",
        "MT",
    ]
)


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One reason an identifier is not structurally valid."""

    code: str
    vi: str
    en: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        return f"{self.code}: {self.en}"


@dataclass(frozen=True)
class Check:
    """Result of a structural check: the normalized value and what is wrong with it."""

    kind: str
    value: str
    problems: tuple[Problem, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        return not any(p.severity is Severity.ERROR for p in self.problems)

    def reason(self) -> str:
        """English reason (empty when valid), for logs and quarantine records."""
        return "; ".join(p.en for p in self.problems)


def clean(value: object) -> str:
    """Trim and drop inner spaces/dots/dashes typed into numbers; upper-case letters."""
    text = "" if value is None else str(value)
    return re.sub(r"[\s.\-]", "", text).upper()


def _p(code: str, vi: str, en: str, sev: Severity = Severity.ERROR) -> Problem:
    return Problem(code, vi, en, sev)


# --- CCCD -------------------------------------------------------------------------------------
def cccd_century_sex(digit: int) -> tuple[int, str]:
    """Century start year and sex ('M'/'F') encoded by CCCD digit 4 (even = male)."""
    return 1900 + 100 * (digit // 2), "M" if digit % 2 == 0 else "F"


def cccd_digit(birth_year: int, sex: str) -> int:
    """The 4th CCCD digit for a birth year and sex ('M' or 'F')."""
    century = (birth_year - 1900) // 100
    return century * 2 + (1 if sex == "F" else 0)


def check_cccd(value: object, *, birth_year: int | None = None, sex: str | None = None) -> Check:
    """12-digit personal id: birth province (old code), century+sex digit, birth year."""
    v = clean(value)
    if not re.fullmatch(r"\d{12}", v):
        return Check("cccd", v, (_p("cccd.format",
            f"Số CCCD '{v}' phải gồm đúng 12 chữ số.",
            f"CCCD '{v}' must be exactly 12 digits (got {len(v)} characters)."),))  # fmt: skip
    problems: list[Problem] = []
    prov = v[1:3]
    if v[0] != "0" or prov not in OLD_PROVINCES:
        problems.append(_p("cccd.province",
            f"3 chữ số đầu '{v[:3]}' không phải mã tỉnh nơi đăng ký khai sinh.",
            f"first 3 digits '{v[:3]}' are not a province code of birth registration."))  # fmt: skip
    century, coded_sex = cccd_century_sex(int(v[3]))
    coded_year = century + int(v[4:6])
    if birth_year is not None and coded_year != birth_year:
        problems.append(_p("cccd.birth_year",
            f"CCCD mã hóa năm sinh {coded_year}, hồ sơ ghi {birth_year}.",
            f"CCCD encodes birth year {coded_year} but the record says {birth_year}."))  # fmt: skip
    if sex in ("M", "F") and coded_sex != sex:
        problems.append(_p("cccd.sex",
            f"Chữ số thứ 4 của CCCD ứng với giới {coded_sex}, hồ sơ ghi {sex}.",
            f"CCCD digit 4 encodes sex {coded_sex} but the record says {sex}."))  # fmt: skip
    return Check("cccd", v, tuple(problems))


def cccd_birth_year(value: str) -> int | None:
    """Birth year encoded in a structurally valid CCCD, else None."""
    v = clean(value)
    if not re.fullmatch(r"\d{12}", v):
        return None
    century, _ = cccd_century_sex(int(v[3]))
    return century + int(v[4:6])


# --- BHXH / BHYT --------------------------------------------------------------------------
def check_bhxh(value: object) -> Check:
    """10-digit social-insurance number (mã số BHXH)."""
    v = clean(value)
    if not re.fullmatch(r"\d{10}", v):
        return Check("bhxh", v, (_p("bhxh.format",
            f"Mã số BHXH '{v}' phải gồm đúng 10 chữ số.",
            f"social-insurance number '{v}' must be exactly 10 digits."),))  # fmt: skip
    return Check("bhxh", v)


# 2-letter object code, benefit 1–5, 2-digit province, the 10-digit social-insurance number
BHYT_CARD = re.compile(r"[A-Z]{2}[1-5]\d{12}")


def check_bhyt(value: object) -> Check:
    """15-character BHYT card: 2-letter object code, benefit 1–5, province, 10-digit BHXH."""
    v = clean(value)
    if not BHYT_CARD.fullmatch(v):
        return Check("bhyt", v, (_p("bhyt.format",
            f"Mã thẻ BHYT '{v}' sai cấu trúc: 2 chữ cái, 1 chữ số mức hưởng (1–5), "
            "2 chữ số mã tỉnh, 10 chữ số mã BHXH.",
            f"BHYT card '{v}' must be 2 letters, a benefit digit 1–5, a 2-digit province and "
            "the 10-digit social-insurance number (15 characters)."),))  # fmt: skip
    problems: list[Problem] = []
    if v[3:5] not in OLD_PROVINCES:
        problems.append(_p("bhyt.province",
            f"Ký tự 4–5 '{v[3:5]}' của thẻ BHYT không phải mã tỉnh.",
            f"characters 4–5 '{v[3:5]}' of the BHYT card are not a province code (error 052)."))  # fmt: skip
    if v[:2] not in BHYT_OBJECT_CODES:
        problems.append(_p("bhyt.object",
            f"Mã đối tượng '{v[:2]}' chưa có trong danh mục.",
            f"object code '{v[:2]}' is not in the known list.", Severity.WARNING))  # fmt: skip
    return Check("bhyt", v, tuple(problems))


def bhyt_bhxh(card: str) -> str | None:
    """The 10-digit social-insurance number inside a BHYT card, if the card is well formed."""
    v = clean(card)
    return v[5:] if BHYT_CARD.fullmatch(v) else None


# --- facilities -----------------------------------------------------------------------------
def check_facility_code(value: object) -> Check:
    """5-character facility code (mã CSKCB); first two digits are the old province code."""
    v = clean(value)
    if not re.fullmatch(r"\d{5}", v):
        return Check("cskcb", v, (_p("cskcb.format",
            f"Mã cơ sở KCB '{v}' phải gồm 5 chữ số.",
            f"facility code '{v}' must be 5 digits."),))  # fmt: skip
    if v[:2] not in OLD_PROVINCES:
        return Check("cskcb", v, (_p("cskcb.province",
            f"2 chữ số đầu '{v[:2]}' của mã cơ sở KCB không phải mã tỉnh.",
            f"first two digits '{v[:2]}' of the facility code are not a province code."),))  # fmt: skip
    return Check("cskcb", v)


def gln_check_digit(first12: str) -> int:
    """GS1 check digit for the first 12 digits of a GLN."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first12))
    return (10 - total % 10) % 10


def check_gln(value: object) -> Check:
    """13-digit GS1 Global Location Number with its check digit."""
    v = clean(value)
    if not re.fullmatch(r"\d{13}", v):
        return Check("gln", v, (_p("gln.format", f"Mã GLN '{v}' phải gồm 13 chữ số.",
            f"GLN '{v}' must be 13 digits."),))  # fmt: skip
    if gln_check_digit(v[:12]) != int(v[12]):
        return Check("gln", v, (_p("gln.check", f"Chữ số kiểm tra của GLN '{v}' sai.",
            f"GLN '{v}' has a wrong check digit."),))  # fmt: skip
    return Check("gln", v)


def check_passport(value: object) -> Check:
    """Passport number: a letter followed by 7 or 8 digits (Vietnamese), or 6–9 alphanumerics."""
    v = clean(value)
    if not re.fullmatch(r"[A-Z0-9]{6,9}", v) or v.isdigit():
        return Check("passport", v, (_p("passport.format",
            f"Số hộ chiếu '{v}' sai định dạng.", f"passport number '{v}' is malformed."),))  # fmt: skip
    return Check("passport", v)


def classify_document(value: object) -> str:
    """Kind of number found in ``SO_CCCD`` (which has no type field): cccd, cmnd, passport, eid."""
    v = clean(value)
    if re.fullmatch(r"\d{12}", v):
        return "cccd"
    if re.fullmatch(r"\d{9}", v):
        return "cmnd"
    if re.fullmatch(r"[A-Z]\d{7,8}", v):
        return "passport"
    return "eid"


CHECKS = {
    "cccd": check_cccd,
    "bhxh": check_bhxh,
    "bhyt": check_bhyt,
    "cskcb": check_facility_code,
    "gln": check_gln,
    "passport": check_passport,
}


def check(kind: str, value: object) -> Check:
    """Check ``value`` as identifier ``kind`` (one of ``CHECKS``)."""
    return CHECKS[kind](value)


def system_for(kind: str) -> str:
    """FHIR system URI for an identifier kind."""
    return PERSON_SYSTEMS.get(kind) or {"cskcb": FACILITY, "gln": GLN}[kind]
