"""The supervision tables as people read them (Vietnamese or English headers, area names,
field labels instead of field keys, kinds in words): one builder for the pages, the API, the
exports and ``hssk report export``."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import psycopg

from hssk.catalog import areas as names
from hssk.catalog.catalogs import get as get_catalog
from hssk.monitor import metrics, quality
from hssk.monitor.areas import Area
from hssk.monitor.i18n import translator

TABLES = ("communes", "districts", "facilities", "quality")
COVERAGE_KEYS = ("residents", "with_record", "standardized", "verified", "households", "deaths",
                 "with_bhyt", "with_cccd", "children_u6", "children_u6_with_id")  # fmt: skip


def sees_names(roles: Iterable[str]) -> bool:
    """Whether named quality lists are shown (station staff, administrators), not counts only."""
    return bool({"station", "admin"} & set(roles))


def communes(
    conn: psycopg.Connection[Any], area: Area, by: str, catalog: str
) -> list[dict[str, Any]]:
    """Coverage per commune (or former commune / district), with the area's name."""
    rows = metrics.coverage(conn, area, by=by, catalog=catalog)
    namer = {"commune": names.commune_name, "commune_old": names.old_commune_name,
             "district_old": names.district_name, "province": names.province_name}[by]  # fmt: skip
    return [{**r.as_dict(), "name": namer(r.code) or r.code or "—"} for r in rows]


def quality_view(
    conn: psycopg.Connection[Any], area: Area, kind: str | None, *, named: bool
) -> dict[str, Any]:
    """Quality findings of the area: counts per commune and kind; the persons when ``named``."""
    where, params = area.persons().cells("q")
    counts = quality.counts_by_commune(conn, where, params)
    items = quality.findings(conn, where, params, kind) if named else []
    return {"counts": [{"commune": c, "kind": k, "count": n} for c, k, n in counts],
            "items": items, "named": named}  # fmt: skip


def _detail_text(detail: Any) -> str:
    """A quality item's detail as 'key: value' text (never a Python dict's repr)."""
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {v}" for k, v in detail.items())
    return "" if detail is None else str(detail)


def export_table(
    conn: psycopg.Connection[Any], area: Area, table: str, catalog: str, lang: str, *, named: bool
) -> tuple[list[str], list[list[Any]]]:
    """(header, rows) of a supervision table in ``lang``; ValueError for an unknown table."""
    t = translator(lang)

    def kind_name(kind: str) -> str:
        return quality.KINDS.get(kind, (kind, kind))[1 if lang == "en" else 0]

    if table == "facilities":
        rows = metrics.facilities(conn, area, catalog=catalog)
        labels = {f.code: f.label(lang) for f in get_catalog(catalog).fields}  # not hc.dan_toc
        header = [t("code"), t("facility"), t("status"), t("last_receipt"), t("delay"),
                  t("volume"), t("error_rate"), t("missing_fields")]  # fmt: skip
        return header, [
            [r.facility_code, r.name, t(f"status.{r.status}"), r.last_receipt,
             round(r.delay_days, 2) if r.delay_days is not None else None,
             round(r.volume_per_day, 2), round(r.error_rate, 4),
             "; ".join(labels.get(c, c) for c, _ in r.missing_fields)]
            for r in rows
        ]  # fmt: skip
    if table in ("communes", "districts"):
        by = (
            "district_old"
            if table == "districts"
            else ("commune" if area.kind in ("province", "all") else "commune_old")
        )
        items = communes(conn, area, by, catalog)
        header = [t("area_code"), t("commune"), *[t(k) for k in COVERAGE_KEYS], t("completeness")]
        return header, [
            [i["code"], i["name"], *[i[k] for k in COVERAGE_KEYS], round(i["completeness"], 4)]
            for i in items
        ]
    if table == "quality":
        view = quality_view(conn, area, None, named=named)
        if view["named"]:
            header = [t("kind"), t("person_id"), t("person"), t("birth_date"), t("commune"),
                      t("detail")]  # fmt: skip
            return header, [
                [kind_name(i["kind"]), i["person_id"], i["full_name"], i["birth_date"],
                 i["commune_code"], _detail_text(i["detail"])]
                for i in view["items"]
            ]  # fmt: skip
        header = [t("commune"), t("kind"), t("count")]
        return header, [[c["commune"], kind_name(c["kind"]), c["count"]] for c in view["counts"]]
    raise ValueError(f"table must be one of {', '.join(TABLES)}, not {table!r}")
