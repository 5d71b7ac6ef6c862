"""Per-account daily quotas of partner look-ups, persisted in PostgreSQL.

The day is the calendar day in Vietnam (UTC+7): quotas reset at local midnight. A limit set
for an account in ``lookup_quota_limit`` wins over the default (``HSSK_LOOKUP_DAILY_QUOTA``,
100,000 a day, what Hanoi asked for). Counting is one atomic upsert, so concurrent requests
and restarts never let an account past its limit.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import psycopg

from hssk.kernel import clock

VN = clock.VN
DEFAULT_LIMIT = 100_000


@dataclass(frozen=True)
class QuotaState:
    allowed: bool
    used: int
    limit: int
    reset_at: datetime  # next local midnight, aware

    def retry_after(self, now: datetime | None = None) -> int:
        """Whole seconds until the reset (at least 1)."""
        now = now or clock.now()
        return max(1, int((self.reset_at - now).total_seconds() + 0.999))

    def message_vi(self) -> str:
        return (
            f"Tài khoản đã dùng hết hạn mức {self.limit:,} lượt tra cứu trong ngày. "
            f"Hạn mức được đặt lại lúc {self.reset_at:%H:%M} ngày {self.reset_at:%d/%m/%Y} "
            "(giờ Việt Nam); vui lòng thử lại sau thời điểm đó."
        ).replace(",", ".")

    def message_en(self) -> str:
        return (
            f"The account has used its daily quota of {self.limit:,} look-ups. It resets at "
            f"{self.reset_at.isoformat()} (Vietnam time); retry after that."
        )


def today_vn(now: datetime | None = None) -> date:
    return (now or clock.now()).astimezone(VN).date()


def next_reset(now: datetime | None = None) -> datetime:
    day = today_vn(now) + timedelta(days=1)
    return datetime(day.year, day.month, day.day, tzinfo=VN)


def default_limit() -> int:
    raw = os.environ.get("HSSK_LOOKUP_DAILY_QUOTA")
    return int(raw) if raw else DEFAULT_LIMIT


def limit_for(conn: psycopg.Connection[Any], account: str) -> int:
    row = conn.execute(
        "SELECT daily_limit FROM lookup_quota_limit WHERE account = %s", (account,)
    ).fetchone()
    return int(row[0]) if row else default_limit()


def set_limit(conn: psycopg.Connection[Any], account: str, daily_limit: int) -> None:
    if daily_limit < 0:
        raise ValueError("a daily limit cannot be negative")
    conn.execute(
        """INSERT INTO lookup_quota_limit (account, daily_limit) VALUES (%s, %s)
           ON CONFLICT (account) DO UPDATE SET daily_limit = excluded.daily_limit""",
        (account, daily_limit),
    )


def consume(conn: psycopg.Connection[Any], account: str, now: datetime | None = None) -> QuotaState:
    """Count one look-up for ``account`` if its quota allows it (atomic)."""
    limit = limit_for(conn, account)
    day = today_vn(now)
    row = conn.execute(
        """INSERT INTO lookup_quota_use AS q (account, day, used)
           SELECT %(a)s, %(d)s, 1 WHERE %(l)s > 0
           ON CONFLICT (account, day) DO UPDATE SET used = q.used + 1 WHERE q.used < %(l)s
           RETURNING used""",
        {"a": account, "d": day, "l": limit},
    ).fetchone()
    if row is not None:
        return QuotaState(True, int(row[0]), limit, next_reset(now))
    used = conn.execute(
        "SELECT used FROM lookup_quota_use WHERE account = %s AND day = %s", (account, day)
    ).fetchone()
    return QuotaState(False, int(used[0]) if used else 0, limit, next_reset(now))


def usage(conn: psycopg.Connection[Any], day: date | None = None) -> list[tuple[str, int, int]]:
    """(account, used, limit) for a day (today in Vietnam by default)."""
    rows = conn.execute(
        """SELECT u.account, u.used, coalesce(l.daily_limit, %s)
           FROM lookup_quota_use u LEFT JOIN lookup_quota_limit l ON l.account = u.account
           WHERE u.day = %s ORDER BY u.account""",
        (default_limit(), day or today_vn()),
    ).fetchall()
    return [(r[0], r[1], r[2]) for r in rows]
