"""The source kinds HSSK loads, each one object in its own module (``SourceKind``: which files
are its own, how they are read, checked and mapped, who may send them, whether they are signed,
how they are batched, which element keys a record). This is the one list the job runner, the
HTTP upload, the gateway and quarantine consult.
"""

from __future__ import annotations

from hssk.ingest.kinds import (
    edoc,
    facilities,
    fhir,
    immunization,
    insurance,
    population,
    station,
    xml130,
)
from hssk.ingest.kinds.base import DEFAULT_BATCH, Piece, SourceError, SourceKind

__all__ = ["BY_NAME", "DEFAULT_BATCH", "KINDS", "KINDS_LIST", "Piece", "SourceError",
           "SourceKind", "UnknownKind", "kind"]  # fmt: skip

KINDS_LIST: tuple[SourceKind, ...] = (
    xml130.KIND,
    immunization.KIND,
    population.KIND,
    insurance.KIND,
    station.KIND,
    fhir.KIND,
    facilities.KIND,
    edoc.KIND,
)

BY_NAME: dict[str, SourceKind] = {k.name: k for k in KINDS_LIST}
KINDS: tuple[str, ...] = tuple(BY_NAME)


class UnknownKind(ValueError):
    """A kind that HSSK does not load."""


def kind(name: str) -> SourceKind:
    """The kind called ``name``; UnknownKind (naming the known ones) otherwise."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise UnknownKind(f"unknown kind '{name}' (one of {', '.join(KINDS)})") from None
