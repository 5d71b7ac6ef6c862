"""Normalization of Vietnamese demographics: names, birth dates, sex, phones.

Every function is total: any input (``None``, arbitrary Unicode, junk) gives a value or
``None``, never an exception, and applying a normalizer to its own output changes nothing.
Keys used for matching are folded (no diacritics, đ→d, lower case, single spaces); the
original text is always kept beside them by the caller.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from pathlib import Path

from rapidfuzz.distance import OSA

from hssk.kernel import clock
from hssk.kernel.text import fold

# Combining marks of Vietnamese: tones (grave, acute, hook, tilde, dot below) and the
# vowel-quality marks (circumflex, breve, horn).
_TONES = {"\u0300": "f", "\u0301": "s", "\u0309": "r", "\u0303": "x", "\u0323": "j"}
_TONE_BY_LETTER = {v: k for k, v in _TONES.items()}
_QUALITY = {"\u0302", "\u0306", "\u031b"}
_VOWELS = set("aeiouyăâêôơư")
_SPACES = re.compile(r"\s+")
_NOT_NAME = re.compile(r"[^\w\s'-]|[\d_]")

# Family names common enough to detect a name written in Western order ("An Nguyễn Văn").
FAMILY_KEYS = frozenset(
    "nguyen tran le pham hoang huynh phan vu vo dang bui do ho ngo duong ly dinh dao doan "
    "trinh truong lam luong ha cao kieu chu ta quach luu tong hua trieu kim thai ong au "
    "khuc nghiem tang giang mac lai phung vuong".split()
)


def clean_spaces(text: str) -> str:
    """Collapse runs of whitespace (incl. non-breaking, tabs) to single spaces and trim."""
    return _SPACES.sub(" ", text).strip()


# --- Telex / VNI remnants ------------------------------------------------------------------
# A Vietnamese syllable never ends in s/f/r/x/j, never contains w, dd, aa, ee or (in names) oo,
# and never contains digits: such letters are keyboard-method remnants ("Nguyeenx Vawn Ans",
# "Nguye64n"). For keys they only need to be dropped, since keys carry no diacritics.
_TELEX_TONE_END = re.compile(r"(?<=[aeiouycghmnpt])[sfrxj]$")
_TELEX_DOUBLE = re.compile(r"(aa|ee|oo|dd)")
_TELEX_W = re.compile(r"(?<=[aou])w|w(?=[aou])")
_WORD = re.compile(r"[^\W_]+")


def _repair_word_key(word: str) -> str:
    if any(c.isdigit() for c in word):
        word = "".join(c for c in word if not c.isdigit())  # VNI: 'nguye64n' → 'nguyen'
    if "w" in word:
        word = _TELEX_W.sub("", word)
    word = _TELEX_DOUBLE.sub(lambda m: m.group(1)[0], word)
    # A tone letter is stripped only from words of 3+ letters with a vowel before the end.
    if len(word) >= 3 and any(c in "aeiouy" for c in word[:-1]):
        word = _TELEX_TONE_END.sub("", word)
    return word


@lru_cache(maxsize=262_144)  # names repeat: a register has far fewer names than records
def name_key(text: str | None) -> str | None:
    """Matching key of a name: folded, lower case, single spaces, keyboard remnants removed.

    'Nguyễn Thị Hoà', 'NGUYEN THI HOA', 'Nguyeenx Thij Hoaf', 'Nguye64n Thi5 Hoa2' → 'nguyen thi
    hoa'. Words that are only digits are dropped.
    """
    if not text:
        return None
    t = fold(unicodedata.normalize("NFC", str(text))).lower()
    words = []
    for w in _WORD.findall(t):
        for _ in range(8):  # repair to a fixed point so the key is idempotent
            r = _repair_word_key(w)
            if r == w:
                break
            w = r
        if w:
            words.append(w)
    return " ".join(words) or None


# --- display form and tone placement ---------------------------------------------------------
def _syllable_tone_index(letters: list[str]) -> int | None:
    """Index of the vowel that carries the tone, old ('classic') style: hòa, thủy, hoàng."""
    low = [c.lower() for c in letters]
    vowel_idx = [i for i, c in enumerate(low) if c in _VOWELS]
    if not vowel_idx:
        return None
    # 'qu' and 'gi' initials: the u / i belongs to the consonant when another vowel follows.
    if len(vowel_idx) > 1 and (
        (low[0] == "q" and vowel_idx[0] == 1) or (low[:2] == ["g", "i"] and vowel_idx[0] == 1)
    ):
        vowel_idx = vowel_idx[1:]
    for i in vowel_idx:
        if low[i] in "ăâêôơ":
            return i
    for i in reversed(vowel_idx):  # 'ư' alone (ưu → on ư); 'ươ' handled by ơ above
        if low[i] == "ư":
            return i
    if len(vowel_idx) == 1:
        return vowel_idx[0]
    last = vowel_idx[-1]
    if last < len(low) - 1:  # a final consonant follows: tone on the last vowel (hoàng, tuấn)
        return last
    if len(vowel_idx) >= 3:
        return vowel_idx[1]
    return vowel_idx[0]


def _place_tone(word: str) -> str:
    """Re-place the tone mark of one syllable by a single rule (hoà → hòa, thuỷ → thủy)."""
    decomposed = unicodedata.normalize("NFD", word)
    letters: list[str] = []
    tone: str | None = None
    for ch in decomposed:
        if ch in _TONES:
            tone = ch
        elif unicodedata.combining(ch) and letters:
            letters[-1] += ch
        else:
            letters.append(ch)
    if tone is None:
        return unicodedata.normalize("NFC", word)
    base = [unicodedata.normalize("NFC", g) for g in letters]
    idx = _syllable_tone_index(base)
    if idx is None:
        return unicodedata.normalize("NFC", word)
    base[idx] = unicodedata.normalize("NFC", unicodedata.normalize("NFD", base[idx]) + tone)
    return unicodedata.normalize("NFC", "".join(base))


def _cap(word: str) -> str:
    """Upper-case the first letter only when that keeps one character ('ß' stays 'ß')."""
    up = word[:1].upper()
    return (up if len(up) == 1 else word[:1]) + word[1:]


@lru_cache(maxsize=262_144)
def display_name(text: str | None) -> str | None:
    """Canonical display form: NFC, single spaces, title case, one tone-placement style.

    'nguyễn  thị HOÀ' → 'Nguyễn Thị Hòa'. Letters are kept (unlike keys); digits and symbols
    are dropped because they are never part of a person's name.
    """
    if not text:
        return None
    t = unicodedata.normalize("NFC", str(text))
    t = clean_spaces(_NOT_NAME.sub(" ", re.sub(r"\d", "", t)))
    words = [w for w in t.split(" ") if w and any(c.isalpha() for c in w)]
    words = [_place_tone(w.lower()) for w in words]
    words = [_cap(w) for w in words]
    out = unicodedata.normalize("NFC", " ".join(words))
    return out or None


@lru_cache(maxsize=1)
def known_given_keys() -> frozenset[str]:
    """Folded given names of the name lists (data/, from duyet/vietnamese-namedb, MIT)."""
    data = Path(__file__).parent / "data"
    out: set[str] = set()
    for fname in (
        "uit_given_name_freq.csv",
        "duyet_boy_given_names.txt",
        "duyet_girl_given_names.txt",
    ):
        for line in (data / fname).read_text("utf-8").splitlines()[1:]:
            word = fold(line.split(",")[0].strip()).lower().split(" ")[-1]
            if word.isalpha():
                out.add(word)
    return frozenset(out)


def _family_like(word: str) -> bool:
    """A family name, or a typing error of Nguyễn ('nguyyen'): never rotated to the end."""
    # Only 'nguyen' (38% of the population, most family-name typos) is matched loosely: other
    # family names are one letter from common given names (Đinh/Minh, Trương/Trung).
    return word in FAMILY_KEYS or (len(word) >= 5 and OSA.distance(word, "nguyen") <= 1)


# Names given to a newborn before it has one: "Con bà Phạm Thị Lan", "CB Lan", "Bé gái".
_PLACEHOLDER = re.compile(r"^(con (ba|cua|me|chi|co)|cb|be( trai| gai)?|so sinh|tre so sinh)( |$)")


def is_placeholder_name(key: str | None) -> bool:
    """True for a newborn's placeholder name (folded key), which says nothing about the child."""
    return bool(key) and bool(_PLACEHOLDER.match(key or ""))


