"""Administrative units: old (pre-2025, 63 provinces) ↔ new (2025, 34 provinces) commune codes.

Data: the ``vietnamadminunits`` package (MIT, © Tran Ngoc Minh Hieu; sources GSO and
sapnhap.bando.com.vn), read from its installed data files, never from the network. Its address
converter calls an online geocoder for split wards; we do not: a split old ward is returned as
*ambiguous* with its candidate new wards (the package's default one first).
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from dataclasses import dataclass
from functools import lru_cache

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Unit:
    """A commune resolved from a code and/or an address."""

    new_code: str | None = None  # 2025 commune code (5 digits)
    old_code: str | None = None  # pre-2025 commune code (5 digits)
    province_code: str | None = None  # 2-digit province code (new when known, else old)
    ambiguous: bool = False  # the old ward was split over several new wards
    candidates: tuple[str, ...] = ()  # possible new codes when ambiguous (default first)


@dataclass(frozen=True)
class _Tables:
    new: dict[str, str]  # new commune code → new province code
    old: dict[str, str]  # old commune code → old province code
    old_to_new: dict[str, str]  # unsplit old ward → its new ward
    split: dict[str, tuple[str, ...]]  # split old ward → candidate new wards, default first
    new_names: dict[str, str]  # new commune code → 'Phường X, Thành phố Y'
    old_names: dict[str, str]


@lru_cache(maxsize=1)
def _tables() -> _Tables:
    from hssk.registry.unitparse import data_dir

    data = data_dir()
    with sqlite3.connect(data / "dataset.db") as conn:
        legacy_rows = conn.execute(
            "SELECT provinceKey, districtKey, wardKey, wardCode, provinceCode, ward, district,"
            " province FROM admin_units_legacy"
        ).fetchall()
        new_rows = conn.execute(
            "SELECT provinceKey, wardKey, wardCode, provinceCode, ward, province FROM admin_units"
        ).fetchall()
    legacy_key = {f"{r[0]}_{r[1]}_{r[2]}": r[3] for r in legacy_rows}
    new_key = {(r[0], r[1]): r[2] for r in new_rows}
    conv = json.loads((data / "converter_2025.json").read_text("utf-8"))
    old_to_new: dict[str, str] = {}
    for province, wards in conv["DICT_PROVINCE_WARD_NO_DIVIDED"].items():
        for ward, olds in wards.items():
            for old in olds:
                if old in legacy_key:  # island districts without wards are skipped
                    old_to_new[legacy_key[old]] = new_key[(province, ward)]
    split: dict[str, tuple[str, ...]] = {}
    for province, olds in conv["DICT_PROVINCE_WARD_DIVIDED"].items():
        for old, options in olds.items():
            ordered = sorted(options, key=lambda o: not o["isDefaultNewWard"])
            split[legacy_key[old]] = tuple(new_key[(province, o["newWardKey"])] for o in ordered)
    return _Tables(
        new={r[2]: r[3] for r in new_rows},
        old={r[3]: r[4] for r in legacy_rows},
        old_to_new=old_to_new,
        split=split,
        new_names={r[2]: f"{r[4]}, {r[5]}" for r in new_rows},
        old_names={r[3]: f"{r[5]}, {r[6]}, {r[7]}" for r in legacy_rows},
    )


def _code(value: object) -> str | None:
    if value is None:
        return None
    digits = "".join(c for c in str(value) if c.isdigit())
    if not digits or len(digits) > 5 or not digits.isascii():
        return None
    return digits.zfill(5)


@lru_cache(maxsize=65_536)
def commune_options(new_code: str | None, old_code: str | None) -> tuple[str, ...]:
    """Every 2025 commune a record may be in: its new code, where its old code went (a code
    valid in both eras may mean either), and the candidates of a split old ward."""
    out: list[str] = [new_code] if new_code else []
    if old_code:
        unit = old_to_new(old_code)
        for c in (unit.new_code, *unit.candidates):
            if c and c not in out:
                out.append(c)
    return tuple(out)


def old_to_new(old_code: str) -> Unit:
    """Map a pre-2025 commune code to its 2025 commune (ambiguous when the ward was split)."""
    t = _tables()
    code = _code(old_code)
    if code is None or code not in t.old:
        return Unit()
    if code in t.split:
        cands = t.split[code]
        return Unit(None, code, t.new.get(cands[0]), True, cands)
    new = t.old_to_new.get(code)
    return Unit(new, code, t.new.get(new) if new else t.old[code])


def resolve_commune(
    code: object = None, province: object = None, address: str | None = None
) -> Unit:
    """Resolve a commune given by a code (old or new) or, failing that, by an address text.

    A code valid in both eras is taken as the new code: 2025 codes reuse the code of one of the
    merged old wards, and 95% of such codes map to themselves. Never raises.
    """
    if code is not None:
        # the address is only read when the code says nothing: keep it out of the cache key
        unit = _resolve_code(str(code), None if province is None else str(province))
        if unit.new_code or unit.old_code:
            return unit
    return _resolve(None, None if province is None else str(province), address)


@lru_cache(maxsize=65_536)
def _resolve_code(code: str, province: str | None) -> Unit:
    return _resolve(code, province, None)


def _resolve(code: object, province: object, address: str | None) -> Unit:
    t = _tables()
    c = _code(code)
    if c is not None:
        if c in t.new:
            old = c if c in t.old else None
            return Unit(c, old, t.new[c])
        if c in t.old:
            return old_to_new(c)
    if address:
        unit = _from_address(address)
        if unit.new_code or unit.old_code:
            return unit
    prov = _code(province)
    return Unit(province_code=prov[-2:] if prov else None)


_ADMIN_WORD = re.compile(
    r"\b(phuong|xa|quan|huyen|tinh|thanh pho|tp|thi tran|thi xa|tt|tx|p|q|h|x|f)\b"
)


def _may_be_vietnamese(text: str) -> bool:
    """Diacritics, an administrative word ('phuong', 'Q.') or a province name ('HO CHI MINH'):
    worth giving to the parser."""
    if not text.isascii():
        return True
    low = text.lower()
    if _ADMIN_WORD.search(low):
        return True
    from hssk.registry.address import province_names

    compact = re.sub(r"[^a-z]", "", low)
    return any(name in compact for name in province_names() if len(name) >= 4)


@lru_cache(maxsize=65536)
def _from_address(address: str) -> Unit:
    """Parse an address text offline: first as a pre-2025 address, then as a 2025 one."""
    from hssk.registry import unitparse

    text = " ".join(str(address).split())[:300]
    if not text or not _may_be_vietnamese(text):
        return Unit()  # the parser costs a fraction of a millisecond per text it cannot place
    keys = unitparse.keys_of(text)
    try:
        legacy = unitparse.parse_legacy(keys)
        if legacy.ward_code and legacy.district_key:
            return old_to_new(legacy.ward_code)
    except Exception as exc:  # the package's rules fail on some texts; try 2025 next
        _log.debug("legacy address parse failed for %r: %s", text, exc)
    try:
        new = unitparse.parse_2025(keys)
        if new.ward_code:
            return Unit(new.ward_code, None, new.province_code)
    except Exception as exc:  # unparseable address: no unit, never a crash
        _log.debug("address parse failed for %r: %s", text, exc)
    return Unit()


def commune_name(code: str | None) -> str | None:
    """Vietnamese name of a 2025 commune code (else of an old one), for display."""
    if not code:
        return None
    t = _tables()
    return t.new_names.get(code) or t.old_names.get(code)


@lru_cache(maxsize=1)
def province_name_list() -> tuple[str, ...]:
    """Province names, pre-2025 and 2025 ('Thành phố Hà Nội', 'Tỉnh Đắk Lắk')."""
    t = _tables()
    names = {n.rsplit(", ", 1)[-1] for n in (*t.new_names.values(), *t.old_names.values())}
    return tuple(sorted(names))
