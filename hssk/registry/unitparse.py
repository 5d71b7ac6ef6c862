"""Place an address text in a commune, offline: the ``vietnamadminunits`` parsers' own rules.

The package (MIT, © Tran Ngoc Minh Hieu) compiles a regular expression of every district's
or ward's keywords and scans its dictionaries for the keyword found, at every call: ~0.3 ms
an address, half of normalizing a record in a batch deduplication. This module reads the
same data files and follows the same steps in the same order (last match wins, a keyword is
removed from the right before the next level looks, Huế's hidden ward words, divided
districts chosen by their wards), with each pattern compiled once and each keyword looked
up in a dictionary that keeps the first key in the package's order. The codes are the
package's: a test compares both on generated addresses. The street is not extracted.
"""

from __future__ import annotations

import importlib.util
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from unidecode import unidecode

_Dict = dict[str, Any]


@dataclass(frozen=True)
class Parsed:
    """What the callers read of a parse."""

    ward_code: str | None = None
    province_code: str | None = None
    district_key: str | None = None  # legacy only: the old district was placed


@dataclass(frozen=True)
class Keys:
    """An address text as both parsers normalize it."""

    plain: str  # folded, letters, digits and commas only ('sonha12,phuongbachkhoa')
    accented: str  # the same with diacritics kept


def keys_of(address: str) -> Keys:
    """The package's ``unicode_normalize`` then ``key_normalize`` (with and without
    diacritics), done once for both parsers."""
    text = unicodedata.normalize("NFC", address)
    text = text.replace("’", "'").replace("‘", "'").replace("“", '"').replace("”", '"')
    text = text.replace("-", " - ")
    text = re.sub(r"\s+", " ", text)
    text = re.sub(r"\'\s+", "'", text).strip()
    return Keys(_key(text.translate(_UNIDECODE)), _key(text))


class _Unidecode(dict[int, str]):
    """``unidecode`` one character at a time, remembered: it replaces each character on its
    own, so ``str.translate`` through this table gives the same text without the
    per-character Python loop."""

    def __missing__(self, code: int) -> str:
        out = self[code] = unidecode(chr(code))
        return out


_UNIDECODE = _Unidecode()


def _key(text: str) -> str:
    return re.sub(r"[^\w,]+", "", text).lower()


def _without(key: str, acc: str, kw: str | None) -> tuple[str, str]:
    """Both keys without the last occurrence of a level's keyword, found in the plain key and
    cut at the same place in the accented one (the package's ``replace_from_right``): the
    next level must not read it again."""
    if not kw:
        return key, acc
    pos = key.rfind(kw)
    acc = acc or key  # as the package does when the accented key is empty ('©' folds to 'c')
    if pos == -1:
        return key.strip(), acc.strip()
    end = pos + len(kw)
    return (key[:pos] + key[end:]).strip(), (acc[:pos] + acc[end:]).strip()


@dataclass(frozen=True)
class _Finder:
    """The last keyword of a dictionary in a text, and the first key (in the dictionary's
    order) that lists it: ``next(k for k, v in d.items() if kw in v[field])``."""

    pattern: re.Pattern[str]
    keys: dict[str, str]

    def find(self, text: str) -> tuple[str | None, str | None]:
        found = None
        for found in self.pattern.finditer(text):  # noqa: B007 -- the last match is kept
            pass
        if found is None:
            return None, None
        kw = found.group()
        return kw, (self.keys.get(kw) if kw else None)


def _finder(d: _Dict, field: str, *, escape: bool) -> _Finder:
    words = sorted((w for v in d.values() for w in v[field]), key=len, reverse=True)
    if _literal(words, escape=escape):
        pattern = re.compile(_trie(words), re.IGNORECASE)
    else:  # pragma: no cover - no such keyword in the data files; the package's own pattern
        pattern = re.compile("|".join(re.escape(w) if escape else w for w in words), re.IGNORECASE)
    keys: dict[str, str] = {}
    for k, v in d.items():
        for w in v[field]:
            keys.setdefault(w, k)
    return _Finder(pattern, keys)