@dataclass(frozen=True)
class NameParts:
    """Folded keys of a name as written: family (first word), middle, given (last word), and
    ``sorted`` (the words in alphabetical order) which matches order variants."""

    key: str | None
    family: str | None
    middle: str | None
    given: str | None
    sorted: str | None = None
    western_order: bool = False  # looks like 'Văn An Nguyễn' (a family name last, not first)


@lru_cache(maxsize=262_144)
def split_name(text: str | None) -> NameParts:
    """Split a name into folded family / middle / given keys.

    The written order is kept: guessing which word is the family name fails on typing errors
    ('Tần Văn Hoàng' would turn into 'Hoàng Tần Văn'), so order variants ('Văn An Nguyễn',
    'An Nguyễn Văn') are matched through ``sorted`` instead, and only flagged here.
    """
    key = name_key(text)
    if not key or is_placeholder_name(key):
        return NameParts(None, None, None, None)
    words = key.split(" ")
    ordered = " ".join(sorted(words))
    western = len(words) >= 2 and not _family_like(words[0]) and words[-1] in FAMILY_KEYS
    if len(words) == 1:
        return NameParts(key, None, None, words[0], ordered, western)
    middle = " ".join(words[1:-1]) or None
    return NameParts(key, words[0], middle, words[-1], ordered, western)


