"""Vietnamese demographic records with realistic errors, for evaluating the MPI.

Written apart from ``hssk.synth`` and ``tests.factories.linkage`` (no code, lists or error
model shared): its own name lists (Kinh, Ê Đê, Jrai, Khmer, Thái, foreign residents), real
wards from the ``vietnamadminunits`` data files, and registers that write the same person
differently. Each duplicate record carries the errors real registers are full of:

* a one-digit typo in the CCCD while the BHXH number agrees;
* the same CCCD with a given-name typo, a dropped letter ('Thuần' → 'Huần'), a misplaced
  space ('Thị Vân' → 'Th ịVân'), or the name in Western order with a typo;
* day and month swapped, a birth year off by one or two;
* free-text addresses in another spelling (abbreviations, no diacritics), without a
  commune code;

and hard negatives that must stay apart: twins (same parents, address, phone and birth date,
different given names), namesakes in the same ward and birth year, fathers and sons with
one name about 25 years apart.

``generate(n, seed)`` → (records as dicts of the ``hssk mpi link`` CSV columns, true person
key per record, the kind of each record). Deterministic for a seed.
"""

from __future__ import annotations

import random
import sqlite3
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

from hssk.registry.cli import COLUMNS  # the `hssk mpi link` CSV contract

# --- names ----------------------------------------------------------------------------------
_FAMILY = (
    ("Nguyễn", 31), ("Trần", 11), ("Lê", 9.5), ("Phạm", 7), ("Hoàng", 5), ("Huỳnh", 4),
    ("Phan", 4.5), ("Vũ", 3.9), ("Võ", 3), ("Đặng", 2.1), ("Bùi", 2), ("Đỗ", 1.4), ("Hồ", 1.3),
    ("Ngô", 1.3), ("Dương", 1), ("Lý", 0.5), ("Đinh", 1), ("Đào", 0.7), ("Trịnh", 0.7),
    ("Mai", 0.5), ("Cao", 0.5), ("Lương", 0.5), ("Tạ", 0.3), ("Hà", 0.6), ("Lâm", 0.5),
    ("Tô", 0.3), ("Quách", 0.2), ("Khúc", 0.1), ("Vương", 0.3), ("Triệu", 0.3), ("Thái", 0.2),
    ("La", 0.1), ("Kiều", 0.2), ("Chu", 0.2), ("Mạc", 0.1), ("Lại", 0.2), ("Phùng", 0.3),
)  # fmt: skip
_MIDDLE_M = (
    ("Văn", 40), ("Minh", 8), ("Đức", 8), ("Hữu", 6), ("Quốc", 5), ("Thanh", 5), ("Công", 4),
    ("Xuân", 3), ("Gia", 3), ("Hoàng", 3), ("Ngọc", 2), ("Trọng", 3), ("Quang", 4), ("Đình", 4),
    ("Bá", 2), ("Duy", 3), ("Tuấn", 2), ("Văn Minh", 1), ("Đức Anh", 1), ("Thành", 2),
)  # fmt: skip
_MIDDLE_F = (
    ("Thị", 55), ("Ngọc", 8), ("Thu", 5), ("Thanh", 5), ("Minh", 4), ("Kim", 4), ("Phương", 3),
    ("Hồng", 4), ("Bích", 3), ("Mai", 3), ("Thùy", 3), ("Diệu", 2), ("Hoài", 2), ("Khánh", 2),
    ("Bảo", 2), ("Thị Hồng", 1), ("Thị Thu", 1), ("Quỳnh", 2),
)  # fmt: skip
_GIVEN_M = (
    "An Anh Bảo Bình Cường Chiến Công Dũng Duy Dương Đạt Đức Giang Hải Hiếu Hiệp Hòa Hoàng Hùng "
    "Huy Hưng Khánh Khang Khoa Kiên Lâm Lộc Long Mạnh Minh Nam Nghĩa Nhân Phát Phong Phúc Quân "
    "Quang Sơn Tài Tâm Thắng Thành Thịnh Thuần Tiến Toàn Trung Tú Tuấn Tùng Việt Vinh Vũ Khôi "
    "Lực Hậu Hiển Thuận Huấn Sang Tân Hào Kiệt Đông Hợp Lợi Ninh Quý Sỹ Thái Thiện Trí Trường "
    "Tuệ Vượng Xuân Yên Hoan Chính Định Hiền Luân Nguyên Thông"
).split()
_GIVEN_F = (
    "An Anh Châu Chi Diệp Dung Duyên Giang Hà Hạnh Hằng Hiền Hoa Hồng Huệ Hương Huyền Lan Liên "
    "Linh Loan Mai Ly My Nga Ngân Ngọc Nhung Nhi Oanh Phương Quỳnh Tâm Thảo Thanh Thu Thủy Thư "
    "Trang Trinh Tuyết Uyên Vân Vy Xuân Yến Hoài Thoa Lành Lụa Mến Nhàn Phượng Sen Thắm Tươi "
    "Vui Hậu Quyên Diễm Kiều Gấm Khuê Ngà Ánh Đào Hiên"
).split()
_STREETS = (
    "Lê Lợi", "Trần Hưng Đạo", "Nguyễn Trãi", "Hai Bà Trưng", "Lý Thường Kiệt", "Phan Chu Trinh",
    "Nguyễn Du", "Quang Trung", "Bạch Đằng", "Hoàng Diệu", "Võ Thị Sáu", "Điện Biên Phủ",
    "Cách Mạng Tháng Tám", "Lê Duẩn", "Nguyễn Văn Cừ", "Phạm Văn Đồng", "Hùng Vương",
    "Trường Chinh", "Lạc Long Quân", "Âu Cơ", "Nguyễn Chí Thanh", "Tô Hiến Thành",
    "Chu Văn An", "Phan Đình Phùng", "Nguyễn Thị Minh Khai", "Lê Thánh Tông", "Trần Phú",
    "Ngô Quyền", "Đội Cấn", "Kim Mã", "Giải Phóng", "Minh Khai", "Xã Đàn", "Tôn Đức Thắng",
)  # fmt: skip
_VILLAGE_WORDS = (
    "Đông", "Tây", "Nam", "Bắc", "Thượng", "Hạ", "Trung", "Phú", "An", "Lộc", "Tân", "Mỹ",
    "Hòa", "Phước", "Thịnh", "Yên", "Lợi", "Cầu", "Chợ", "Đình",
)  # fmt: skip

