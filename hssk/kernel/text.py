"""Text folding for matching Vietnamese text (names, search words)."""

from __future__ import annotations

import unicodedata


def fold(text: str) -> str:
    """Remove every diacritic and map đ→d (case kept). 'Đặng Thị Hoà' → 'Dang Thi Hoa'."""
    out = unicodedata.normalize("NFD", text)
    out = "".join(ch for ch in out if not unicodedata.combining(ch))
    return out.replace("đ", "d").replace("Đ", "D")
