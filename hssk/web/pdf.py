"""PDF of one visit or of the whole book, with Vietnamese text, signed by the platform.

The pages are written here (a small writer: a TrueType font with Vietnamese glyphs is
embedded, Type0 / CIDFontType2, Identity-H, glyph ids from the font's cmap). The first page
carries a QR code that opens the document's verification page (``/verify/<token>``: a token the
platform signed, naming the document and the digest of its content, which the footer prints).
The file is then signed with the platform's X.509 certificate as PAdES
(``access.pdfsign``), a signature PDF readers recognise and ``hssk verify file.pdf`` checks.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import struct
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import qrcode

from hssk.access import pdfsign
from hssk.access.pdfsign import PdfSigner
from hssk.access.signing import sign_claims
from hssk.kernel.clock import now
from hssk.kernel.config import Settings
from hssk.web.i18n import t
from hssk.web.models import HealthBook

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)
QR_SIZE = 92.0  # points: 3.2 cm, read by a phone at arm's length
PAGE_W, PAGE_H, MARGIN = 595.0, 842.0, 50.0


class FontMissing(RuntimeError):
    """No TrueType font with Vietnamese glyphs was found."""


@dataclass(frozen=True)
class Font:
    data: bytes
    units: int
    ascent: int
    descent: int
    bbox: tuple[int, int, int, int]
    cmap: dict[int, int]
    widths: list[int]  # advance width per glyph id
    tables: dict[str, tuple[int, int]]  # tag → (offset, length)

    def glyphs(self, text: str) -> list[int]:
        return [self.cmap.get(ord(ch), 0) for ch in unicodedata.normalize("NFC", text)]

    def width(self, text: str, size: float) -> float:
        return (
            sum(self.widths[min(g, len(self.widths) - 1)] for g in self.glyphs(text))
            * size
            / self.units
        )


def font_path() -> Path:
    """``HSSK_PDF_FONT`` or the first system font with Vietnamese glyphs found."""
    env = os.environ.get("HSSK_PDF_FONT")
    shipped = str(Path(__file__).parent / "data/fonts/DejaVuSans.ttf")  # any machine, same PDF
    for cand in ([env] if env else []) + [shipped, *FONT_CANDIDATES]:
        if cand and Path(cand).is_file():
            return Path(cand)
    try:  # matplotlib ships DejaVuSans when it is installed
        mpl = importlib.import_module("matplotlib")
        path = Path(str(mpl.__file__)).parent / "mpl-data/fonts/ttf/DejaVuSans.ttf"
        if path.is_file():
            return path
    except ImportError:
        pass
    raise FontMissing(
        "no TrueType font with Vietnamese glyphs: install Debian package fonts-dejavu-core "
        "or set HSSK_PDF_FONT to a .ttf file"
    )


@lru_cache(maxsize=2)
def load_font(path: str | None = None) -> Font:
    """Parse the tables of a TrueType font that the writer needs."""
    data = Path(path or font_path()).read_bytes()
    num = struct.unpack(">H", data[4:6])[0]
    tables = {}
    for i in range(num):
        tag, _, off, length = struct.unpack(">4sIII", data[12 + 16 * i : 28 + 16 * i])
        tables[tag.decode("latin-1")] = (off, length)
    head = tables["head"][0]
    units = struct.unpack(">H", data[head + 18 : head + 20])[0]
    bbox = struct.unpack(">hhhh", data[head + 36 : head + 44])
    hhea = tables["hhea"][0]
    ascent, descent = struct.unpack(">hh", data[hhea + 4 : hhea + 8])
    n_hmetrics = struct.unpack(">H", data[hhea + 34 : hhea + 36])[0]
    maxp = tables["maxp"][0]
    n_glyphs = struct.unpack(">H", data[maxp + 4 : maxp + 6])[0]
    hmtx = tables["hmtx"][0]
    widths = [
        struct.unpack(">H", data[hmtx + 4 * i : hmtx + 4 * i + 2])[0] for i in range(n_hmetrics)
    ]
    widths += [widths[-1]] * (n_glyphs - n_hmetrics)
    cmap = _cmap(data, tables["cmap"][0])
    return Font(data, units, ascent, descent, bbox, cmap, widths, tables)


# Tables a PDF reader needs from an embedded TrueType font (PDF 32000 §9.9); the rest is dropped.
_SUBSET_TABLES = ("cvt ", "fpgm", "glyf", "head", "hhea", "hmtx", "loca", "maxp", "prep")


def _checksum(data: bytes) -> int:
    padded = data + b"\0" * (-len(data) % 4)
    return sum(struct.unpack(f">{len(padded) // 4}I", padded)) & 0xFFFFFFFF


def subset(font: Font, glyphs: set[int]) -> bytes:
    """The font with only ``glyphs`` (and the components of composite glyphs) drawn.

    Glyph ids are kept (unused glyphs become empty), so the PDF's glyph ids stay valid and
    no renumbering is needed; the file shrinks from ~750 kB to a few tens of kB.
    """
    data, tables = font.data, font.tables
    head_off = tables["head"][0]
    short = struct.unpack(">h", data[head_off + 50 : head_off + 52])[0] == 0
    n = len(font.widths)
    loca_off = tables["loca"][0]
    if short:
        loca = [2 * x for x in struct.unpack(f">{n + 1}H", data[loca_off : loca_off + 2 * (n + 1)])]
    else:
        loca = list(struct.unpack(f">{n + 1}I", data[loca_off : loca_off + 4 * (n + 1)]))
    glyf_off = tables["glyf"][0]
    todo, keep = [g for g in glyphs if 0 <= g < n] + [0], set()
    while todo:  # composite glyphs draw other glyphs: keep those too
        g = todo.pop()
        if g in keep:
            continue
        keep.add(g)
        start, end = glyf_off + loca[g], glyf_off + loca[g + 1]
        if end - start >= 10 and struct.unpack(">h", data[start : start + 2])[0] < 0:
            pos = start + 10
            while True:
                flags, comp = struct.unpack(">HH", data[pos : pos + 4])
                todo.append(comp)
                pos += 4 + (4 if flags & 1 else 2)
                pos += 2 if flags & 8 else 4 if flags & 0x40 else 8 if flags & 0x80 else 0
                if not flags & 0x20:
                    break
    glyf = bytearray()
    new_loca = [0]
    for g in range(n):
        if g in keep:
            glyf += data[glyf_off + loca[g] : glyf_off + loca[g + 1]]
            glyf += b"\0" * (-len(glyf) % 4)
        new_loca.append(len(glyf))
    head = bytearray(data[head_off : head_off + tables["head"][1]])
    head[8:12] = b"\0\0\0\0"  # checkSumAdjustment, set below
    head[50:52] = struct.pack(">h", 1)  # long loca offsets
    out_tables = {
        tag: data[tables[tag][0] : tables[tag][0] + tables[tag][1]]
        for tag in _SUBSET_TABLES
        if tag in tables and tag not in ("glyf", "loca", "head")
    }
    out_tables.update(
        {"glyf": bytes(glyf), "loca": struct.pack(f">{n + 1}I", *new_loca), "head": bytes(head)}
    )
    tags = sorted(out_tables)
    count = len(tags)
    power = 1 << (count.bit_length() - 1)
    header = struct.pack(">IHHHH", 0x00010000, count, power * 16, power.bit_length() - 1,
                         count * 16 - power * 16)  # fmt: skip
    offset = 12 + 16 * count
    records, body = b"", b""
    for tag in tags:
        table = out_tables[tag]
        records += struct.pack(
            ">4sIII", tag.encode("latin-1"), _checksum(table), offset, len(table)
        )
        padded = table + b"\0" * (-len(table) % 4)
        body += padded
        offset += len(padded)
    font_bytes = bytearray(header + records + body)
    adjust = (0xB1B0AFBA - _checksum(bytes(font_bytes))) & 0xFFFFFFFF
    head_at = (
        12
        + 16 * count
        + sum(len(out_tables[t]) + (-len(out_tables[t]) % 4) for t in tags[: tags.index("head")])
    )
    font_bytes[head_at + 8 : head_at + 12] = struct.pack(">I", adjust)
    return bytes(font_bytes)


def _cmap(data: bytes, base: int) -> dict[int, int]:
    """Unicode → glyph id from the (3,1) format 4 subtable (the BMP covers Vietnamese)."""
    count = struct.unpack(">H", data[base + 2 : base + 4])[0]
    for i in range(count):
        pid, eid, off = struct.unpack(">HHI", data[base + 4 + 8 * i : base + 12 + 8 * i])
        sub = base + off
        if (pid, eid) in ((3, 1), (0, 3)) and struct.unpack(">H", data[sub : sub + 2])[0] == 4:
            return _format4(data, sub)
    raise FontMissing("the font has no Unicode BMP cmap (format 4)")


def _format4(data: bytes, sub: int) -> dict[int, int]:
    segs = struct.unpack(">H", data[sub + 6 : sub + 8])[0] // 2
    ends = struct.unpack(f">{segs}H", data[sub + 14 : sub + 14 + 2 * segs])
    p = sub + 16 + 2 * segs
    starts = struct.unpack(f">{segs}H", data[p : p + 2 * segs])
    deltas = struct.unpack(f">{segs}h", data[p + 2 * segs : p + 4 * segs])
    ro_base = p + 4 * segs
    offsets = struct.unpack(f">{segs}H", data[ro_base : ro_base + 2 * segs])
    out: dict[int, int] = {}
    for i in range(segs):
        for c in range(starts[i], ends[i] + 1):
            if c == 0xFFFF:
                continue
            if offsets[i] == 0:
                g = (c + deltas[i]) & 0xFFFF
            else:
                addr = ro_base + 2 * i + offsets[i] + 2 * (c - starts[i])
                g = struct.unpack(">H", data[addr : addr + 2])[0]
                g = (g + deltas[i]) & 0xFFFF if g else 0
            if g:
                out[c] = g
    return out


# --- layout -------------------------------------------------------------------------------------
@dataclass
class Line:
    text: str
    size: float = 10.0
    gap: float = 4.0
    indent: float = 0.0


def wrap(font: Font, text: str, size: float, width: float) -> list[str]:
    """Greedy word wrap to ``width`` points."""
    out: list[str] = []
    for para in text.split("\n"):
        line = ""
        for word in para.split(" "):
            cand = f"{line} {word}" if line else word
            if font.width(cand, size) <= width or not line:
                line = cand
            else:
                out.append(line)
                line = word
        out.append(line)
    return out


def _hex(font: Font, text: str) -> str:
    return "".join(f"{g:04X}" for g in font.glyphs(text))


def _pages(font: Font, lines: list[Line], footer: str, qr: tuple[str, str] | None) -> list[bytes]:
    """Content streams of the pages; ``qr`` (url, caption) is drawn at the first page's top
    right, the text beside it wrapped short of it."""
    pages: list[list[str]] = [[]]
    y = PAGE_H - MARGIN
    band = PAGE_H - MARGIN - QR_SIZE - 16 if qr else PAGE_H  # the QR code's lower edge
    if qr:
        x = PAGE_W - MARGIN - QR_SIZE
        pages[0] += _qr_ops(qr[0], x, PAGE_H - MARGIN + 6, QR_SIZE)
        pages[0].append(f"BT /F1 7 Tf {x:.1f} {band + 2:.1f} Td <{_hex(font, qr[1])}> Tj ET")
    for ln in lines:
        beside = len(pages) == 1 and y > band
        width = PAGE_W - 2 * MARGIN - ln.indent - (QR_SIZE + 12 if beside else 0)
        for part in wrap(font, ln.text, ln.size, width):
            step = ln.size * 1.3
            if y - step < MARGIN + 20:
                pages.append([])
                y = PAGE_H - MARGIN
            y -= step
            pages[-1].append(
                f"BT /F1 {ln.size:g} Tf {MARGIN + ln.indent:.1f} {y:.1f} Td <{_hex(font, part)}> Tj ET"
            )
        y -= ln.gap
    out = []
    for i, ops in enumerate(pages, 1):
        foot = f"{footer} — {i}/{len(pages)}"
        ops.append(f"BT /F1 8 Tf {MARGIN:.1f} {MARGIN - 10:.1f} Td <{_hex(font, foot)}> Tj ET")
        out.append("\n".join(ops).encode("ascii"))
    return out


# --- issuing ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Issuer:
    """Who issues a PDF: the certificate it is signed with, and the platform key and address
    that make its QR code's verification link."""

    signer: PdfSigner
    settings: Settings
    base_url: str  # e.g. https://hssk.example.vn (the verification page is under it)


