"""PDF of one visit or of the whole book, with Vietnamese text, signed by the platform.

No PDF library is a dependency, so this is a small writer: a TrueType font with Vietnamese
glyphs is embedded (Type0 / CIDFontType2, Identity-H, glyph ids from the font's cmap) and the
file carries a standard detached CMS signature (/adbe.pkcs7.detached over /ByteRange), which
PDF readers verify against the platform certificate.
"""

from __future__ import annotations

import importlib
import os
import struct
import unicodedata
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Protocol

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID

from hssk.web.i18n import t
from hssk.web.models import HealthBook

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
)
SIG_BYTES = 8192  # room reserved for the CMS signature (hex doubles it)
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


def _pages(font: Font, lines: list[Line], footer: str) -> list[bytes]:
    pages: list[list[str]] = [[]]
    y = PAGE_H - MARGIN
    for ln in lines:
        for part in wrap(font, ln.text, ln.size, PAGE_W - 2 * MARGIN - ln.indent):
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


# --- signing ------------------------------------------------------------------------------------
class Signer(Protocol):
    """Signs the PDF's byte ranges; ``subfilter`` names the format in the /Sig dictionary."""

    @property
    def name(self) -> str: ...

    @property
    def subfilter(self) -> str: ...

    def sign(self, data: bytes) -> bytes: ...


@dataclass(frozen=True)
class PlatformSigner:
    """The platform's own key (hssk.access.signing, Ed25519): a detached JWS of the signed
    bytes, checked with ``verify_pdf`` or ``hssk.access.signing.verify_document``.

    PDF readers only check CMS signatures with an X.509 certificate (``CmsSigner``); the
    platform has a bare key, so its signature is verified by HSSK tools, not by the reader.
    """

    settings: Any
    name: str = "HSSK platform"
    subfilter: str = "HSSK.jws.detached"

    def sign(self, data: bytes) -> bytes:
        from hssk.access.signing import sign_document

        return str(sign_document(self.settings, data)).encode("ascii")


@dataclass(frozen=True)
class CmsSigner:
    """A key with an X.509 certificate: standard /adbe.pkcs7.detached (any PDF reader)."""

    key: Any  # EC or RSA private key of ``cryptography``
    certificate: x509.Certificate
    subfilter: str = "adbe.pkcs7.detached"

    @property
    def name(self) -> str:
        attrs = self.certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(attrs[0].value) if attrs else "HSSK"

    def sign(self, data: bytes) -> bytes:
        return (
            pkcs7.PKCS7SignatureBuilder()
            .set_data(data)
            .add_signer(self.certificate, self.key, hashes.SHA256())
            .sign(
                serialization.Encoding.DER,
                [pkcs7.PKCS7Options.DetachedSignature, pkcs7.PKCS7Options.Binary],
            )
        )


def platform_signer(settings: Any) -> Signer:
    """The signer for documents the platform issues (visit and book PDFs)."""
    return PlatformSigner(settings)


