"""Turn a raw SourceRecord into normalized fields and checked identifiers.

An identifier that fails its structural check is kept (``*_ok`` False): it is weaker evidence
for matching and is still stored, never silently dropped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date
from typing import Any

from hssk.kernel import identifiers as ids
from hssk.registry.normalize import (
    date_digits,
    display_name,
    normalize_phone,
    normalize_sex,
    parse_birth_date,
    split_name,
)
from hssk.registry.types import SourceRecord

# What person_source.demographics keeps of a record: every field but its source and record
# id, which the row holds already (columns source and source_record_id; 53 of ~300 bytes per
# row, one row per source record). The whole record is ``demographics || {"source": source,
# "record_id": source_record_id}``.
_STORED_FIELDS = tuple(
    f.name for f in dataclasses.fields(SourceRecord) if f.name not in ("source", "record_id")
)


@dataclass(slots=True)
class Prepared:
    """Normalized view of one source record (what matching compares)."""

    rec: SourceRecord
    full_name: str | None
    name_key: str | None
    family_key: str | None
    middle_key: str | None
    given_key: str | None
    name_sorted: str | None
    birth_date: date | None
    birth_precision: str | None
    birth_digits: str | None  # yyyymmdd of a full date written but impossible ('19505309')
    sex: str | None
    cccd: str | None
    cccd_ok: bool
    cmnd: str | None
    passport: str | None
    eid: str | None
    bhxh: str | None
    bhxh_ok: bool
    bhyt: str | None
    bhyt_ok: bool
    temp_card: str | None
    phone: str | None
    commune_code: str | None  # 2025 code when known
    commune_code_old: str | None
    province_code: str | None
    commune_ambiguous: bool
    commune_options: tuple[str, ...]
    problems: list[str]

    @property
    def birth_year(self) -> int | None:
        return self.birth_date.year if self.birth_date else None

    @property
    def bhxh_verified(self) -> str | None:
        """The BHXH number when it passed its check (alone or inside a valid BHYT card): the
        one linking and comparing trust."""
        return self.bhxh if self.bhxh_ok else None

    def demographics(self) -> dict[str, Any]:
        """The raw record as stored in person_source.demographics (without the source and
        record id of its row's own columns), plus identifier problems."""
        out = {k: v for k in _STORED_FIELDS if (v := getattr(self.rec, k)) is not None}
        if self.problems:
            out["_problems"] = self.problems
        return out


def _nonempty(value: object) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def prepare(rec: SourceRecord) -> Prepared:
    """Normalize a record and check its identifiers (never raises on bad values)."""
    from hssk.registry.adminunits import commune_options, resolve_commune  # lazy: loads tables

    problems: list[str] = []
    parts = split_name(rec.full_name)
    bd = parse_birth_date(rec.birth_date)
    if rec.birth_date and bd is None:
        problems.append(f"birth_date: '{rec.birth_date}' is not a valid date")
    sex = normalize_sex(rec.sex)

    cccd = cmnd = eid = None
    passport = ids.clean(rec.passport) or None if _nonempty(rec.passport) else None
    cccd_ok = False
    raw_doc = _nonempty(rec.cccd)
    if raw_doc:
        kind = ids.classify_document(raw_doc)
        value = ids.clean(raw_doc)
        if kind == "cccd":
            cccd = value
            chk = ids.check_cccd(value, birth_year=bd.value.year if bd else None, sex=sex)
            cccd_ok = chk.ok
            if not chk.ok:
                problems.append(f"cccd: {chk.reason()}")
        elif kind == "cmnd":
            cmnd = value
        elif kind == "passport":
            passport = passport or value
        else:
            eid = value
    bhxh = bhyt = None
    bhxh_ok = bhyt_ok = False
    if _nonempty(rec.bhyt):
        chk = ids.check_bhyt(rec.bhyt)
        bhyt, bhyt_ok = chk.value, chk.ok
        if not chk.ok:
            problems.append(f"bhyt: {chk.reason()}")
    if _nonempty(rec.bhxh):
        chk = ids.check_bhxh(rec.bhxh)
        bhxh, bhxh_ok = chk.value, chk.ok
        if not chk.ok:
            problems.append(f"bhxh: {chk.reason()}")
    if bhyt_ok and bhyt:
        inner = ids.bhyt_bhxh(bhyt)
        if bhxh is None or not bhxh_ok:
            bhxh, bhxh_ok = inner, True
        elif inner != bhxh:
            problems.append(f"bhyt: card {bhyt} does not contain the BHXH number {bhxh}")
    temp_card = ids.clean(rec.temp_card) or None if _nonempty(rec.temp_card) else None
    unit = resolve_commune(rec.commune_code, rec.province_code, rec.address)
    return Prepared(
        rec=rec,
        full_name=display_name(rec.full_name),
        name_key=parts.key,
        family_key=parts.family,
        middle_key=parts.middle,
        given_key=parts.given,
        name_sorted=parts.sorted,
        birth_date=bd.value if bd else None,
        birth_precision=bd.precision if bd else None,
        birth_digits=date_digits(rec.birth_date) if bd is None else None,
        sex=sex,
        cccd=cccd,
        cccd_ok=cccd_ok,
        cmnd=cmnd,
        passport=passport,
        eid=eid,
        bhxh=bhxh,
        bhxh_ok=bhxh_ok,
        bhyt=bhyt,
        bhyt_ok=bhyt_ok,
        temp_card=temp_card,
        phone=normalize_phone(rec.phone),
        commune_code=unit.new_code,
        commune_code_old=unit.old_code,
        province_code=unit.province_code,
        commune_ambiguous=unit.ambiguous,
        commune_options=commune_options(unit.new_code, unit.old_code),
        problems=problems,
    )