# Ethnic-minority and foreign naming patterns: (family names, given names by sex, builder).
_EDE_FAMILY = "Niê Êban Mlô Byă Ksơr Adrơng Hđơk Ayun Knul Mdrang Êñuôl Buôn Yă".split(" ")
_EDE_GIVEN_M = "Bhin Sing Bloh Jôk Wang Drin Ruah Blim Jit Kriêng Thuôn Yơn Kô Khoa".split()
_EDE_GIVEN_F = "Hen Mai Ngơn Ái Lan Bla Đum Nguôn Juen Rin Hmưi Linh Yim Djuê".split()
_JRAI_FAMILY = ("Ksor", "Siu", "Rơ Mah", "Nay", "Kpă", "Rcom", "Rơ Lan", "Puih", "Rah Lan")
_JRAI_GIVEN_M = "Hlim Blum Thu Dưng Tơ Sinh Nhếch Bih Jơn Krong Hyưn Ngơr".split()
_JRAI_GIVEN_F = "Nhi Hyơn Blưn Hmlai Phang Bơr Hlơ Tuyết Dơn Kyung Yen".split()
_KHMER_FAMILY = "Thạch Danh Sơn Kim Lâm Trà Lý Châu Tăng Dương".split()
_KHMER_GIVEN = (
    "Sô Phênh", "Sa Ri", "Sóc Kha", "Sà Rươne", "Sô Phát", "Chanh Đa", "Mây", "Kol",
    "Sóc Thia", "Pha Ly", "Sa Vân", "Ny", "Chăn Thu", "Sà Phia", "Dara", "Sóc Pha",
    "Sa Rinh", "Ro Thanh",
)  # fmt: skip
_THAI_FAMILY = "Lò Lường Cầm Quàng Tòng Vì Hà Lù Điêu Mè".split()
_THAI_GIVEN_M = "Pâng Ín Xuân Kiên Bun Thoong Piếng Khăm Chiến Ọn Văn Pấng Nọi".split()
_THAI_GIVEN_F = "Ún Phóng Hươn Ánh Ỉn Ỏn Xiêng Pọm Ban Hom Ngân Chăm".split()
_FOREIGN = (
    ("John", "Michael", "Smith"), ("Anna", "Maria", "Müller"), ("David", "", "Brown"),
    ("Emma", "Louise", "Wilson"), ("Pierre", "", "Dubois"), ("Lukas", "", "Schneider"),
    ("Sarah", "Jane", "Taylor"), ("Olga", "", "Ivanova"), ("James", "Robert", "Johnson"),
    ("Marie", "Claire", "Martin"), ("Hiroshi", "", "Tanaka"), ("Min Jun", "", "Kim"),
    ("Ji Woo", "", "Park"), ("Wei", "", "Wang"), ("Li Na", "", "Zhang"), ("Somchai", "", "Srisuk"),
    ("Peter", "", "Jensen"), ("Thomas", "", "Andersson"), ("Carlos", "", "Garcia"),
    ("Yuki", "", "Sato"), ("Ahmad", "", "Rahman"), ("Sophie", "", "Laurent"),
)  # fmt: skip
_FOREIGN_SEX = {"Anna", "Emma", "Sarah", "Olga", "Marie", "Ji Woo", "Li Na", "Yuki", "Sophie"}