def platform_issuer(settings: Settings, base_url: str) -> Issuer:
    """PDFs issued by the platform itself (its certificate; links under ``base_url``)."""
    return Issuer(pdfsign.platform_signer(settings), settings, base_url.rstrip("/"))


def digest(title: str, lines: list[Line]) -> str:
    """A short code of the document's text, printed in its footer and named by its QR code."""
    text = "\n".join([title, *(x.text for x in lines)])
    return hashlib.sha256(text.encode()).hexdigest()[:16].upper()


def verification_url(issuer: Issuer, claims: dict[str, Any]) -> str:
    """The address the QR code opens: the verification page of a platform-signed token."""
    return f"{issuer.base_url}/verify/{sign_claims(issuer.settings, claims)}"


def _qr_ops(url: str, x: float, y: float, size: float) -> list[str]:
    """Drawing operators of a QR code of ``url`` whose top-left corner is at (x, y)."""
    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(url)
    code.make(fit=True)
    matrix = code.get_matrix()
    cell = size / len(matrix)
    rects = [
        f"{x + c * cell:.2f} {y - (r + 1) * cell:.2f} {cell:.2f} {cell:.2f} re"
        for r, row in enumerate(matrix)
        for c, dark in enumerate(row)
        if dark
    ]
    return ["q 1 1 1 rg", f"{x - 4:.1f} {y - size - 4:.1f} {size + 8:.1f} {size + 8:.1f} re f",
            "0 0 0 rg", *rects, "f Q"]  # fmt: skip


