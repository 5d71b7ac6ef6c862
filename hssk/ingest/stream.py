"""A job's files as a stream of pieces (each kind reads its own, ``kinds``), and the mapping of
a batch of them. ``map_payloads`` is a pure function so it runs in worker processes."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from hssk.ingest import kinds
from hssk.ingest.kinds.base import Broken, Payload, Piece, SourceError, broken
from hssk.ingest.model import Problem, Unit, patient_element
from hssk.kernel.sensitivity import sensitivity_of
from hssk.records import id_for_source_key, prerender
from hssk.registry import Prepared, prepare


def read(kind: str, files: Sequence[str], start: tuple[int, int] = (0, 0)) -> Iterator[Piece]:
    """The pieces of ``files`` from position ``start`` on."""
    reader = kinds.kind(kind).read
    fi0, skip0 = start
    for fi in range(fi0, len(files)):
        path = files[fi]
        if not os.path.exists(path):
            missing = SourceError("file.missing", f"Không tìm thấy tệp {path}.",
                                  f"file {path} does not exist.")  # fmt: skip
            yield broken(kind, path, 0, missing, fi)
            continue
        yield from reader(path, fi, skip0 if fi == fi0 else 0)


def map_payloads(
    kind: str,
    payloads: list[Payload],
    known: frozenset[str] | None,
    *,
    persons: bool = True,
    resources: bool = True,
) -> list[Unit]:
    """The units of a batch of payloads; a payload whose mapping fails is quarantined.
    ``persons``, ``resources``: normalize the persons (``Unit.prepared``), render the
    resources; a first load's stages each need one of them only (``ingest.initial``)."""
    mapper = kinds.kind(kind).map
    out: list[Unit] = []
    for p in payloads:
        if isinstance(p, Broken):
            out.append(p.unit)
            continue
        try:
            out.extend(mapper(p, known))
        except Exception as exc:  # a mapping defect must not stop the job: quarantine it
            out.append(_internal_error(kind, p, exc))
    _prepare(out, persons, resources)
    return out


def _prepare(units: list[Unit], persons: bool, resources: bool) -> None:
    """Work done here runs in the mapping processes, not in the writer: resource ids, and the
    normalization of each distinct person (a child's doses share one record object)."""
    prepared: dict[int, Prepared] = {}
    for u in units:
        for it in u.items if resources else ():
            body = it.body
            rtype = body["resourceType"]
            if "id" not in body:
                body["id"] = id_for_source_key(rtype, it.source_key)
            it.sensitivity = it.sensitivity or sensitivity_of(body)
            if rtype != "Appointment":  # (its person is a participant: attached by the writer)
                it.rendered = prerender(body, patient_element(rtype) if it.who else None)
                it.body = {"resourceType": rtype, "id": body["id"]}
        if persons and u.person is not None and not u.problems:
            key = id(u.person)
            if key not in prepared:
                prepared[key] = prepare(u.person)
            u.prepared = prepared[key]


def _internal_error(kind: str, p: Payload, exc: Exception) -> Unit:
    unit = Unit(key=f"{Path(p.path).name}#{p.n}", file=p.path, kind=kind, raw=p.raw())
    what = f"{type(exc).__name__}: {exc}"[:500]
    unit.problems.append(Problem("internal", None, None,
        f"the record could not be mapped ({what}); it is kept for replay after a fix.",
        f"không ánh xạ được bản ghi ({what}); đã lưu để phát lại sau khi sửa lỗi."))  # fmt: skip
    return unit
