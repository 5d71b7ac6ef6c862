"""``hssk mpi``: link a CSV file, review uncertain matches, merge and unmerge, verify."""

from __future__ import annotations

import csv
import sys
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from hssk.registry.types import SourceRecord

app = typer.Typer(no_args_is_help=True, help="Chỉ mục bệnh nhân chủ (MPI) / master patient index.")
console = Console()
err = Console(stderr=True)

COLUMNS = (
    "record_id",
    "full_name",
    "birth_date",
    "sex",
    "cccd",
    "bhxh",
    "bhyt",
    "phone",
    "address",
    "commune_code",
)


class CsvInputError(ValueError):
    """The input CSV cannot be linked (message says where and how to fix it)."""


def read_records(path: Path, source: str) -> list[SourceRecord]:
    """SourceRecords from a CSV with a header (only ``record_id`` is required)."""
    try:
        fh = path.open(encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise CsvInputError(f"không mở được tệp / cannot open {path}: {exc.strerror}") from exc
    with fh:
        reader = csv.DictReader(fh)
        header = [h.strip() for h in reader.fieldnames or []]
        if "record_id" not in header:
            raise CsvInputError(
                f"{path}: thiếu cột record_id trong dòng tiêu đề / the header has no 'record_id' column "
                f"(found: {', '.join(header) or 'nothing'}); add it — it is the only required column."
            )
        unknown = [h for h in header if h not in COLUMNS]
        if unknown:
            err.print(f"[yellow]bỏ qua cột / ignoring columns:[/] {', '.join(unknown)}")
        recs = []
        seen: dict[str, int] = {}
        for line, row in enumerate(reader, start=2):
            row = {
                (k or "").strip(): (v.strip() if isinstance(v, str) else v) for k, v in row.items()
            }
            rid = row.get("record_id") or ""
            if not rid:
                raise CsvInputError(
                    f"{path}:{line}: record_id trống / empty record_id; every row needs one."
                )
            if rid in seen:
                raise CsvInputError(
                    f"{path}:{line}: record_id '{rid}' đã có ở dòng {seen[rid]} / repeats line {seen[rid]}; "
                    "record ids must be unique within a file."
                )
            seen[rid] = line
            fields: dict[str, Any] = {c: row.get(c) or None for c in COLUMNS[1:]}
            recs.append(SourceRecord(source, rid, **fields))
    return recs


@app.command()
def link(
    input: Annotated[
        Path,
        typer.Argument(
            help="CSV: record_id, full_name, birth_date, sex, cccd, bhxh, bhyt, phone, address, commune_code"
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="output CSV: record_id,person_key")],
    online: Annotated[
        bool, typer.Option(help="link into the database instead of deduplicating the file alone")
    ] = False,
    source: Annotated[
        str, typer.Option(help="source name recorded with each record (online mode)")
    ] = "file",
) -> None:
    """Liên kết bản ghi thành người / link the records of a file to persons (one output row per
    input record; records of one person share a person_key)."""
    try:
        recs = read_records(input, source)
    except CsvInputError as exc:
        err.print(f"[red]lỗi / error:[/] {exc}")
        raise typer.Exit(2) from exc
    if online:
        from hssk.db import open_database
        from hssk.registry.link import link_many

        db = open_database()
        keys: list[str] = []
        with db.connection() as conn:
            for i in range(0, len(recs), 5000):
                keys += [str(r.person_id) for r in link_many(conn, recs[i : i + 5000])]
        db.close()
    else:
        from hssk.registry.dedup import dedup

        result = dedup(recs)
        keys = [recs[c].record_id for c in result.cluster]
        err.print(
            f"{len(recs):,} bản ghi → {len(set(keys)):,} người; {result.stats.get('review_pairs', 0):,} cặp cần xem xét"
            f" / records → persons; pairs for review ({result.stats['total_s']:.1f} s)"
        )
    with out.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["record_id", "person_key"])
        w.writerows((r.record_id, k) for r, k in zip(recs, keys, strict=True))


@app.command()
def train(
    input: Annotated[Path, typer.Argument(help="CSV of the deployment's records (as for link)")],
    activate: Annotated[
        bool, typer.Option(help="use the trained weights for linking from now on")
    ] = False,
    random_pairs: Annotated[int, typer.Option(help="random pairs for the u estimate")] = 100_000,
) -> None:
    """Học trọng số m/u (EM) / estimate m and u from the records (EM; random pairs for u),
    save them as a new version, print each weight and its change."""
    from hssk.kernel.config import settings
    from hssk.registry import train as tr
    from hssk.registry.link import features_of
    from hssk.registry.prepare import prepare

    try:
        recs = read_records(input, "file")
    except CsvInputError as exc:
        err.print(f"[red]lỗi / error:[/] {exc}")
        raise typer.Exit(2) from exc
    result = tr.train([features_of(prepare(r)) for r in recs], random_pairs=random_pairs)
    data_dir = settings().data_dir
    path = tr.save(result, data_dir)
    table = Table("field", "level", "weight before (bits)", "after", "change")
    for fld, lvl, before, after in tr.changes(result.levels):
        table.add_row(fld, lvl, f"{before:.2f}", f"{after:.2f}", f"{after - before:+.2f}")
    console.print(table)
    console.print(
        f"version {result.version}: {result.records:,} records, {result.candidate_pairs:,}"
        f" candidate pairs, {result.iterations} EM iterations, match share"
        f" {result.match_share:.4f} → {path}"
    )
    if activate:
        console.print(f"active: {tr.activate(path, data_dir)}")


