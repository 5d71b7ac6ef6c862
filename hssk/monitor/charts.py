"""Charts drawn on the server as SVG (no JavaScript): bars, lines and sparklines.

Each chart is an accessible image (``role="img"`` with a title and a description) and every
bar or point carries a ``<title>`` with its value; pages also show the numbers as a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from itertools import count

_ids = count(1)
BLUE = "#1d5fa8"
GREEN = "#2e7d32"
GREY = "#9aa5b1"


def _fmt(value: float, percent: bool, lang: str = "vi") -> str:
    """Vietnamese writes 12,5% and 1.234; English 12.5% and 1,234."""
    if percent:
        text = f"{value * 100:.1f}%"
        return text.replace(".", ",") if lang == "vi" else text
    text = f"{value:,.0f}"
    return text.replace(",", ".") if lang == "vi" else text


def _frame(title: str, desc: str, width: int, height: int, body: str) -> str:
    n = next(_ids)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart" role="img" '
        f'viewBox="0 0 {width} {height}" width="100%" preserveAspectRatio="xMinYMin meet" '
        f'aria-labelledby="chart-t{n} chart-d{n}">'
        f'<title id="chart-t{n}">{escape(title)}</title><desc id="chart-d{n}">{escape(desc)}</desc>'
        f"{body}</svg>"
    )


def bar_chart(
    values: Sequence[float],
    labels: Sequence[str],
    title: str,
    *,
    percent: bool = False,
    width: int = 640,
    height: int = 220,
    color: str = BLUE,
    lang: str = "vi",
) -> str:
    """Vertical bars with the first, middle and last labels under the axis."""
    pad_l, pad_b, pad_t = 48, 28, 12
    plot_w, plot_h = width - pad_l - 8, height - pad_b - pad_t
    top = max(max(values, default=0), 1e-9 if percent else 1)
    if percent:
        top = max(top, 1.0)
    n = max(len(values), 1)
    step = plot_w / n
    parts = [
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - 8}" y2="{pad_t + plot_h}" '
        f'stroke="{GREY}"/>',
        f'<text x="{pad_l - 6}" y="{pad_t + 10}" text-anchor="end" font-size="11">'
        f"{_fmt(top, percent, lang)}</text>",
        f'<text x="{pad_l - 6}" y="{pad_t + plot_h}" text-anchor="end" font-size="11">0</text>',
    ]
    for i, (v, label) in enumerate(zip(values, labels, strict=True)):
        h = plot_h * (v / top) if top else 0
        x = pad_l + i * step + step * 0.1
        parts.append(
            f'<rect x="{x:.1f}" y="{pad_t + plot_h - h:.1f}" width="{step * 0.8:.1f}" '
            f'height="{h:.1f}" fill="{color}"><title>{escape(label)}: {_fmt(v, percent, lang)}'
            "</title></rect>"
        )
    for i in sorted({0, n // 2, n - 1}):
        if i < len(labels):
            parts.append(
                f'<text x="{pad_l + i * step + step / 2:.1f}" y="{height - 8}" '
                f'text-anchor="middle" font-size="11">{escape(labels[i])}</text>'
            )
    total = _fmt(sum(values), False, lang)
    if lang == "vi":
        desc = f"{len(values)} cột; tổng {total}" if not percent else f"{len(values)} cột"
    else:
        desc = f"{len(values)} bars; total {total}" if not percent else f"{len(values)} bars"
    return _frame(title, desc, width, height, "".join(parts))


def line_chart(
    points: Sequence[tuple[str, float]],
    title: str,
    *,
    percent: bool = True,
    width: int = 640,
    height: int = 220,
    color: str = GREEN,
    goal: float | None = None,
    lang: str = "vi",
) -> str:
    """A line over time, with an optional dashed goal line."""
    pad_l, pad_b, pad_t = 48, 28, 12
    plot_w, plot_h = width - pad_l - 8, height - pad_b - pad_t
    top = 1.0 if percent else max([v for _, v in points] + [goal or 0, 1])
    n = len(points)

    def xy(i: int, v: float) -> tuple[float, float]:
        x = pad_l + (plot_w * i / (n - 1) if n > 1 else plot_w / 2)
        return x, pad_t + plot_h - plot_h * (v / top)

    parts = [
        f'<line x1="{pad_l}" y1="{pad_t + plot_h}" x2="{width - 8}" y2="{pad_t + plot_h}" '
        f'stroke="{GREY}"/>',
        f'<text x="{pad_l - 6}" y="{pad_t + 10}" text-anchor="end" font-size="11">'
        f"{_fmt(top, percent, lang)}</text>",
    ]
    if goal is not None:
        gy = pad_t + plot_h - plot_h * (goal / top)
        parts.append(
            f'<line x1="{pad_l}" y1="{gy:.1f}" x2="{width - 8}" y2="{gy:.1f}" stroke="#c62828" '
            f'stroke-dasharray="6 4"><title>{"Mục tiêu" if lang == "vi" else "Target"} {_fmt(goal, percent, lang)}</title></line>'
        )
    if points:
        path = " ".join(
            f"{x:.1f},{y:.1f}" for x, y in (xy(i, v) for i, (_, v) in enumerate(points))
        )
        parts.append(f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="2"/>')
        for i, (label, v) in enumerate(points):
            x, y = xy(i, v)
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                f"<title>{escape(label)}: {_fmt(v, percent, lang)}</title></circle>"
            )
        for i in sorted({0, n - 1}):
            x, _ = xy(i, 0)
            anchor = "start" if i == 0 else "end"
            parts.append(
                f'<text x="{x:.1f}" y="{height - 8}" text-anchor="{anchor}" font-size="11">'
                f"{escape(points[i][0])}</text>"
            )
    if lang == "vi":
        last = f"giá trị cuối {_fmt(points[-1][1], percent, lang)}" if points else "chưa có số liệu"
        desc = f"{n} điểm; {last}"
    else:
        last = f"last value {_fmt(points[-1][1], percent, lang)}" if points else "no data yet"
        desc = f"{n} points; {last}"
    return _frame(title, desc, width, height, "".join(parts))


def sparkline(values: Sequence[int], label: str, *, width: int = 120, height: int = 24) -> str:
    """A tiny bar series for a table cell."""
    top = max(max(values, default=0), 1)
    n = max(len(values), 1)
    step = width / n
    bars = "".join(
        f'<rect x="{i * step:.1f}" y="{height - height * v / top:.1f}" width="{step * 0.8:.1f}" '
        f'height="{height * v / top:.1f}" fill="{BLUE if v else GREY}"/>'
        for i, v in enumerate(values)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>{bars}</svg>'
    )
