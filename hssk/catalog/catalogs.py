"""Field catalogs as data: named, versioned lists of fields with FHIRPath extraction rules.

A catalog file (``hssk/catalog/data/*.json``) names its fields; a field either refers to the
shared field library (``fields.json``, key ``ref``) or carries its own label, type and rule.
Rules are FHIRPath evaluated over a Bundle of the person's resources. Two shorthands keep the
files readable and are expanded on load: ``{Type}`` → ``Bundle.entry.resource.ofType(Type)``
and ``{obs:CODE}`` → the Observations coded ``CODE``.

Other catalog directories can be added with ``HSSK_CATALOG_DIRS`` (``:``-separated), so an
official list replaces a provisional one as data: a later file with the same name wins.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import fhirpathpy
from fhirpathpy.models import models

DATA_DIR = Path(__file__).parent / "data"
LIBRARY_FILE = "fields.json"
TYPES = frozenset(
    {"string", "date", "datetime", "code", "identifier", "quantity", "boolean", "list", "reference"}
)
_OBS = re.compile(r"\{obs:([A-Za-z0-9_.\-]+)\}")
_TYPE = re.compile(r"\{([A-Z][A-Za-z]+)\}")
_PROBE = {"resourceType": "Bundle", "entry": [{"resource": {"resourceType": "Patient"}}]}


class CatalogError(ValueError):
    """A catalog file is malformed (names the file, the field and what to fix)."""


@dataclass(frozen=True)
class Field:
    code: str
    label_vi: str
    label_en: str
    type: str
    rule: str  # shorthand form, as written in the file
    fhirpath: str  # expanded FHIRPath over a Bundle

    def label(self, lang: str = "vi") -> str:
        return self.label_en if lang == "en" else self.label_vi


@dataclass(frozen=True)
class Catalog:
    name: str
    version: str
    title_vi: str
    title_en: str
    source: str
    provisional: bool
    note: str
    fields: tuple[Field, ...]
    _compiled: list[Callable[..., list[Any]]] = field(
        default_factory=list, compare=False, repr=False
    )

    @property
    def size(self) -> int:
        return len(self.fields)

    def title(self, lang: str = "vi") -> str:
        return self.title_en if lang == "en" else self.title_vi

    def evaluators(self) -> list[Callable[..., list[Any]]]:
        """Compiled FHIRPath functions, one per field (compiled once per process)."""
        if not self._compiled:
            self._compiled.extend(
                fhirpathpy.compile(f.fhirpath, model=models["r4"]) for f in self.fields
            )
        return self._compiled

    def extract(self, bundle: dict[str, Any]) -> dict[str, list[Any]]:
        """Values of every field in ``bundle`` (empty list = no value)."""
        return {
            f.code: _values(fn, bundle)
            for f, fn in zip(self.fields, self.evaluators(), strict=True)
        }

    def missing(self, bundle: dict[str, Any]) -> list[str]:
        """Codes of the fields that have no value in ``bundle``."""
        return [
            f.code
            for f, fn in zip(self.fields, self.evaluators(), strict=True)
            if not _values(fn, bundle)
        ]

    def describe(self, lang: str = "vi") -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "title": self.title(lang),
            "source": self.source,
            "provisional": self.provisional,
            "note": self.note,
            "size": self.size,
            "fields": [
                {"code": f.code, "label": f.label(lang), "type": f.type, "fhirpath": f.fhirpath}
                for f in self.fields
            ],
        }


def _values(fn: Callable[..., list[Any]], bundle: dict[str, Any]) -> list[Any]:
    out = fn(bundle, {})
    # A value that is only empty strings / empty objects does not fill a field.
    return [v for v in out if v not in ("", None, {}, [])]


def expand(rule: str) -> str:
    """Expand the catalog shorthands into plain FHIRPath."""
    text = _OBS.sub(
        lambda m: (
            "Bundle.entry.resource.ofType(Observation).where(code.coding.code = '"
            + m.group(1)
            + "')"
        ),
        rule,
    )
    return _TYPE.sub(lambda m: f"Bundle.entry.resource.ofType({m.group(1)})", text)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CatalogError(f"{path}: cannot read the catalog ({exc}); fix the JSON") from exc
    if not isinstance(data, dict):
        raise CatalogError(f"{path}: the top level must be an object")
    return data


def _library(path: Path) -> dict[str, dict[str, Any]]:
    data = _read(path)
    return {str(f["key"]): f for f in data.get("fields", [])}


def _field(path: Path, raw: dict[str, Any], library: dict[str, dict[str, Any]]) -> Field:
    code = str(raw.get("code") or "")
    if not code:
        raise CatalogError(f"{path}: a field has no 'code'; give every field a unique code")
    base: dict[str, Any] = {}
    if raw.get("ref"):
        if raw["ref"] not in library:
            raise CatalogError(
                f"{path}: field {code} refers to '{raw['ref']}', which is not in {LIBRARY_FILE}; "
                "add it to the library or give the field its own vi/en/type/path"
            )
        base = library[raw["ref"]]
    merged = {**base, **{k: v for k, v in raw.items() if k != "ref"}}
    missing = [k for k in ("vi", "en", "type", "path") if not merged.get(k)]
    if missing:
        raise CatalogError(f"{path}: field {code} lacks {', '.join(missing)}")
    if merged["type"] not in TYPES:
        raise CatalogError(
            f"{path}: field {code} has type '{merged['type']}'; use one of {sorted(TYPES)}"
        )
    fhirpath = expand(str(merged["path"]))
    try:
        # The parser is lenient; unknown functions and bad arity show on a first evaluation.
        fhirpathpy.compile(fhirpath, model=models["r4"])(_PROBE, {})
    except Exception as exc:
        raise CatalogError(f"{path}: field {code}: FHIRPath does not parse: {exc}") from exc
    return Field(code, merged["vi"], merged["en"], merged["type"], str(merged["path"]), fhirpath)


def load_catalog(path: Path, library: dict[str, dict[str, Any]] | None = None) -> Catalog:
    """Read and check one catalog file."""
    lib = library if library is not None else _library(DATA_DIR / LIBRARY_FILE)
    data = _read(path)
    for key in ("name", "version", "fields"):
        if not data.get(key):
            raise CatalogError(f"{path}: '{key}' is missing")
    fields = tuple(_field(path, f, lib) for f in data["fields"])
    codes = [f.code for f in fields]
    dupes = sorted({c for c in codes if codes.count(c) > 1})
    if dupes:
        raise CatalogError(f"{path}: field codes used twice: {', '.join(dupes)}")
    return Catalog(
        name=str(data["name"]),
        version=str(data["version"]),
        title_vi=str(data.get("title_vi") or data["name"]),
        title_en=str(data.get("title_en") or data["name"]),
        source=str(data.get("source") or ""),
        provisional=bool(data.get("provisional")),
        note=str(data.get("note") or ""),
        fields=fields,
    )


def _dirs() -> tuple[Path, ...]:
    extra = [Path(p) for p in os.environ.get("HSSK_CATALOG_DIRS", "").split(":") if p]
    return (DATA_DIR, *extra)


@lru_cache(maxsize=4)
def _load_all(dirs: tuple[Path, ...]) -> dict[str, Catalog]:
    library: dict[str, dict[str, Any]] = {}
    for d in dirs:
        if (d / LIBRARY_FILE).exists():
            library.update(_library(d / LIBRARY_FILE))
    found: dict[str, Catalog] = {}
    for d in dirs:
        for path in sorted(d.glob("*.json")):
            if path.name == LIBRARY_FILE:
                continue
            cat = load_catalog(path, library)
            found[cat.name] = cat
    return found


def catalogs() -> dict[str, Catalog]:
    """Every catalog, by name."""
    return _load_all(_dirs())


def get(name: str) -> Catalog:
    """One catalog by name; KeyError names the ones that exist."""
    found = catalogs()
    if name not in found:
        raise KeyError(f"no catalog '{name}'; known: {', '.join(sorted(found))}")
    return found[name]


# The catalog the dashboards report by unless told otherwise (Hanoi's pilot set).
DEFAULT = os.environ.get("HSSK_DEFAULT_CATALOG", "hanoi-73")