def _literal(words: list[str], *, escape: bool) -> bool:
    """The package joins the keywords, longest first, into one alternation: at each position
    the longest keyword that matches there wins. When every keyword is a plain word (no
    pattern characters where the package does not escape them) and no two of their letters
    are one letter under IGNORECASE, a trie of them says the same and is scanned in a
    fraction of the time: the keywords matching at a position are prefixes of one another,
    and the trie's greedy optional tails take the longest."""
    if not escape and any(re.escape(w) != w for w in words):
        return False
    letters = {c for w in words for c in w}
    return len({c.casefold() for c in letters}) == len(letters) and all(
        c.casefold() == c.lower() for c in letters
    )


def _trie(words: list[str]) -> str:
    root: dict[str, Any] = {}
    for w in words:
        node = root
        for ch in w:
            node = node.setdefault(ch, {})
        node[""] = {}

    def pattern(node: dict[str, Any]) -> str:
        tails = [re.escape(ch) + pattern(child) for ch, child in sorted(node.items()) if ch]
        if not tails:
            return ""
        body = tails[0] if len(tails) == 1 else "(?:" + "|".join(tails) + ")"
        return f"(?:{body})?" if "" in node else body

    return pattern(root)


def data_dir() -> Path:
    """The ``vietnamadminunits`` data files, found without importing the package (its
    import loads geocoding and geometry libraries that are never used here)."""
    spec = importlib.util.find_spec("vietnamadminunits")
    if spec is None or spec.origin is None:
        raise RuntimeError("vietnamadminunits is not installed: run `make install`")
    return Path(spec.origin).parent / "data"


@lru_cache(maxsize=1)
def _legacy() -> _Dict:
    data: _Dict = json.loads((data_dir() / "parser_legacy.json").read_text("utf-8"))
    data["_province"] = _finder(data["DICT_PROVINCE"], "provinceKeywords", escape=False)
    data["_unique_district"] = _finder(
        data["DICT_UNIQUE_DISTRICT_PROVINCE"], "districtKeywords", escape=False
    )
    return data


@lru_cache(maxsize=1)
def _from_2025() -> _Dict:
    data: _Dict = json.loads((data_dir() / "parser_from_2025.json").read_text("utf-8"))
    data["_province"] = _finder(data["DICT_PROVINCE"], "provinceKeywords", escape=False)
    for name in ("NO_ACCENTED", "ACCENTED"):
        data[f"_unique_{name}"] = _finder(
            data[f"DICT_UNIQUE_WARD_PROVINCE_{name}"], "wardKeywords", escape=False
        )
    return data


@cache
def _legacy_districts(province: str) -> _Finder:
    return _finder(_legacy()["DICT_PROVINCE_DISTRICT"][province], "districtKeywords", escape=True)


@cache
def _legacy_divided(province: str) -> _Finder:
    d = _legacy()["DICT_PROVINCE_DISTRICT_DIVIDED"][province]
    return _finder(d, "dividedDistrictKeywords", escape=True)


@cache
def _legacy_divided_wards(province: str, divided: str) -> _Finder:
    d = _legacy()["DICT_PROVINCE_DISTRICT_DIVIDED"][province][divided]["districts"]
    return _finder(d, "wardKeywords", escape=False)


@cache
def _legacy_wards(which: str, province: str, district: str) -> _Finder | None:
    d = _legacy()[f"DICT_PROVINCE_DISTRICT_WARD_{which}"].get(province, {}).get(district)
    return _finder(d, "wardKeywords", escape=False) if d else None


@cache
def _wards_2025(which: str, province: str) -> _Finder | None:
    d = _from_2025()[f"DICT_PROVINCE_WARD_{which}"].get(province)
    return _finder(d, "wardKeywords", escape=False) if d else None


_HUE_HIDDEN = ("phuongthuanhoa", "phuongthuybieu", "phuongthuyvan", "phuongthuyxuan")
_HIDDEN = "TMP_HIDDEN_KEYWORD"


