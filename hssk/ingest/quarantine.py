"""The quarantine: records that could not be taken, with their reason and raw content.

They can be listed, corrected (the raw content replaced) and replayed: a replay maps the raw
record again exactly as the original job would have, and stores it if it is now valid. A
record that must not be stored at all is discarded, with who did it and why; it stays on
record (nothing is deleted).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from hssk.ingest import jobstore, kinds, writer
from hssk.ingest.kinds import SourceError
from hssk.ingest.model import Unit
from hssk.ingest.xmlparse import XmlError


@dataclass
class QuarantinedRecord:
    id: int
    job_id: int | None
    kind: str | None
    file: str | None
    record: str | None
    element: str | None
    value: str | None
    rule: str | None
    reason: str
    reason_vi: str | None
    status: str
    created_at: datetime
    facility: str | None = None
    discard_reason: str | None = None
    raw: str | None = None

    def to_json(self, *, with_raw: bool = False) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if k != "raw" or with_raw}
        out["created_at"] = self.created_at.isoformat()
        return out


_COLS = (
    "id, job_id, kind, file, record, element, value, rule, reason, reason_vi, status, created_at,"
    " facility, discard_reason"
)
# 'noted': a record stored all the same, with what was read otherwise than sent (a warning)
STATUSES = ("quarantined", "replayed", "discarded", "noted")


class ReplayError(Exception):
    """The record cannot be replayed (unknown id, no raw content, still invalid)."""

    def __init__(self, en: str, vi: str):
        self.reason, self.vi = en, vi
        super().__init__(en)


class AlreadyHandled(ReplayError):
    """The record was replayed or discarded already (nothing more to do with it)."""


def list_errors(
    conn: psycopg.Connection[Any],
    *,
    job_id: int | None = None,
    status: str | None = "quarantined",
    facility: str | None = None,
    rule: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[QuarantinedRecord]:
    """Quarantined records, oldest first. None for a filter means any (``facility=None``:
    every facility's records; callers narrow it to what the actor may see)."""
    rows = conn.execute(
        f"""SELECT {_COLS} FROM ingest_error
            WHERE (%(job)s::bigint IS NULL OR job_id = %(job)s)
              AND (%(status)s::text IS NULL OR status = %(status)s)
              AND (%(fac)s::text IS NULL OR facility = %(fac)s)
              AND (%(rule)s::text IS NULL OR rule = %(rule)s)
            ORDER BY id LIMIT %(limit)s OFFSET %(offset)s""",
        {"job": job_id, "status": status, "fac": facility, "rule": rule, "limit": limit,
         "offset": offset},
    ).fetchall()  # fmt: skip
    return [QuarantinedRecord(*r) for r in rows]


def count_by_rule(
    conn: psycopg.Connection[Any], *, status: str | None = "quarantined", facility: str | None
) -> dict[str, int]:
    """How many records each rule holds back (most frequent first): what to fix first."""
    rows = conn.execute(
        """SELECT coalesce(rule, ''), count(*) FROM ingest_error
            WHERE (%(status)s::text IS NULL OR status = %(status)s)
              AND (%(fac)s::text IS NULL OR facility = %(fac)s)
            GROUP BY 1 ORDER BY 2 DESC, 1""",
        {"status": status, "fac": facility},
    ).fetchall()
    return {r[0]: int(r[1]) for r in rows}


def get_error(conn: psycopg.Connection[Any], error_id: int) -> QuarantinedRecord:
    row = conn.execute(
        f"SELECT {_COLS}, raw FROM ingest_error WHERE id = %s", (error_id,)
    ).fetchone()
    if row is None:
        raise ReplayError(
            f"no quarantined record {error_id}", f"không có bản ghi cách ly {error_id}"
        )
    return QuarantinedRecord(*row)


def _pending(conn: psycopg.Connection[Any], error_id: int) -> QuarantinedRecord:
    rec = get_error(conn, error_id)
    if rec.status != "quarantined":
        raise AlreadyHandled(
            f"record {error_id} is already {rec.status}", f"bản ghi {error_id} đã {_VI[rec.status]}"
        )
    return rec


_VI = {
    "quarantined": "bị cách ly",
    "replayed": "được phát lại",
    "discarded": "bị loại bỏ",
    "noted": "được lưu kèm cảnh báo",
}


def correct(conn: psycopg.Connection[Any], error_id: int, raw: str, by: str | None = None) -> None:
    """Replace the raw content of a quarantined record (before a replay)."""
    _pending(conn, error_id)
    conn.execute(
        "UPDATE ingest_error SET raw = %s, corrected_at = now(), corrected_by = %s WHERE id = %s",
        (raw, by, error_id),
    )


def discard(conn: psycopg.Connection[Any], error_id: int, reason: str, by: str | None) -> None:
    """Set a quarantined record aside for good (it is kept, with who did it and why)."""
    _pending(conn, error_id)
    reason = reason.strip()
    if not reason:
        raise ReplayError(
            "say why the record is discarded (e.g. a test record, sent to the wrong facility)",
            "cần ghi lý do loại bỏ (ví dụ: bản ghi thử, gửi nhầm cơ sở)",
        )
    conn.execute(
        """UPDATE ingest_error SET status = 'discarded', discarded_at = now(),
             discarded_by = %s, discard_reason = %s WHERE id = %s""",
        (by, reason[:500], error_id),
    )


def _remap(rec: QuarantinedRecord, known: frozenset[str] | None) -> Unit:
    """The record mapped again by its kind, from what was kept (and corrected)."""
    source = kinds.BY_NAME.get(rec.kind or "")
    if source is None:
        raise ReplayError(f"records of kind {rec.kind!r} cannot be replayed",
                          f"không phát lại được loại {rec.kind!r}")  # fmt: skip
    return source.remap(rec.raw or "", rec.file or "", known)


def replay(conn: psycopg.Connection[Any], error_id: int) -> jobstore.Summary:
    """Map the (corrected) raw record again and store it; the quarantine row becomes
    'replayed'. Raises ReplayError (with the new reasons) if it is still invalid."""
    rec = _pending(conn, error_id)
    if not rec.raw:
        raise ReplayError(
            "this error concerns a whole file (no record content kept): send the corrected file again",
            "lỗi này thuộc cả tệp (không lưu nội dung bản ghi): hãy gửi lại tệp đã sửa",
        )
    known = (
        jobstore.known_facilities(conn)
        if rec.kind in kinds.BY_NAME and kinds.kind(rec.kind).checks_facility
        else None
    )
    try:
        unit = _remap(rec, known)
    except (XmlError, SourceError) as exc:
        raise ReplayError(exc.reason, exc.vi) from None
    unit.file = rec.file or ""
    if unit.problems:
        raise ReplayError(
            "; ".join(p.reason for p in unit.problems), "; ".join(p.vi for p in unit.problems)
        )
    summary = jobstore.Summary(job_id=0, kind=rec.kind or "")
    stored = writer.write_units(conn, None, rec.kind or "", [unit], summary)
    if not stored:
        raise ReplayError(
            "; ".join(p.reason for p in unit.problems) or "not stored",
            "; ".join(p.vi for p in unit.problems) or "không lưu được",
        )
    conn.execute(
        "UPDATE ingest_error SET status = 'replayed', replayed_at = now() WHERE id = %s",
        (error_id,),
    )
    summary.status = "done"
    return summary
