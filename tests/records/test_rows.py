"""COPY rows of the bulk path: a rendered row holds the resource and its columns exactly, and
resources rendered ahead (ingest mapping processes) are stored like the others."""

import re
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from hssk.db import Database
from hssk.records import extract, store
from hssk.records.rows import finish_line, prerender

HOSTILE = st.text(alphabet=st.sampled_from(list('aZ đ\t\n\r\\"{},|\x01€')), max_size=12)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**40), 2**40) | HOSTILE,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(HOSTILE, inner, max_size=3),
    max_leaves=8,
)


def _field(text: bytes) -> str | None:
    """A COPY text field decoded (None for \\N)."""
    if text == b"\\N":
        return None
    escapes = {"t": "\t", "n": "\n", "r": "\r", "\\": "\\"}
    return re.sub(r"\\(.)", lambda m: escapes[m.group(1)], text.decode())


def _array(text: str | None) -> list[str]:
    """A PostgreSQL text[] literal whose elements are all quoted."""
    assert text is not None and text.startswith("{") and text.endswith("}")
    return [re.sub(r"\\(.)", r"\1", m) for m in re.findall(r'"((?:[^"\\]|\\.)*)"', text)]


def _split(line: bytes) -> tuple[list[str | None], Any]:
    """Fields and body of a COPY text row (the body: JSON with backslashes doubled)."""
    assert line.endswith(b"\n")
    *cols, body = line[:-1].split(b"\t")
    return [_field(c) for c in cols], orjson.loads(body.replace(b"\\\\", b"\\"))


@given(
    rtype=st.sampled_from(["Observation", "Immunization", "Coverage", "Organization"]),
    extra=st.dictionaries(HOSTILE.filter(lambda k: k not in ("id", "meta")), JSONISH),
    subject=st.none() | st.just({"reference": "Patient/x\\y"}),
    labels=st.none() | st.just({"security": [{"code": "HIV"}], "versionId": "7"}),
    code=HOSTILE,
    when=st.sampled_from([None, "2024-02-29", "2023-05-01T08:30:00+07:00", "bad"]),
    person=st.none() | st.integers(1, 10**12),
    unit=st.none() | HOSTILE,
)
def test_rendered_row_holds_the_resource_and_its_columns(
    rtype: str, extra: dict[str, Any], subject: Any, labels: Any, code: str, when: Any,
    person: int | None, unit: str | None,
) -> None:  # fmt: skip
    element = {"Observation": "subject", "Immunization": "patient", "Coverage": "beneficiary"}
    elem = element.get(rtype)
    body: dict[str, Any] = {**extra, "resourceType": rtype, "id": "r-1"}
    body["code"] = body["vaccineCode"] = {"coding": [{"system": "s", "code": code}]}
    if when:
        body["effectiveDateTime"] = body["occurrenceDateTime"] = when
    if subject and elem:
        body[elem] = subject
    if labels:
        body["meta"] = labels
    expected = dict(body)
    if person is not None and elem:
        expected[elem] = {"reference": f"Patient/mpi-{person}"}
    at = "2026-11-25T00:00:00.000001Z"
    meta = {k: v for k, v in (labels or {}).items() if k != "versionId"}
    expected["meta"] = {**meta, "versionId": "1", "lastUpdated": at}
    sensitivity = "HIV" if labels else None
    line = finish_line(rtype, "r-1", prerender(body, elem), person_id=person, version="1",
                       source_unit=unit, source_key=f"k|{code}", sensitivity=sensitivity,
                       at=at)  # fmt: skip
    cols, stored = _split(line)
    assert stored == expected
    when_col = extract.effective(expected)
    assert cols[:4] == [rtype, "r-1", "1", None if person is None else str(person)]
    assert _array(cols[4]) == extract.codes(expected)
    assert cols[5] == (when_col.isoformat() if when_col else None)
    assert cols[6] == extract.terms(expected)
    assert cols[7:] == [unit, f"k|{code}", sensitivity, at]


def test_rendered_resources_are_stored_like_plain_ones(clean_db: Database) -> None:
    """The same bodies through the store, rendered ahead and not: equal rows, and a rendered
    re-send of a plain write is recognised as unchanged."""
    bodies = [
        {"resourceType": "Observation", "status": "final", "code": {"coding": [{"code": c}]},
         "note": [{"text": f"ghi chú\t{c}\\\n"}], "effectiveDateTime": f"2025-01-0{i + 1}",
         "meta": {"security": [{"code": "HIV"}]} if i == 2 else {}}
        for i, c in enumerate(["a", "b", "c"])
    ]  # fmt: skip
    with clean_db.connection() as conn:
        plain = [
            store.NewResource(
                {**b, "subject": {"reference": "Patient/mpi-5"}}, 5, f"plain|{i}", "u1"
            )
            for i, b in enumerate(bodies)
        ]
        ahead = []
        for i, b in enumerate(bodies):
            rid = store.id_for_source_key("Observation", f"ahead|{i}")
            r = prerender({**b, "id": rid}, "subject")
            ahead.append(store.NewResource({"resourceType": "Observation", "id": rid}, 5,
                                           f"ahead|{i}", "u1", rendered=r))  # fmt: skip
        assert store.bulk_upsert(conn, plain).created["Observation"] == 3
        assert store.bulk_upsert(conn, ahead).created["Observation"] == 3
        rows = conn.execute(
            "SELECT source_key, body - 'id' - 'meta', (body -> 'meta') - 'lastUpdated', codes,"
            " effective, person_id, source_unit FROM resource ORDER BY source_key"
        ).fetchall()
        by_key = {r[0]: r[1:] for r in rows}
        for i in range(3):
            assert by_key[f"ahead|{i}"] == by_key[f"plain|{i}"]
            assert by_key[f"ahead|{i}"][0]["subject"] == {"reference": "Patient/mpi-5"}
        # the plain rows re-sent rendered ahead: nothing changes
        again = [
            store.NewResource({"resourceType": "Observation", "id": it.body.get("id") or
                               store.id_for_source_key("Observation", str(it.source_key))},
                              5, it.source_key, "u1",
                              rendered=prerender({**bodies[i], "id": store.id_for_source_key(
                                  "Observation", str(it.source_key))}, "subject"))
            for i, it in enumerate(plain)
        ]  # fmt: skip
        res = store.bulk_upsert(conn, again)
        assert res.unchanged == 3 and not res.updated and not res.created