# provinces (pre-2025 codes) and which naming pattern their minority residents follow
_PROVINCES = (
    ("01", "kinh", 30), ("79", "kinh", 30), ("40", "kinh", 10), ("31", "kinh", 6),
    ("66", "ede", 8), ("64", "jrai", 6), ("94", "khmer", 6), ("14", "thai", 6),
)  # fmt: skip
_MINORITY_SHARE = 0.5  # in the four provinces with a minority pattern


def _pick(rng: random.Random, weighted: tuple[tuple[str, float], ...]) -> str:
    return rng.choices([w for w, _ in weighted], [p for _, p in weighted])[0]


@dataclass(frozen=True)
class Ward:
    code: str  # pre-2025 commune code
    province_code: str
    ward: str  # 'Phường Phúc Xá'
    district: str  # 'Quận Ba Đình'
    province: str  # 'Thành phố Hà Nội'
    urban: bool


@lru_cache(maxsize=1)
def _wards() -> dict[str, list[Ward]]:
    import vietnamadminunits

    db = Path(vietnamadminunits.__file__).parent / "data" / "dataset.db"
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT wardCode, provinceCode, ward, district, province, wardType"
            " FROM admin_units_legacy WHERE wardCode IS NOT NULL"
        ).fetchall()
    out: dict[str, list[Ward]] = {}
    for code, prov, ward, district, province, kind in rows:
        out.setdefault(prov, []).append(
            Ward(code, prov, ward, district, province, kind in ("Phường", "Thị trấn"))
        )
    for lst in out.values():
        lst.sort(key=lambda w: w.code)
    return out


# --- persons -------------------------------------------------------------------------------
@dataclass
class Person:
    key: str
    family: str
    middle: str  # may be empty
    given: str  # may be several syllables (Khmer, Ê Đê)
    sex: str  # 'M' | 'F'
    birth: date
    ward: Ward
    house: str  # '12', '12A'
    lane: str  # 'ngõ 34', 'hẻm 5', 'ngách 12/3' or ''
    street: str  # street name or ''
    hamlet: str  # 'Tổ 5', 'Thôn Đông', 'Buôn Ko Tam' or ''
    cccd: str | None
    bhxh: str | None
    phone: str | None
    passport: str | None = None
    western: bool = False  # foreign resident: given names first
    kind: str = "kinh"
    names_written: list[str] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        if self.western:
            return " ".join(w for w in (self.given, self.middle, self.family) if w)
        return " ".join(w for w in (self.family, self.middle, self.given) if w)


