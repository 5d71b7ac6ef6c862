"""Supervision metrics: coverage of the population, facilities sharing data, trends, targets.

All numbers are aggregates of one area (``Area``); none names a person. Facility figures come
from the ingest receipts (``ingest_receipt``: what arrived when, how much, how many errors)
and, for data written without a receipt, from the record store itself.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg

from hssk.catalog import completeness
from hssk.catalog.catalogs import get as get_catalog
from hssk.kernel import clock
from hssk.monitor.areas import Area

TARGETS_FILE = Path(__file__).parent / "data" / "targets.json"


@dataclass(frozen=True)
class Target:
    metric: str
    goal: float
    label_vi: str
    label_en: str


def targets() -> list[Target]:
    """Targets as configuration (``HSSK_MONITOR_TARGETS`` names another file)."""
    path = Path(os.environ.get("HSSK_MONITOR_TARGETS") or TARGETS_FILE)
    data = json.loads(path.read_text("utf-8"))
    return [Target(t["metric"], float(t["goal"]), t["vi"], t["en"]) for t in data["targets"]]


def settings() -> dict[str, Any]:
    path = Path(os.environ.get("HSSK_MONITOR_TARGETS") or TARGETS_FILE)
    return dict(json.loads(path.read_text("utf-8")).get("settings", {}))


@dataclass
class Coverage:
    """Population figures of an area (or of one commune in a breakdown)."""

    code: str | None
    residents: int = 0
    with_record: int = 0
    standardized: int = 0
    verified: int = 0
    households: int = 0
    deaths: int = 0
    with_bhyt: int = 0
    with_cccd: int = 0
    children_u6: int = 0
    children_u6_with_id: int = 0
    completeness: float = 0.0  # mean filled/total of the default catalog

    def share(self, name: str) -> float:
        base = self.children_u6 if name == "children_u6_with_id" else self.residents
        return getattr(self, name) / base if base else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for name in ("with_record", "standardized", "verified", "with_bhyt", "with_cccd",
                     "children_u6_with_id"):  # fmt: skip
            out[f"{name}_share"] = round(self.share(name), 4)
        return out


_GROUPS = {None: "NULL::text", "commune": "r.commune_code", "commune_old": "r.commune_code_old",
           "district_old": "r.commune_code_old", "province": "r.province_code"}  # fmt: skip

# Every figure is a sum over the area's cells of the rollups kept by the registry's triggers
# (migrations 0503, 0581, 0584; hssk.monitor.rollups): no query here reads ``person``, and
# those of a province read a few rows per commune, not per household or birth date.
_COVERAGE_SQL = """
SELECT {group}, sum(residents), sum(with_record), sum(standardized), sum(verified),
       sum(deaths), sum(with_bhyt), sum(with_cccd)
FROM area_rollup r WHERE {where} GROUP BY 1"""
# Households of the platform, a province or an old district, and their breakdowns: the counts
# per level (migration 0584), a few rows per commune however many households there are (an
# old district's are the sum of its old communes', as in the breakdown by old district). Those
# of a commune: distinct over that commune's households (its new and old code together).
_HOUSEHOLDS_SQL = """
SELECT g, count(*) FROM (
  SELECT {group} AS g, r.household_id FROM area_household r WHERE {where}
  GROUP BY 1, 2 HAVING sum(r.persons) > 0) h GROUP BY 1"""
_HOUSEHOLD_COUNT_SQL = """
SELECT {group}, sum(r.households) FROM area_household_count r
WHERE r.level = %(level)s AND {where} GROUP BY 1 HAVING sum(r.households) <> 0"""
_LEVELS = {None: ("NULL::text", ""), "province": ("nullif(r.province_code, '')", "province"),
           "commune": ("nullif(r.code, '')", "commune"),
           "commune_old": ("nullif(r.code, '')", "commune_old"),
           "district_old": ("nullif(r.code, '')", "commune_old")}  # fmt: skip
# Children under 6: whole months of births after the limit, then the days of the limit's own
# month (area_young_month and area_young, migration 0584).
_CHILDREN_SQL = """
SELECT {group}, sum(persons), sum(with_id) FROM (
  SELECT province_code, commune_code, commune_code_old, persons, with_id FROM area_young_month
  WHERE birth_month > %(u6)s
  UNION ALL
  SELECT province_code, commune_code, commune_code_old, persons, with_id FROM area_young
  WHERE birth_date > %(u6)s AND birth_date < %(u6_month_end)s) r
