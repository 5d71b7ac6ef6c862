"""What the CSV kinds (registers, immunization, station entries, facilities) share: reading a
file row by row, the row by column name, the person a row names, and the kind object built
around a row mapper."""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache, partial
from pathlib import Path
from typing import Any

import orjson

from hssk.ingest.kinds.base import Piece, SourceError, SourceKind, broken
from hssk.ingest.model import (
    Problem,
    Unit,
    check_document,
    check_identifier,
    parse_time,
    sex_code,
)
from hssk.registry.types import SourceRecord

# (file, row number, the row by column name, known facilities) → its unit
RowMapper = Callable[[str, int, dict[str, str], frozenset[str] | None], Unit]


@dataclass(slots=True)
class CsvRow:
    """One data row as read: the row becomes a dict in the mapping process (``row``); the
    reader runs in the writer's process, where every microsecond counts."""

    path: str
    n: int
    values: list[str]
    names: list[str]

    def row(self) -> dict[str, str]:
        """The row by column name: a short row's missing fields are empty, values past the
        header are dropped (as csv.DictReader does), unnamed columns are ignored."""
        values, names = self.values, self.names
        if len(values) < len(names):
            values = values + [""] * (len(names) - len(values))
        return {k: v.strip() for k, v in zip(names, values, strict=False) if k}

    def raw(self) -> str | None:
        return raw(self.row())

    def __reduce__(self) -> tuple[type[CsvRow], tuple[str, int, list[str], list[str]]]:
        # as its fields: the default pickling of a slots dataclass costs 10x more (22 µs a
        # row against 1.5), paid by the writer's process for every row sent to a worker
        return (CsvRow, (self.path, self.n, self.values, self.names))


def read_rows(kind: str, path: str, fi: int, skip: int) -> Iterator[Piece]:
    """The rows of a CSV file (UTF-8, a header row) after the first ``skip``."""
    n = 0
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header or not any(h.strip() for h in header):
                raise SourceError("csv.empty", "Tệp CSV rỗng hoặc không có dòng tiêu đề.",
                                  "the CSV file is empty or has no header row.")  # fmt: skip
            names = [h.strip().lower() for h in header]
            for values in reader:
                if not values:  # a blank line (DictReader skipped them too)
                    continue
                n += 1
                if n > skip:
                    yield Piece(CsvRow(path, n, values, names), (fi, n))
    except UnicodeDecodeError as exc:
        yield broken(kind, path, n, SourceError(
            "csv.encoding", f"Tệp không phải UTF-8 (dòng {n + 1}): {exc.reason}.",
            f"the file is not UTF-8 (row {n + 1}): {exc.reason}; save it as UTF-8.",
        ), fi)  # fmt: skip
    except csv.Error as exc:
        yield broken(kind, path, n, SourceError("csv.syntax",
                     f"CSV sai cú pháp ở dòng {n + 1}: {exc}",
                     f"malformed CSV at row {n + 1}: {exc}"), fi)  # fmt: skip
    except SourceError as exc:
        yield broken(kind, path, n, exc, fi)


def _map(map_row: RowMapper, payload: CsvRow, known: frozenset[str] | None) -> list[Unit]:
    return [map_row(payload.path, payload.n, payload.row(), known)]


def _remap(map_row: RowMapper, kept: str, file: str, known: frozenset[str] | None) -> Unit:
    """A quarantined row, kept (and corrected) as a JSON object of its columns."""
    try:
        row = orjson.loads(kept)
    except orjson.JSONDecodeError as exc:
        raise SourceError("csv.json", f"bản ghi sửa không phải đối tượng JSON các cột CSV: {exc}",
                          f"the corrected record is not a JSON object of the CSV columns: {exc}",
                          ) from None  # fmt: skip
    return map_row(file, 0, row, known)


def csv_kind(name: str, vi: str, en: str, map_row: RowMapper, **flags: Any) -> SourceKind:
    """A kind whose files are CSV, one record a row, mapped by ``map_row``."""
    return SourceKind(name, vi, en, read=partial(read_rows, name), map=partial(_map, map_row),
                      remap=partial(_remap, map_row), **flags)  # fmt: skip


# --- what the rows share ---------------------------------------------------------------------
def raw(row: dict[str, str]) -> str:
    return orjson.dumps(row).decode()


def first(row: dict[str, str], *names: str) -> str:
    """The first non-empty of the columns ``names`` (a column has several spellings)."""
    for n in names:
        if row.get(n):
            return row[n]
    return ""


def unit(kind: str, path: str, n: int, row: dict[str, str], key: str) -> Unit:
    """The unit of a row keyed ``key`` (a row without a key is named by its place); a keyed
    row's digest lets an identical re-send be skipped."""
    text = raw(row)
    out = Unit(key=key or f"{Path(path).name}#{n}", file=path, kind=kind, raw=text)
    if key:
        out.digest = hashlib.blake2b(text.encode(), digest_size=20).hexdigest()
    return out


def is_head(row: dict[str, str]) -> bool:
    """The row's person heads the household."""
    return first(row, "quan_he_chu_ho").strip().lower() in ("chủ hộ", "chu ho", "chủ hộ gia đình")


_DEMOGRAPHIC_FIELDS = (
    ("ngay_sinh", "birth_date"), ("ho_ten", "full_name"), ("gioi_tinh", "sex"),
    ("so_dinh_danh", "so_cccd", "cccd"), ("ma_so_bhxh", "bhxh"), ("ma_the_bhyt", "bhyt"),
    ("so_dien_thoai", "dien_thoai", "phone"), ("dia_chi_thuong_tru", "dia_chi", "address"),
    ("ma_xa", "commune_code"), ("ma_tinh", "province_code"),
)  # fmt: skip


def demographics(row: dict[str, str], source: str, rid: str, p: list[Problem]) -> SourceRecord:
    """The person a row names, as source ``source`` record ``rid``."""
    values = tuple(first(row, *names) for names in _DEMOGRAPHIC_FIELDS)
    rec, problems = _checked_demographics(source, rid, values)
    p.extend(problems)
    return rec


@lru_cache(maxsize=512)
def _checked_demographics(
    source: str, rid: str, values: tuple[str, ...]
) -> tuple[SourceRecord, tuple[Problem, ...]]:
    """The person of a row, checked once: a child's doses repeat the same demographics row
    after row, and the identifier checks are the costly part of mapping a dose."""
    birth_raw, name, sex, doc, bhxh, bhyt, phone, address, commune, province = values
    p: list[Problem] = []
    birth = parse_time(birth_raw, "ngay_sinh", p, allow_partial=True)
    rec = SourceRecord(
        source=source,
        record_id=rid,
        full_name=name or None,
        birth_date=birth[:10] if birth else None,
        sex=sex_code(sex) or "U",
        cccd=check_document(doc, "so_cccd", p),
        bhxh=check_identifier("bhxh", bhxh, "ma_so_bhxh", p),
        bhyt=check_identifier("bhyt", bhyt, "ma_the_bhyt", p),
        phone=phone or None,
        address=address or None,
        commune_code=commune or None,
        province_code=province or None,
    )
    return rec, tuple(p)
