"""Server-side SVG trend charts (no JavaScript, no external library; sharp on any screen)."""

from __future__ import annotations

from html import escape

from hssk.web.i18n import t
from hssk.web.models import Point

WIDTH, HEIGHT = 320, 150
PAD_L, PAD_R, PAD_T, PAD_B = 40, 12, 12, 26


def _fmt(v: float, lang: str = "vi") -> str:
    """One decimal at most, with the decimal comma in Vietnamese as in the rest of the book."""
    text = f"{v:.1f}".rstrip("0").rstrip(".")
    return text.replace(".", ",") if lang == "vi" else text


def trend_svg(points: list[Point], unit: str, label: str, lang: str = "vi") -> str:
    """A line chart of ``points`` (two lines when ``value2`` is set, e.g. blood pressure)."""
    if not points:
        return ""
    values = [p.value for p in points] + [p.value2 for p in points if p.value2 is not None]
    lo, hi = min(values), max(values)
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    margin = (hi - lo) * 0.1
    lo, hi = lo - margin, hi + margin
    t0 = points[0].date.timestamp()
    t1 = points[-1].date.timestamp()
    span = (t1 - t0) or 1.0
    inner_w = WIDTH - PAD_L - PAD_R
    inner_h = HEIGHT - PAD_T - PAD_B

    def xy(t: float, v: float) -> tuple[float, float]:
        x = PAD_L + (inner_w / 2 if t1 == t0 else (t - t0) / span * inner_w)
        y = PAD_T + (hi - v) / (hi - lo) * inner_h
        return round(x, 1), round(y, 1)

    last = points[-1]
    latest = _fmt(last.value, lang) + (
        f"/{_fmt(last.value2, lang)}" if last.value2 is not None else ""
    )
    desc = t(
        "chart_desc", lang, label=label, n=len(points), latest=latest, unit=unit,
        date=f"{last.date:%d/%m/%Y}",
    )  # fmt: skip
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(desc)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(desc)}</title>",
        f'<line x1="{PAD_L}" y1="{PAD_T + inner_h}" x2="{WIDTH - PAD_R}" y2="{PAD_T + inner_h}" class="axis"/>',
        f'<line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{PAD_T + inner_h}" class="axis"/>',
        f'<text x="{PAD_L - 4}" y="{PAD_T + 8}" text-anchor="end" class="tick">{_fmt(hi, lang)}</text>',
        f'<text x="{PAD_L - 4}" y="{PAD_T + inner_h}" text-anchor="end" class="tick">{_fmt(lo, lang)}</text>',
        f'<text x="{PAD_L}" y="{HEIGHT - 6}" class="tick">{points[0].date:%m/%Y}</text>',
        f'<text x="{WIDTH - PAD_R}" y="{HEIGHT - 6}" text-anchor="end" class="tick">{last.date:%m/%Y}</text>',
    ]
    for series, css in (("value", "line"), ("value2", "line2")):
        coords = [
            xy(p.date.timestamp(), getattr(p, series))
            for p in points
            if getattr(p, series) is not None
        ]
        if not coords:
            continue
        path = " ".join(f"{x},{y}" for x, y in coords)
        parts.append(f'<polyline points="{path}" class="{css}" fill="none"/>')
        parts += [f'<circle cx="{x}" cy="{y}" r="3" class="{css}"/>' for x, y in coords]
    parts.append("</svg>")
    return "".join(parts)