WHERE {where} GROUP BY 1"""
_COMPLETENESS_SQL = """
SELECT {group}, sum(ratio) / nullif(sum(persons) FILTER (WHERE bin IS NOT NULL), 0)
FROM completeness_rollup r WHERE r.catalog = %(catalog)s AND {where} GROUP BY 1"""


def coverage(
    conn: psycopg.Connection[Any],
    area: Area,
    *,
    by: str | None = None,
    catalog: str | None = None,
    today: date | None = None,
) -> list[Coverage]:
    """Population coverage of ``area``, as one row or broken down ``by`` commune level."""
    today = today or clock.today()
    if by not in _GROUPS:
        raise ValueError("breakdown must be one of commune, commune_old, district_old, province")
    cond, named = _named(*area.persons().cells("r"))
    u6 = _years_before(today, 6)
    params = {**named, "u6": u6, "u6_month_end": _next_month(u6),
              "catalog": catalog or completeness_default()}  # fmt: skip

    def query(sql: str, group: str = _GROUPS[by], where: str = cond) -> list[Any]:
        return conn.execute(sql.format(group=group, where=where).encode(), params).fetchall()

    rows: dict[str | None, Coverage] = {}
    names = ("residents", "with_record", "standardized", "verified", "deaths", "with_bhyt",
             "with_cccd")  # fmt: skip
    for code, *figures in query(_COVERAGE_SQL):
        if figures[0]:
            rows[code] = Coverage(code, **{n: int(f) for n, f in zip(names, figures, strict=True)})
    level = _household_level(area, by)
    if level is None:
        counted = query(_HOUSEHOLDS_SQL)
    else:
        params.update(level=level, prov=area.province, olds=list(area.communes_old))
        where = "r.province_code = %(prov)s" if area.province else "true"
        if area.communes_old:  # (an old district: its old communes' counts)
            where += " AND r.code = ANY(%(olds)s)"
        counted = query(_HOUSEHOLD_COUNT_SQL, _LEVELS[by][0], where)
    for code, households in counted:
        if code in rows:
            rows[code].households = int(households)
    for code, children, with_id in query(_CHILDREN_SQL):
        if code in rows:
            rows[code].children_u6, rows[code].children_u6_with_id = int(children), int(with_id)
    for code, ratio in query(_COMPLETENESS_SQL):
        if code in rows:
            rows[code].completeness = float(ratio or 0.0)
    out = list(rows.values())
    if by == "district_old":
        out = _roll_up_districts(out)
    return sorted(out, key=lambda c: c.code or "")


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)


def _household_level(area: Area, by: str | None) -> str | None:
    """The level whose household counts (migration 0584) answer for ``area`` broken down
    ``by``; None when only a distinct count over the area's households does (a commune: its
    new and old codes together, or old communes broken down by new commune)."""
    if area.communes:
        return None
    if area.communes_old:
        return "commune_old" if by != "commune" else None
    return _LEVELS[by][1] or ("province" if area.province else "all")


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _roll_up_districts(rows: list[Coverage]) -> list[Coverage]:
    from hssk.catalog.areas import old_district_of

    acc: dict[str | None, Coverage] = {}
    weights: dict[str | None, float] = {}
    for row in rows:
        code = old_district_of(row.code)
        tot = acc.setdefault(code, Coverage(code))
        for name in ("residents", "with_record", "standardized", "verified", "households",
                     "deaths", "with_bhyt", "with_cccd", "children_u6", "children_u6_with_id"):  # fmt: skip
            setattr(tot, name, getattr(tot, name) + getattr(row, name))
        weights[code] = weights.get(code, 0.0) + row.completeness * row.residents
    for code, tot in acc.items():
        tot.completeness = weights[code] / tot.residents if tot.residents else 0.0
    return list(acc.values())


def _named(where: str, params: list[Any]) -> tuple[str, dict[str, Any]]:
    """An area condition with positional parameters, rewritten with named ones (``%(aN)s``)
    so it can join queries that use named parameters."""
    parts = where.split("%s")
    if len(parts) - 1 != len(params):
        raise ValueError("placeholders and parameters differ in number")
    text = parts[0] + "".join(f"%(a{i})s{part}" for i, part in enumerate(parts[1:]))
    return text, {f"a{i}": v for i, v in enumerate(params)}


def completeness_default() -> str:
    from hssk.catalog.catalogs import DEFAULT

    return DEFAULT


@dataclass
class FacilityRow:
    unit_id: str
    name: str
    facility_code: str
    kind: str
    last_receipt: datetime | None = None
    delay_days: float | None = None  # median visit → receipt, days
    volume_per_day: float = 0.0  # records received per day over the window
    records: int = 0
    errors: int = 0
    status: str = "never"  # ok, stopped, never
    missing_fields: list[tuple[str, int]] = field(default_factory=list)
    daily: list[int] = field(default_factory=list)  # records per day, oldest first
    no_receipt: bool = False  # figures read from the record store (data without receipts)

    @property
    def error_rate(self) -> float:
        return self.errors / (self.records + self.errors) if (self.records + self.errors) else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["error_rate"] = round(self.error_rate, 4)
        out["last_receipt"] = self.last_receipt.isoformat() if self.last_receipt else None
        out["missing_fields"] = [{"code": c, "persons": n} for c, n in self.missing_fields]
        return out


_FACILITY_SQL = """
WITH fac AS (
  SELECT u.id, u.name, u.facility_code, u.kind FROM unit u
  WHERE u.facility_code IS NOT NULL AND u.active AND {where}),
