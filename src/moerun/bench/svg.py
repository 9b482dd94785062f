"""Hand-written SVG charts for the HTML report: no JavaScript, no network, no plotting library."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from moerun.render.svg_charts import nice_ticks

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
W, H = 560, 320
L, R, T, B = 76, 30, 28, 48  # margins of the plot area (the legend goes below it)
CHAR_W = 6.6  # px per character at the report's 11 px font, for laying out the legend
LEGEND_ROW = 16

Series = tuple[str, Sequence[float], Sequence[float]]


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:g}"


def legend_rows(names: Sequence[str], width: float) -> list[list[tuple[int, str]]]:
    """Legend entries (index, name) flowed into rows that fit `width` px."""
    rows: list[list[tuple[int, str]]] = [[]]
    used = 0.0
    for i, name in enumerate(names):
        w = 18 + CHAR_W * len(name) + 14
        if rows[-1] and used + w > width:
            rows.append([])
            used = 0.0
        rows[-1].append((i, name))
        used += w
    return rows


def chart(
    title: str,
    series: Sequence[Series],
    *,
    x_label: str,
    y_label: str,
    points: bool = False,
    markers: bool = False,
    y_max: float | None = None,
    hlines: Sequence[tuple[str, float]] = (),
) -> str:
    """A line (or scatter, `points=True`; lines with a marker per point, `markers=True`)
    chart of named (xs, ys) series, as an <svg>. `hlines` are dashed reference lines (an
    SLO) named in the legend. The legend sits below the plot, so it never covers a line."""
    xs = [x for _, sx, _ in series for x in sx]
    ys = [y for _, _, sy in series for y in sy] + [v for _, v in hlines]
    if not xs:
        return f'<p class="empty">{escape(title)}: no data</p>'
    xt = nice_ticks(min(0.0, min(xs)), max(xs))
    yt = nice_ticks(min(0.0, min(ys)), y_max if y_max is not None else max(ys))
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]
    names = [name for name, _, _ in series] + [name for name, _ in hlines]
    rows = legend_rows(names, W - 2 * 8)
    height = H + LEGEND_ROW * len(rows)

    def px(x: float) -> float:
        return L + (x - x0) / (x1 - x0) * (W - L - R)

    def py(y: float) -> float:
        return H - B - (y - y0) / (y1 - y0) * (H - T - B)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" '
        f'height="{height}" role="img"><title>{escape(title)}</title>',
        f'<text x="{W / 2}" y="18" text-anchor="middle" class="t">{escape(title)}</text>',
    ]
    for x in xt:
        out.append(f'<line x1="{px(x):.1f}" y1="{T}" x2="{px(x):.1f}" y2="{H - B}" class="g"/>')
        out.append(f'<text x="{px(x):.1f}" y="{H - B + 16}" text-anchor="middle">{_fmt(x)}</text>')
    for y in yt:
        out.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{W - R}" y2="{py(y):.1f}" class="g"/>')
        out.append(f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{_fmt(y)}</text>')
    out.append(
        f'<text x="{(L + W - R) / 2}" y="{H - 14}" text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<text transform="translate(13 {(T + H - B) / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    for i, (name, sx, sy) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        pairs = list(zip(sx, sy, strict=True))
        if not points:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in pairs)
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.8"/>'
            )
        if points or markers:
            r = 2 if points else 3.5
            dots = "".join(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="{r}"><title>{escape(name)}: '
                f"{_fmt(round(x, 1))}, {_fmt(round(y, 1))}</title></circle>"
                for x, y in pairs
            )
            out.append(f'<g fill="{color}" fill-opacity="{0.6 if points else 1}">{dots}</g>')
    for j, (_, value) in enumerate(hlines):
        color = COLORS[(len(series) + j) % len(COLORS)]
        out.append(
            f'<line x1="{L}" y1="{py(value):.1f}" x2="{W - R}" y2="{py(value):.1f}" '
            f'stroke="{color}" stroke-dasharray="6 4" stroke-width="1.5"/>'
        )
    for k, row in enumerate(rows):
        x = 8.0
        ly = H + 4 + LEGEND_ROW * k
        for i, name in row:
            color = COLORS[i % len(COLORS)]
            if i < len(series):
                out.append(
                    f'<rect x="{x:.1f}" y="{ly - 9}" width="10" height="10" fill="{color}"/>'
                )
            else:
                out.append(
                    f'<line x1="{x:.1f}" y1="{ly - 4}" x2="{x + 12:.1f}" y2="{ly - 4}" '
                    f'stroke="{color}" stroke-dasharray="4 2" stroke-width="1.5"/>'
                )
            out.append(f'<text x="{x + 16:.1f}" y="{ly}">{escape(name)}</text>')
            x += 18 + CHAR_W * len(name) + 14
    out.append("</svg>")
    return "\n".join(out)


def cdf(values: Sequence[float], max_points: int = 400) -> tuple[list[float], list[float]]:
    """The empirical CDF of `values` as at most `max_points` (x, fraction) steps."""
    v = sorted(values)
    n = len(v)
    if n == 0:
        return [], []
    idx = (
        range(n)
        if n <= max_points
        else (round(i * (n - 1) / (max_points - 1)) for i in range(max_points))
    )
    xs, ys = [], []
    for i in idx:
        xs.append(v[i])
        ys.append((i + 1) / n)
    return xs, ys
