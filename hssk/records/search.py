"""FHIR search over the record store: parameters → one parameterised SQL query.

Every type: ``_id``, ``_lastUpdated``, ``_tag``, ``_profile``, ``_security``, ``_count``,
``_offset``, ``_total``; and, where the type has them (``params.common``, from the R4
definitions), ``identifier``, ``patient``/``subject``, ``date``, ``code``, ``status``; Patient
``name``/``family``/``given``/``birthdate``/``gender``. Dates without a zone are Vietnam time
(FHIR: the server's zone). Unknown parameters are reported in ``Query.ignored``; the API
refuses them or leaves them out per the caller's ``handling`` preference. Name words are
matched through the prefix index of migration 0104; totals are exact up to ``TOTAL_BOUND``
matches past the page and left out beyond (``_total=accurate`` counts them all,
``_total=none`` skips counting).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
import psycopg

from hssk.kernel import identifiers
from hssk.kernel.clock import VN
from hssk.records import params as definitions
from hssk.records import refs
from hssk.records.extract import fold
from hssk.records.store import _CURRENT, Stored, _row, person_of

MAX_COUNT = 500
DEFAULT_COUNT = 20
TOTAL_BOUND = 1000  # matches counted past the page before the total is left out
TOTAL_MODES = ("none", "estimate", "accurate")
_PREFIXES = ("eq", "ne", "gt", "ge", "lt", "le", "sa", "eb")
_DATE = re.compile(r"^\d{4}(-\d{2}(-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$")
COMMON = definitions.ALL_TYPES
BY_TYPE: dict[str, tuple[str, ...]] = {
    "Patient": ("name", "family", "given", "birthdate", "gender"),
    "Organization": ("name",),
}
# the common parameters of the R4 definitions the store answers where a type has them
DEFINED = ("identifier", "patient", "subject", "date", "code", "status")


class SearchError(ValueError):
    """A search parameter is malformed; the message says which and how to fix it."""

    def __init__(self, param: str, reason: str):
        self.param = param
        super().__init__(f"search parameter '{param}': {reason}")


@dataclass
class Query:
    type: str
    where: list[str] = field(default_factory=list)
    args: list[Any] = field(default_factory=list)
    count: int = DEFAULT_COUNT
    offset: int = 0
    ignored: list[str] = field(default_factory=list)
    empty: bool = False  # a filter that can match nothing (e.g. unknown patient)
    person: int | None = None  # the one person a patient/subject parameter names
    total: str = "estimate"  # none, estimate (exact up to a bound), accurate


def allowed_params(rtype: str) -> tuple[str, ...]:
    """Every search parameter ``rtype`` answers (the others are unknown)."""
    have = definitions.common(rtype)
    return COMMON + tuple(p for p in DEFINED if p in have) + BY_TYPE.get(rtype, ())


def _date_range(param: str, text: str) -> tuple[str, datetime, datetime]:
    """(prefix, start, end) of a FHIR date search value: the instants it covers. A value
    without a zone is Vietnam time (FHIR: the server's zone), so ``2026-12-06`` is that day in
    Vietnam, 2026-12-05T17:00Z to 2026-12-06T17:00Z."""
    prefix = text[:2] if text[:2] in _PREFIXES else "eq"
    value = text[2:] if text[:2] in _PREFIXES else text
    if not _DATE.match(value):
        raise SearchError(
            param,
            f"'{text}' không phải ngày FHIR / is not a FHIR date (YYYY, YYYY-MM, YYYY-MM-DD "
            "or dateTime such as 2026-12-06T08:30:00+07:00; a prefix eq, ne, gt, ge, lt, le, "
            "sa or eb may come first)",
        )
    try:
        if len(value) == 4:
            lo = datetime(int(value), 1, 1, tzinfo=VN)
            hi = datetime(int(value) + 1, 1, 1, tzinfo=VN)
        elif len(value) == 7:
            y, m = int(value[:4]), int(value[5:7])
            lo = datetime(y, m, 1, tzinfo=VN)
            hi = datetime(y + m // 12, m % 12 + 1, 1, tzinfo=VN)
        elif len(value) == 10:
            lo = datetime.fromisoformat(value).replace(tzinfo=VN)
            hi = lo + timedelta(days=1)
        else:
            lo = datetime.fromisoformat(value.replace("Z", "+00:00"))
            lo = lo if lo.tzinfo else lo.replace(tzinfo=VN)
            # the precision given: to the minute or second (fractions: that instant)
            seconds = value.split("T", 1)[1][:8].count(":") == 2
            hi = lo + (timedelta(seconds=1) if seconds else timedelta(minutes=1))
            if "." in value:
                hi = lo + timedelta(microseconds=1)
    except ValueError as exc:
        raise SearchError(
            param, f"'{text}' không phải ngày hợp lệ / is not a valid date: {exc}"
        ) from None
    return prefix, lo, hi


def _date_clause(q: Query, column: str, param: str, text: str) -> None:
    prefix, lo, hi = _date_range(param, text)
    sql = {
        "eq": f"({column} >= %s AND {column} < %s)",
        "ne": f"NOT ({column} >= %s AND {column} < %s)",
        "gt": f"{column} >= %s",
        "sa": f"{column} >= %s",
        "ge": f"{column} >= %s",
        "lt": f"{column} < %s",
        "eb": f"{column} < %s",
        "le": f"{column} < %s",
    }[prefix]
    args = {"eq": [lo, hi], "ne": [lo, hi], "gt": [hi], "sa": [hi], "ge": [lo], "lt": [lo]}
    args |= {"eb": [lo], "le": [hi]}
    q.where.append(sql)
    q.args.extend(args[prefix])


def _status_clause(q: Query, rtype: str, value: str) -> None:
    """``status``: the element R4 names (a code, or a CodeableConcept's codes)."""
    wanted = value.split(",")
    element = (definitions.paths(rtype, "status") or ("status",))[0]
    if element == "status":
        q.where.append("body ->> 'status' = ANY(%s)")
        q.args.append(wanted)
        return
    path = "$." + element + ".coding.code"  # e.g. ImmunizationRecommendation's forecastStatus
    q.where.append("jsonb_path_query_array(body, %s::jsonpath) ?| %s")
    q.args += [path, wanted]


def _token(value: str) -> tuple[str | None, str]:
    if "|" in value:
        system, _, code = value.partition("|")
        return (system or None), code
    return None, value


def _int(param: str, text: str, lo: int, hi: int) -> int:
    if not (text.isascii() and text.isdigit()):
        raise SearchError(param, f"'{text}' must be a whole number between {lo} and {hi}")
    return max(lo, min(hi, int(text)))


def person_of_reference(conn: psycopg.Connection[Any], rid: str) -> int | None:
    """The person of Patient/rid in either form a resource carries: a stored Patient's id,
    ``mpi-N`` or a bare ``N`` (merges are followed by the API's version)."""
    stored = person_of(conn, rid)
    if stored is not None:
        return stored
    return refs.golden_id(rid) or refs.bare_person_id(rid)


def parse(
    conn: psycopg.Connection[Any],
    rtype: str,
    params: list[tuple[str, str]],
    person_of_patient: Callable[[psycopg.Connection[Any], str], int | None] = person_of_reference,
    stored_under: Callable[[psycopg.Connection[Any], int], Sequence[int]] | None = None,
) -> Query:
    """Build the query for ``rtype`` from (name, value) pairs; raises SearchError.

    ``person_of_patient`` maps a Patient id to its person (the API also follows merges);
    ``stored_under`` gives the ids a person's data is stored under (merges never move rows:
    the registry's ``merged_ids``), the person alone when not given."""
    q = Query(rtype)
    allowed = allowed_params(rtype)
    for name, value in params:
        if "\x00" in name or "\x00" in value:
            raise SearchError(name.replace("\x00", "\\u0000"),
                              "holds a NUL character (\\u0000); remove it")  # fmt: skip
        base = name.split(":", 1)[0]
        if base not in allowed:
            q.ignored.append(name)
            continue
        if value == "" and base not in ("_count", "_offset"):
            raise SearchError(name, "empty value")
        if base == "_count":
            q.count = _int(name, value, 0, MAX_COUNT)
        elif base == "_offset":
            q.offset = _int(name, value, 0, 10_000_000)
        elif base == "_total":
            if value not in TOTAL_MODES:
                raise SearchError(name, f"'{value}' must be one of {', '.join(TOTAL_MODES)}")
            q.total = value
        elif base == "_id":
            q.where.append("id = ANY(%s)")
            q.args.append(value.split(","))
        elif base == "_lastUpdated":
            _date_clause(q, "last_updated", name, value)
        elif base in ("_tag", "_security"):
            element = base[1:]
            ors = []
            for part in value.split(","):
                system, code = _token(part)
                item = {"code": code} if system is None else {"system": system, "code": code}
                ors.append(f"(body -> 'meta' -> '{element}') @> %s::jsonb")
                q.args.append(orjson.dumps([item]).decode())
            q.where.append("(" + " OR ".join(ors) + ")")
        elif base == "_profile":
            q.where.append("(body -> 'meta' -> 'profile') ?| %s")
            q.args.append(value.split(","))
        elif base in ("patient", "subject"):
            ref = value.rsplit("/", 1)[-1] if value.startswith(("Patient/", "http")) else value
            if "/" in value and not value.split("/")[-2].endswith("Patient"):
                raise SearchError(name, f"'{value}' must reference a Patient")
            person = person_of_patient(conn, ref)
            if person is None or q.person not in (None, person):
                q.empty = True  # no such patient, or two different ones
            q.person = q.person or person
            under = (
                [person] if person is None or stored_under is None else stored_under(conn, person)
            )
            if len(under) == 1:  # one partition
                q.where.append("person_id = %s")
                q.args.append(under[0])
            else:
                q.where.append("person_id = ANY(%s)")
                q.args.append(list(under))
        elif base == "identifier":
            elements = definitions.paths(rtype, "identifier") or ("identifier",)
            ors = []
            for part in value.split(","):
                system, code = _token(part)
                system = identifiers.canonical_system(system) if system else None
                item = {"value": code} if system is None else {"system": system, "value": code}
                for element in elements:  # a list (identifier) or one (masterIdentifier)
                    ors.append(f"(body -> '{element}') @> %s::jsonb")
                    q.args.append(
                        orjson.dumps([item] if element == "identifier" else item).decode()
                    )
            q.where.append("(" + " OR ".join(ors) + ")")
        elif base == "code":
            tokens = []
            for part in value.split(","):
                system, code = _token(part)
                tokens.append(code if system is None else f"{system}|{code}")
            q.where.append("codes && %s::text[]")
            q.args.append(tokens)
        elif base in ("date", "birthdate"):
            _date_clause(q, "effective", name, value)
        elif base == "status":
            _status_clause(q, rtype, value)
        elif base == "gender":
            q.where.append("body ->> 'gender' = ANY(%s)")
            q.args.append(value.split(","))
        elif base in ("name", "family", "given"):
            words = fold(value).split()
            if words:  # every word starts one of the name's words (GIN index, 0104)
                q.where.append("terms IS NOT NULL AND resource_term_prefixes(terms) @> %s")
                q.args.append(words)
    return q


def _where(q: Query) -> tuple[str, list[Any]]:
    return " AND ".join(["type = %s", "NOT deleted", *q.where]), [q.type, *q.args]


def owner_groups(
    conn: psycopg.Connection[Any], q: Query, limit: int
) -> dict[tuple[int | None, str | None], int] | None:
    """How many matches each (person, sensitivity label) has; None when over ``limit`` groups."""
    if q.empty:
        return {}
    where, args = _where(q)
    rows = conn.execute(
        f"""SELECT person_id, sensitivity, count(*) FROM resource WHERE {where}
            GROUP BY person_id, sensitivity LIMIT %s""".encode(),
        [*args, limit + 1],
    ).fetchall()
    return None if len(rows) > limit else {(p, s): n for p, s, n in rows}


def restrict(q: Query, groups: Iterable[tuple[int | None, str | None]]) -> None:
    """Keep only matches of these (person, sensitivity label) pairs."""
    keys = list(groups)
    q.where.append(
        "(coalesce(person_id, 0), coalesce(sensitivity, '')) IN"
        " (SELECT * FROM unnest(%s::bigint[], %s::text[]))"
    )
    q.args += [[p or 0 for p, _ in keys], [s or "" for _, s in keys]]


def run(
    conn: psycopg.Connection[Any], q: Query, *, total: bool = True
) -> tuple[int | None, list[Stored]]:
    """Execute: (total matches or None when not counted, the requested page).

    The total follows ``q.total`` (``total=False`` is ``_total=none``): ``accurate`` counts
    every match; ``none`` skips; else it is exact when the page is the last one or the
    matches end within ``TOTAL_BOUND`` past it, and None beyond (a search never counts a
    whole table by default)."""
    if q.empty:
        return 0, []
    where, args = _where(q)
    rows: list[Stored] = []
    if q.count:
        rows = [
            _row(r)
            for r in conn.execute(
                f"""SELECT {_CURRENT} FROM resource WHERE {where}
                    ORDER BY effective DESC NULLS LAST, id LIMIT %s OFFSET %s""".encode(),
                [*args, q.count, q.offset],
            )
        ]
    mode = q.total if total else "none"
    if mode == "none":
        return None, rows
    if mode != "accurate" and q.count and len(rows) < q.count and (rows or not q.offset):
        return q.offset + len(rows), rows  # the last page: the total is known
    bound = q.offset + q.count + TOTAL_BOUND
    if mode == "accurate":
        sql, count_args = f"SELECT count(*) FROM resource WHERE {where}", args
    else:
        sql = f"SELECT count(*) FROM (SELECT 1 FROM resource WHERE {where} LIMIT %s) x"
        count_args = [*args, bound]
    (found,) = conn.execute(sql.encode(), count_args).fetchone() or (0,)
    if mode != "accurate" and found >= bound:
        return None, rows
    return int(found), rows
