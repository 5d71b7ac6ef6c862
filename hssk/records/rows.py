"""Rows of ``resource`` in COPY text format, for the bulk path.

A row is rendered from the body (``prerender``: JSON, codes, date, search terms), then
finished at write time (``finish_line``) with what only the writer knows: the person, the
version and the time. Ingest renders in its mapping processes, which takes the JSON encoding
and the column extraction out of the single writer (a rendered resource also pickles as a
few byte strings instead of a nested dict); the store renders the other writes itself.
Formatting rows here is several times cheaper than psycopg's generic row writer (it adapts
text[] arrays in Python), and the JSON stays in the bytes orjson made.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

from hssk.records import extract
from hssk.records.refs import patient_reference

SERVER_META = ("versionId", "lastUpdated")


def text(value: str | None) -> str:
    """A value in COPY text format (\\N for NULL, backslash escapes)."""
    if value is None:
        return "\\N"
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        value = value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
        value = value.replace("\r", "\\r")
    return value


def _array(values: list[str]) -> str:
    # every element quoted: codes come from source files and may hold any character
    inner = ",".join('"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values)
    return text("{" + inner + "}")


def _json(obj: Any) -> bytes:
    # orjson escapes control characters inside strings: only backslashes need doubling
    return orjson.dumps(obj).replace(b"\\", b"\\\\")


def _columns(body: dict[str, Any]) -> str:
    """codes, effective, terms: the columns extracted from the body."""
    when = extract.effective(body)
    return "\t".join(
        (
            _array(extract.codes(body)),
            "\\N" if when is None else when.isoformat(),
            text(extract.terms(body)),
        )
    )


class Rendered(NamedTuple):
    """A resource body rendered ahead of the write: every part of its row that does not
    depend on the person, the version or the time of writing (COPY-escaped bytes)."""

    columns: bytes  # codes \t effective \t terms
    prefix: bytes  # '{"resourceType":…,"id":…,"meta":{' + other meta entries and ','
    element: bytes  # ',"subject":' where the person's reference goes, or b''
    original: bytes  # that element's value as received (kept when no person is attached)
    rest: bytes  # ',' + every other element, or b''


def prerender(body: dict[str, Any], element: str | None) -> Rendered:
    """Render ``body`` (with its ``id``); ``element``: where ``finish_line`` puts the person's
    reference (``{"reference": "Patient/mpi-<id>"}``), or None."""
    rest = {k: v for k, v in body.items() if k not in ("resourceType", "id", "meta", element)}
    meta = body.get("meta") or {}
    meta = {k: v for k, v in meta.items() if k not in SERVER_META}
    head = {"resourceType": body["resourceType"], "id": body["id"]}
    prefix = _json(head)[:-1] + b',"meta":{'
    if meta:
        prefix += _json(meta)[1:-1] + b","
    original = b""
    if element is not None and body.get(element) is not None:
        original = _json(body[element])
    return Rendered(
        columns=_columns(body).encode(),
        prefix=prefix,
        element=b',"' + element.encode() + b'":' if element else b"",
        original=original,
        rest=b"," + _json(rest)[1:-1] if rest else b"",
    )


def finish_line(
    rtype: str,
    rid: str,
    r: Rendered,
    *,
    person_id: int | None,
    source_unit: str | None,
    source_key: str | None,
    sensitivity: str | None,
    version: str,
    at: str,
) -> bytes:
    """The row (``type, id, version, person_id, codes, effective, terms, source_unit,
    source_key, sensitivity, last_updated, body``) of a rendered resource, with the person's
    reference set in its rendered element and the server's meta (version, time) added."""
    pid = "\\N" if person_id is None else str(int(person_id))
    head = "\t".join((text(rtype), text(rid), version, pid)).encode()
    tail = "\t".join((text(source_unit), text(source_key), text(sensitivity), at, "")).encode()
    if r.element and person_id is not None:
        ref = r.element + b'{"reference":"' + patient_reference(person_id).encode() + b'"}'
    elif r.element and r.original:
        ref = r.element + r.original
    else:
        ref = b""
    meta = b'"versionId":"' + version.encode() + b'","lastUpdated":"' + at.encode() + b'"}'
    return b"".join((head, b"\t", r.columns, b"\t", tail, r.prefix, meta, ref, r.rest, b"}\n"))