def _digits(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("0123456789") for _ in range(n))


def make_cccd(rng: random.Random, province: str, birth: date, sex: str) -> str:
    """A structurally valid CCCD: birth province, century and sex digit, year, 6 digits."""
    century = 0 if birth.year < 2000 else 2
    return f"0{province}{century + (1 if sex == 'F' else 0)}{birth.year % 100:02d}{_digits(rng, 6)}"


def _phone(rng: random.Random) -> str:
    return rng.choice(("09", "03", "07", "08")) + rng.choice("123456789") + _digits(rng, 7)


def _birth(rng: random.Random, lo: int = 1935, hi: int = 2022) -> date:
    start = date(lo, 1, 1)
    return start + timedelta(days=rng.randrange((date(hi, 12, 31) - start).days))


def _name(rng: random.Random, kind: str, sex: str) -> tuple[str, str, str, bool]:
    """(family, middle, given, western order)."""
    f = sex == "F"
    if kind == "ede":
        given = rng.choice(_EDE_GIVEN_F if f else _EDE_GIVEN_M)
        # Ê Đê names: 'Y' (men) or 'H'' (women) before the given name, the family name last
        return rng.choice(_EDE_FAMILY), "", ("H'" if f else "Y ") + given, True
    if kind == "jrai":
        given = rng.choice(_JRAI_GIVEN_F if f else _JRAI_GIVEN_M)
        return rng.choice(_JRAI_FAMILY), ("H'" if f and rng.random() < 0.5 else ""), given, False
    if kind == "khmer":
        middle = "Thị" if f and rng.random() < 0.6 else ""
        return rng.choice(_KHMER_FAMILY), middle, rng.choice(_KHMER_GIVEN), False
    if kind == "thai":
        given = rng.choice(_THAI_GIVEN_F if f else _THAI_GIVEN_M)
        return rng.choice(_THAI_FAMILY), ("Thị" if f else "Văn"), given, False
    if kind == "foreign":
        choices = [x for x in _FOREIGN if (x[0] in _FOREIGN_SEX) == f]
        g, m, fam = rng.choice(choices)
        return fam, m, g, True
    middle = _pick(rng, _MIDDLE_F if f else _MIDDLE_M)
    return _pick(rng, _FAMILY), middle, rng.choice(_GIVEN_F if f else _GIVEN_M), False


def _place(rng: random.Random, ward: Ward) -> tuple[str, str, str, str]:
    """(house, lane, street, hamlet) of an address in ``ward``."""
    house = str(rng.randint(1, 250)) + (rng.choice("ABC") if rng.random() < 0.05 else "")
    if ward.urban:
        lane = ""
        r = rng.random()
        if r < 0.35:
            lane = (
                f"hẻm {rng.randint(1, 400)}"
                if ward.province_code == "79"
                else f"ngõ {rng.randint(1, 300)}"
            )
            if rng.random() < 0.3:
                lane = f"ngách {rng.randint(1, 60)}/{lane.split(' ')[1]}"
        hamlet = f"Tổ {rng.randint(1, 40)}" if rng.random() < 0.3 else ""
        return house, lane, rng.choice(_STREETS), hamlet
    word = rng.choice(("Thôn", "Xóm", "Ấp", "Buôn", "Bản"))
    name = rng.choice(_VILLAGE_WORDS) if rng.random() < 0.6 else str(rng.randint(1, 12))
    return house if rng.random() < 0.3 else "", "", "", f"{word} {name}"


