"""What a source kind is: how its files are found, read, checked and mapped, and who may send
them. Each kind is one ``SourceKind`` object in its own module of this package.

A job reads its files in order as a stream of *pieces*; each piece carries a payload (a small
record the kind's reader makes and its mapper takes, in a worker process) and the position just
after it (file index, record index), which becomes the job's checkpoint when the batch that
holds it commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import psycopg

from hssk.ingest.model import Problem, Unit

DEFAULT_BATCH = 5_000


class SourceError(Exception):
    """A file (not one record) cannot be read."""

    def __init__(self, rule: str, vi: str, en: str):
        self.rule, self.vi, self.reason = rule, vi, en
        super().__init__(f"{rule}: {en}")


class FileProblem(Protocol):
    """A reason a file cannot be read (SourceError, xmlparse.XmlError)."""

    rule: str
    vi: str
    reason: str


class Payload(Protocol):
    """One record (or one small file) as a reader hands it to the mapper."""

    @property
    def path(self) -> str: ...

    @property
    def n(self) -> int: ...  # its place in the file (1-based; 0: the whole file)

    def raw(self) -> str | None:
        """The record as received, kept when its mapping fails."""


@dataclass(slots=True)
class Broken:
    """What is left of a file that cannot be read: a unit carrying the file's problem."""

    unit: Unit

    @property
    def path(self) -> str:
        return self.unit.file

    @property
    def n(self) -> int:
        return 0

    def raw(self) -> str | None:
        return None


@dataclass(slots=True)
class Piece:
    payload: Payload
    pos: tuple[int, int]  # position just after this piece: (file index, record index)


def broken_unit(kind: str, path: str, at: int, exc: FileProblem) -> Unit:
    """A unit for a file (or the rest of it, from record ``at``) that cannot be read."""
    unit = Unit(key=f"{Path(path).name}#{at}", file=path, kind=kind)
    unit.problems.append(Problem(exc.rule, None, None, f"{Path(path).name}: {exc.reason}", exc.vi))
    return unit


def broken(kind: str, path: str, at: int, exc: FileProblem, fi: int) -> Piece:
    """The piece that ends file ``fi``: its unreadable rest, quarantined."""
    return Piece(Broken(broken_unit(kind, path, at, exc)), (fi + 1, 0))


# (path, file index, records of the file already done) → its pieces
Reader = Callable[[str, int, int], Iterator[Piece]]
# one payload, the facilities the sender may report for (None: not checked) → its units
Mapper = Callable[[Any, frozenset[str] | None], list[Unit]]
# (a quarantined record as kept, possibly corrected; its file; known facilities) → its unit
Remapper = Callable[[str, str, frozenset[str] | None], Unit]
# a batch's good units written by the kind itself (not to the record store) → rows changed
Writer = Callable[[psycopg.Connection[Any], list[Unit]], int]


@dataclass(frozen=True)
class SourceKind:
    """One kind of source file: which files are its own (``extensions``), how they are read
    (``read``), checked and mapped (``map``; ``remap`` for a quarantined record), and who may
    send them."""

    name: str
    vi: str  # what it is, in Vietnamese
    en: str
    read: Reader
    map: Mapper
    remap: Remapper
    extensions: tuple[str, ...] = (".csv",)
    # its records name the sending facility (mã CSKCB), checked against the registered units
    checks_facility: bool = False
    # a national register: only national and platform systems may load it
    register: bool = False
    # a facility's own records (hồ sơ, check-ins, papers): an Encounter in them opens the
    # facility's treatment basis, so only its own HIS system account sends them
    facility_own: bool = False
    # submissions may carry the facility's signature (CHUKYDONVI / detached JWS)
    signed: bool = False
    # mapped in worker processes: mapping costs more than pickling the result
    # (ingest.runner.pool_size)
    pooled: bool = False
    batch_units: int = DEFAULT_BATCH
    # the element that keys one record (named in duplicate-key errors)
    key_element: str = "ma_ban_ghi"
    # its records can report a death (registry.DEATH_SOURCES); the element that carries it
    death_element: str | None = None
    # its good records are written by the kind itself, not to the record store
    write: Writer | None = None

    def find(self, paths: Sequence[str]) -> list[str]:
        """Files of a job, in a stable order: directories are walked (by extension)."""
        out: list[str] = []
        for p in paths:
            path = Path(p)
            if path.is_dir():
                out.extend(sorted(str(f) for f in path.rglob("*")
                                  if f.is_file() and f.suffix.lower() in self.extensions))  # fmt: skip
            else:
                out.append(str(path.resolve()) if path.exists() else str(path))
        return out
