"""Supervision pages (``/supervision``), their JSON API (``/api/v1/supervision``), field
catalogs (``/api/v1/catalogs``) and the platform's Prometheus metrics (``/metrics``).

Department and commune/area staff see aggregates of their own area only (``areas``); the
named data-quality lists are shown to commune-station staff for their commune. Every request
is audited with the area it covered.
"""

from __future__ import annotations

import hmac
import os
from typing import Any
from urllib.parse import quote

import jinja2
from fastapi import APIRouter, Query, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)

from hssk.access import audit, authorize
from hssk.access.actor import Actor
from hssk.api.deps import Conn, OptionalActor
from hssk.catalog import completeness
from hssk.catalog.catalogs import catalogs
from hssk.catalog.catalogs import get as get_catalog
from hssk.http import gate
from hssk.http.gate import PageActor
from hssk.kernel import clock
from hssk.monitor import charts, export, metrics, prom, quality, tables
from hssk.monitor.areas import Area, AreaDenied, narrow
from hssk.monitor.i18n import pick_lang, translator

router = APIRouter(tags=["supervision"])
_env = jinja2.Environment(
    loader=jinja2.PackageLoader("hssk.monitor", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


class Refused(Exception):
    def __init__(self, status: int, reason: str):
        self.status, self.reason = status, reason


def _scope(conn: Conn, actor: Actor, view: str, wanted: str | None) -> Area:
    """The area this request may cover; audits the decision either way."""
    if not actor.authenticated:
        raise Refused(401, "authentication required")
    decision = authorize(conn, actor, "aggregate", "Supervision")
    area: Area | None = None
    reason = decision.reason
    if decision:
        try:
            area = narrow(conn, actor, wanted)
        except AreaDenied as exc:
            reason = str(exc)
    audit(conn, actor, "aggregate", outcome="allow" if area else "deny", basis=decision.basis,
          resource_type="Supervision", purpose="supervision",
          detail={"view": view, "area": area.key if area else wanted, "reason": None if area else reason})  # fmt: skip
    if area is None:
        raise Refused(403, reason)
    return area


def _day(iso: str) -> str:
    """An ISO date or instant (as the metrics API gives it) as people in Vietnam read it:
    dd/mm/yyyy, an instant on its Vietnam day."""
    day = clock.day_of(iso)
    return f"{day:%d/%m/%Y}" if day else iso


def _formats(lang: str) -> dict[str, Any]:
    """Number formats: Vietnamese 1.234,5 — English 1,234.5."""

    def local(text: str) -> str:
        if lang == "en":
            return text
        return text.replace(",", "\x00").replace(".", ",").replace("\x00", ".")

    return {
        "pct": lambda v: local(f"{v * 100:.1f}%"),
        "num": lambda v: local(f"{v:,.0f}"),
        "dec": lambda v: "—" if v is None else local(f"{v:,.1f}"),
        "day": _day,
        # an instant (stored in UTC) as the Vietnam date, or date and time
        "vn_day": lambda v: clock.to_vn(v).strftime("%d/%m/%Y"),
        "vn_time": lambda v: clock.to_vn(v).strftime("%d/%m/%Y %H:%M"),
    }


def _page(
    request: Request, template: str, lang: str, status: int = 200, **ctx: Any
) -> HTMLResponse:
    t = translator(lang)
    other = "vi" if lang == "en" else "en"
    query = dict(request.query_params)
    query["lang"] = other
    switch = request.url.path + "?" + "&".join(f"{k}={v}" for k, v in query.items())
    html = _env.get_template(template).render(
        t=t, lang=lang, switch_url=switch, path=request.url.path, **_formats(lang),
        area_param=request.query_params.get("area", ""), **ctx,
    )  # fmt: skip
    return HTMLResponse(html, status_code=status)


def _to_login(request: Request) -> RedirectResponse:
    """A page (or export) asked without a valid session: to the staff login, back here after,
    the login saying when the session had expired (never a raw token error)."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    expired = "&expired=1" if gate.session_expired(request) else ""
    return RedirectResponse(f"/staff/login?next={quote(here)}{expired}", status_code=303)


def _refused_page(request: Request, lang: str, exc: Refused) -> Response:
    if exc.status == 401:
        return _to_login(request)
    t = translator(lang)
    title = t("login_needed") if exc.status == 401 else t("denied")
    return _page(request, "refused.html", lang, exc.status, title=title, reason=exc.reason)


def _refused_json(exc: Refused) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse({"error": exc.reason}, status_code=exc.status, headers=headers)


def _catalog_name(name: str | None) -> str:
    try:
        return get_catalog(name or metrics.completeness_default()).name
    except KeyError as exc:
        raise Refused(400, str(exc.args[0])) from exc


# --- views shared by the page and the API --------------------------------------------------
def _communes(conn: Conn, area: Area, by: str, catalog: str) -> list[dict[str, Any]]:
    return tables.communes(conn, area, by, catalog)


def _quality_view(conn: Conn, actor: Actor, area: Area, kind: str | None) -> dict[str, Any]:
    return tables.quality_view(conn, area, kind, named=tables.sees_names(actor.roles))


# --- HTML ----------------------------------------------------------------------------------
@router.get("/supervision", response_class=HTMLResponse, include_in_schema=False)
def overview_page(
    request: Request, conn: Conn, actor: PageActor,
    area: str | None = None, catalog: str | None = None, lang: str | None = None,
) -> Response:  # fmt: skip
    lg = pick_lang(lang)
    t = translator(lg)
    try:
        scope = _scope(conn, actor, "overview", area)
        cat = _catalog_name(catalog)
    except Refused as exc:
        return _refused_page(request, lg, exc)
    data = metrics.summary(conn, scope, catalog=cat)
    by = "commune" if scope.kind in ("province", "all") else "commune_old"
    communes = _communes(conn, scope, by, cat)
    districts = _communes(conn, scope, "district_old", cat) if scope.kind != "commune" else []
    fac = metrics.facilities(conn, scope, catalog=cat, with_missing=False)
    trend = metrics.trend(conn, scope)
    dist = data["completeness_distribution"]
    dist_labels = [f"{i * 10}–{(i + 1) * 10}%" for i in range(len(dist))]
    snaps = {s["metric"]: s["points"] for s in trend["snapshots"]}
    goal = next(
        (p["goal"] for p in data["progress"] if p["metric"] == "residents_with_record"), None
    )
    svg = {
        "distribution": charts.bar_chart(dist, dist_labels, t("distribution"), lang=lg),
        "records": charts.bar_chart(
            trend["records"],
            [f"{d[8:10]}/{d[5:7]}" for d in trend["dates"]],
            t("records_per_day"),
            lang=lg,
        ),
        "with_record": charts.line_chart(
            [(_day(d), v) for d, v in snaps.get("with_record_share", [])],
            t("with_record_share_trend"),
            goal=goal,
            lang=lg,
        )
        if len(snaps.get("with_record_share", [])) >= 2
        else None,
    }
    alerts = [f for f in fac if f.status != "ok"]
    return _page(request, "overview.html", lg, data=data, communes=communes, districts=districts,
                 svg=svg, alerts=alerts, catalogs=sorted(catalogs()), trend=trend,
                 dist=list(zip(dist_labels, dist, strict=True)))  # fmt: skip


@router.get("/supervision/facilities", response_class=HTMLResponse, include_in_schema=False)
def facilities_page(
    request: Request, conn: Conn, actor: PageActor,
    area: str | None = None, catalog: str | None = None, lang: str | None = None,
) -> Response:  # fmt: skip
    lg = pick_lang(lang)
    try:
        scope = _scope(conn, actor, "facilities", area)
        cat = get_catalog(_catalog_name(catalog))
    except Refused as exc:
        return _refused_page(request, lg, exc)
    rows = metrics.facilities(conn, scope, catalog=cat.name)
    labels = {f.code: f.label(lg) for f in cat.fields}
    spark = {r.facility_code: charts.sparkline(r.daily, f"{r.name}: {sum(r.daily)}") for r in rows}
    return _page(request, "facilities.html", lg, area=scope, rows=rows, spark=spark,
                 labels=labels, catalog=cat)  # fmt: skip


@router.get("/supervision/quality", response_class=HTMLResponse, include_in_schema=False)
def quality_page(
    request: Request, conn: Conn, actor: PageActor,
    area: str | None = None, kind: str | None = None, lang: str | None = None,
) -> Response:  # fmt: skip
    lg = pick_lang(lang)
    try:
        scope = _scope(conn, actor, "quality", area)
    except Refused as exc:
        return _refused_page(request, lg, exc)
    view = _quality_view(conn, actor, scope, kind)
    return _page(request, "quality.html", lg, area=scope, kinds=quality.KINDS, **view)


# --- exports -------------------------------------------------------------------------------
def _table(
    conn: Conn, actor: Actor, scope: Area, table: str, cat: str, lang: str
) -> tuple[list[str], list[list[Any]]]:
    try:
        return tables.export_table(conn, scope, table, cat, lang,
                                   named=tables.sees_names(actor.roles))  # fmt: skip
    except ValueError as exc:
        raise Refused(400, str(exc)) from None


def _export(request: Request, conn: Conn, actor: Actor, fmt: str, table: str,
            area: str | None, catalog: str | None, lang: str | None) -> Response:  # fmt: skip
    lg = pick_lang(lang)
    try:
        scope = _scope(conn, actor, f"export:{table}", area)
        header, rows = _table(conn, actor, scope, table, _catalog_name(catalog), lg)
    except Refused as exc:
        return _to_login(request) if exc.status == 401 else _refused_json(exc)
    stamp = clock.today().strftime("%Y%m%d")  # the Vietnam date
    name = f"hssk-{table}-{scope.key.replace(':', '-')}-{stamp}.{fmt}"
    if fmt == "csv":
        body, mime = export.to_csv(header, rows), "text/csv; charset=utf-8"
    else:
        body = export.to_xlsx(header, rows, sheet=table)
        mime = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    return Response(body, media_type=mime,
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})  # fmt: skip


@router.get("/supervision/export.csv", include_in_schema=False)
def export_csv(request: Request, conn: Conn, actor: PageActor, table: str = "communes",
               area: str | None = None, catalog: str | None = None, lang: str | None = None) -> Response:  # fmt: skip
    return _export(request, conn, actor, "csv", table, area, catalog, lang)


@router.get("/supervision/export.xlsx", include_in_schema=False)
def export_xlsx(request: Request, conn: Conn, actor: PageActor, table: str = "communes",
                area: str | None = None, catalog: str | None = None, lang: str | None = None) -> Response:  # fmt: skip
    return _export(request, conn, actor, "xlsx", table, area, catalog, lang)


# --- JSON API ------------------------------------------------------------------------------
API = "/api/v1/supervision"


def _api(view: str, fn: Any, conn: Conn, actor: Actor, area: str | None) -> Response:
    try:
        scope = _scope(conn, actor, view, area)
        return JSONResponse(_jsonable(fn(scope)))
    except Refused as exc:
        return _refused_json(exc)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


@router.get(f"{API}/summary")
def api_summary(conn: Conn, actor: OptionalActor, area: str | None = None, catalog: str | None = None) -> Response:  # fmt: skip
    """Coverage, completeness distribution, targets and facility counts of the caller's area."""
    return _api(
        "summary",
        lambda s: metrics.summary(conn, s, catalog=_catalog_name(catalog)),
        conn,
        actor,
        area,
    )


@router.get(f"{API}/communes")
def api_communes(
    conn: Conn, actor: OptionalActor, area: str | None = None, catalog: str | None = None,
    by: str = Query("commune", pattern="^(commune|commune_old|district_old|province)$"),
) -> Response:  # fmt: skip
    """Coverage broken down by commune (2025 or old code), old district or province."""
    return _api(
        "communes", lambda s: _communes(conn, s, by, _catalog_name(catalog)), conn, actor, area
    )


@router.get(f"{API}/facilities")
def api_facilities(conn: Conn, actor: OptionalActor, area: str | None = None,
                   catalog: str | None = None, days: int = Query(30, ge=1, le=365)) -> Response:  # fmt: skip
    """Per facility: last receipt, delay, volume per day, error rate, status, missing fields."""
    return _api("facilities", lambda s: [r.as_dict() for r in metrics.facilities(
        conn, s, days=days, catalog=_catalog_name(catalog))], conn, actor, area)  # fmt: skip


@router.get(f"{API}/trends")
def api_trends(conn: Conn, actor: OptionalActor, area: str | None = None,
               days: int = Query(30, ge=1, le=365)) -> Response:  # fmt: skip
    """Daily records and persons received, plus stored daily snapshots of the key shares."""
    return _api("trends", lambda s: metrics.trend(conn, s, days=days), conn, actor, area)


@router.get(f"{API}/completeness")
def api_completeness(
    conn: Conn, actor: OptionalActor, area: str | None = None, catalog: str | None = None,
    level: str = Query("commune", pattern="^(province|commune|commune_old|district_old|facility)$"),
) -> Response:  # fmt: skip
    """Completeness of the area's records per level (e.g. 66/73 on average per commune)."""

    def view(s: Area) -> list[dict[str, Any]]:
        cat = _catalog_name(catalog)
        rows = completeness.aggregate(conn, cat, level, s.persons())
        return [{"code": r.code, "persons": r.persons, "filled": r.filled, "total": r.total,
                 "ratio": round(r.ratio, 4)} for r in rows]  # fmt: skip

    return _api("completeness", view, conn, actor, area)


@router.get(f"{API}/quality")
def api_quality(conn: Conn, actor: OptionalActor, area: str | None = None, kind: str | None = None) -> Response:  # fmt: skip
    """Data-quality findings: counts per commune; named lists for commune-station staff."""

    def view(s: Area) -> dict[str, Any]:
        if kind and kind not in quality.KINDS:
            raise Refused(400, f"kind must be one of {', '.join(quality.KINDS)}")
        return _quality_view(conn, actor, s, kind)

    return _api("quality", view, conn, actor, area)


@router.get("/api/v1/catalogs")
def api_catalogs(lang: str | None = None) -> list[dict[str, Any]]:
    """The field catalogs (reference data, no personal data)."""
    lg = pick_lang(lang)
    return [{k: v for k, v in c.describe(lg).items() if k != "fields"} for c in catalogs().values()]


@router.get("/api/v1/catalogs/{name}")
def api_catalog(name: str, lang: str | None = None) -> Response:
    """One catalog with its fields, labels, types and FHIRPath rules."""
    try:
        return JSONResponse(get_catalog(name).describe(pick_lang(lang)))
    except KeyError as exc:
        return JSONResponse({"error": exc.args[0]}, status_code=404)


@router.get("/api/v1/catalogs/completeness/{person_id}")
def api_person_completeness(person_id: int, conn: Conn, actor: OptionalActor) -> Response:
    """A person's completeness per catalog (e.g. "66/73"), for whoever may read the record."""
    if not actor.authenticated:
        return _refused_json(Refused(401, "authentication required"))
    decision = authorize(conn, actor, "read", "Patient", person_id)
    audit(conn, actor, "read", outcome="allow" if decision else "deny", basis=decision.basis,
          resource_type="Completeness", person_id=person_id)  # fmt: skip
    if not decision:
        return _refused_json(Refused(403, decision.reason))
    scores = completeness.person_score(conn, person_id)
    return JSONResponse(
        {name: {"filled": f, "total": t, "text": f"{f}/{t}"} for name, (f, t) in scores.items()}
    )


@router.get("/metrics", include_in_schema=False)
def prometheus(request: Request, conn: Conn) -> Response:
    """Prometheus text exposition, for the scraper only: ``Authorization: Bearer`` with
    HSSK_METRICS_TOKEN, or a system account's token with ``system/Metrics.read``."""
    if not _may_scrape(request):
        return PlainTextResponse("unauthorized: send the metrics token\n", status_code=401,
                                 headers={"WWW-Authenticate": "Bearer"})  # fmt: skip
    return PlainTextResponse(
        prom.render(conn), media_type="text/plain; version=0.0.4; charset=utf-8"
    )


def _may_scrape(request: Request) -> bool:
    token = os.environ.get("HSSK_METRICS_TOKEN")
    sent = gate.credentials(request, "api")
    if token and sent and hmac.compare_digest(sent.encode(), token.encode()):
        return True
    actor = gate.authenticate(request, "api").actor
    # named explicitly, never through a wildcard: a partner's system/*.read is not for this
    return actor.kind == "system" and "system/Metrics.read" in actor.scopes