def new_person(rng: random.Random, key: str) -> Person:
    prov, default_kind = _pick_province(rng)
    kind = default_kind if default_kind != "kinh" and rng.random() < _MINORITY_SHARE else "kinh"
    if kind == "kinh" and prov in ("01", "79") and rng.random() < 0.04:
        kind = "foreign"
    sex = rng.choice("MF")
    birth = _birth(rng)
    family, middle, given, western = _name(rng, kind, sex)
    ward = rng.choice(_wards()[prov])
    house, lane, street, hamlet = _place(rng, ward)
    adult = birth.year <= 2010
    cccd = None
    passport = None
    if kind == "foreign":
        passport = rng.choice("BCNP") + _digits(rng, 7)
    elif rng.random() < (0.92 if adult else 0.55):
        cccd = make_cccd(rng, prov, birth, sex)
    bhxh = prov + _digits(rng, 8) if rng.random() < 0.85 else None
    phone = _phone(rng) if rng.random() < (0.8 if adult else 0.4) else None
    return Person(
        key, family, middle, given, sex, birth, ward, house, lane, street, hamlet,
        cccd, bhxh, phone, passport, western, kind,
    )  # fmt: skip


def _pick_province(rng: random.Random) -> tuple[str, str]:
    code = rng.choices([p[0] for p in _PROVINCES], [p[2] for p in _PROVINCES])[0]
    return code, next(p[1] for p in _PROVINCES if p[0] == code)


# --- hard negatives ------------------------------------------------------------------------
def twin_of(rng: random.Random, p: Person, key: str) -> Person:
    """Same parents, address, phone and birth date; another given name (often close)."""
    sex = rng.choice("MF")
    pool = _GIVEN_F if sex == "F" else _GIVEN_M
    if p.kind != "kinh":
        given = _name(rng, p.kind, sex)[2]
    else:
        close = [g for g in pool if g != p.given and g[:1] == p.given[:1]]
        given = rng.choice(close) if close and rng.random() < 0.5 else rng.choice(pool)
    if _fold(given) == _fold(p.given):
        given = rng.choice([g for g in pool if _fold(g) != _fold(p.given)])
    prov = p.ward.province_code
    return replace(
        p,
        key=key,
        given=given,
        sex=sex,
        cccd=make_cccd(rng, prov, p.birth, sex) if p.cccd else None,
        bhxh=prov + _digits(rng, 8) if p.bhxh else None,
        passport=None if p.passport is None else rng.choice("BCNP") + _digits(rng, 7),
        names_written=[],
    )


def namesake_of(rng: random.Random, p: Person, key: str) -> Person:
    """Same full name, same ward and birth year, another date, another house and ids."""
    birth = date(p.birth.year, 1, 1) + timedelta(days=rng.randrange(365))
    while birth == p.birth:
        birth = date(p.birth.year, 1, 1) + timedelta(days=rng.randrange(365))
    house, lane, street, hamlet = _place(rng, p.ward)
    prov = p.ward.province_code
    return replace(
        p,
        key=key,
        birth=birth,
        house=house,
        lane=lane,
        street=street,
        hamlet=hamlet,
        cccd=make_cccd(rng, prov, birth, p.sex) if p.cccd else None,
        bhxh=prov + _digits(rng, 8) if p.bhxh else None,
        phone=_phone(rng) if p.phone else None,
        passport=None if p.passport is None else rng.choice("BCNP") + _digits(rng, 7),
        names_written=[],
    )


def son_of(rng: random.Random, father: Person, key: str) -> Person:
    """The father's full name, 20–32 years younger, same household (address and phone)."""
    birth = _birth(rng, father.birth.year + 20, min(father.birth.year + 32, 2022))
    prov = father.ward.province_code
    return replace(
        father,
        key=key,
        sex="M",
        birth=birth,
        cccd=make_cccd(rng, prov, birth, "M") if rng.random() < 0.8 else None,
        bhxh=prov + _digits(rng, 8) if rng.random() < 0.85 else None,
        passport=None,
        names_written=[],
    )


# --- writing a person as a register would --------------------------------------------------
def _fold(text: str) -> str:
    out = unicodedata.normalize("NFD", text)
    out = "".join(c for c in out if not unicodedata.combining(c))
    return out.replace("đ", "d").replace("Đ", "D")


