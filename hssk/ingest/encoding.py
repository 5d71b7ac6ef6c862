"""A table whose XML declaration names a single-byte encoding (ISO-8859-1, windows-1252)
over UTF-8 bytes, as some exports write: read it as UTF-8 with a warning, or refuse it when
the bytes do not say which reading is meant.

Read as declared, such a table stores "Cháº©n ÄoÃ¡n" for "Chẩn đoán". The bytes decide:

- valid UTF-8 holding a character beyond Latin-1 (ạ, ế, đ, ư …; every Vietnamese text but
  the shortest): UTF-8 it is — a Latin-1 text forms such sequences only by accident
  ("áº¡"); read as UTF-8, warned;
- valid UTF-8 whose non-ASCII characters all lie in Latin-1 ("é", "à"), or that reads as
  UTF-8 text already garbled once ("Ã©"): either reading is plausible, refused;
- not valid UTF-8 but holding UTF-8 sequences of Vietnamese letters: the two encodings are
  mixed, refused;
- otherwise (ASCII, or a genuine single-byte text): read as declared, no warning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SINGLE_BYTE = frozenset(
    {"iso-8859-1", "iso8859-1", "iso_8859-1", "latin-1", "latin1", "l1", "windows-1252",
     "cp1252", "iso-8859-15", "latin-9"}
)  # fmt: skip
_DECL = re.compile(rb"""^(\xef\xbb\xbf)?(<\?xml[^>]*?encoding\s*=\s*["'])([A-Za-z0-9._-]+)(["'])""")
# UTF-8 text that is itself mojibake: a lead character of a 2-byte sequence read as Latin-1
# (Â Ã Ä Å Æ …) followed by a continuation character read the same way.
_GARBLED = re.compile("[\u00c2-\u00df][\u0080-\u00bf]|[\u00e0-\u00ef][\u0080-\u00bf]{2}")
# A UTF-8 sequence of a character beyond Latin-1 (U+0100 and up).
_WIDE_UTF8 = re.compile(
    rb"[\xc4-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}"
)


class EncodingMismatch(Exception):
    """The declared encoding and the bytes disagree and the bytes do not settle it."""

    def __init__(self, declared: str, vi: str, en: str):
        self.declared = declared
        self.vi = vi
        self.reason = en
        super().__init__(en)


@dataclass(frozen=True)
class Reading:
    """The bytes to parse and, when the declaration was overridden, what it said."""

    data: bytes
    overridden: str | None = None  # the declared encoding read as UTF-8 instead


def declared_encoding(data: bytes) -> str | None:
    """The encoding named by the XML declaration (lower case), or None."""
    m = _DECL.match(data[:300])
    return m.group(3).decode("ascii").lower() if m else None


def reading(data: bytes) -> Reading:
    """How to read ``data``; raises EncodingMismatch when it cannot be told."""
    head = data[:100]
    if b'encoding="utf-8"' in head or b"encoding='utf-8'" in head or data.isascii():
        return Reading(data)  # the usual table: decided without a regular expression
    declared = declared_encoding(data)
    if declared not in SINGLE_BYTE:
        return Reading(data)
    assert declared is not None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if _WIDE_UTF8.search(data):
            raise EncodingMismatch(
                declared,
                f"khai báo mã hóa {declared} nhưng tệp lẫn cả UTF-8 và {declared}: không xác "
                'định được cách đọc. Lưu lại toàn bộ tệp theo UTF-8 (khai báo encoding="utf-8").',
                f"declares {declared} but mixes UTF-8 and {declared} bytes: the text cannot be "
                'read reliably. Save the whole file as UTF-8 (declaring encoding="utf-8").',
            ) from None
        return Reading(data)  # a genuine single-byte text
    if _GARBLED.search(text) or not any(ord(c) > 0xFF for c in text):
        raise EncodingMismatch(
            declared,
            f"khai báo mã hóa {declared} nhưng nội dung cũng đọc được theo UTF-8: không xác "
            "định được cách đọc đúng (hoặc văn bản đã bị lỗi mã hóa từ trước). Lưu lại tệp theo "
            'UTF-8 (khai báo encoding="utf-8") và kiểm tra các trường tiếng Việt.',
            f"declares {declared} but the bytes also read as UTF-8: which reading is meant "
            "cannot be told (or the text was already garbled before export). Save the file as "
            'UTF-8 (declaring encoding="utf-8") and check its Vietnamese text.',
        )
    m = _DECL.match(data)
    assert m is not None
    fixed = data[: m.start(3)] + b"utf-8" + data[m.end(3) :]
    return Reading(fixed, overridden=declared)
