"""Vietnamese names of codes (LOINC, ICD-10) for the pages: from the field library's
``{obs:CODE}`` fields and ``codes/codes-vi.json``; an ICD-10 code named nowhere else is named by
its chapter (``kernel.icd10``)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from hssk.catalog.catalogs import DATA_DIR, LIBRARY_FILE
from hssk.kernel import icd10
from hssk.kernel.codes import ICD10, LOINC

# beside the catalogs, not among them (every *.json in data/ is a catalog)
CODES_FILE = Path(__file__).parent / "codes" / "codes-vi.json"
_ONE_OBS = re.compile(r"^\{obs:([0-9]+-[0-9])\}\.value$")
_UNIT = re.compile(r"\s*\([^)]*\)$")  # "Mạch (lần/phút)": the unit is shown with the value


@lru_cache(maxsize=1)
def _names() -> tuple[dict[str, str], dict[str, str]]:
    own = json.loads(CODES_FILE.read_text("utf-8"))
    loinc: dict[str, str] = {}
    for f in json.loads((DATA_DIR / LIBRARY_FILE).read_text("utf-8")).get("fields", []):
        m = _ONE_OBS.match(str(f.get("path", "")))
        if m and f.get("vi"):
            loinc.setdefault(m.group(1), _UNIT.sub("", str(f["vi"])))
    loinc.update(own["loinc"])
    return loinc, dict(own["icd10"])


def name_vi(system: str | None, code: str | None) -> str | None:
    """The Vietnamese name of ``code`` in ``system`` (LOINC or ICD-10), or None."""
    if not code:
        return None
    loinc, icd = _names()
    if system == LOINC:
        return loinc.get(code)
    if system == ICD10:
        return icd.get(code) or icd.get(code[:3])
    return None


def chapter_vi(code: str) -> str | None:
    """The Vietnamese name of an ICD-10 code's chapter (for a code named nowhere else)."""
    chapter = icd10.chapter_of(code)
    return chapter.vi[:1].upper() + chapter.vi[1:] if chapter else None