_ABBREV = {
    "Phường": ("P.", "P ", "phường ", "F."),
    "Xã": ("X.", "xã ", "Xa "),
    "Thị trấn": ("TT.", "thị trấn "),
    "Quận": ("Q.", "Q ", "quận "),
    "Huyện": ("H.", "huyện "),
    "Thị xã": ("TX.", "thị xã "),
    "Thành phố": ("TP.", "Tp ", "TP "),
    "Tỉnh": ("T.", "tỉnh ", ""),
}


def _unit(rng: random.Random, name: str, style: int) -> str:
    """'Phường Phúc Xá' as 'Phường Phúc Xá', 'P. Phúc Xá', 'Phúc Xá'."""
    for prefix, short in _ABBREV.items():
        if name.startswith(prefix + " "):
            rest = name[len(prefix) + 1 :]
            if style == 0:
                return name
            if style == 1:
                short_form = rng.choice(short).strip()
                sep = "" if short_form.endswith(".") and rng.random() < 0.5 else " "
                return (short_form + sep + rest).strip()
            return rest
    return name


def address_text(rng: random.Random, p: Person, *, variant: bool) -> str:
    """The address as a clerk writes it: formal, or with abbreviations and without diacritics."""
    style = rng.choice((1, 1, 2)) if variant else 0
    parts: list[str] = []
    if p.street:
        lane = p.lane
        if variant and lane and rng.random() < 0.4:  # '12/34 Lê Lợi' for 'số 12 ngõ 34'
            parts.append(f"{p.house}/{lane.split(' ')[-1]} {p.street}")
        else:
            head = (
                f"Số {p.house}"
                if not variant or rng.random() < 0.5
                else (f"số nhà {p.house}" if rng.random() < 0.5 else p.house)
            )
            parts.append(" ".join(x for x in (head, lane) if x))
            road = (
                "đường " if not variant or rng.random() < 0.5 else rng.choice(("Đ. ", "", "phố "))
            ) + p.street
            parts.append(road)
        if p.hamlet and (not variant or rng.random() < 0.5):
            parts.append(p.hamlet.lower() if variant else p.hamlet)
    else:
        if p.house and (not variant or rng.random() < 0.6):
            parts.append(f"Số {p.house}" if not variant else p.house)
        parts.append(p.hamlet)
    parts.append(_unit(rng, p.ward.ward, style))
    if not variant or rng.random() < 0.8:
        parts.append(_unit(rng, p.ward.district, style))
    parts.append(_unit(rng, p.ward.province, style))
    text = ", ".join(x for x in parts if x)
    if variant and rng.random() < 0.35:
        text = _fold(text)
    if variant and rng.random() < 0.2:
        text = text.upper()
    if variant and rng.random() < 0.2:
        text = text.replace(", ", " - ")
    return text


def _date_text(rng: random.Random, d: date, precision: str = "D") -> str:
    if precision == "Y":
        return str(d.year)
    if precision == "M":
        return f"{d.year}-{d.month:02d}"
    return rng.choice((d.isoformat(), f"{d.day:02d}/{d.month:02d}/{d.year}", d.strftime("%Y%m%d")))


# --- errors --------------------------------------------------------------------------------
ERROR_KINDS = (
    "cccd_typo",  # one digit wrong or two swapped; BHXH present and agreeing
    "given_typo",  # one letter of the given name replaced
    "dropped_letter",  # first (or another) letter of the given name dropped: Thuần → Huần
    "misplaced_space",  # Thị Vân → Th ịVân
    "reorder_typo",  # Western order and one letter wrong
    "day_month_swap",
    "year_off",  # ±1 or ±2 years, everything else equal
    "address_variant",  # free-text address in another spelling, no commune code
)
_ERROR_WEIGHTS = (1.0, 1.0, 0.8, 0.6, 0.6, 0.8, 0.9, 2.0)
_TYPO_LETTERS = "aăâeêioôơuưydđnmhtgclrsvkpqx"


def _typo_word(rng: random.Random, word: str) -> str:
    letters = list(word)
    if len(letters) < 2:
        return word + rng.choice("hn")
    i = rng.randrange(1, len(letters))
    choices = [c for c in _TYPO_LETTERS if c != letters[i].lower()]
    letters[i] = rng.choice(choices)
    return "".join(letters)


