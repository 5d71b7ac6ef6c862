"""ICD-10 chapters (Vietnamese and English names) and the obvious mismatches between a code and
the diagnosis written beside it.

A referral for "Tăng huyết áp" coded X99.99 (an assault) is a typing slip that travels with the
patient. Only diagnoses whose chapter is beyond doubt are listed (``EXPECTED``): a code outside
every chapter its words name is flagged; anything else is left to the clinician.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from hssk.kernel.text import fold


@dataclass(frozen=True)
class Chapter:
    number: str  # Roman numeral, as the Ministry's list numbers them
    first: str  # first category, e.g. "I00"
    last: str
    vi: str
    en: str

    def holds(self, code: str) -> bool:
        return self.first <= code[:3].upper() <= self.last

    def label(self, lang: str = "vi") -> str:
        word = "Chapter" if lang == "en" else "Chương"
        name = self.en if lang == "en" else self.vi
        return f"{word} {self.number} ({self.first}–{self.last}, {name})"


CHAPTERS = (
    Chapter("I", "A00", "B99", "bệnh nhiễm trùng và ký sinh trùng",
            "certain infectious and parasitic diseases"),
    Chapter("II", "C00", "D48", "bướu tân sinh", "neoplasms"),
    Chapter("III", "D50", "D89", "bệnh máu, cơ quan tạo máu và rối loạn miễn dịch",
            "diseases of the blood and immune mechanism"),
    Chapter("IV", "E00", "E90", "bệnh nội tiết, dinh dưỡng và chuyển hóa",
            "endocrine, nutritional and metabolic diseases"),
    Chapter("V", "F00", "F99", "rối loạn tâm thần và hành vi", "mental and behavioural disorders"),
    Chapter("VI", "G00", "G99", "bệnh hệ thần kinh", "diseases of the nervous system"),
    Chapter("VII", "H00", "H59", "bệnh mắt và phần phụ", "diseases of the eye and adnexa"),
    Chapter("VIII", "H60", "H95", "bệnh tai và xương chũm", "diseases of the ear"),
    Chapter("IX", "I00", "I99", "bệnh hệ tuần hoàn", "diseases of the circulatory system"),
    Chapter("X", "J00", "J99", "bệnh hệ hô hấp", "diseases of the respiratory system"),
    Chapter("XI", "K00", "K93", "bệnh hệ tiêu hóa", "diseases of the digestive system"),
    Chapter("XII", "L00", "L99", "bệnh da và mô dưới da", "diseases of the skin"),
    Chapter("XIII", "M00", "M99", "bệnh hệ cơ – xương – khớp và mô liên kết",
            "diseases of the musculoskeletal system"),
    Chapter("XIV", "N00", "N99", "bệnh hệ sinh dục – tiết niệu",
            "diseases of the genitourinary system"),
    Chapter("XV", "O00", "O99", "thai nghén, sinh đẻ và hậu sản",
            "pregnancy, childbirth and the puerperium"),
    Chapter("XVI", "P00", "P96", "bệnh lý thời kỳ chu sinh", "perinatal conditions"),
    Chapter("XVII", "Q00", "Q99", "dị tật bẩm sinh và bất thường nhiễm sắc thể",
            "congenital malformations"),
    Chapter("XVIII", "R00", "R99", "triệu chứng và dấu hiệu bất thường",
            "symptoms, signs and abnormal findings"),
    Chapter("XIX", "S00", "T98", "vết thương, ngộ độc và hậu quả của nguyên nhân bên ngoài",
            "injury, poisoning and other consequences of external causes"),
    Chapter("XX", "V01", "Y98", "nguyên nhân bên ngoài của bệnh tật và tử vong",
            "external causes of morbidity and mortality"),
    Chapter("XXI", "Z00", "Z99", "yếu tố ảnh hưởng đến sức khỏe và tiếp xúc dịch vụ y tế",
            "factors influencing health status"),
    Chapter("XXII", "U00", "U99", "mã dành cho mục đích đặc biệt", "codes for special purposes"),
)  # fmt: skip


def chapter_of(code: str) -> Chapter | None:
    return next((c for c in CHAPTERS if c.holds(code)), None)


# Diagnoses (folded words) whose chapter is beyond doubt, with the chapters they may be coded
# in and an example code for the message.
EXPECTED: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("tang huyet ap", ("IX", "XV"), "I10"),  # XV: hypertension in pregnancy (O10–O16)
    ("huyet ap cao", ("IX", "XV"), "I10"),
    ("nhoi mau co tim", ("IX",), "I21.9"),
    ("suy tim", ("IX",), "I50.9"),
    ("dot quy", ("IX",), "I64"),
    ("tai bien mach mau nao", ("IX",), "I64"),
    ("dai thao duong", ("IV", "XV"), "E11.9"),
    ("tieu duong", ("IV", "XV"), "E11.9"),
    ("roi loan lipid mau", ("IV",), "E78.5"),
    ("viem phoi", ("X", "I", "XXII"), "J18.9"),
    ("hen phe quan", ("X",), "J45.9"),
    ("benh phoi tac nghen man tinh", ("X",), "J44.9"),
    ("lao phoi", ("I",), "A15.0"),
    ("sot xuat huyet", ("I",), "A91"),
    ("ung thu", ("II",), "C80.9"),
    ("tram cam", ("V",), "F32.9"),
    ("dong kinh", ("VI",), "G40.9"),
    ("viem da day", ("XI",), "K29.7"),
    ("xo gan", ("XI",), "K74.6"),
    ("suy than", ("XIV",), "N18.9"),
    ("thoai hoa khop", ("XIII",), "M19.9"),
    ("loang xuong", ("XIII",), "M81.9"),
)


@dataclass(frozen=True)
class Mismatch:
    """A code outside every chapter its diagnosis names (Vietnamese and English)."""

    vi: str
    en: str


def mismatch(code: str | None, diagnosis: str | None) -> Mismatch | None:
    """Why ``code`` obviously does not fit ``diagnosis``, or None (unknown words: no opinion)."""
    if not code or not diagnosis:
        return None
    words = f" {' '.join(re.findall(r'[a-z0-9]+', fold(diagnosis).lower()))} "
    named = [(p, chs, ex) for p, chs, ex in EXPECTED if f" {p} " in words]
    chapter = chapter_of(code)
    if not named or chapter is None or any(chapter.number in chs for _, chs, _ in named):
        return None
    allowed = next(c for c in CHAPTERS if c.number == named[0][1][0])
    example = named[0][2]
    return Mismatch(
        f"Mã {code} thuộc {chapter.label('vi')}, không khớp với chẩn đoán “{diagnosis}” "
        f"(thường thuộc {allowed.label('vi')}, ví dụ {example}). Kiểm tra lại mã; nếu đúng là "
        "mã này, đánh dấu “Tôi đã kiểm tra, giữ mã này” rồi lưu lại.",
        f"Code {code} is in {chapter.label('en')}, which does not fit the diagnosis "
        f"“{diagnosis}” (usually {allowed.label('en')}, e.g. {example}). Check the code; if it "
        "is right, tick “I have checked, keep this code” and save again.",
    )