rc AS (
  SELECT facility, max(received_at) AS last, sum(records) AS records,
         sum(quarantined) AS quarantined,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM
           received_at - coalesce(last_visit, first_visit)::timestamptz)) / 86400 AS delay
  FROM ingest_receipt WHERE received_at >= %(since)s AND facility IN (SELECT facility_code FROM fac)
  GROUP BY facility),
rc_all AS (
  SELECT facility, max(received_at) AS last FROM ingest_receipt
  WHERE facility IN (SELECT facility_code FROM fac) GROUP BY facility),
rs AS (  -- data written without a receipt (FHIR API, older loads): the change counters
  SELECT facility, max(day)::timestamptz + interval '1 day' - interval '1 second' AS last,
         sum(changes) FILTER (WHERE day >= %(since)s::date) AS records,
         NULL::float8 AS delay
  FROM facility_activity WHERE facility = ANY(%(no_receipt)s)
  GROUP BY facility),
er AS (
  SELECT facility, count(*) AS errors FROM ingest_error
  WHERE created_at >= %(since)s AND status <> 'noted' AND facility IN (SELECT facility_code FROM fac) GROUP BY facility)
SELECT fac.id, fac.name, fac.facility_code, fac.kind,
       greatest(rc_all.last, rs.last),
       coalesce(rc.delay, rs.delay),
       coalesce(rc.records, rs.records, 0),
       greatest(coalesce(rc.quarantined, 0), coalesce(er.errors, 0))