def _typo_cccd(rng: random.Random, cccd: str) -> str:
    d = list(cccd)
    if rng.random() < 0.3:  # two neighbouring digits swapped
        i = rng.randrange(6, 11)
        if d[i] != d[i + 1]:
            d[i], d[i + 1] = d[i + 1], d[i]
            return "".join(d)
    i = rng.randrange(6, 12)  # a digit of the serial part (the first six carry meaning)
    d[i] = rng.choice([c for c in "0123456789" if c != d[i]])
    return "".join(d)


def apply_error(rng: random.Random, kind: str, rec: dict[str, str | None], p: Person) -> bool:
    """Apply one error kind to a written record; False when it does not apply to the person."""
    name = rec["full_name"] or p.full_name
    words = name.split(" ")
    given_words = p.given.split(" ")
    if kind == "cccd_typo":
        if not p.cccd or not p.bhxh:
            return False
        rec["cccd"] = _typo_cccd(rng, p.cccd)
        rec["bhxh"] = p.bhxh
        return True
    if kind in ("given_typo", "dropped_letter", "misplaced_space", "reorder_typo"):
        if p.western or p.kind != "kinh":
            return False
        if p.cccd:
            rec["cccd"] = p.cccd  # the same CCCD on both records
        given = p.given
        if kind == "given_typo":
            new = _typo_word(rng, given)
            rec["full_name"] = " ".join([*words[:-1], new])
        elif kind == "dropped_letter":
            if len(given) < 3:
                return False
            i = 0 if rng.random() < 0.6 else rng.randrange(1, len(given))
            rec["full_name"] = " ".join([*words[:-1], given[:i] + given[i + 1 :]])
        elif kind == "misplaced_space":
            if len(words) < 3 or len(words[-2]) < 2:
                return False
            head = " ".join(words[:-2])
            mid, last = words[-2], words[-1]
            rec["full_name"] = f"{head} {mid[:-1]} {mid[-1]}{last}"  # Thị Vân → Th ịVân
        else:
            i = rng.randrange(len(words))
            typo = list(words)
            typo[i] = _typo_word(rng, typo[i])
            rec["full_name"] = " ".join(typo[1:] + typo[:1])  # Vân Nguyễn Thị (with a typo)
        del given_words
        return True
    if kind == "day_month_swap":
        b = p.birth
        if b.day > 12 or b.day == b.month:
            return False
        rec["birth_date"] = _date_text(rng, date(b.year, b.day, b.month))
        return True
    if kind == "year_off":
        b = p.birth
        delta = rng.choice((-2, -1, 1, 2))
        try:
            moved = b.replace(year=b.year + delta)
        except ValueError:
            return False
        if moved.year > 2024:
            return False
        rec["birth_date"] = _date_text(rng, moved)
        return True
    if kind == "address_variant":
        rec["address"] = address_text(rng, p, variant=True)
        rec["commune_code"] = None
        return True
    raise ValueError(kind)


# --- registers -----------------------------------------------------------------------------
# source: (name without diacritics, upper case, birth year only, cccd, bhxh, phone, commune code)
SOURCES = {
    "dancu": (0.0, 0.0, 0.0, 0.97, 0.2, 0.5, 0.95),
    "bhyt": (0.05, 0.3, 0.06, 0.55, 0.98, 0.3, 0.0),
    "benhvien": (0.3, 0.3, 0.03, 0.5, 0.6, 0.6, 0.0),
    "tiemchung": (0.1, 0.1, 0.02, 0.3, 0.2, 0.85, 0.5),
}


