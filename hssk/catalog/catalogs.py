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
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

import fhirpathpy
from fhirpathpy.models import models

from hssk.catalog import fastpath

log = logging.getLogger(__name__)

DATA_DIR = Path(__file__).parent / "data"
LIBRARY_FILE = "fields.json"
TYPES = frozenset(
    {"string", "date", "datetime", "code", "identifier", "quantity", "boolean", "list", "reference"}
)
_OBS = re.compile(r"\{obs:([A-Za-z0-9_.\-]+)\}")
_TYPE = re.compile(r"\{([A-Z][A-Za-z]+)\}")
_OFTYPE = re.compile(r"Bundle\.entry\.resource\.ofType\((\w+)\)")
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

    @cached_property
    def types(self) -> frozenset[str]:
        """Resource types the rule reads; empty when it reads the Bundle some other way."""
        if "Bundle.entry.resource." in self.fhirpath.replace("Bundle.entry.resource.ofType", ""):
            return frozenset()
        return frozenset(_OFTYPE.findall(self.fhirpath))


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
    _compiled: list[_Rule] = field(default_factory=list, compare=False, repr=False)

    @property
    def size(self) -> int:
        return len(self.fields)

    def title(self, lang: str = "vi") -> str:
        return self.title_en if lang == "en" else self.title_vi

    def rules(self) -> list[_Rule]:
        """Compiled rules, one per field (compiled once per process)."""
        if not self._compiled:
            self._compiled.extend(_rule(f.fhirpath) for f in self.fields)
        return self._compiled

    def evaluators(self) -> list[Callable[..., list[Any]]]:
        """The ``fhirpathpy`` function of each field (the reference engine)."""
        return [r.slow for r in self.rules()]

    def extract(self, bundle: dict[str, Any], *, engine: str = "auto") -> dict[str, list[Any]]:
        """Values of every field in ``bundle`` (empty list = no value).

        ``engine='fhirpathpy'`` evaluates every rule with the reference engine."""
        groups = fastpath.group(bundle)
        return {
            f.code: r.values(bundle, groups, engine == "fhirpathpy")
            for f, r in zip(self.fields, self.rules(), strict=True)
        }

    def missing(
        self,
        bundle: dict[str, Any],
        groups: dict[str, list[Any]] | None = None,
        cache: dict[str, bool] | None = None,
    ) -> list[str]:
        """Codes of the fields that have no value in ``bundle``.

        A rule that only reads resource types absent from the bundle is empty without being
        evaluated; ``cache`` (FHIRPath → filled) shares results between catalogs of one bundle.
        """
        groups = fastpath.group(bundle) if groups is None else groups
        cache = {} if cache is None else cache
        out = []
        for f, rule in zip(self.fields, self.rules(), strict=True):
            types = f.types
            if types and types.isdisjoint(groups):
                out.append(f.code)
                continue
            filled = cache.get(f.fhirpath)
            if filled is None:
                filled = cache[f.fhirpath] = bool(rule.values(bundle, groups))
            if not filled:
                out.append(f.code)
        return out

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


@dataclass
class _Rule:
    """A field's rule: the fast evaluator when the rule fits its subset, else fhirpathpy."""

    fhirpath: str
    slow: Callable[..., list[Any]]
    fast: Callable[[dict[str, list[Any]]], list[Any]] | None

    def values(
        self, bundle: dict[str, Any], groups: dict[str, list[Any]], reference: bool = False
    ) -> list[Any]:
        if self.fast is not None and not reference:
            out = self.fast(groups)
        else:
            try:
                out = self.slow(bundle, {})
            except Exception:
                log.warning("rule failed on a bundle: %s", self.fhirpath, exc_info=True)
                return []
        # A value that is only empty strings / empty objects does not fill a field.
        return [v for v in out if v not in ("", None, {}, [])]


def _rule(fhirpath: str) -> _Rule:
    return _Rule(
        fhirpath, fhirpathpy.compile(fhirpath, model=models["r4"]), fastpath.compile_fast(fhirpath)
    )


def expand(rule: str) -> str:
    """Expand the catalog shorthands into plain FHIRPath."""
    text = _OBS.sub(
        lambda m: (
            "Bundle.entry.resource.ofType(Observation).where(code.coding.where(code = '"
            + m.group(1)
            + "').exists())"
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
