"""A fast evaluator for the simple FHIRPath shapes most catalog rules use.

``fhirpathpy`` costs about a millisecond per rule and bundle, too slow to score millions of
persons. Most rules are a resource type, a chain of element names and simple ``where``
filters; those are compiled here into plain Python. Any rule outside this subset returns
``None`` from :func:`compile_fast` and keeps running on ``fhirpathpy``. The catalog tests
check on synthetic bundles that both engines agree on every rule.

Supported: ``A | B`` unions of ``Bundle.entry.resource.ofType(T)`` followed by steps —
an element name (choice elements such as ``value`` match ``valueQuantity`` …), or
``where(C)`` with C one of ``p = 'x'`` (singleton equality), ``p.endsWith('x')``,
``matches('re')`` (on the item itself), ``p in ('x' | 'y')``, ``p.lower().contains('x')``,
``p.where(C).exists()`` with C any of these, and ``or`` of those.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Items = list[Any]
Pred = Callable[[Any], bool]
CHOICE = frozenset({"value", "deceased", "medication", "onset", "effective", "occurrence",
                    "performed", "multipleBirth", "abatement"})  # fmt: skip
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ROOT = re.compile(r"Bundle\.entry\.resource\.ofType\(([A-Za-z]+)\)")
_LIT = r"'((?:[^'\\]|\\.)*)'"


def _split(text: str, sep: str) -> list[str] | None:
    """Split at ``sep`` outside parentheses and quotes; None when unbalanced."""
    out, depth, quote, start, i = [], 0, False, 0, 0
    while i < len(text):
        c = text[i]
        if c == "'" and (i == 0 or text[i - 1] != "\\"):
            quote = not quote
        elif not quote:
            if c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth < 0:
                    return None
            elif depth == 0 and text.startswith(sep, i):
                out.append(text[start:i])
                i += len(sep)
                start = i
                continue
        i += 1
    if depth or quote:
        return None
    out.append(text[start:])
    return out


def _nav(items: Items, names: list[str]) -> Items:
    # an element's values (a list is its items; choice elements such as value match
    # valueQuantity …): this loop is most of the time of scoring a registry
    for name in names:
        out: Items = []
        choice = name in CHOICE
        for item in items:
            if not isinstance(item, dict):
                continue
            if name in item:
                value = item[name]
            elif choice:
                value = next(
                    (
                        item[k]
                        for k in item
                        if k.startswith(name) and k[len(name) : len(name) + 1].isupper()
                    ),
                    None,
                )
            else:
                continue
            if value is None:
                continue
            if isinstance(value, list):
                out.extend(value)
            else:
                out.append(value)
        items = out
    return items


def _names(path: str) -> list[str] | None:
    parts = path.split(".")
    return parts if all(_IDENT.fullmatch(p) for p in parts) else None


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _singleton(names: list[str], test: Callable[[Any], bool]) -> Pred:
    """True when the path gives exactly one value and it passes ``test`` (FHIRPath ``=``)."""

    def pred(item: Any) -> bool:
        values = _nav([item], names)
        return len(values) == 1 and test(values[0])

    return pred


def _pred(cond: str) -> Pred | None:
    ors = _split(cond.strip(), " or ")
    if ors is None:
        return None
    if len(ors) > 1:
        preds = [_pred(o) for o in ors]
        fns = [p for p in preds if p is not None]
        if len(fns) != len(preds):
            return None
        return lambda item: any(f(item) for f in fns)
    c = ors[0].strip()
    if m := re.fullmatch(rf"([A-Za-z0-9_.]+) ?= ?{_LIT}", c):
        names, lit = _names(m[1]), _unescape(m[2])
        return _singleton(names, lambda v: v == lit) if names else None
    if m := re.fullmatch(rf"([A-Za-z0-9_.]+)\.endsWith\({_LIT}\)", c):
        names, lit = _names(m[1]), _unescape(m[2])
        return (
            _singleton(names, lambda v: isinstance(v, str) and v.endswith(lit)) if names else None
        )
    if m := re.fullmatch(rf"([A-Za-z0-9_.]+)\.lower\(\)\.contains\({_LIT}\)", c):
        names, lit = _names(m[1]), _unescape(m[2])
        # lower() of a single string, then a substring test (empty path: no match)
        return (
            _singleton(names, lambda v: isinstance(v, str) and lit in v.lower()) if names else None
        )
    if m := re.fullmatch(rf"matches\({_LIT}\)", c):
        rx = re.compile(_unescape(m[1]), re.DOTALL)
        return lambda item: isinstance(item, str) and rx.search(item) is not None
    if m := re.fullmatch(r"([A-Za-z0-9_.]+) in \(([^()]*)\)", c):
        names = _names(m[1])
        lits = [re.fullmatch(_LIT, x.strip()) for x in m[2].split("|")]
        allowed = {_unescape(x[1]) for x in lits if x}
        if not names or len(allowed) != len(lits):
            return None
        return _singleton(names, lambda v: v in allowed)
    if m := re.fullmatch(r"([A-Za-z0-9_.]+)\.where\((.*)\)\.exists\(\)", c):
        # some item at the path passes the inner condition (any supported one)
        names, inner = _names(m[1]), _pred(m[2])
        if not names or inner is None:
            return None
        return lambda item: any(inner(x) for x in _nav([item], names))
    return None


def _step_name(name: str) -> Callable[[Items], Items]:
    return lambda items: _nav(items, [name])


def _step_where(pred: Pred) -> Callable[[Items], Items]:
    return lambda items: [i for i in items if pred(i)]


def _term(text: str) -> Callable[[dict[str, list[Any]]], Items] | None:
    m = _ROOT.match(text)
    if not m:
        return None
    rtype, rest = m[1], text[m.end() :]
    steps: list[Callable[[Items], Items]] = []
    if rest:
        if not rest.startswith("."):
            return None
        parts = _split(rest[1:], ".")
        if parts is None:
            return None
        for part in parts:
            if _IDENT.fullmatch(part):
                steps.append(_step_name(part))
            elif part.startswith("where(") and part.endswith(")"):
                pred = _pred(part[6:-1])
                if pred is None:
                    return None
                steps.append(_step_where(pred))
            else:
                return None

    def run(by_type: dict[str, list[Any]]) -> Items:
        items = list(by_type.get(rtype, ()))
        for step in steps:
            items = step(items)
        return items

    return run


def compile_fast(fhirpath: str) -> Callable[[dict[str, list[Any]]], Items] | None:
    """A function of the bundle's resources grouped by type, or None if unsupported."""
    terms = _split(fhirpath.strip(), " | ")
    if terms is None:
        return None
    fns = [_term(t.strip()) for t in terms]
    if any(f is None for f in fns):
        return None
    funcs = [f for f in fns if f is not None]

    def run(by_type: dict[str, list[Any]]) -> Items:
        out: Items = []
        for f in funcs:
            for v in f(by_type):
                if v not in out:  # union removes duplicates, as FHIRPath's | does
                    out.append(v)
        return out

    return run


def group(bundle: dict[str, Any]) -> dict[str, list[Any]]:
    """The bundle's resources by type."""
    by: dict[str, list[Any]] = {}
    for e in bundle.get("entry") or ():
        r = e.get("resource") if isinstance(e, dict) else None
        if isinstance(r, dict):
            by.setdefault(str(r.get("resourceType")), []).append(r)
    return by