@app.command()
def review(
    limit: Annotated[int, typer.Option(help="rows to show")] = 50,
    status: Annotated[str, typer.Option(help="open | accepted | rejected")] = "open",
) -> None:
    """Danh sách cặp cần xem xét / list uncertain matches awaiting a decision."""
    from hssk.db import open_database
    from hssk.registry.merge import list_reviews

    db = open_database()
    with db.connection() as conn:
        rows = list_reviews(conn, status=status, limit=limit)
    db.close()
    table = Table("id", "person", "candidate", "score", "evidence")
    for r in rows:
        ev = ", ".join(f"{k}={v['level']}" for k, v in r.evidence.items() if isinstance(v, dict))
        table.add_row(str(r.id), str(r.person_id), str(r.candidate_id), f"{r.score:.3f}", ev)
    console.print(table)


def _decide(review_id: int, accept: bool, actor: str, note: str | None) -> None:
    from hssk.db import open_database
    from hssk.registry.merge import MergeError, decide

    db = open_database()
    try:
        with db.connection() as conn:
            merge_id = decide(conn, review_id, accept=accept, actor=actor, note=note)
    except MergeError as exc:
        err.print(f"[red]lỗi / error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        db.close()
    console.print(
        f"review {review_id}: {'accepted' if accept else 'rejected'}"
        + (f", merge {merge_id}" if merge_id else "")
    )


@app.command()
def accept(
    review_id: int,
    actor: Annotated[str, typer.Option()] = "cli",
    note: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Chấp nhận: gộp hai hồ sơ / accept a review: merge the two persons."""
    _decide(review_id, True, actor, note)


@app.command()
def reject(
    review_id: int,
    actor: Annotated[str, typer.Option()] = "cli",
    note: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Từ chối: hai người khác nhau / reject a review: they are different persons."""
    _decide(review_id, False, actor, note)


@app.command()
def merge(
    survivor: int,
    merged: int,
    actor: Annotated[str, typer.Option()] = "cli",
    reason: Annotated[str | None, typer.Option()] = None,
) -> None:
    """Gộp MERGED vào SURVIVOR / merge a person into another (reversible with unmerge)."""
    from hssk.db import open_database
    from hssk.registry.merge import MergeError
    from hssk.registry.merge import merge as do_merge

    db = open_database()
    try:
        with db.connection() as conn:
            merge_id = do_merge(conn, survivor, merged, actor=actor, reason=reason)
    except MergeError as exc:
        err.print(f"[red]lỗi / error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        db.close()
    console.print(f"merge {merge_id}: {merged} → {survivor}")


@app.command()
def unmerge(merge_id: int, actor: Annotated[str, typer.Option()] = "cli") -> None:
    """Tách lần gộp MERGE_ID / undo a merge, restoring both persons exactly."""
    from hssk.db import open_database
    from hssk.registry.merge import MergeError
    from hssk.registry.merge import unmerge as do_unmerge

    db = open_database()
    try:
        with db.connection() as conn:
            do_unmerge(conn, merge_id, actor=actor)
    except MergeError as exc:
        err.print(f"[red]lỗi / error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        db.close()
    console.print(f"merge {merge_id} undone")


@app.command("set-phone")
def set_phone(
    person_id: int,
    phone: str,
    reason: Annotated[str, typer.Option(help="how the citizen proved who they are, in person")],
    actor: Annotated[str, typer.Option(help="the staff member entering it")],
) -> None:
    """Số điện thoại công dân xác nhận trực tiếp / a phone the citizen confirmed in person
    (verified: login codes go to it; the old phone is told; audited)."""
    from hssk.db import open_database
    from hssk.registry.phones import PhoneError, set_phone_in_person

    db = open_database()
    try:
        with db.connection() as conn:
            number = set_phone_in_person(conn, person_id, phone, actor=actor, reason=reason)
    except PhoneError as exc:
        err.print(f"[red]lỗi / error:[/] {exc}")
        raise typer.Exit(1) from exc
    finally:
        db.close()
    console.print(f"person {person_id}: phone {number} (verified in person)")


@app.command()
def show(person_id: int) -> None:
    """Hồ sơ hành chính dạng FHIR Patient / print a person as a FHIR Patient."""
    from hssk.db import open_database
    from hssk.registry import get_person, patient_resource

    db = open_database()
    with db.connection() as conn:
        person = get_person(conn, person_id)
    db.close()
    if person is None:
        err.print(f"[red]không có người mang mã / no person with id[/] {person_id}")
        raise typer.Exit(1)
    sys.stdout.write(
        orjson.dumps(patient_resource(person), option=orjson.OPT_INDENT_2).decode() + "\n"
    )


@app.command()
def verify(
    register: Annotated[Path, typer.Option(help="synthetic register CSV for the simulator")],
    limit: Annotated[int, typer.Option()] = 500,
) -> None:
    """Đối chiếu với CSDL dân cư (mô phỏng) / verify pending persons against the register."""
    from hssk.db import open_database
    from hssk.registry.verify import SimulatedRegister, verify_pending

    reg = SimulatedRegister.from_csv(register)
    db = open_database()
    with db.connection() as conn:
        counts = verify_pending(conn, reg, limit=limit)
    db.close()
    console.print(counts)
