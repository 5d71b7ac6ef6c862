"""Hồ sơ of QĐ 130/4750 (and QĐ 4210): envelopes (GIAMDINHHS) of hồ sơ, each a visit's
tables XML1…; parsed by ``xmlparse``, checked and mapped by ``map_xml130``.

A small file is parsed whole in a worker; a large one is streamed, hồ sơ by hồ sơ, so a job's
checkpoint can fall inside it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from hssk.ingest.kinds.base import Piece, SourceKind, broken, broken_unit
from hssk.ingest.map_xml130 import map_hoso
from hssk.ingest.model import Unit
from hssk.ingest.xmlparse import HoSo, XmlError, decode_hoso, iter_hoso, parse_raw_document
from hssk.ingest.xmlparse import raw_document as hoso_raw

SMALL_FILE = 4 * 1024 * 1024  # a file up to this size is parsed whole in a worker


@dataclass(slots=True)
class XmlFile:
    """A small envelope file, after its first ``n`` hồ sơ."""

    path: str
    n: int

    def raw(self) -> str | None:
        return None


@dataclass(slots=True)
class Hoso:
    """One hồ sơ of a large file, as streamed (its inner files not yet decoded)."""

    path: str
    hoso: HoSo

    @property
    def n(self) -> int:
        return self.hoso.index + 1

    def raw(self) -> str | None:
        return hoso_raw(self.hoso)

    def __reduce__(self) -> tuple[type[Hoso], tuple[str, HoSo]]:
        return (Hoso, (self.path, self.hoso))  # (as csvrows.CsvRow)


def read(path: str, fi: int, skip: int) -> Iterator[Piece]:
    if os.path.getsize(path) <= SMALL_FILE:
        yield Piece(XmlFile(path, skip), (fi + 1, 0))
        return
    n = skip
    try:
        for hoso in iter_hoso(path, skip=skip):
            n = hoso.index + 1
            yield Piece(Hoso(path, hoso), (fi, n))
    except XmlError as exc:
        yield broken("xml130", path, n, exc, fi)


def map_payload(payload: XmlFile | Hoso, known: frozenset[str] | None) -> list[Unit]:
    if isinstance(payload, Hoso):
        return [map_hoso(decode_hoso(payload.hoso), payload.path, known)]
    out: list[Unit] = []
    n = payload.n
    try:
        for hoso in iter_hoso(payload.path, skip=payload.n):
            n = hoso.index + 1
            out.append(map_hoso(decode_hoso(hoso), payload.path, known))
    except XmlError as exc:
        out.append(broken_unit("xml130", payload.path, n, exc))
    return out


def remap_hoso(kind: str, kept: str, file: str, known: frozenset[str] | None) -> Unit:
    """A quarantined hồ sơ, kept (and corrected) as its ``HOSO_RAW`` document."""
    unit = map_hoso(parse_raw_document(kept), file, known)
    unit.kind = kind
    return unit


def remap(kept: str, file: str, known: frozenset[str] | None) -> Unit:
    return remap_hoso("xml130", kept, file, known)


KIND = SourceKind(
    "xml130", "Hồ sơ KCB theo QĐ 130/4750 (và QĐ 4210)", "QĐ 130/4750 hồ sơ (and QĐ 4210)",
    read, map_payload, remap, (".xml",), checks_facility=True, facility_own=True, signed=True,
    pooled=True, batch_units=500, key_element="MA_LK", death_element="KET_QUA_DTRI",
)  # fmt: skip