# --- birth dates --------------------------------------------------------------------------
@dataclass(frozen=True)
class BirthDate:
    """A birth date with its precision: D (full date), M (year and month), Y (year only)."""

    value: date
    precision: str

    @property
    def text(self) -> str:
        iso = self.value.isoformat()
        return {"Y": iso[:4], "M": iso[:7]}.get(self.precision, iso)


_DATE_PATTERNS = (
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:[T ].*)?$"), "ymd"),
    (re.compile(r"^(\d{4})(\d{2})(\d{2})(?:\d{4})?$"), "ymd"),  # QĐ 130: yyyymmdd[hhmm]
    (re.compile(r"^(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})$"), "dmy"),  # Vietnamese dd/mm/yyyy
    (re.compile(r"^(\d{4})[-/](\d{1,2})$"), "ym"),
    (re.compile(r"^(\d{1,2})[/.\-](\d{4})$"), "my"),
    (re.compile(r"^(\d{4})$"), "y"),
)


def parse_birth_date(text: object, *, today: date | None = None) -> BirthDate | None:
    """Parse 'YYYY-MM-DD' | 'YYYY-MM' | 'YYYY' | 'dd/mm/yyyy' | 'yyyymmdd'; None if invalid.

    A date in the future or before 1880 is invalid (a typing error, not a birth).
    """
    if text is None:
        return None
    if isinstance(text, date):
        return BirthDate(text, "D")
    return _parse_date(str(text), today or clock.today())


