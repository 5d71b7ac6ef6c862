"""Jinja2 rendering of pages, with the language chosen per request."""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from importlib import resources
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from hssk.kernel import clock
from hssk.kernel.clock import VN
from hssk.web import charts, menu
from hssk.web.i18n import LANG_COOKIE, LANGS, t


def lang_of(request: Request) -> str:
    """``?lang=`` first, then the remembered cookie, then the installation default."""
    q = request.query_params.get("lang")
    if q in LANGS:
        return q
    c = request.cookies.get(LANG_COOKIE)
    if c in LANGS:
        return c
    default = getattr(request.app.state, "settings", None)
    return getattr(default, "default_lang", "vi") if default else "vi"


def fmt_date(value: Any, with_time: bool = False) -> str:
    """dd/mm/yyyy (Vietnamese order) in Vietnam time; '' for None."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        local = value.astimezone(VN) if value.tzinfo else value
        return local.strftime("%d/%m/%Y %H:%M" if with_time else "%d/%m/%Y")
    if isinstance(value, date):
        return value.strftime("%d/%m/%Y")
    text = str(value)
    if len(text) > 10 and text[10] == "T":  # an instant as text: its day in Vietnam, not UTC's
        day = clock.day_of(text)
        return day.strftime("%d/%m/%Y") if day else text
    parts = text[:10].split("-")
    return "/".join(reversed(parts)) if len(parts) in (2, 3) else text


# a number as sources write it: digits with a decimal point, perhaps a sign or comparator before
# and a unit after ('5.6', '<0.5', '7.2 %'); codes and dates are left as they are
_NUMBER = re.compile(r"^[<>≤≥]?\s*[-+]?\d+(\.\d+)?(\s*[-–]\s*\d+(\.\d+)?)?(\s*[^\d\s.][^\d.]*)?$")


def fmt_num(value: Any, lang: str = "vi") -> str:
    """A number with the decimal comma in Vietnamese (5,6) and the point in English (5.6); a
    text that is one number (a lab value from a source) likewise; '' for None."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return str(value)
    text = f"{value:g}" if isinstance(value, int | float) else value
    if lang == "en" or not _NUMBER.match(text.strip()):
        return text
    return text.replace(".", ",")


def masked(identifier: str | None, keep: int = 3) -> str:
    """An identifier shown without revealing it whole: '001••••••345' (a CCCD's province code
    and last digits, enough to tell two persons apart on a form)."""
    if not identifier:
        return ""
    keep = min(keep, len(identifier) // 4)
    return identifier[:keep] + "•" * (len(identifier) - 2 * keep) + identifier[-keep:]


@lru_cache(maxsize=1)
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("hssk.web", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["d"] = fmt_date
    env.filters["num"] = fmt_num
    env.filters["dt"] = lambda v: fmt_date(v, True)
    env.filters["masked"] = masked
    # Both are produced here (SVG escapes every text it embeds; the CSS is a packaged file).
    env.globals["chart"] = lambda ind, label, lang="vi": Markup(  # noqa: S704
        charts.trend_svg(ind.points, ind.unit, label, lang)
    )
    env.globals["css"] = Markup(  # noqa: S704
        resources.files("hssk.web").joinpath("static/style.css").read_text("utf-8")
    )
    return env


def page(request: Request, template: str, *, status: int = 200, **ctx: Any) -> HTMLResponse:
    """Render ``template`` in the request's language; remember an explicit ``?lang=``."""
    lang = lang_of(request)

    def tr(key: str, **kw: Any) -> str:
        return t(key, lang, **kw)

    other = "en" if lang == "vi" else "vi"
    query = dict(request.query_params)
    query["lang"] = other
    switch = str(request.url.path) + "?" + "&".join(f"{k}={v}" for k, v in query.items())
    ctx.setdefault("errors", {})
    if ctx.get("nav") in menu.STAFF_NAVS:  # the staff menu: what this person may use
        entries = ctx.setdefault("menu", menu.staff_menu(getattr(request.state, "actor", None)))
        ctx["menu_current"] = menu.current(entries, request.url.path)
    ctx.setdefault("values", {})
    html = (
        environment()
        .get_template(template)
        .render(t=tr, lang=lang, switch_url=switch, path=request.url.path, **ctx)
    )
    resp = HTMLResponse(html, status_code=status)
    if request.query_params.get("lang") in LANGS:
        resp.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    return resp
