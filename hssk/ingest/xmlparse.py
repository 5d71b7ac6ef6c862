"""Hardened, streaming parsers for QĐ 130 hồ sơ files (envelope GIAMDINHHS, inner tables).

Every failure is an ``XmlError`` with a reason in Vietnamese and English; nothing else escapes.
Safety: DTDs are refused (no entity expansion: billion laughs, external entities), no network,
no huge text nodes, bounded inner-file size; the envelope is read with ``iterparse`` and every
finished ``HOSO`` is cleared, so memory stays flat whatever the file size.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import io
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import IO, Any

from lxml import etree

from hssk.ingest.encoding import EncodingMismatch, reading
from hssk.ingest.xml130_tables import REFUSED, Table, renames_to_130, root_aliases, tables

# A real export's quirk: the xsi namespace URI with a space instead of '-'. Same length, so
# replacing it keeps byte offsets (and error positions) intact.
_BAD_XSI = b"XMLSchema instance"
_GOOD_XSI = b"XMLSchema-instance"
MAX_INNER_BYTES = 8 * 1024 * 1024  # one decoded inner table (libxml2 caps text at 10 MB)
MAX_FIELD_CHARS = 100_000  # a single field value
WHOLE_FILE_BYTES = 1 << 20  # envelope files up to this size are read at once, larger ones streamed


class XmlError(Exception):
    """A document could not be read; ``reason`` (English) and ``vi`` say why, ``rule`` what."""

    def __init__(self, rule: str, vi: str, en: str, *, line: int | None = None):
        self.rule = rule
        self.vi = vi
        self.reason = en
        self.line = line
        super().__init__(f"{rule}: {en}")


@dataclass
class HoSo:
    """One hồ sơ (one visit, MA_LK): the records of each inner table, by LOAIHOSO."""

    index: int  # position in the file (0-based), for checkpoints and error keys
    facility: str  # MACSKCB of the envelope
    tables: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    errors: list[tuple[str, XmlError]] = field(default_factory=list)  # (LOAIHOSO, error)
    # what was read otherwise than the file said, yet stored (LOAIHOSO, note): e.g. a table
    # declaring ISO-8859-1 over UTF-8 bytes
    warnings: list[tuple[str, XmlError]] = field(default_factory=list)
    raw: dict[str, bytes] = field(default_factory=dict)  # decoded inner files, for quarantine
    # fields read under another name (QĐ 4210, 3176): QĐ 130 name → the name in the file
    renamed: dict[str, str] = field(default_factory=dict)
    pending: list[tuple[str, str]] = field(default_factory=list)  # (LOAIHOSO, base64) to decode


class _FixQuirk(io.RawIOBase):
    """File wrapper replacing the malformed xsi namespace URI on the fly (across chunks)."""

    def __init__(self, raw: IO[bytes]):
        self._raw = raw
        self._tail = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        chunk = self._raw.read(len(b) - len(_BAD_XSI))
        data = self._tail + (chunk or b"")
        if not data:
            return 0
        data = data.replace(_BAD_XSI, _GOOD_XSI)
        keep = len(_BAD_XSI) - 1 if chunk else 0
        out, self._tail = (data[:-keep], data[-keep:]) if keep else (data, b"")
        b[: len(out)] = out
        return len(out)


def parser_kwargs() -> dict[str, Any]:
    """Hardened lxml parser options: no entities, DTD, network nor huge trees."""
    return {
        "resolve_entities": False,
        "no_network": True,
        "load_dtd": False,
        "huge_tree": False,
        "remove_comments": True,
        "remove_pis": True,
    }


_local_parsers = threading.local()


def _parser() -> Any:
    """A hardened parser, reused within a thread (creating one per table costs time)."""
    p = getattr(_local_parsers, "parser", None)
    if p is None:
        # Inner tables are indented: dropping the whitespace between elements (never a
        # field's own text, however blank) makes their parse ~17 % cheaper.
        p = _local_parsers.parser = etree.XMLParser(**parser_kwargs(), remove_blank_text=True)
    return p


def _refuse_dtd(elem: Any) -> None:
    info = elem.getroottree().docinfo
    if info.doctype or info.internalDTD is not None:
        raise XmlError(
            "xml.dtd",
            "Tệp có khai báo DOCTYPE/ENTITY: bị từ chối vì lý do an toàn (không cho phép DTD).",
            "the document declares a DOCTYPE/ENTITY: refused for safety (DTDs and entities "
            "are not allowed; remove the <!DOCTYPE …> declaration).",
        )


def _syntax(exc: Exception, what: str) -> XmlError:
    line = getattr(exc, "lineno", None)
    msg = str(exc)
    low = msg.lower()
    if "encoding" in low or "utf-8" in low or "input is not proper" in low or "bytes:" in low:
        return XmlError(
            "xml.encoding",
            f"{what}: sai mã hóa ký tự (phải là UTF-8): {msg}",
            f"{what}: wrong character encoding (must be UTF-8): {msg}",
            line=line if isinstance(line, int) else None,
        )
    if (
        "premature end" in low
        or "extra content" in low
        or "end of data" in low
        or "not closed" in low
    ):
        rule, vi_what = "xml.truncated", "tệp bị cắt cụt hoặc thiếu thẻ đóng"
        en_what = "the file is truncated or a tag is not closed"
    else:
        rule, vi_what, en_what = "xml.syntax", "sai cú pháp XML", "malformed XML"
    return XmlError(
        rule,
        f"{what}: {vi_what}: {msg}",
        f"{what}: {en_what}: {msg}",
        line=line if isinstance(line, int) else None,
    )


def _text(elem: Any) -> str:
    text = elem.text or ""
    if len(text) > MAX_FIELD_CHARS:
        raise XmlError(
            "xml.size",
            f"Trường {elem.tag} dài {len(text)} ký tự, vượt giới hạn {MAX_FIELD_CHARS}.",
            f"field {elem.tag} holds {len(text)} characters, over the limit of {MAX_FIELD_CHARS}.",
        )
    return text.strip()


@lru_cache(maxsize=1)
def _by_root() -> dict[str, Table]:
    out = {alias: t for t in tables().values() for alias in root_aliases(t)}
    out.update({t.root: t for t in tables().values()})
    return out


_NO_RENAMES: Mapping[str, str] = MappingProxyType({})


def _records(
    root: Any, table: Table, long_values: bool, renamed: dict[str, str] | None
) -> list[dict[str, str]]:
    """The records of a parsed inner table, under the QĐ 130 field names."""
    renames = renames_to_130().get(table.name, _NO_RENAMES)
    if table.single:
        return [_row(root, long_values, renames, renamed)]
    rows = root.iter(table.row_tag, f"{{*}}{table.row_tag}")
    return [_row(e, long_values, renames, renamed) for e in rows]


def _row(
    elem: Any,
    long_values: bool = True,
    renames: Mapping[str, str] = _NO_RENAMES,
    renamed: dict[str, str] | None = None,
) -> dict[str, str]:
    """Field name → stripped text of one record element. ``long_values``: the table is big
    enough to hold a field over MAX_FIELD_CHARS, so each value's size is checked.
    ``renames``: the table's 3176/4210 names → QĐ 130 names (a name already present wins);
    ``renamed`` collects the renames made (130 name → name in the file)."""
    kids = elem.iterchildren(etree.Element)  # elements only (no comments, PIs, entities)
    if long_values:
        out = {c.tag: _text(c) for c in kids}
    else:
        out = {c.tag: (t.strip() if (t := c.text) else "") for c in kids}
    if "}" in "".join(out):  # namespaced field names: rare
        out = {k.rsplit("}", 1)[-1]: v for k, v in out.items()}
    if renames and not renames.keys().isdisjoint(out):  # a 3176 or 4210 export
        for old, new in renames.items():
            if old in out and new not in out:
                out[new] = out.pop(old)
                if renamed is not None:
                    renamed[new] = old
    return out


def readable(data: bytes, what: str, warnings: list[XmlError] | None = None) -> bytes:
    """``data`` to parse: a single-byte declaration over UTF-8 bytes is read as UTF-8 (a
    warning is added to ``warnings``); when the bytes cannot tell, an ``xml.encoding`` error."""
    try:
        r = reading(data)
    except EncodingMismatch as exc:
        raise XmlError("xml.encoding", f"{what}: {exc.vi}", f"{what}: {exc.reason}") from None
    if r.overridden and warnings is not None:
        warnings.append(
            XmlError(
                "xml.encoding",
                f"{what}: khai báo mã hóa {r.overridden} nhưng nội dung là UTF-8: đã đọc theo "
                'UTF-8. Sửa khai báo thành encoding="utf-8" ở phần mềm xuất.',
                f"{what}: declares {r.overridden} but holds UTF-8: read as UTF-8. Correct the "
                'exporter\'s declaration to encoding="utf-8".',
            )
        )
    return r.data


def parse_table(
    data: bytes,
    name: str | None = None,
    renamed: dict[str, str] | None = None,
    warnings: list[XmlError] | None = None,
) -> list[dict[str, str]]:
    """Records of one decoded inner file (XML1 … XML15). ``name`` checks the expected table.
    Fields of the older QĐ 4210 and of the 3176 variant come back under their QĐ 130 names;
    ``renamed`` collects which (130 name → name in the file), for error messages.
    ``warnings``: given, the declared encoding is checked first (``readable``) and what was
    read otherwise than declared is added to it (``decode_hoso`` checks before, once)."""
    if len(data) > MAX_INNER_BYTES:
        raise XmlError(
            "xml.size",
            f"Bảng {name or ''} dài {len(data)} byte, vượt giới hạn {MAX_INNER_BYTES}.",
            f"inner table {name or ''} is {len(data)} bytes, over the limit of {MAX_INNER_BYTES}.",
        )
    what = f"bảng {name}" if name else "bảng"
    data = data.replace(_BAD_XSI, _GOOD_XSI)
    if warnings is not None:
        data = readable(data, what, warnings)
    parser = _parser()
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise _syntax(exc, what) from None
    except (ValueError, TypeError) as exc:
        raise XmlError(
            "xml.syntax", f"{what}: không đọc được: {exc}", f"{what}: unreadable: {exc}"
        ) from None
    _refuse_dtd(root)
    tag = root.tag.rsplit("}", 1)[-1] if isinstance(root.tag, str) else ""
    table = _by_root().get(tag)
    if table is None or (name and table.name != name):
        expected = tables()[name].root if name and name in tables() else "a QĐ 130 table root"
        raise XmlError(
            "xml.root",
            f"{what}: thẻ gốc <{tag}> không đúng, cần <{expected}>.",
            f"{what}: root element <{tag}> is wrong, expected <{expected}>.",
        )
    return _records(root, table, len(data) > MAX_FIELD_CHARS, renamed)


def table_name_of(root_tag: str) -> str | None:
    t = _by_root().get(root_tag)
    return t.name if t else None


def decode_b64(text: str, what: str) -> bytes:
    """Strict base64 (whitespace allowed) with a clear error."""
    if len(text) * 3 // 4 <= MAX_INNER_BYTES:
        with contextlib.suppress(binascii.Error, ValueError):
            return base64.b64decode(text, validate=True)  # usual case: no line breaks
    compact = "".join(text.split())
    if len(compact) * 3 // 4 > MAX_INNER_BYTES:
        raise XmlError(
            "xml.size",
            f"{what}: nội dung base64 vượt giới hạn {MAX_INNER_BYTES} byte.",
            f"{what}: base64 content exceeds {MAX_INNER_BYTES} bytes.",
        )
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise XmlError(
            "xml.base64",
            f"{what}: NOIDUNGFILE không phải base64 hợp lệ ({exc}).",
            f"{what}: NOIDUNGFILE is not valid base64 ({exc}).",
        ) from None


def _local(tag: Any) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _hoso_from_elem(elem: Any, index: int, facility: str) -> HoSo:
    """Collect the (LOAIHOSO, base64) pairs; decoding is left to ``decode_hoso`` so it can run
    in a worker process."""
    hoso = HoSo(index=index, facility=facility)
    for fh in elem:
        if _local(fh.tag) != "FILEHOSO":
            continue
        loai, content = "", ""
        for child in fh:
            name = _local(child.tag)
            if name == "LOAIHOSO":
                loai = (child.text or "").strip().upper()
            elif name == "NOIDUNGFILE":
                content = child.text or ""
        if loai in REFUSED:
            vi, en = REFUSED[loai]
            hoso.errors.append((loai, XmlError("xml.loaihoso", vi, en)))
            continue
        if loai not in tables():
            hoso.errors.append(
                (
                    loai or "?",
                    XmlError(
                        "xml.loaihoso",
                        f"LOAIHOSO '{loai}' không thuộc QĐ 130 (XML0–XML15, trừ XML12).",
                        f"LOAIHOSO '{loai}' is not a QĐ 130 table (XML0–XML15 except XML12).",
                    ),
                )
            )
            continue
        hoso.pending.append((loai, content))
    return hoso


def decode_hoso(hoso: HoSo) -> HoSo:
    """Decode and parse the pending inner files of a hồ sơ (errors are kept per table)."""
    for loai, content in hoso.pending:
        try:
            notes: list[XmlError] = []
            data = readable(decode_b64(content, loai), f"bảng {loai}", notes)
            hoso.raw[loai] = data  # as read: a corrected declaration stays corrected
            hoso.tables.setdefault(loai, []).extend(parse_table(data, loai, hoso.renamed))
            hoso.warnings += [(loai, n) for n in notes]
        except XmlError as exc:
            hoso.errors.append((loai, exc))
    hoso.pending = []
    return hoso


def iter_hoso(source: str | IO[bytes], *, skip: int = 0) -> Iterator[HoSo]:
    """Stream the hồ sơ of an envelope file (path or binary file). The first ``skip`` are
    passed over without decoding (resume). Raises XmlError for the file as a whole (after
    yielding what came before the fault)."""
    fh: IO[bytes] = open(source, "rb") if isinstance(source, str) else source  # noqa: SIM115
    try:
        reader: IO[bytes]
        notes: list[XmlError] = []  # a bare table's declared encoding overridden
        in_memory = isinstance(source, io.BytesIO)
        if in_memory or (
            isinstance(source, str) and os.fstat(fh.fileno()).st_size <= WHOLE_FILE_BYTES
        ):
            # the usual one-hồ-sơ file: read at once, without the chunk-by-chunk quirk filter
            # (5 % of mapping a visit)
            whole = fh.read().replace(_BAD_XSI, _GOOD_XSI)
            reader = io.BytesIO(readable(whole, "tệp", notes))
        else:
            reader = io.BufferedReader(_FixQuirk(fh), buffer_size=1 << 16)
        context = etree.iterparse(reader, events=("start", "end"), **parser_kwargs())
        facility, index, first, root = "", 0, True, None
        try:
            for event, elem in context:
                if first:
                    first = False
                    _refuse_dtd(elem)
                    root = elem
                    bare = _by_root().get(_local(elem.tag))
                    if bare is not None:  # a bare inner table (e.g. an XML0 check-in file)
                        if skip == 0:
                            hoso = _bare_table(context, elem, bare)
                            hoso.warnings += [(bare.name, n) for n in notes]
                            yield hoso
                        return
                    if _local(elem.tag) != "GIAMDINHHS":
                        raise XmlError(
                            "xml.root",
                            f"Thẻ gốc <{_local(elem.tag)}> không đúng, cần <GIAMDINHHS>.",
                            f"root element <{_local(elem.tag)}> is wrong, expected <GIAMDINHHS>.",
                        )
                if event != "end":
                    continue
                name = _local(elem.tag)
                if name == "MACSKCB":
                    facility = (elem.text or "").strip()
                elif name == "HOSO":
                    if index >= skip:
                        yield _hoso_from_elem(elem, index, facility)
                    index += 1
                    elem.clear()
                    # drop finished siblings so the tree does not grow with the file
                    parent = elem.getparent()
                    while parent is not None and elem.getprevious() is not None:
                        del parent[0]
        except etree.XMLSyntaxError as exc:
            raise _syntax(exc, "tệp hồ sơ") from None
        except (ValueError, TypeError, LookupError, UnicodeError) as exc:
            raise XmlError(
                "xml.syntax", f"tệp hồ sơ không đọc được: {exc}", f"unreadable hồ sơ file: {exc}"
            ) from None
        if root is None:
            raise XmlError("xml.empty", "Tệp rỗng.", "the file is empty.")
    finally:
        if isinstance(source, str):
            fh.close()


def _bare_table(context: Any, root: Any, table: Table) -> HoSo:
    """Read the rest of a bare inner table (bounded like an inner file) as one hồ sơ."""
    size = 0
    for event, elem in context:
        if event == "end" and elem.text:
            size += len(elem.text)
            if size > MAX_INNER_BYTES:
                raise XmlError(
                    "xml.size",
                    f"Bảng {table.name} vượt giới hạn {MAX_INNER_BYTES} byte.",
                    f"table {table.name} exceeds {MAX_INNER_BYTES} bytes.",
                )
    renamed: dict[str, str] = {}
    rows = _records(root, table, True, renamed)
    fac = next((r.get("MA_CSKCB", "") for r in rows if r.get("MA_CSKCB")), "")
    hoso = HoSo(index=0, facility=fac, tables={table.name: rows}, renamed=renamed)
    hoso.raw[table.name] = etree.tostring(root, encoding="utf-8")
    return hoso


def iter_hoso_bytes(data: bytes, *, skip: int = 0) -> Iterator[HoSo]:
    """Same as ``iter_hoso`` for an in-memory document."""
    return iter_hoso(io.BytesIO(data), skip=skip)


def raw_document(hoso: HoSo) -> str:
    """A readable, editable form of a hồ sơ for the quarantine: the decoded inner files
    side by side under ``<HOSO_RAW MACSKCB="…">`` (what ``parse_raw_document`` reads back)."""
    parts = [f'<HOSO_RAW MACSKCB="{_attr(hoso.facility)}">']
    for _name, data in sorted(hoso.raw.items(), key=lambda kv: int(kv[0][3:] or 0)):
        text = data.decode("utf-8", "replace")
        if text.startswith("<?xml"):
            text = text.split("?>", 1)[1]
        parts.append(text.strip())
    parts.append("</HOSO_RAW>")
    return "\n".join(parts)


def _attr(value: str) -> str:
    return value.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def parse_raw_document(text: str) -> HoSo:
    """Read back a (possibly corrected) ``HOSO_RAW`` document into a HoSo."""
    parser = etree.XMLParser(**parser_kwargs())
    try:
        root = etree.fromstring(text.encode("utf-8").replace(_BAD_XSI, _GOOD_XSI), parser)
    except etree.XMLSyntaxError as exc:
        raise _syntax(exc, "hồ sơ sửa") from None
    _refuse_dtd(root)
    if _local(root.tag) != "HOSO_RAW":
        raise XmlError(
            "xml.root", "Cần thẻ gốc <HOSO_RAW>.", "expected the root element <HOSO_RAW>."
        )
    hoso = HoSo(index=0, facility=root.get("MACSKCB", ""))
    for child in root:
        name = table_name_of(_local(child.tag))
        if name is None:
            continue
        data = etree.tostring(child, encoding="utf-8")
        hoso.raw[name] = data
        hoso.tables.setdefault(name, []).extend(parse_table(data, name, hoso.renamed))
    return hoso


def build_envelope(
    facility: str, hosos: list[dict[str, bytes]], *, made: str = "20250101"
) -> bytes:
    """A GIAMDINHHS envelope around inner files ({LOAIHOSO: xml bytes} per hồ sơ)."""
    out = [
        '<?xml version="1.0" encoding="utf-8"?>\r\n<GIAMDINHHS xmlns:xsd="http://www.w3.org/2001/'
        'XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
        f"<THONGTINDONVI><MACSKCB>{facility}</MACSKCB></THONGTINDONVI>",
        f"<THONGTINHOSO><NGAYLAP>{made}</NGAYLAP><SOLUONGHOSO>{len(hosos)}</SOLUONGHOSO>"
        "<DANHSACHHOSO>",
    ]
    for files in hosos:
        out.append("<HOSO>")
        for loai, data in files.items():
            b64 = base64.b64encode(data).decode()
            out.append(
                f"<FILEHOSO><LOAIHOSO>{loai}</LOAIHOSO><NOIDUNGFILE>{b64}</NOIDUNGFILE></FILEHOSO>"
            )
        out.append("</HOSO>")
    out.append("</DANHSACHHOSO></THONGTINHOSO><CHUKYDONVI/></GIAMDINHHS>")
    return "\r\n".join(out).encode("utf-8")


def build_table(name: str, records: list[dict[str, str]], *, cdata: bool = True) -> bytes:
    """An inner file of table ``name`` with the given records (fields in the table's order)."""
    table = tables()[name]

    def row(rec: dict[str, str]) -> str:
        cells = []
        for f in table.fields:
            v = rec.get(f, "")
            if v == "":
                cells.append(f"<{f}/>")
            elif cdata and not v.replace(".", "").isdigit():
                cells.append(f"<{f}><![CDATA[{v}]]></{f}>")
            else:
                cells.append(f"<{f}>{v}</{f}>")
        return "".join(cells)

    parts = table.record_path.split("/")
    head = '<?xml version="1.0" encoding="utf-8"?>\r\n'
    if table.single:
        return (head + f"<{table.root}>" + row(records[0]) + f"</{table.root}>").encode()
    opening = "".join(f"<{p}>" for p in parts[:-1])
    closing = "".join(f"</{p}>" for p in reversed(parts[:-1]))
    rows = "\r\n".join(f"<{parts[-1]}>{row(r)}</{parts[-1]}>" for r in records)
    return (head + opening + rows + closing).encode()