@lru_cache(maxsize=131_072)  # birth dates repeat: a register has far fewer dates than records
def _parse_date(text: str, limit: date) -> BirthDate | None:
    s = clean_spaces(unicodedata.normalize("NFKC", text))
    for pattern, kind in _DATE_PATTERNS:
        m = pattern.match(s)
        if not m:
            continue
        g = [int(x) for x in m.groups()]
        if kind == "ymd":
            y, mo, d, prec = g[0], g[1], g[2], "D"
        elif kind == "dmy":
            d, mo, y, prec = g[0], g[1], g[2], "D"
        elif kind == "ym":
            y, mo, d, prec = g[0], g[1], 1, "M"
        elif kind == "my":
            mo, y, d, prec = g[0], g[1], 1, "M"
        else:
            y, mo, d, prec = g[0], 1, 1, "Y"
        try:
            value = date(y, mo, d)
        except ValueError:
            return None
        if value.year < 1880 or value > limit:
            return None
        return BirthDate(value, prec)
    return None


def date_digits(text: object) -> str | None:
    """The eight digits yyyymmdd of a full date as written, valid or not ('19505309',
    '31/02/1990' → '19900231'): a date that a typing error made impossible still says which
    date was meant."""
    if text is None:
        return None
    s = clean_spaces(unicodedata.normalize("NFKC", str(text)))
    for pattern, kind in _DATE_PATTERNS[:3]:  # the full-date forms
        m = pattern.match(s)
        if m:
            y, mo, d = (int(x) for x in m.groups())
            if kind == "dmy":
                y, d = d, y
            return f"{y:04d}{mo:02d}{d:02d}" if 1000 <= y <= 9999 and mo < 100 and d < 100 else None
    return None


# --- sex ------------------------------------------------------------------------------------
_SEX = {
    "m": "M", "male": "M", "nam": "M", "1": "M", "trai": "M",
    "f": "F", "female": "F", "nu": "F", "2": "F", "gai": "F",
    "u": "U", "unknown": "U", "3": "U", "other": "U", "khac": "U", "0": "U",
}  # fmt: skip


def normalize_sex(value: object) -> str | None:
    """'M' | 'F' | 'U' from M/F, Nam/Nữ, male/female, QĐ 130 codes 1/2/3; None if empty."""
    if value is None:
        return None
    return _sex(str(value))


@lru_cache(maxsize=1024)
def _sex(value: str) -> str | None:
    k = fold(clean_spaces(value)).lower()
    if not k:
        return None
    return _SEX.get(k, "U")


# --- phones ---------------------------------------------------------------------------------
# 2018 conversion of 11-digit mobile numbers to 10 digits (MIC): old prefix → new prefix.
OLD_MOBILE_PREFIXES = {
    # Viettel
    "0162": "032", "0163": "033", "0164": "034", "0165": "035", "0166": "036",
    "0167": "037", "0168": "038", "0169": "039",
    # MobiFone
    "0120": "070", "0121": "079", "0122": "077", "0126": "076", "0128": "078",
    # VinaPhone
    "0123": "083", "0124": "084", "0125": "085", "0127": "081", "0129": "082",
    # Vietnamobile
    "0186": "056", "0188": "058",
    # Gmobile
    "0199": "059",
}  # fmt: skip


def normalize_phone(value: object) -> str | None:
    """National 10-digit form '0xxxxxxxxx' from +84 / 0084 / 84 / 0 forms; old 11-digit
    mobile numbers are mapped to their 2018 prefixes. None when not a plausible number."""
    if value is None:
        return None
    digits = "".join(c for c in unicodedata.normalize("NFKC", str(value)) if c.isdigit())
    if not digits.isascii():
        return None
    if digits.startswith("0084"):
        digits = "0" + digits[4:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    elif not digits.startswith("0") and len(digits) in (9, 10):
        digits = "0" + digits
    if len(digits) == 11 and digits[:4] in OLD_MOBILE_PREFIXES:
        digits = OLD_MOBILE_PREFIXES[digits[:4]] + digits[4:]
    if len(digits) == 11 and digits.startswith("02"):
        return digits  # landline with 3-digit area code (02x + 8 digits)
    if len(digits) != 10 or not digits.startswith("0"):
        return None
    return digits
