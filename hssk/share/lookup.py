"""Card / person verification in the shape of the insurance gateway's card look-up.

Request (``KQNhanLichSuKCB2024``): ``maThe``, ``hoTen``, ``ngaySinh`` (dd/MM/yyyy, or yyyy
for persons born with a year only), ``hoTenCb`` and ``cccdCb`` (the staff member asking).
Result codes (spec/xml130.md §3.2): 000 valid, 010 expired, 050 not found, 051 wrong card code,
052 wrong province (characters 4–5), 053 wrong benefit code (character 3), 060 wrong name,
061 name right but for its diacritics, 070 wrong birth date, 120 card reduced (báo giảm),
205 bad parameter format, 401 authentication. Details of the person are only returned for
000 and 010: a caller that does not already know the card learns nothing from the others.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import psycopg

from hssk.kernel.identifiers import BHYT, BHYT_CARD
from hssk.records import everything
from hssk.registry import Person, find, merged_ids

MESSAGES: dict[str, tuple[str, str]] = {
    "000": ("Thẻ còn giá trị sử dụng.", "The card is valid."),
    "010": ("Thẻ hết giá trị sử dụng.", "The card has expired."),
    "050": ("Không có thông tin thẻ.", "No such card."),
    "051": ("Mã thẻ không đúng.", "Wrong card code."),
    "052": ("Mã tỉnh cấp thẻ (kí tự thứ 4, 5 của mã thẻ) không đúng.",
            "Wrong issuing province (characters 4–5 of the card)."),
    "053": ("Mã quyền lợi thẻ (kí tự thứ 3 của mã thẻ) không đúng.",
            "Wrong benefit code (character 3 of the card)."),
    "060": ("Họ tên không đúng.", "Wrong name."),
    "061": ("Họ tên đúng nhưng sai dấu.", "Name right but its diacritics differ."),
    "070": ("Ngày sinh không đúng.", "Wrong date of birth."),
    "120": ("Thẻ đã bị báo giảm.", "The card was reported reduced (báo giảm)."),
    "205": ("Lỗi sai định dạng tham số.", "Bad parameter format."),
    "401": ("Lỗi xác thực tài khoản.", "Authentication error."),
}  # fmt: skip
_DMY = re.compile(r"(\d{2})/(\d{2})/(\d{4})")


@dataclass
class LookupRequest:
    ma_the: str
    ho_ten: str
    ngay_sinh: str
    ho_ten_cb: str = ""
    cccd_cb: str = ""


@dataclass
class LookupResult:
    code: str
    detail: str = ""  # what exactly was wrong (for 205)
    person_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        vi, en = MESSAGES[self.code]
        note = f"{vi} {self.detail}".strip()
        return {"maKetQua": self.code, "ghiChu": note, "message_en": en, **self.data}


def parse(raw: dict[str, Any]) -> LookupRequest | LookupResult:
    """Check the parameters; a 205 result names the field and the expected form."""

    def text(name: str) -> str:
        value = raw.get(name)
        return value.strip() if isinstance(value, str) else ""

    for name in ("maThe", "hoTen", "ngaySinh"):
        if not text(name):
            return LookupResult("205", f"Thiếu tham số '{name}' / parameter '{name}' is missing.")
    ma_the = text("maThe").upper()
    if not BHYT_CARD.fullmatch(ma_the):
        return LookupResult(
            "205",
            f"'maThe' phải gồm 15 ký tự: 2 chữ cái, 1 chữ số mức hưởng (1–5), 12 chữ số; "
            f"nhận được '{ma_the[:20]}'.",
        )
    ngay = text("ngaySinh")
    if not (_DMY.fullmatch(ngay) or re.fullmatch(r"\d{4}", ngay)):
        return LookupResult(
            "205", f"'ngaySinh' phải có dạng dd/MM/yyyy (hoặc yyyy); nhận được '{ngay[:20]}'."
        )
    if m := _DMY.fullmatch(ngay):
        try:
            date(int(m[3]), int(m[2]), int(m[1]))
        except ValueError:
            return LookupResult("205", f"'ngaySinh' {ngay} không phải ngày có thật.")
    return LookupRequest(ma_the, text("hoTen"), ngay, text("hoTenCb"), text("cccdCb"))


def fold(text: str) -> str:
    """Lower case, no diacritics (đ → d), single spaces."""
    text = text.replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).lower().split())


def _exact(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).lower().split())


def _birth_matches(asked: str, birth: date | None, precision: str | None) -> bool:
    if birth is None:
        return False
    if len(asked) == 4 or precision == "Y":
        return asked[-4:] == f"{birth.year:04d}"
    m = _DMY.fullmatch(asked)
    if m is None:
        return False
    return (int(m[3]), int(m[2]), int(m[1])) == (birth.year, birth.month, birth.day)


def lookup(conn: psycopg.Connection[Any], req: LookupRequest, today: date) -> LookupResult:
    """Verify a card against the registry and the insurance coverage records."""
    person = _person(conn, bhyt=req.ma_the)
    coverage = _coverage(conn, person.id, req.ma_the) if person else None
    if person is None:
        # Same social-insurance number (the card's last 10 digits), another card.
        other = _person(conn, bhxh=req.ma_the[5:])
        # that person's own card once, perhaps under a person since merged into it: its
        # Coverage says so (merges move no rows, and keep the survivor's card)
        coverage = _coverage(conn, other.id, req.ma_the) if other else None
        if other is not None and coverage is not None:
            person = other
        elif other is None or not other.bhyt:
            return LookupResult("050")
        elif other.bhyt[2] != req.ma_the[2]:
            return LookupResult("053", person_id=other.id)
        elif other.bhyt[3:5] != req.ma_the[3:5]:
            return LookupResult("052", person_id=other.id)
        else:
            return LookupResult("051", person_id=other.id)
    name, birth, precision = person.full_name or "", person.birth_date, person.birth_precision
    if fold(req.ho_ten) != fold(name):
        return LookupResult("060", person_id=person.id)
    if _exact(req.ho_ten) != _exact(name):
        return LookupResult("061", person_id=person.id)
    if not _birth_matches(req.ngay_sinh, birth, precision):
        return LookupResult("070", person_id=person.id)
    data: dict[str, Any] = {
        "maThe": req.ma_the,
        "hoTen": name,
        "ngaySinh": _dmy(birth, precision),
        "gioiTinh": {"M": "Nam", "F": "Nữ"}.get(person.sex or "", ""),
        "diaChi": person.address or "",
        "maSoBHXH": person.bhxh or req.ma_the[5:],
    }
    code = "000"
    if coverage is not None:
        data.update({"gtTheTu": _iso_to_dmy(coverage.start), "gtTheDen": _iso_to_dmy(coverage.end),
                     "maDKBD": coverage.facility})  # fmt: skip
        if coverage.status == "cancelled":
            code = "120"
        elif coverage.end and coverage.end[:10] < today.isoformat():
            code = "010"
    return LookupResult(code, person_id=person.id, data=data if code in ("000", "010") else {})


def _person(
    conn: psycopg.Connection[Any], *, bhyt: str | None = None, bhxh: str | None = None
) -> Person | None:
    """The living golden record carrying this card (or social-insurance number), lowest id
    first, as the registry finds it."""
    found = [
        c.person
        for c in find(conn, bhyt=bhyt, bhxh=bhxh)
        if (bhyt is None or c.person.bhyt == bhyt) and (bhxh is None or c.person.bhxh == bhxh)
    ]
    return min(found, key=lambda p: p.id) if found else None


@dataclass(frozen=True)
class Card:
    """What a Coverage resource says of a card."""

    status: str | None
    start: str | None
    end: str | None
    facility: str | None  # the primary-care facility (maDKBD)


_FACILITY = re.compile(r"([0-9A-Z]{5})\Z")


def _coverage(conn: psycopg.Connection[Any], person_id: int, card: str) -> Card | None:
    """The newest (by period end) Coverage of ``card`` among the person's, those written
    under the persons merged into it included (read through the record store)."""
    found: list[Card] = []
    for stored in everything(conn, merged_ids(conn, person_id), ["Coverage"]):
        body = stored.body
        named = body.get("identifier") or []
        if not any(isinstance(i, dict) and i.get("system") == BHYT and i.get("value") == card
                   for i in named):  # fmt: skip
            continue
        period = body.get("period") or {}
        classes = body.get("class") or [{}]
        m = _FACILITY.search(str(classes[0].get("name") or "")) if classes else None
        found.append(Card(body.get("status"), period.get("start"), period.get("end"),
                          m.group(1) if m else None))  # fmt: skip
    # newest period end first; a Coverage without an end after those with one
    found.sort(key=lambda c: (c.end is not None, c.end or ""), reverse=True)
    return found[0] if found else None


def _dmy(d: date | None, precision: str | None) -> str:
    if d is None:
        return ""
    return f"{d.year:04d}" if precision == "Y" else d.strftime("%d/%m/%Y")


def _iso_to_dmy(iso: str | None) -> str:
    if not iso or len(iso) < 10:
        return iso or ""
    return f"{iso[8:10]}/{iso[5:7]}/{iso[:4]}"