# --- document -----------------------------------------------------------------------------------
def render_pdf(
    title: str,
    lines: list[Line],
    issuer: Issuer | None,
    lang: str = "vi",
    kind: str = "book",
    subject: str = "",
) -> bytes:
    """A PDF with ``lines`` flowed over A4 pages. With an ``issuer``: a QR code of the
    verification link on the first page, the content's code in the footer, and the issuer's
    PAdES signature over the whole file. ``kind`` and ``subject`` (a masked name) are what
    the verification page tells whoever scans the code."""
    font = load_font()
    code = digest(title, lines)
    qr: tuple[str, str] | None = None
    footer = title
    if issuer is not None:
        issued = now()
        claims = {"k": kind, "s": subject, "i": issued.strftime("%Y-%m-%dT%H:%M:%SZ"), "d": code}
        qr = (verification_url(issuer, claims), t("pdf_scan", lang))
        footer = f"{title} · {t('pdf_signed', lang)} · {t('pdf_code', lang)} {code}"
    streams = _pages(font, [Line(title, 15, 8), *lines], footer, qr)
    objs: list[bytes] = []

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    texts = [title, footer, "0123456789/— ", *(x.text for x in lines), qr[1] if qr else ""]
    used = sorted({g for text in texts for g in font.glyphs(text)} | {0})
    sub = subset(font, set(used))
    font_file = zlib.compress(sub)
    ff = add(
        b"<< /Length %d /Length1 %d /Filter /FlateDecode >>\nstream\n" % (len(font_file), len(sub))
        + font_file
        + b"\nendstream"
    )
    scale = 1000 / font.units
    bbox = " ".join(str(int(v * scale)) for v in font.bbox)
    desc = add(
        (
            f"<< /Type /FontDescriptor /FontName /HSSKSans /Flags 32 /FontBBox [{bbox}] /ItalicAngle 0 "
            f"/Ascent {int(font.ascent * scale)} /Descent {int(font.descent * scale)} /CapHeight {int(font.ascent * scale)} "
            f"/StemV 80 /FontFile2 {ff} 0 R >>"
        ).encode()
    )
    w = " ".join(f"{g} [{int(font.widths[min(g, len(font.widths) - 1)] * scale)}]" for g in used)
    cid = add(
        (
            "<< /Type /Font /Subtype /CIDFontType2 /BaseFont /HSSKSans "
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
            f"/FontDescriptor {desc} 0 R /CIDToGIDMap /Identity /DW 500 /W [{w}] >>"
        ).encode()
    )
    to_unicode = _to_unicode(font, used)
    tu = add(b"<< /Length %d >>\nstream\n" % len(to_unicode) + to_unicode + b"\nendstream")
    f1 = add(
        f"<< /Type /Font /Subtype /Type0 /BaseFont /HSSKSans /Encoding /Identity-H /DescendantFonts [{cid} 0 R] /ToUnicode {tu} 0 R >>".encode()
    )
    pages_id = len(objs) + 2 * len(streams) + 1  # after each page's (content, page)
    page_ids = []
    for i, content in enumerate(streams):
        packed = zlib.compress(content)
        cs = add(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed)
            + packed
            + b"\nendstream"
        )
        link = ""
        if qr and i == 0:  # the QR code is a link too
            x0, y1 = PAGE_W - MARGIN - QR_SIZE, PAGE_H - MARGIN + 6
            link = (f" /Annots [<< /Type /Annot /Subtype /Link /Border [0 0 0] "
                    f"/Rect [{x0:.1f} {y1 - QR_SIZE:.1f} {x0 + QR_SIZE:.1f} {y1:.1f}] "
                    f"/A << /S /URI /URI ({qr[0]}) >> >>]")  # fmt: skip
        page_ids.append(
            add(
                f"<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 {PAGE_W:g} {PAGE_H:g}] "
                f"/Resources << /Font << /F1 {f1} 0 R >> >> /Contents {cs} 0 R{link} >>".encode()
            )
        )
    kids = " ".join(f"{p} 0 R" for p in page_ids)
    assert add(f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>".encode()) == pages_id
    info = add(
        f"<< /Title <{_utf16(title)}> /Producer (HSSK) /CreationDate ({datetime.now(UTC):D:%Y%m%d%H%M%SZ}) >>".encode()
    )
    root = add(f"<< /Type /Catalog /Pages {pages_id} 0 R >>".encode())
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root {root} 0 R /Info {info} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    if issuer is None:
        return bytes(out)
    return pdfsign.sign_pdf(bytes(out), issuer.signer, reason=title)


def _to_unicode(font: Font, used: list[int]) -> bytes:
    rev: dict[int, int] = {}
    for cp, g in font.cmap.items():
        rev.setdefault(g, cp)
    pairs = [(g, rev[g]) for g in used if g in rev and rev[g] <= 0xFFFF]
    body = [
        "/CIDInit /ProcSet findresource begin 12 dict begin begincmap",
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def",
        "/CMapName /Adobe-Identity-UCS def /CMapType 2 def",
        "1 begincodespacerange <0000> <FFFF> endcodespacerange",
    ]
    for i in range(0, len(pairs), 100):
        chunk = pairs[i : i + 100]
        body.append(f"{len(chunk)} beginbfchar")
        body += [f"<{g:04X}> <{cp:04X}>" for g, cp in chunk]
        body.append("endbfchar")
    body += ["endcmap CMapName currentdict /CMap defineresource pop end end"]
    return "\n".join(body).encode()


def _utf16(text: str) -> str:
    return "FEFF" + text.encode("utf-16-be").hex().upper()


# --- content ------------------------------------------------------------------------------------
def _d(value: Any) -> str:
    from hssk.web.render import fmt_date

    return fmt_date(value)


def _n(value: Any, lang: str) -> str:
    from hssk.web.render import fmt_num

    return fmt_num(value, lang)


def visit_parts(book: HealthBook, visit_id: str) -> dict[str, Any]:
    """Everything in the book that belongs to one visit."""
    return {
        "prescriptions": [p for p in book.prescriptions or [] if p.visit_id == visit_id],
        "labs": [x for x in book.labs or [] if x.visit_id == visit_id],
        "imaging": [x for x in book.imaging or [] if x.visit_id == visit_id],
        "summaries": [x for x in book.summaries or [] if x.visit_id == visit_id],
    }


def _admin_lines(book: HealthBook, lang: str, card: bool = True) -> list[Line]:
    a = book.admin
    if a is None:
        return []
    sex = t(f"sex_{a.sex}", lang) if a.sex else ""
    out = [Line(t("group_admin", lang), 12, 4)]
    for key, value in (
        ("full_name", a.full_name),
        ("birth_date", _d(a.birth_date)),
        ("sex", sex),
        ("health_id", a.health_id),
        ("address", a.address),
        ("card_number", book.insurance.card_number if book.insurance and card else None),
    ):
        if value:
            out.append(Line(f"{t(key, lang)}: {value}", 10, 1, 10))
    if a.deceased_at is not None:
        out.append(Line(f"{t('deceased_on', lang)} {_d(a.deceased_at)}", 10, 1, 10))
    return out


def _visit_lines(book: HealthBook, visit_id: str, lang: str) -> list[Line]:
    v = next(x for x in book.visits or [] if x.id == visit_id)
    parts = visit_parts(book, visit_id)
    out = [
        Line(f"{t('visit_detail', lang)}: {_d(v.start)} — {v.facility or ''}", 12, 4),
    ]
    if v.kind:
        out.append(Line(t(f"kind_{v.kind}", lang), 10, 1, 10))
    if v.reason:
        out.append(Line(f"{t('reason', lang)}: {v.reason}", 10, 1, 10))
    for dg in v.diagnoses:
        out.append(Line(f"{t('diagnoses', lang)}: {dg.code or ''} {dg.display or ''}", 10, 1, 10))
    for p in parts["prescriptions"]:
        out.append(
            Line(
                f"{t('medication', lang)}: {p.medication or ''} — {p.dosage or ''} {p.quantity or ''}",
                10,
                1,
                10,
            )
        )
    for x in parts["labs"]:
        out.append(Line(f"{t('test', lang)}: {_lab(x, lang)}", 10, 1, 10))
    for x in parts["imaging"]:
        out.append(Line(f"{t('imaging', lang)}: {x.title or ''}: {x.conclusion or ''}", 10, 1, 10))
    for s in parts["summaries"]:
        for title, text in s.sections:
            out.append(Line(f"{title}: {text}", 10, 1, 10))
    out.append(Line("", 6, 6))
    return out


def visit_pdf(book: HealthBook, visit_id: str, lang: str, issuer: Issuer | None) -> bytes:
    title = f"{t('app', lang)} — {t('visit_detail', lang)}"
    name = masked_name(book.admin.full_name if book.admin else None)
    lines = [*_admin_lines(book, lang), Line("", 6, 4), *_visit_lines(book, visit_id, lang)]
    return render_pdf(title, lines, issuer, lang, kind="visit", subject=name)


def _section(key: str, items: list[str], lang: str) -> list[Line]:
    """A section: its title and one line per item ('none' when empty, so every section of the
    book is present in the PDF as on the page)."""
    return [Line(t(key, lang), 12, 4), *[Line(x, 10, 1, 10) for x in items or [t("none", lang)]]]


def _lab(x: Any, lang: str) -> str:
    flag = f" ({t('flag_' + x.flag, lang)})" if x.flag and x.flag != "N" else ""
    rng = f" [{_n(x.range_text, lang)}]" if x.range_text else ""
    value = f"{_n(x.value, lang)} {x.unit or ''}".strip()
    return f"{_d(x.date)} · {x.test or '—'}: {value}{rng}{flag} · {x.facility or ''}".rstrip(" ·")


def book_pdf(book: HealthBook, lang: str, issuer: Issuer | None) -> bytes:
    """The whole book as a PDF (``book_lines``), signed by ``issuer``."""
    name = masked_name(book.admin.full_name if book.admin else None)
    return render_pdf(t("app", lang), book_lines(book, lang), issuer, lang, "book", name)


def book_lines(book: HealthBook, lang: str) -> list[Line]:
    """The whole book, section by section in the order of the page (QĐ 31 content groups)."""
    ins = book.insurance
    lines = [*_admin_lines(book, lang, card=False)]  # the card has its own section
    card = []
    if ins and ins.card_number:
        card = [f"{t('card_number', lang)}: {ins.card_number} · {t('initial_facility', lang)}: "
                f"{ins.initial_facility or '—'} · {t('valid', lang)}: {_d(ins.valid_to) or '—'}"]  # fmt: skip
    lines += _section("insurance", card, lang)
    indicators = []
    for ind in book.indicators or []:
        p = ind.points[-1]
        value = _n(p.value, lang) + (f"/{_n(p.value2, lang)}" if p.value2 is not None else "")
        indicators.append(f"{t('ind_' + ind.key, lang)}: {value} {ind.unit} ({_d(p.date)})")
    lines += _section("indicators", indicators, lang)
    lines.append(Line(t("group_history", lang), 13, 6))
    lines += _section("history", [f"{c.code or ''} {c.display or ''} {_d(c.onset)}".strip()
                                  for c in book.history or []], lang)  # fmt: skip
    lines += _section("allergies", [f"{x.substance or ''} {x.reaction or ''}".strip()
                                    for x in book.allergies or []], lang)  # fmt: skip
    lines += _section("risk_factors", [f"{r.label}: {_n(r.value, lang)} {_d(r.date)}".strip()
                                       for r in book.risk_factors or []], lang)  # fmt: skip
    lines += _section("immunizations", [f"{_d(i.date)} {i.vaccine or ''} {i.facility or ''}"
                                        for i in book.immunizations or []], lang)  # fmt: skip
    if book.schedule:  # a child's TCMR schedule
        lines += _section("schedule", [
            f"{s.vaccine} — {t('dose', lang)} {s.dose} ({s.age}) — {t('due_date', lang)} "
            f"{_d(s.due)} — {t('st_' + s.status, lang)}" + (f" {_d(s.given)}" if s.given else "")
            for s in book.schedule], lang)  # fmt: skip
    lines.append(Line(t("group_episodes", lang), 13, 6))
    visits = []
    for v in book.visits or []:
        diag = "; ".join(f"{d.code or ''} {d.display or ''}".strip() for d in v.diagnoses)
        kind = f" · {t('kind_' + v.kind, lang)}" if v.kind else ""
        visits.append(f"{_d(v.start)} — {v.facility or ''}{kind}" + (f" — {diag}" if diag else ""))
    lines += _section("visits", visits, lang)
    lines += _section("prescriptions", [
        f"{_d(p.date)} · {p.medication or '—'} {p.quantity or ''} · {p.dosage or ''}".strip(" ·")
        for p in book.prescriptions or []], lang)  # fmt: skip
    lines += _section("labs", [_lab(x, lang) for x in book.labs or []], lang)
    lines += _section("imaging", [f"{_d(x.date)} {x.title or ''}: {x.conclusion or ''}"
                                  for x in book.imaging or []], lang)  # fmt: skip
    checkups = []
    for c in book.checkups or []:
        results = "; ".join(f"{r.label}: {_n(r.value, lang)}" for r in c.results)
        conclusion = f" — {t('conclusion', lang)}: {c.conclusion}" if c.conclusion else ""
        checkups.append(f"{_d(c.date)} {t('ck_' + c.kind, lang)} — {c.facility or ''}: "
                        f"{results}{conclusion}")  # fmt: skip
    lines += _section("checkups", checkups, lang)
    lines.append(Line(t("group_summary", lang), 13, 6))
    summaries = []
    for sm in book.summaries or []:
        summaries.append(f"{sm.title or ''} ({_d(sm.date)})")
        summaries += [f"  {title}: {text}" for title, text in sm.sections]
    lines += _section("summaries", summaries, lang)
    documents = []
    for x in book.documents or []:
        leave = ""
        if x.leave_from or x.leave_days:
            to = f" – {_d(x.leave_to)}" if x.leave_to else ""
            days = f" ({x.leave_days} {t('leave_days', lang)})" if x.leave_days else ""
            leave = f" · {t('leave', lang)}: {_d(x.leave_from)}{to}{days}"
        number = f" · {t('doc_number', lang)} {x.number}" if x.number else ""
        diag = f" · {x.diagnosis}" if x.diagnosis else ""
        documents.append(f"{_d(x.date)} {x.title or ''} — {x.facility or ''}{number}{leave}{diag}")
    lines += _section("documents", documents, lang)
    lines += _section("referrals", [f"{_d(r.date)} {r.from_facility or ''} → {r.to_facility or ''}"
                                    f": {r.diagnosis or ''}" for r in book.referrals or []], lang)  # fmt: skip
    lines += _section("appointments", [f"{_d(x.start)} {x.facility or ''}: {x.reason or ''}"
                                       for x in book.appointments or []], lang)  # fmt: skip
    if book.self_reported is not None:
        lines += _section("self_reported", [
            f"{t('kind_' + e.kind, lang)}: " + " · ".join(_n(v, lang) for v in e.data.values())
            for e in book.self_reported], lang)  # fmt: skip
    return lines


def masked_name(name: str | None) -> str:
    """A name as the verification page shows it to whoever scans the code: each word's first
    letter ('Nguyễn Thị Hoà' → 'N. T. H.')."""
    return " ".join(f"{w[0]}." for w in (name or "").split())
