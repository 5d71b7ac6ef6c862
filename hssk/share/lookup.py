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
from hssk.registry import resolve

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


_PERSON = """SELECT id, full_name, birth_date, birth_precision, sex, address, bhyt, bhxh
             FROM person WHERE merged_into IS NULL AND {where} ORDER BY id LIMIT 1"""


def lookup(conn: psycopg.Connection[Any], req: LookupRequest, today: date) -> LookupResult:
    """Verify a card against the registry and the insurance coverage records."""
    row = conn.execute(_PERSON.format(where="bhyt = %s"), (req.ma_the,)).fetchone()
    coverage = _coverage(conn, req.ma_the)
    if row is None and coverage is not None:
        # written under a person since merged: the survivor's (merges move no rows)
        row = conn.execute(
            _PERSON.format(where="id = %s"), (resolve(conn, coverage[0]),)
        ).fetchone()
    if row is None:
        # Same social-insurance number, another card: say which part of the code is wrong.
        other = conn.execute(_PERSON.format(where="bhxh = %s"), (req.ma_the[5:],)).fetchone()
        if other is None or not other[6]:
            return LookupResult("050")
        card = str(other[6])
        if card[2] != req.ma_the[2]:
            return LookupResult("053", person_id=other[0])
        if card[3:5] != req.ma_the[3:5]:
            return LookupResult("052", person_id=other[0])
        return LookupResult("051", person_id=other[0])
    pid, name, birth, precision, sex, address, _card, bhxh = row
    if fold(req.ho_ten) != fold(name or ""):
        return LookupResult("060", person_id=pid)
    if _exact(req.ho_ten) != _exact(name or ""):
        return LookupResult("061", person_id=pid)
    if not _birth_matches(req.ngay_sinh, birth, precision):
        return LookupResult("070", person_id=pid)
    data: dict[str, Any] = {
        "maThe": req.ma_the,
        "hoTen": name,
        "ngaySinh": _dmy(birth, precision),
        "gioiTinh": {"M": "Nam", "F": "Nữ"}.get(sex or "", ""),
        "diaChi": address or "",
        "maSoBHXH": bhxh or req.ma_the[5:],
    }
    code = "000"
    if coverage is not None:
        _, status, start, end, dkbd = coverage
        data.update({"gtTheTu": _iso_to_dmy(start), "gtTheDen": _iso_to_dmy(end), "maDKBD": dkbd})
        if status == "cancelled":
            code = "120"
        elif end and end[:10] < today.isoformat():
            code = "010"
    return LookupResult(code, person_id=pid, data=data if code in ("000", "010") else {})


def _coverage(conn: psycopg.Connection[Any], card: str) -> tuple[Any, ...] | None:
    """(person_id, status, start, end, primary-care facility) of the newest Coverage of a card."""
    return conn.execute(
        """SELECT person_id, body->>'status', body #>> '{period,start}', body #>> '{period,end}',
                  substring(body #>> '{class,0,name}' from '([0-9A-Z]{5})$')
           FROM resource
           WHERE type = 'Coverage' AND NOT deleted AND person_id IS NOT NULL
             AND body -> 'identifier' @> %s::jsonb
           ORDER BY body #>> '{period,end}' DESC NULLS LAST LIMIT 1""",
        (f'[{{"system": "{BHYT}", "value": "{card}"}}]',),
    ).fetchone()


def _dmy(d: date | None, precision: str | None) -> str:
    if d is None:
        return ""
    return f"{d.year:04d}" if precision == "Y" else d.strftime("%d/%m/%Y")


def _iso_to_dmy(iso: str | None) -> str:
    if not iso or len(iso) < 10:
        return iso or ""
    return f"{iso[8:10]}/{iso[5:7]}/{iso[:4]}"
