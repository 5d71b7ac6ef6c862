"""Writing QĐ 130 files as text: inner tables, the GIAMDINHHS envelope, XML0 check-ins, with the
quirks of real exports at a chosen rate (../shared/spec/xml130.md, end of §3.7).

Table roots, record paths and field order come from ``hssk.ingest.xml130_tables.tables()``.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from xml.sax.saxutils import escape

from hssk.ingest.xml130_tables import LEGACY_4210_RENAMES, Table, legacy_table, tables

XSD = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XSI_QUIRK = "http://www.w3.org/2001/XMLSchema instance"  # a space instead of the hyphen
# Free-text fields that real exports wrap in CDATA.
TEXT_FIELDS = frozenset(
    "HO_TEN DIA_CHI CHAN_DOAN_VAO CHAN_DOAN_RV TEN_THUOC TEN_DICH_VU GIA_TRI KET_LUAN MO_TA "
    "DIEN_BIEN_LS LY_DO_VV GHI_CHU PP_DIEU_TRI PP_DIEUTRI QT_BENHLY TOMTAT_KQ HO_TEN_CON "
    "HO_TEN_NND HO_TEN_CHA HO_TEN_ME TEN_CHI_SO DAU_HIEU_LS CACH_DUNG LIEU_DUNG".split()
)
NUMBER_FIELDS = frozenset("STT SO_NGAY_DTRI".split())


@dataclass(frozen=True)
class Quirks:
    """Which real-export oddities one file shows."""

    ns_space: bool = False
    cdata: bool = False
    self_closing: bool = False
    leading_zeros: bool = False
    crlf: bool = False
    empty_district: bool = False

    @property
    def names(self) -> list[str]:
        return [k for k, v in self.__dict__.items() if v]

    @classmethod
    def draw(cls, rng: random.Random, rate: float) -> Quirks:
        """With probability ``rate`` a file is quirky; each quirk then shows with p = 1/2."""
        if rate <= 0 or rng.random() >= rate:
            return cls()
        flags = [rng.random() < 0.5 for _ in range(6)]
        if not any(flags):
            flags[rng.randrange(6)] = True
        return cls(*flags)


def _element(name: str, value: object, q: Quirks) -> str:
    # hot path (a million calls per 100k persons): avoid needless escaping and calls
    text = value if isinstance(value, str) else ("" if value is None else str(value))
    if not text:
        return f"<{name} />" if q.self_closing else f"<{name}></{name}>"
    if q.leading_zeros and name in NUMBER_FIELDS and text.isdigit():
        text = text.zfill(3)
    if q.cdata and name in TEXT_FIELDS and "]]>" not in text:
        return f"<{name}><![CDATA[{text}]]></{name}>"
    if "&" in text or "<" in text or ">" in text:
        text = escape(text)
    return f"<{name}>{text}</{name}>"


def _record(table: Table, row: Mapping[str, object], q: Quirks, indent: str) -> list[str]:
    unknown = set(row) - set(table.fields)
    if unknown:  # writer bug: a field the table does not have
        raise KeyError(f"{table.name} has no field(s) {sorted(unknown)}")
    return [indent + _element(f, row.get(f), q) for f in table.fields]


def as_4210(name: str, row: Mapping[str, object]) -> dict[str, object]:
    """A QĐ 130 row of table ``name`` (XML1–XML5) as QĐ 4210 wrote it: its older field names,
    and only the fields 4210 had (no CCCD, no execution times, no units of lab results)."""
    old_name, fields = _names_4210(name)
    out = {old_name.get(k, k): v for k, v in row.items()}
    return {k: v for k, v in out.items() if k in fields}


@lru_cache(maxsize=8)
def _names_4210(name: str) -> tuple[dict[str, str], frozenset[str]]:
    """(QĐ 130 name → 4210 name, the fields 4210 had) of a table."""
    old_name = {new: old for old, new in LEGACY_4210_RENAMES.get(name, {}).items()}
    return old_name, frozenset(legacy_table(name).fields)


def inner_xml(
    name: str, rows: Sequence[Mapping[str, object]], q: Quirks, *, legacy: bool = False
) -> str:
    """One inner file (e.g. XML2) with its rows, following the table's record path.

    ``legacy``: the QĐ 4210 form of XML1–XML5 (rows given in QĐ 130 names): older names, no XML
    declaration, and the list tables without their outer element, as exporters of the time
    wrote them."""
    if legacy:
        return _inner_4210(name, [as_4210(name, r) for r in rows], q)
    table = tables()[name]
    xsi = XSI_QUIRK if q.ns_space else XSI
    parts = table.record_path.split("/")
    root = parts[0]
    lines = ['<?xml version="1.0" encoding="utf-8"?>']
    lines.append(f'<{root} xmlns:xsd="{XSD}" xmlns:xsi="{xsi}">')
    if table.single:
        lines += _record(table, rows[0], q, "  ")
    else:
        middle, row_tag = parts[1:-1], parts[-1]
        for i, m in enumerate(middle, 1):
            lines.append("  " * i + f"<{m}>")
        depth = len(middle) + 1
        for row in rows:
            lines.append("  " * depth + f"<{row_tag}>")
            lines += _record(table, row, q, "  " * (depth + 1))
            lines.append("  " * depth + f"</{row_tag}>")
        for i, m in reversed(list(enumerate(middle, 1))):
            lines.append("  " * i + f"</{m}>")
    lines.append(f"</{root}>")
    return ("\r\n" if q.crlf else "\n").join(lines)


def _inner_4210(name: str, rows: Sequence[Mapping[str, object]], q: Quirks) -> str:
    table = legacy_table(name)
    nl = "\r\n" if q.crlf else "\n"
    if table.single:
        return nl.join([f"<{table.root}>", *_record(table, rows[0], q, "  "), f"</{table.root}>"])
    _outer, listing, row_tag = table.record_path.split("/")
    lines = [f"<{listing}>"]
    for row in rows:
        lines += [f"  <{row_tag}>", *_record(table, row, q, "    "), f"  </{row_tag}>"]
    lines.append(f"</{listing}>")
    return nl.join(lines)


def envelope(facility: str, day: str, files: Sequence[tuple[str, str]], q: Quirks) -> bytes:
    """The GIAMDINHHS envelope of one hồ sơ: (LOAIHOSO, inner XML) pairs, base64 encoded."""
    nl = "\r\n" if q.crlf else "\n"
    out = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<GIAMDINHHS xmlns:xsd="{XSD}" xmlns:xsi="{XSI}">',
        f"  <THONGTINDONVI><MACSKCB>{facility}</MACSKCB></THONGTINDONVI>",
        "  <THONGTINHOSO>",
        f"    <NGAYLAP>{day}</NGAYLAP>",
        "    <SOLUONGHOSO>1</SOLUONGHOSO>",
        "    <DANHSACHHOSO>",
        "      <HOSO>",
    ]
    for name, xml in files:
        b64 = base64.b64encode(xml.encode("utf-8")).decode("ascii")
        out.append(
            f"        <FILEHOSO><LOAIHOSO>{name}</LOAIHOSO><NOIDUNGFILE>{b64}</NOIDUNGFILE></FILEHOSO>"
        )
    out += ["      </HOSO>", "    </DANHSACHHOSO>", "  </THONGTINHOSO>", "  <CHUKYDONVI />"]
    out.append("</GIAMDINHHS>")
    return nl.join(out).encode("utf-8")


def checkin_xml(row: Mapping[str, object], q: Quirks) -> bytes:
    """An XML0 check-in file: the table followed by an (empty) CHUKYDONVI."""
    xml = inner_xml("XML0", [row], q)
    root = tables()["XML0"].root
    nl = "\r\n" if q.crlf else "\n"
    return xml.replace(f"</{root}>", f"  <CHUKYDONVI />{nl}</{root}>").encode("utf-8")
