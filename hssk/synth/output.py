"""Where generated files go: CSV writers that count their rows, raw files, the ground truth and
the manifest that lists them all."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

TRUTH_RECORDS = "truth/source_records.csv"
TRUTH_PERSONS = "truth/persons.csv"


@dataclass
class FileEntry:
    path: str  # relative to the output directory
    kind: str
    records: int
    format: str  # csv | xml | dir
    description: str = ""
    files: int = 1  # for directories of XML files: how many files


@dataclass
class Manifest:
    """What ``generate`` wrote (also saved as ``manifest.json``)."""

    out_dir: str
    params: dict[str, Any]
    files: list[FileEntry] = field(default_factory=list)
    truth: dict[str, str] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    records_per_second: float = 0.0

    def entry(self, kind: str) -> FileEntry:
        return next(f for f in self.files if f.kind == kind)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def load(cls, path: Path) -> Manifest:
        raw = json.loads(Path(path).read_text("utf-8"))
        raw["files"] = [FileEntry(**f) for f in raw["files"]]
        return cls(**raw)


class CsvSink:
    """A CSV file written row by row (UTF-8, header first), counting its data rows."""

    def __init__(self, path: Path, header: Sequence[str]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # a large buffer: a few hundred thousand short rows per 20,000 persons
        self.fh: IO[str] = path.open("w", newline="", encoding="utf-8", buffering=1 << 20)
        self.writer = csv.writer(self.fh)
        self.writer.writerow(header)
        self.width = len(header)
        self.rows = 0

    def write(self, row: Sequence[object]) -> None:
        if len(row) != self.width:  # a programming error: keep columns aligned
            raise ValueError(f"row of {len(row)} values for {self.width} columns")
        self.writer.writerow(["" if v is None else v for v in row])
        self.rows += 1

    def close(self) -> None:
        self.fh.close()


class Output:
    """All files of one generation run, plus the truth of every source record."""

    def __init__(self, out_dir: Path, csv_dir: Path | None = None) -> None:
        self.dir = Path(out_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.csv_dir = Path(csv_dir) if csv_dir else self.dir
        self.csvs: dict[str, tuple[str, CsvSink, str]] = {}
        self.trees: dict[str, list[Any]] = {}  # kind -> [path, files, records, description]
        self.made_dirs: set[Path] = set()
        self.truth = self.csv(
            "truth_records",
            TRUTH_RECORDS,
            ["source", "record_id", "person_key", "file", "errors"],
            "Ground truth: the true person of every source record, and the errors applied.",
        )

    def csv(self, kind: str, rel: str, header: Sequence[str], description: str = "") -> CsvSink:
        sink = CsvSink(self.csv_dir / rel, header)
        self.csvs[kind] = (rel, sink, description)
        return sink

    def tree(self, kind: str, rel: str, description: str) -> None:
        self.trees[kind] = [rel, 0, 0, description]

    def write_file(self, kind: str, rel: str, data: bytes, records: int = 1) -> None:
        path = self.dir / rel
        if path.parent not in self.made_dirs:
            if len(self.made_dirs) > 20_000:  # keep memory flat on long runs
                self.made_dirs.clear()
            path.parent.mkdir(parents=True, exist_ok=True)
            self.made_dirs.add(path.parent)
        path.write_bytes(data)
        t = self.trees[kind]
        t[1] += 1
        t[2] += records

    def record(
        self, source: str, record_id: str, person_key: str, file: str, errors: Sequence[str]
    ) -> None:
        self.truth.write([source, record_id, person_key, file, ";".join(errors)])
