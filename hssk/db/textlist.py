"""Long lists of text as one query parameter.

psycopg adapts a Python list to ``text[]`` element by element in Python: for the thousands of
keys of an ingest batch that costs more than the query. Joined into one string and split by
PostgreSQL (``string_to_array``), the same list costs one ``str.join``. The separator is the
ASCII unit separator, which keys, ids and codes do not contain; callers drop (or handle) a
value that does, and empty values (``splittable``).
"""

from __future__ import annotations

from collections.abc import Iterable

SEP = "\x1f"
# SQL for one joined parameter as text[]: use as  ... = ANY({SPLIT})  or  unnest({SPLIT}, ...)
SPLIT = "string_to_array(%s, chr(31))"


def joined(values: Iterable[str]) -> str:
    """The values as one parameter for ``SPLIT``."""
    return SEP.join(values)


def splittable(value: str) -> bool:
    """Whether ``value`` survives the round trip: it does not hold the separator, and it is
    not empty (a list of one empty string comes back as an empty array)."""
    return bool(value) and SEP not in value