def self_signed(common_name: str = "HSSK") -> CmsSigner:
    """A throw-away ECDSA key and self-signed certificate (tests, demos)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "VN"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=365))
        .sign(key, hashes.SHA256())
    )
    return CmsSigner(key, cert)


def verify_pdf(pdf: bytes) -> tuple[bool, str]:
    """Check the platform signature of a PDF written here (the signed bytes are intact)."""
    try:
        signed, sig = signed_ranges(pdf)
    except ValueError:
        return False, "no signature / không có chữ ký"
    if b"/SubFilter /HSSK.jws.detached" not in pdf:
        return False, "not a platform (JWS) signature; check CMS signatures with a PDF reader"
    from hssk.access.signing import verify_document

    ok, reason = verify_document(signed, sig.decode("ascii", "replace"))
    return bool(ok), str(reason)


def signed_ranges(pdf: bytes) -> tuple[bytes, bytes]:
    """(signed bytes, CMS signature) of a PDF written here: what a verifier checks."""
    start = pdf.rindex(b"/ByteRange [")
    nums = [int(x) for x in pdf[start + 12 : pdf.index(b"]", start)].split()]
    a, b, c, d = nums
    contents = pdf[a + b : c]
    sig = bytes.fromhex(contents.strip(b"<>").decode("ascii"))
    return pdf[a : a + b] + pdf[c : c + d], sig.rstrip(b"\x00")


# --- document -----------------------------------------------------------------------------------
def render_pdf(title: str, lines: list[Line], signer: Signer | None, lang: str = "vi") -> bytes:
    """A PDF with ``lines`` flowed over A4 pages, signed when ``signer`` is given."""
    font = load_font()
    footer = f"{title} · {t('pdf_signed', lang) if signer else ''}".strip(" ·")
    streams = _pages(font, [Line(title, 15, 8), *lines], footer)
    objs: list[bytes] = []

    def add(body: bytes) -> int:
        objs.append(body)
        return len(objs)

    texts = [title, footer, "0123456789/— ", *(x.text for x in lines)]
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
    base = len(objs)  # ids after this: (content, page) per page, [sig, widget], pages
    sig_field = base + 2 * len(streams) + 2 if signer else None
    pages_id = base + 2 * len(streams) + (2 if signer else 0) + 1
    page_ids = []
    for i, content in enumerate(streams):
        packed = zlib.compress(content)
        cs = add(
            b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(packed)
            + packed
            + b"\nendstream"
        )
        annots = ""
        if sig_field and i == 0:
            # the signature field's widget: invisible, on the first page
            annots = f" /Annots [{sig_field} 0 R]"
        page_ids.append(
            add(
                f"<< /Type /Page /Parent {pages_id} 0 R /MediaBox [0 0 {PAGE_W:g} {PAGE_H:g}] "
                f"/Resources << /Font << /F1 {f1} 0 R >> >> /Contents {cs} 0 R{annots} >>".encode()
            )
        )
    sig_obj = None
    if signer:
        placeholder = b"0" * (2 * SIG_BYTES)
        when = datetime.now(UTC).strftime("D:%Y%m%d%H%M%SZ")
        sig_obj = add(
            b"<< /Type /Sig /Filter /Adobe.PPKLite /SubFilter /" + signer.subfilter.encode() + b" "
            b"/ByteRange [0 0000000000 0000000000 0000000000] /Contents <"
            + placeholder
            + b"> "
            + f"/M ({when}) /Name ({_pdf_ascii(signer.name)}) /Reason (HSSK) >>".encode()
        )
        field_id = add(
            f"<< /Type /Annot /Subtype /Widget /FT /Sig /T (HSSK) /V {sig_obj} 0 R /F 132 /Rect [0 0 0 0] /P {page_ids[0]} 0 R >>".encode()
        )
        assert field_id == sig_field
    kids = " ".join(f"{p} 0 R" for p in page_ids)
    assert add(f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>".encode()) == pages_id
    acro = f" /AcroForm << /Fields [{sig_field} 0 R] /SigFlags 3 >>" if signer else ""
    info = add(
        f"<< /Title <{_utf16(title)}> /Producer (HSSK) /CreationDate ({datetime.now(UTC):D:%Y%m%d%H%M%SZ}) >>".encode()
    )
    root = add(f"<< /Type /Catalog /Pages {pages_id} 0 R{acro} >>".encode())
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for n, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += f"{n} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objs) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objs) + 1} /Root {root} 0 R /Info {info} 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    if signer and sig_obj:
        _sign_in_place(out, signer)
    return bytes(out)


def _sign_in_place(out: bytearray, signer: Signer) -> None:
    start = out.index(b"/Contents <" + b"0" * 64) + len(b"/Contents ")
    end = start + 2 * SIG_BYTES + 2
    ranges = [0, start, end, len(out) - end]
    br = f"/ByteRange [0 {ranges[1]:010d} {ranges[2]:010d} {ranges[3]:010d}]".encode()
    pos = out.index(b"/ByteRange [0 0000000000 0000000000 0000000000]")
    out[pos : pos + len(br)] = br
    sig = signer.sign(bytes(out[: ranges[1]]) + bytes(out[ranges[2] :]))
    if len(sig) > SIG_BYTES:
        raise RuntimeError(f"signature of {len(sig)} bytes does not fit the {SIG_BYTES} reserved")
    out[start + 1 : start + 1 + 2 * len(sig)] = sig.hex().upper().encode()


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


def _pdf_ascii(text: str) -> str:
    from hssk.registry.normalize import fold

    return fold(text).encode("ascii", "replace").decode().replace("(", "[").replace(")", "]")


# --- content ------------------------------------------------------------------------------------
def _d(value: Any) -> str:
    from hssk.web.render import fmt_date

    return fmt_date(value)


def visit_parts(book: HealthBook, visit_id: str) -> dict[str, Any]:
    """Everything in the book that belongs to one visit."""
    return {
        "prescriptions": [p for p in book.prescriptions or [] if p.visit_id == visit_id],
        "labs": [x for x in book.labs or [] if x.visit_id == visit_id],
        "imaging": [x for x in book.imaging or [] if x.visit_id == visit_id],
        "summaries": [x for x in book.summaries or [] if x.visit_id == visit_id],
    }


def _admin_lines(book: HealthBook, lang: str) -> list[Line]:
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
        ("card_number", book.insurance.card_number if book.insurance else None),
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
        flag = f" ({t('flag_' + x.flag, lang)})" if x.flag and x.flag != "N" else ""
        rng = f" [{x.range_text}]" if x.range_text else ""
        out.append(
            Line(
                f"{t('test', lang)}: {x.test}: {x.value or ''} {x.unit or ''}{rng}{flag}", 10, 1, 10
            )
        )
    for x in parts["imaging"]:
        out.append(Line(f"{t('imaging', lang)}: {x.title or ''}: {x.conclusion or ''}", 10, 1, 10))
    for s in parts["summaries"]:
        for title, text in s.sections:
            out.append(Line(f"{title}: {text}", 10, 1, 10))
    out.append(Line("", 6, 6))
    return out


def visit_pdf(book: HealthBook, visit_id: str, lang: str, signer: Signer | None) -> bytes:
    title = f"{t('app', lang)} — {t('visit_detail', lang)}"
    return render_pdf(
        title,
        [*_admin_lines(book, lang), Line("", 6, 4), *_visit_lines(book, visit_id, lang)],
        signer,
        lang,
    )


def book_pdf(book: HealthBook, lang: str, signer: Signer | None) -> bytes:
    lines = [*_admin_lines(book, lang), Line("", 6, 4)]
    if book.indicators:
        lines.append(Line(t("indicators", lang), 12, 4))
        for ind in book.indicators:
            p = ind.points[-1]
            value = f"{p.value:g}" + (f"/{p.value2:g}" if p.value2 is not None else "")
            lines.append(
                Line(f"{t('ind_' + ind.key, lang)}: {value} {ind.unit} ({_d(p.date)})", 10, 1, 10)
            )
    for key, items, fmt in (
        ("history", book.history, lambda c: f"{c.code or ''} {c.display or ''} {_d(c.onset)}"),
        ("allergies", book.allergies, lambda a: f"{a.substance or ''} {a.reaction or ''}"),
        (
            "immunizations",
            book.immunizations,
            lambda i: f"{_d(i.date)} {i.vaccine or ''} {i.facility or ''}",
        ),
        (
            "referrals",
            book.referrals,
            lambda r: f"{_d(r.date)} → {r.to_facility or ''}: {r.diagnosis or ''}",
        ),
        (
            "appointments",
            book.appointments,
            lambda a: f"{_d(a.start)} {a.facility or ''}: {a.reason or ''}",
        ),
    ):
        if items:
            lines.append(Line(t(key, lang), 12, 4))
            lines += [Line(fmt(x), 10, 1, 10) for x in items]
    if book.visits:
        lines.append(Line(t("visits", lang), 13, 6))
        for v in book.visits:
            lines += _visit_lines(book, v.id, lang)
    return render_pdf(t("app", lang), lines, signer, lang)