FROM fac
LEFT JOIN rc ON rc.facility = fac.facility_code
LEFT JOIN rc_all ON rc_all.facility = fac.facility_code
LEFT JOIN rs ON rs.facility = fac.facility_code
LEFT JOIN er ON er.facility = fac.facility_code
ORDER BY fac.facility_code
"""


def facilities(
    conn: psycopg.Connection[Any],
    area: Area,
    *,
    days: int = 30,
    stale_days: int | None = None,
    catalog: str | None = None,
    now: datetime | None = None,
    with_missing: bool = True,
    daily_days: int = 14,
) -> list[FacilityRow]:
    """Per facility of the area: last receipt, delay, volume, errors, status over the last
    ``days``; the fields most often missing among all the persons it sent data about."""
    now = now or datetime.now(UTC)
    stale = stale_days if stale_days is not None else int(settings().get("stale_days", 7))
    since = now - timedelta(days=days)
    cond, named = _named(*area.units_sql("u"))
    no_receipt = [
        r[0]
        for r in conn.execute(
            f"""SELECT u.facility_code FROM unit u WHERE u.facility_code IS NOT NULL AND {cond}
                AND NOT EXISTS (SELECT 1 FROM ingest_receipt i
                                WHERE i.facility = u.facility_code)""".encode(),
            named,
        )
    ]
    sql = _FACILITY_SQL.format(where=cond)
    rows = conn.execute(
        sql.encode(), {**named, "since": since, "no_receipt": no_receipt}
    ).fetchall()
    out: list[FacilityRow] = []
    for uid, name, code, kind, last, delay, records, errors in rows:
        status = (
            "never" if last is None else ("stopped" if last < now - timedelta(days=stale) else "ok")
        )
        out.append(
            FacilityRow(
                uid,
                name,
                code,
                kind,
                last,
                float(delay) if delay is not None else None,
                int(records) / days,
                int(records),
                int(errors),
                status,
                no_receipt=code in no_receipt,
            )
        )
    _daily(conn, out, now, daily_days)
    if with_missing and out:
        _missing(conn, out, catalog or completeness_default())
    return out


def _daily(
    conn: psycopg.Connection[Any], rows: list[FacilityRow], now: datetime, days: int
) -> None:
    """Records per facility and day over the last ``days`` days (receipts, else resources)."""
    codes = [r.facility_code for r in rows]
    start = (now - timedelta(days=days - 1)).date()
    series = conn.execute(
        """SELECT facility, day, sum(n) FROM (
             SELECT facility, received_at::date AS day, sum(records) AS n FROM ingest_receipt
             WHERE facility = ANY(%(c)s) AND received_at::date >= %(s)s GROUP BY 1, 2
             UNION ALL
             SELECT facility, day, changes FROM facility_activity
             WHERE facility = ANY(%(n)s) AND day >= %(s)s) x GROUP BY 1, 2""",
        {"c": codes, "s": start, "n": [r.facility_code for r in rows if r.no_receipt]},
    ).fetchall()
    by = {(f, d): int(n) for f, d, n in series}
    for row in rows:
        row.daily = [by.get((row.facility_code, start + timedelta(days=i)), 0) for i in range(days)]


def _missing(conn: psycopg.Connection[Any], rows: list[FacilityRow], catalog: str) -> None:
    """The three fields most often missing among the persons each facility sent data about
    (the per-facility rollup of migration 0583: a few rows per facility)."""
    found = conn.execute(
        """SELECT facility, field, n FROM (
             SELECT facility, field, sum(persons) AS n, row_number() OVER (
               PARTITION BY facility ORDER BY sum(persons) DESC, field) AS rank
             FROM facility_missing_rollup WHERE catalog = %s AND facility = ANY(%s)
             GROUP BY 1, 2 HAVING sum(persons) > 0) x
           WHERE rank <= 3 ORDER BY facility, rank""",
        (catalog, [r.facility_code for r in rows]),
    ).fetchall()
    top: dict[str, list[tuple[str, int]]] = {}
    for facility, code, n in found:
        top.setdefault(facility, []).append((code, int(n)))
    for row in rows:
        row.missing_fields = top.get(row.facility_code, [])


@dataclass
class Progress:
    metric: str
    label_vi: str
    label_en: str
    goal: float
    value: float

    @property
    def reached(self) -> bool:
        return self.value >= self.goal

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "reached": self.reached}


def progress(total: Coverage, facility_rows: list[FacilityRow]) -> list[Progress]:
    """Each configured target with the area's current value."""
    sharing = sum(1 for f in facility_rows if f.status == "ok")
    values = {
        "facilities_sharing": sharing / len(facility_rows) if facility_rows else 0.0,
        "residents_with_record": total.share("with_record"),
        "with_cccd": total.share("with_cccd"),
        "with_bhyt": total.share("with_bhyt"),
        "standardized": total.share("standardized"),
        "children_u6_with_id": total.share("children_u6_with_id"),
        "completeness": total.completeness,
    }
    return [
        Progress(t.metric, t.label_vi, t.label_en, t.goal, round(values.get(t.metric, 0.0), 4))
        for t in targets()
    ]


