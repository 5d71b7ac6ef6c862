"""Health e-documents of the ``hososuckhoe/guiGiayToDienTu`` service: birth (61, ``HSDLGCS``)
and death (60, ``HSDLGBT``) papers.

Their official layouts were not available; a birth paper carries the XML9 fields (plus the
TT 22/2025 additions, kept in the document), a death paper the person's identity and the
time of death. Unknown fields are kept in the stored document, never dropped.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from hssk.ingest.kinds.base import Piece, SourceKind, broken_unit
from hssk.ingest.kinds.xml130 import remap_hoso
from hssk.ingest.map_xml130 import map_hoso
from hssk.ingest.model import (
    CS,
    Item,
    Problem,
    Unit,
    check_document,
    check_facility,
    check_identifier,
    clean_body,
    concept,
    instant,
    org_ref,
    parse_time,
    require,
    sex_code,
)
from hssk.ingest.xmlparse import HoSo, XmlError, _refuse_dtd, _row, parser_kwargs
from hssk.registry.types import SourceRecord

MAX_SIZE = 4 * 1024 * 1024  # a paper's XML, with its attachments
LOAI = {"60": "HSDLGBT", "61": "HSDLGCS"}
DEATH_TIME = ("NGAY_TU_VONG", "THOI_GIAN_TU_VONG", "NGAY_CHET", "NGAY_MAT")


def _record(root: Any) -> dict[str, str]:
    """The element holding the most leaf fields (layouts nest the record at varying depth)."""
    best, best_n = root, -1
    for elem in root.iter():
        if not isinstance(elem.tag, str):
            continue
        n = sum(1 for c in elem if isinstance(c.tag, str) and len(c) == 0)
        if n > best_n:
            best, best_n = elem, n
    return _row(best)


def parse_edocument(data: bytes) -> tuple[str, dict[str, str]]:
    """(root tag, fields) of an e-document; XmlError if unreadable or of an unknown kind."""
    parser = etree.XMLParser(**parser_kwargs())
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise XmlError(
            "xml.syntax", f"giấy tờ điện tử sai cú pháp XML: {exc}", f"malformed XML: {exc}"
        ) from None
    _refuse_dtd(root)
    tag = root.tag.rsplit("}", 1)[-1] if isinstance(root.tag, str) else ""
    if tag not in LOAI.values():
        raise XmlError(
            "xml.root",
            f"Thẻ gốc <{tag}> không phải giấy báo tử (HSDLGBT) hay giấy chứng sinh (HSDLGCS).",
            f"root <{tag}> is neither a death (HSDLGBT) nor a birth (HSDLGCS) paper.",
        )
    return tag, _record(root)


def map_edocument(
    data: bytes, file: str, facility: str | None, known: frozenset[str] | None
) -> Unit:
    """Map one e-document to a Unit (birth: newborn linked to the mother; death: deceased)."""
    tag, row = parse_edocument(data)
    fac = row.get("MA_CSKCB") or facility or ""
    if tag == "HSDLGCS":
        row.setdefault("MA_LK", row.get("MA_GCS") or row.get("SO") or "GCS")
        hoso = HoSo(index=0, facility=fac, tables={"XML9": [row]}, raw={"XML9": data})
        unit = map_hoso(hoso, file, known)
        unit.kind = "edoc"
        return unit
    return _death_paper(data, row, file, fac, known)


def _death_paper(
    data: bytes, row: dict[str, str], file: str, fac: str, known: frozenset[str] | None
) -> Unit:
    """A death paper: the deceased person, the time of death, the paper as a document."""
    unit = Unit(key=f"{fac}|GBT|{row.get('SO') or row.get('SO_GIAY') or row.get('SO_CCCD', '')}",
                file=file, kind="edoc", facility=fac, raw=data.decode("utf-8", "replace"))  # fmt: skip
    p: list[Problem] = []
    require(row, ("HO_TEN",), "HSDLGBT", p)
    when_raw = next((row[k] for k in DEATH_TIME if row.get(k)), "")
    if not when_raw:
        p.append(Problem("required", "NGAY_TU_VONG", None, "HSDLGBT: the time of death is missing.",
                         "HSDLGBT: thiếu ngày giờ tử vong."))  # fmt: skip
    when = parse_time(when_raw, "NGAY_TU_VONG", p) if when_raw else None
    check_facility(fac, "MA_CSKCB", known, p)
    birth = parse_time(row.get("NGAY_SINH"), "NGAY_SINH", p, allow_partial=True)
    unit.person = SourceRecord(
        source=f"edoc:{fac}",
        record_id=unit.key,
        full_name=row.get("HO_TEN") or None,
        birth_date=birth[:10] if birth else None,
        sex=sex_code(row.get("GIOI_TINH")) or "U",
        cccd=check_document(row.get("SO_CCCD"), "SO_CCCD", p),
        bhyt=check_identifier("bhyt", row.get("MA_THE_BHYT"), "MA_THE_BHYT", p),
        address=row.get("DIA_CHI") or None,
    )
    unit.problems = p
    if p:
        return unit
    unit.deceased_at = when
    unit.visit_date = (when or "")[:10] or None
    body = {
        "resourceType": "DocumentReference",
        "status": "current",
        "type": concept(f"{CS}/loai-giay-to", "giay-bao-tu", "Giấy báo tử"),
        "date": instant(when),
        "description": row.get("NGUYEN_NHAN_TU_VONG") or row.get("NGUYEN_NHAN") or None,
        "custodian": org_ref(fac),
        "content": [
            {
                "attachment": {
                    "contentType": "application/xml",
                    "title": "Giấy báo tử",
                    "data": base64.b64encode(data).decode(),
                }
            }
        ],
    }
    unit.items.append(Item(clean_body(body), f"{unit.key}|DocumentReference"))
    return unit


@dataclass(slots=True)
class EdocFile:
    """One e-document: a file holds one paper."""

    path: str

    @property
    def n(self) -> int:
        return 0

    def raw(self) -> str | None:
        return None


def read(path: str, fi: int, skip: int) -> Iterator[Piece]:
    yield Piece(EdocFile(path), (fi + 1, 0))


def map_payload(payload: EdocFile, known: frozenset[str] | None) -> list[Unit]:
    path = payload.path
    try:
        if os.path.getsize(path) > MAX_SIZE:
            raise XmlError("xml.size", "Giấy tờ quá lớn.", "the e-document is too large.")
        return [map_edocument(Path(path).read_bytes(), path, None, known)]
    except XmlError as exc:
        return [broken_unit("edoc", path, 0, exc)]


def remap(kept: str, file: str, known: frozenset[str] | None) -> Unit:
    """A quarantined paper: a birth paper is kept as its hồ sơ (XML9), a death paper as sent."""
    if kept.startswith("<HOSO_RAW"):
        return remap_hoso("edoc", kept, file, known)
    return map_edocument(kept.encode("utf-8"), file, None, known)


KIND = SourceKind(
    "edoc", "Giấy tờ điện tử (giấy chứng sinh, báo tử, ...)",
    "E-documents (birth certificates, death notices, ...)", read, map_payload, remap, (".xml",),
    checks_facility=True, facility_own=True, signed=True, pooled=True, key_element="SO",
    death_element="NGAY_TU_VONG",
)  # fmt: skip
