"""Free-text Vietnamese addresses as comparable tokens.

'Số 12 ngõ 34, đường Lê Lợi, P. Phúc Xá, Q. Ba Đình, TP Hà Nội', 'so 12/34 Le Loi - Phuc Xa -
Ba Dinh - Ha Noi' and '12 NGÕ 34 LÊ LỢI, PHƯỜNG PHÚC XÁ' give the same house number, lane,
street and ward tokens. The text is folded (no diacritics, đ→d, lower case) and cut into parts
at commas, dashes and semicolons; each part is recognized by its leading word (số nhà, ngõ,
ngách, hẻm, kiệt, tổ, thôn, xóm, ấp, bản, buôn, khu phố, đường, phố, phường, xã, thị trấn,
quận, huyện, thị xã, thành phố, tỉnh, and their abbreviations) or by its position (a leading
number is the house). Province names say nothing about a dwelling and are left out.

Every function is total: any text gives an ``AddressKey`` (maybe empty), never an exception,
and normalizing the same text twice gives the same key.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz.distance import OSA


@dataclass(frozen=True, slots=True)
class AddressKey:
    """Tokens of an address: house numbers, lanes, street or hamlet, and area names (ward,
    district) as folded words without spaces ('lethanhtong', 'phucxa', 'thon3')."""

    house: frozenset[str] = frozenset()
    lane: frozenset[str] = frozenset()
    local: frozenset[str] = frozenset()  # street, or hamlet / residential group
    area: frozenset[str] = frozenset()  # ward, district (numbers kept: 'phường 5' → '5')

    def __bool__(self) -> bool:
        return bool(self.house or self.lane or self.local or self.area)

    @property
    def tokens(self) -> frozenset[str]:
        """All tokens, each with its kind ('h:12', 'l:34', 's:leloi', 'a:phucxa')."""
        return frozenset(
            f"{kind}:{t}"
            for kind, group in (
                ("h", self.house),
                ("l", self.lane),
                ("s", self.local),
                ("a", self.area),
            )
            for t in group
        )


_PARTS = re.compile(r"\s*(?:[,;|\n]|\s-\s|\s–\s)\s*")
_NOT_WORD = re.compile(r"[^a-z0-9/ ]+")
_NUMBER = re.compile(r"^\d+[a-z]?$")
_SLASHED = re.compile(r"^(\d+[a-z]?)((?:/\d+[a-z]?)+)$")

# Leading words of a part (folded), with the kind of part they start; tried longest first.
_PREFIX_WORDS = {
    "house": ("so nha", "so", "sn", "nha so", "can ho"),
    "lane": ("ngo", "ngach", "hem", "kiet", "hxh"),
    "hamlet": (
        "to dan pho", "to", "thon", "xom", "ap", "ban", "buon", "khu pho", "kp", "khom", "khu",
        "doi", "lang", "plei", "soc", "cum",
    ),
    "street": ("duong", "pho", "d", "dg", "tl", "ql", "dt"),
    "ward": ("phuong", "p", "f", "xa", "x", "thi tran", "tt", "dac khu"),
    "district": ("quan", "q", "huyen", "h", "thi xa", "tx", "thanh pho", "tp"),
    "province": ("tinh", "t"),
}  # fmt: skip
_PREFIXES = tuple(
    sorted(
        ((w, kind) for kind, words in _PREFIX_WORDS.items() for w in words),
        key=lambda t: -len(t[0]),
    )
)
# Hamlet words are kept inside the token ('thon 3' → 'thon3'), since 'Thôn 3' and 'Tổ 3' differ.
_HAMLET_KEEP = {"to", "thon", "xom", "ap", "ban", "buon", "khu pho", "kp", "khom", "khu", "doi"}
_HAMLET_CANON = {"kp": "khupho", "to dan pho": "to"}


def _fold(text: str) -> str:
    out = unicodedata.normalize("NFD", text).translate(_combining_marks())
    return out.replace("đ", "d").replace("Đ", "D").lower()


@lru_cache(maxsize=1)
def _combining_marks() -> dict[int, None]:
    """Every combining character, to delete with str.translate (one C call a text instead of a
    Python test a character)."""
    return {c: None for c in range(0x110000) if unicodedata.combining(chr(c))}


@lru_cache(maxsize=1)
def province_names() -> frozenset[str]:
    """Folded province names, old and 2025, without spaces ('hanoi', 'hochiminh')."""
    from hssk.registry.adminunits import province_name_list

    out = {"hcm", "tphcm", "hn", "saigon"}
    for name in province_name_list():
        key = _fold(name)
        for prefix in ("thanh pho ", "tinh "):
            if key.startswith(prefix):
                key = key[len(prefix) :]
        out.add(key.replace(" ", ""))
    return frozenset(out)


# the prefixes by first letter, longest first as in _PREFIXES: a part is tested only against
# the words it may start with
_PREFIXES_BY_LETTER: dict[str, tuple[tuple[str, str], ...]] = {
    letter: tuple(p for p in _PREFIXES if p[0][0] == letter)
    for letter in {w[0] for w, _ in _PREFIXES}
}


def _split_prefix(part: str) -> tuple[str | None, str, str]:
    """(kind, prefix word, rest) of a part: 'p. phuc xa' → ('ward', 'p', 'phuc xa')."""
    for word, kind in _PREFIXES_BY_LETTER.get(part[:1], ()):
        if part == word:
            return kind, word, ""
        if part.startswith(word):
            rest = part[len(word) :]
            if rest[:1] in (" ", ".") or (rest[:1].isdigit() and len(word) <= 2):
                return kind, word, rest.lstrip(". ")
    return None, "", part


@lru_cache(maxsize=131_072)
def normalize_address(text: str | None) -> AddressKey:
    """Tokens of a free-text address (an empty key for None, empty or unreadable text)."""
    if not text:
        return AddressKey()
    folded = _fold(unicodedata.normalize("NFKC", str(text)))[:400]
    house: set[str] = set()
    lane: set[str] = set()
    local: set[str] = set()
    area: set[str] = set()
    provinces = province_names()
    parts = [p for p in _PARTS.split(folded) if p.strip()]
    for index, raw in enumerate(parts):
        part = " ".join(_NOT_WORD.sub(" ", raw.replace(".", ". ")).split())
        # 'p.phuc xa' was split above into 'p. phuc xa'; drop the dot again after the prefix test
        kind, word, rest = _split_prefix(part)
        rest = rest.replace(".", " ").strip()
        words = rest.split()
        if kind is None and words:
            first = words[0]
            m = _SLASHED.match(first)
            if (m or _NUMBER.match(first)) and (index == 0 or not house):
                kind, word = "house", ""
            elif index == 0 and len(words) >= 2:
                kind = "street"
        if kind == "house":
            # 'số 12', 'số 12 ngõ 34', '12/34 lê lợi', '12a đường lê lợi'
            if words:
                m = _SLASHED.match(words[0])
                if m:
                    house.add(m.group(1))
                    lane.update(x for x in m.group(2).split("/") if x)
                elif _NUMBER.match(words[0]):
                    house.add(words[0])
                else:
                    words = ["", *words]
                tail = " ".join(words[1:])
                if tail:
                    sub_kind, sub_word, sub_rest = _split_prefix(tail)
                    _add_part(sub_kind or "street", sub_word, sub_rest, lane, local, area)
            continue
        if kind == "province" or (kind is None and rest.replace(" ", "") in provinces):
            continue
        _add_part(kind, word, rest, lane, local, area, provinces)
    return AddressKey(frozenset(house), frozenset(lane), frozenset(local), frozenset(area))


def _add_part(
    kind: str | None,
    word: str,
    rest: str,
    lane: set[str],
    local: set[str],
    area: set[str],
    provinces: frozenset[str] = frozenset(),
) -> None:
    rest = rest.replace(".", " ").strip()
    if kind == "lane":
        # 'ngõ 34', 'ngách 12/34' (a lane inside a lane): every number is a lane token
        for number in re.findall(r"\d+[a-z]?", rest):
            lane.add(number)
        tail = re.sub(r"^[\d/a-z]*\d[\d/a-z]*\s*", "", rest)
        if tail:
            sub_kind, sub_word, sub_rest = _split_prefix(tail)
            _add_part(sub_kind or "street", sub_word, sub_rest, lane, local, area, provinces)
        return
    if kind != "hamlet":
        # a postcode or an old commune code after the name ('Hà Nội 10000', 'NSW 4223')
        for code in re.findall(r"(?<![\w/])\d{4,6}(?![\w/])", rest):
            area.add(code)
        rest = re.sub(r"(?<![\w/])\d{4,6}(?![\w/])", " ", rest).strip()
    compact = rest.replace(" ", "")
    if not compact or (kind is None and compact in provinces):
        return
    if kind == "hamlet":
        if word in _HAMLET_KEEP:
            local.add(_HAMLET_CANON.get(word, word).replace(" ", "") + compact)
        else:
            local.add(compact)
        return
    if kind == "street":
        local.add(compact)
        return
    if kind == "district" and word in ("thanh pho", "tp") and compact in provinces:
        return  # 'TP Hà Nội' is the province
    if compact.isdigit():
        compact = str(int(compact))  # 'phường 05' = 'phường 5'
    area.add(compact)


FUZZY_TOKEN = 7  # street and place names this long agree despite one typed letter


def tokens_agree(a: frozenset[str], b: frozenset[str]) -> bool:
    """Some token of ``a`` is a token of ``b``, or one edit from one (both long enough that
    one letter cannot make another name: 'hurleystreet' / 'hurlystreet', 'namatjiradrive' /
    'namatjiardrive', not 'leloi' / 'lelai')."""
    if not a.isdisjoint(b):
        return True
    return any(
        len(x) >= FUZZY_TOKEN and len(y) >= FUZZY_TOKEN and OSA.distance(x, y) <= 1
        for x in a
        for y in b
    )


def houses_agree(a: frozenset[str], b: frozenset[str]) -> bool:
    """A house number in common, or two digits typed in the other order ('562' / '526';
    not '12' / '13', the neighbours)."""
    if not a.isdisjoint(b):
        return True
    return any(x != y and sorted(x) == sorted(y) and OSA.distance(x, y) == 1 for x in a for y in b)


def house_slip(a: frozenset[str], b: frozenset[str]) -> bool:
    """Two house numbers one keystroke apart that are not near neighbours ('22' / '82',
    '40' / '4'; not '12' / '13' or '12' / '14', houses of one street side by side)."""
    return any(
        x.isdigit() and y.isdigit() and OSA.distance(x, y) == 1 and abs(int(x) - int(y)) > 2
        for x in a
        for y in b
    )


def compare_address(a: AddressKey | None, b: AddressKey | None) -> str | None:
    """Level of two addresses: 'same' dwelling (house number and street or hamlet agree),
    'street' (street or hamlet and an area name agree, no conflicting house number), 'area'
    (a ward or district name agrees), 'else'; None when either is empty. Long street and area
    names agree despite one typed letter (``tokens_agree``)."""
    if not a or not b:
        return None
    house = houses_agree(a.house, b.house)
    # a house number one keystroke off is not another dwelling, nor evidence of the same one
    house_conflict = (
        bool(a.house) and bool(b.house) and not house and not house_slip(a.house, b.house)
    )
    lane_conflict = bool(a.lane) and bool(b.lane) and a.lane.isdisjoint(b.lane)
    # the street or hamlet, also when the two parts after the house number were written in
    # the other order ('113 audas place, clanville' / '113 clanville, audas place')
    local = tokens_agree(a.local, b.local) or (
        tokens_agree(a.local, b.area) and tokens_agree(a.area, b.local)
    )
    area = tokens_agree(a.area, b.area)
    if house_conflict or lane_conflict:
        return "else"
    if local and house:
        return "same"
    # the street, or the house number in the same area where one side names no street
    if area and (local or (house and not (a.local and b.local))):
        return "street"
    if area:
        return "area"
    return "else"