def trend(
    conn: psycopg.Connection[Any], area: Area, *, days: int = 30, now: datetime | None = None
) -> dict[str, list[Any]]:
    """Daily series: records received by the area's facilities (ingest receipts, else the
    store for facilities without receipts), plus the stored daily snapshots of key shares."""
    now = now or datetime.now(UTC)
    start = (now - timedelta(days=days - 1)).date()
    rows = facilities(conn, area, days=days, now=now, with_missing=False, daily_days=days)
    dates = [start + timedelta(days=i) for i in range(days)]
    records = [sum(r.daily[i] for r in rows) for i in range(days)]
    snaps = conn.execute(
        """SELECT day, metric, value FROM monitor_snapshot
           WHERE area = %s AND day >= %s ORDER BY day""",
        (area.key, start),
    ).fetchall()
    snapshot: dict[str, list[tuple[str, float]]] = {}
    for d, metric, value in snaps:
        snapshot.setdefault(metric, []).append((d.isoformat(), float(value)))
    return {
        "dates": [d.isoformat() for d in dates],
        "records": records,
        "snapshots": [{"metric": k, "points": v} for k, v in snapshot.items()],
    }


def snapshot_area_keys(conn: psycopg.Connection[Any]) -> list[str]:
    """The areas of the daily snapshot: the whole platform and each province with residents."""
    return ["all"] + [
        f"province:{r[0]}"
        for r in conn.execute(
            """SELECT province_code FROM area_rollup WHERE province_code IS NOT NULL
               GROUP BY 1 HAVING sum(residents) > 0 ORDER BY 1"""
        )
    ]


def snapshot(conn: psycopg.Connection[Any], area: Area, day: date | None = None) -> int:
    """Store today's key shares of an area (for the trend charts); returns rows written."""
    day = day or clock.today()
    (total,) = coverage(conn, area) or [Coverage(None)]
    values = {
        "residents": float(total.residents),
        "with_record_share": total.share("with_record"),
        "with_cccd_share": total.share("with_cccd"),
        "with_bhyt_share": total.share("with_bhyt"),
        "completeness": total.completeness,
    }
    for metric, value in values.items():
        conn.execute(
            """INSERT INTO monitor_snapshot (day, area, metric, value) VALUES (%s, %s, %s, %s)
               ON CONFLICT (day, area, metric) DO UPDATE SET value = excluded.value""",
            (day, area.key, metric, value),
        )
    return len(values)


def summary(
    conn: psycopg.Connection[Any], area: Area, *, catalog: str | None = None, days: int = 30
) -> dict[str, Any]:
    """Everything the dashboard shows for an area, as plain data (JSON-ready)."""
    cat = get_catalog(catalog or completeness_default())
    rows = coverage(conn, area, catalog=cat.name)
    total = rows[0] if rows else Coverage(None)
    fac = facilities(conn, area, days=days, catalog=cat.name, with_missing=False)
    return {
        "area": {"key": area.key, "kind": area.kind, "code": area.code, "name": area.name},
        "catalog": {
            "name": cat.name,
            "version": cat.version,
            "size": cat.size,
            "provisional": cat.provisional,
            "title": cat.title_vi,
            "title_en": cat.title_en,
        },
        "coverage": total.as_dict(),
        "completeness_distribution": completeness.distribution(conn, cat.name, area.persons()),
        "progress": [p.as_dict() for p in progress(total, fac)],
        "facilities": {
            "total": len(fac),
            "ok": sum(1 for f in fac if f.status == "ok"),
            "stopped": sum(1 for f in fac if f.status == "stopped"),
            "never": sum(1 for f in fac if f.status == "never"),
        },
    }