def parse_legacy(k: Keys) -> Parsed:
    """``parse_address(text, mode=LEGACY, level=3, keep_street=False)``: the old ward's code
    and whether an old district was placed."""
    data = _legacy()
    key, acc = k.plain, k.accented
    district_key: str | None = None
    hidden: str | None = None

    kw, province_key = data["_province"].find(key)
    key, acc = _without(key, acc, kw)
    if not province_key:
        kw, district_key = data["_unique_district"].find(key)
        province_key = (
            data["DICT_UNIQUE_DISTRICT_PROVINCE"].get(district_key, {}).get("provinceKey")
        )
        key, acc = _without(key, acc, kw)
    if not province_key:
        return Parsed()
    province_code: str = data["DICT_PROVINCE"][province_key]["provinceCode"]

    if province_key == "thanhphohue":
        # the package hides ward words that name Huế's new districts while it places the district
        words = list(_HUE_HIDDEN)
        if any(w in acc for w in ("thuậnhòa", "thuậnhoà")):
            words.append("thuanhoa")
        found = re.search("|".join(re.escape(w) for w in words), key, re.IGNORECASE)
        hidden = found.group() if found else None
        if hidden:
            key = key.replace(hidden, _HIDDEN)

    districts = data["DICT_PROVINCE_DISTRICT"][province_key]
    if not district_key:
        kw, district_key = _legacy_districts(province_key).find(key)
        key, acc = _without(key, acc, kw)
    divided = data["DICT_PROVINCE_DISTRICT_DIVIDED"].get(province_key, {})
    if not district_key:
        if divided:
            kw, divided_key = _legacy_divided(province_key).find(key)
            if divided_key:
                assert kw is not None
                key, acc = _without(key, acc, kw)
                if hidden:
                    key, hidden = key.replace(_HIDDEN, hidden), None
                district_key = _divided_district(province_key, divided_key, key)
    elif district_key in divided:
        if hidden:
            key, hidden = key.replace(_HIDDEN, hidden), None
        district_key = _divided_district(province_key, district_key, key)
    if not district_key:
        return Parsed(province_code=province_code)
    # the package reads the district here: one not of this province fails the parse
    districts[district_key]

    if hidden:
        key = key.replace(_HIDDEN, hidden)
    for which, text in (("NO_ACCENTED", key), ("ACCENTED", acc), ("SHORT_ACCENTED", acc)):
        finder = _legacy_wards(which, province_key, district_key)
        if finder is None:
            continue
        _, ward_key = finder.find(text)
        if ward_key:
            ward = data[f"DICT_PROVINCE_DISTRICT_WARD_{which}"][province_key][district_key]
            return Parsed(ward[ward_key]["wardCode"], province_code, district_key)
    return Parsed(None, province_code, district_key)


def _divided_district(province: str, divided: str, key: str) -> str | None:
    """A district split since: the one whose ward the text names, else the default."""
    _, district = _legacy_divided_wards(province, divided).find(key)
    if district:
        return district
    wards = _legacy()["DICT_PROVINCE_DISTRICT_DIVIDED"][province][divided]["districts"]
    return next((d for d in wards if wards[d]["districtDefault"] == True), None)  # noqa: E712


def parse_2025(k: Keys) -> Parsed:
    """``parse_address(text, mode=FROM_2025, level=2, keep_street=False)``: the 2025 ward's
    code and its province's."""
    data = _from_2025()
    key, acc = k.plain, k.accented
    ward_key: str | None = None
    wards: _Dict | None = None

    kw, province_key = data["_province"].find(key)
    key, acc = _without(key, acc, kw)
    for which, text in (("NO_ACCENTED", key), ("ACCENTED", acc)):
        if province_key:
            break
        _, ward_key = data[f"_unique_{which}"].find(text)
        unique = data[f"DICT_UNIQUE_WARD_PROVINCE_{which}"]
        province_key = unique.get(ward_key, {}).get("provinceKey")
        if province_key:
            wards = data[f"DICT_PROVINCE_WARD_{which}"].get(province_key)
    if not province_key:
        return Parsed()
    province_code: str = data["DICT_PROVINCE"][province_key]["provinceCode"]

    for which, text in (("NO_ACCENTED", key), ("ACCENTED", acc), ("SHORT_ACCENTED", acc)):
        if ward_key:
            break
        finder = _wards_2025(which, province_key)
        if finder is None:
            continue
        _, ward_key = finder.find(text)
        if ward_key:
            wards = data[f"DICT_PROVINCE_WARD_{which}"][province_key]
    if not ward_key:
        return Parsed(province_code=province_code)
    assert wards is not None, "a ward found by its unique name has its province's wards"
    return Parsed(wards[ward_key]["wardCode"], province_code)
