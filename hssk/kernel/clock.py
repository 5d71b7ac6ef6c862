"""One notion of "now" and "today": instants are kept in UTC; what a person sees or enters is
in Vietnam time (Asia/Ho_Chi_Minh, UTC+7, no daylight saving).

Between 00:00 and 07:00 in Vietnam the UTC date is still yesterday: every "today" a person
sees (form defaults, "not in the future" checks, quotas per day) is ``today()`` here, never
``date.today()`` or the UTC date. Tests move the clock with ``frozen(...)`` or, for a server in
another process, the ``HSSK_CLOCK`` environment variable (an ISO instant).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

VN = ZoneInfo("Asia/Ho_Chi_Minh")
_frozen: datetime | None = None


def now() -> datetime:
    """The current instant, timezone-aware, in UTC."""
    if _frozen is not None:
        return _frozen
    fixed = os.environ.get("HSSK_CLOCK")
    if fixed:
        return parse_instant(fixed)
    return datetime.now(UTC)


def now_vn() -> datetime:
    """The current instant in Vietnam time."""
    return now().astimezone(VN)


def today() -> date:
    """Today's date in Vietnam."""
    return now_vn().date()


def to_vn(instant: datetime) -> datetime:
    """An instant in Vietnam time (a naive one is taken as UTC)."""
    if instant.tzinfo is None:
        instant = instant.replace(tzinfo=UTC)
    return instant.astimezone(VN)


def day_of(text: str) -> date | None:
    """The Vietnam calendar day of an ISO date or instant as text ('2026-12-06' is that day; the
    instant '2026-12-06T18:30:00Z' is 07/12 in Vietnam); None if it is neither."""
    try:
        if len(text) > 10 and text[10] == "T":
            return to_vn(datetime.fromisoformat(text.replace("Z", "+00:00"))).date()
        return date.fromisoformat(text[:10])
    except ValueError:
        return None


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant; without an offset it is Vietnam time (what people type)."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=VN)
    return value.astimezone(UTC)


@contextmanager
def frozen(instant: datetime | str) -> Iterator[None]:
    """Stop the clock at ``instant`` in this process (tests)."""
    global _frozen
    previous = _frozen
    _frozen = parse_instant(instant) if isinstance(instant, str) else instant.astimezone(UTC)
    try:
        yield
    finally:
        _frozen = previous