def write_record(
    rng: random.Random, p: Person, source: str, rid: str, *, carry_ids: bool = False
) -> dict[str, str | None]:
    """One register's record of ``p`` (its habits: diacritics, case, which fields it keeps)."""
    no_diac, upper, year_only, has_cccd, has_bhxh, has_phone, has_code = SOURCES[source]
    name = p.full_name
    if p.western and rng.random() < 0.5:
        name = " ".join(w for w in (p.family, p.given, p.middle) if w)  # passport order
    if rng.random() < no_diac:
        name = _fold(name)
    if rng.random() < upper:
        name = name.upper()
    precision = "Y" if rng.random() < year_only else "D"
    doc = p.passport or p.cccd
    bhyt = None
    bhxh = p.bhxh if p.bhxh and (carry_ids or rng.random() < has_bhxh) else None
    if bhxh and source in ("bhyt", "benhvien") and rng.random() < 0.5:
        bhyt = rng.choice(("GD4", "DN4", "HT3", "TE1", "HN2", "CN3")) + bhxh[:2] + bhxh
        bhxh = None if rng.random() < 0.5 else bhxh
    return {
        "record_id": rid,
        "full_name": name,
        "birth_date": _date_text(rng, p.birth, precision),
        "sex": rng.choice(("M", "Nam")) if p.sex == "M" else rng.choice(("F", "Nữ")),
        "cccd": doc if doc and (carry_ids or rng.random() < has_cccd) else None,
        "bhxh": bhxh,
        "bhyt": bhyt,
        "phone": p.phone if p.phone and rng.random() < has_phone else None,
        "address": address_text(rng, p, variant=source != "dancu" and rng.random() < 0.5),
        "commune_code": p.ward.code if rng.random() < has_code else None,
    }


@dataclass
class Dataset:
    records: list[dict[str, str | None]]
    truth: list[str]  # person key per record
    kinds: list[str]  # 'clean' | the error kinds applied, joined by '+'
    roles: list[str]  # '' | 'twin' | 'namesake' | 'father_son' (the person's hard negative)
    persons: int


def generate(n_records: int = 40_000, seed: int = 7) -> Dataset:
    """About ``n_records`` records (2.0 per person on average) with errors and hard negatives."""
    rng = random.Random(seed)
    persons: list[Person] = []
    roles: dict[str, str] = {}
    target_persons = max(4, n_records // 2)
    while len(persons) < target_persons:
        key = f"P{len(persons):07d}"
        p = new_person(rng, key)
        persons.append(p)
        r = rng.random()
        if r < 0.015:
            twin = twin_of(rng, p, f"P{len(persons):07d}")
            persons.append(twin)
            roles[p.key] = roles[twin.key] = "twin"
        elif r < 0.035:
            ns = namesake_of(rng, p, f"P{len(persons):07d}")
            persons.append(ns)
            roles[p.key] = roles[ns.key] = "namesake"
        elif r < 0.06 and p.sex == "M" and p.birth.year <= 1985 and p.kind != "foreign":
            son = son_of(rng, p, f"P{len(persons):07d}")
            persons.append(son)
            roles[p.key] = roles[son.key] = "father_son"
    records: list[dict[str, str | None]] = []
    truth: list[str] = []
    kinds: list[str] = []
    rec_roles: list[str] = []
    sources = list(SOURCES)
    for p in persons:
        k = rng.choices((1, 2, 3, 4), (0.3, 0.42, 0.2, 0.08))[0]
        role = roles.get(p.key)
        for j in range(k):
            src = rng.choice(sources)
            rec = write_record(rng, p, src, f"{src}-{p.key}-{j}", carry_ids=j == 0)
            applied: list[str] = []
            if j > 0:
                n_err = rng.choices((0, 1, 2), (0.3, 0.55, 0.15))[0]
                for kind in rng.choices(ERROR_KINDS, _ERROR_WEIGHTS, k=n_err):
                    if kind not in applied and apply_error(rng, kind, rec, p):
                        applied.append(kind)
            records.append(rec)
            truth.append(p.key)
            kinds.append("+".join(applied) or "clean")
            rec_roles.append(role or "")
    order = list(range(len(records)))
    rng.shuffle(order)
    return Dataset(
        [records[i] for i in order],
        [truth[i] for i in order],
        [kinds[i] for i in order],
        [rec_roles[i] for i in order],
        len(persons),
    )


def write_csv(data: Dataset, path: Path) -> None:
    """The records as the ``hssk mpi link`` input CSV."""
    import csv

    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(data.records)
