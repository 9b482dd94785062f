"""Hand-written SVG charts for the HTML report: no JavaScript, no network, no plotting library."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from moerun.render.svg_charts import nice_ticks

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")
W, H = 560, 320
L, R, T, B = 64, 16, 28, 48  # margins


def _fmt(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    return f"{v:g}"


def chart(
    title: str,
    series: Sequence[tuple[str, Sequence[float], Sequence[float]]],
    *,
    x_label: str,
    y_label: str,
    points: bool = False,
    y_max: float | None = None,
) -> str:
    """A line (or scatter, `points=True`) chart of named (xs, ys) series, as an <svg>."""
    xs = [x for _, sx, _ in series for x in sx]
    ys = [y for _, _, sy in series for y in sy]
    if not xs:
        return f'<p class="empty">{escape(title)}: no data</p>'
    xt = nice_ticks(min(0.0, min(xs)), max(xs))
    yt = nice_ticks(min(0.0, min(ys)), y_max if y_max is not None else max(ys))
    x0, x1, y0, y1 = xt[0], xt[-1], yt[0], yt[-1]

    def px(x: float) -> float:
        return L + (x - x0) / (x1 - x0) * (W - L - R)

    def py(y: float) -> float:
        return H - B - (y - y0) / (y1 - y0) * (H - T - B)

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" '
        f'height="{H}" role="img"><title>{escape(title)}</title>',
        f'<text x="{W / 2}" y="18" text-anchor="middle" class="t">{escape(title)}</text>',
    ]
    for x in xt:
        out.append(f'<line x1="{px(x):.1f}" y1="{T}" x2="{px(x):.1f}" y2="{H - B}" class="g"/>')
        out.append(f'<text x="{px(x):.1f}" y="{H - B + 16}" text-anchor="middle">{_fmt(x)}</text>')
    for y in yt:
        out.append(f'<line x1="{L}" y1="{py(y):.1f}" x2="{W - R}" y2="{py(y):.1f}" class="g"/>')
        out.append(f'<text x="{L - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{_fmt(y)}</text>')
    out.append(
        f'<text x="{(L + W - R) / 2}" y="{H - 10}" text-anchor="middle">{escape(x_label)}</text>'
    )
    out.append(
        f'<text transform="translate(14 {(T + H - B) / 2}) rotate(-90)" text-anchor="middle">'
        f"{escape(y_label)}</text>"
    )
    for i, (name, sx, sy) in enumerate(series):
        color = COLORS[i % len(COLORS)]
        if points:
            dots = "".join(
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2"/>'
                for x, y in zip(sx, sy, strict=True)
            )
            out.append(f'<g fill="{color}" fill-opacity="0.6">{dots}</g>')
        else:
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(sx, sy, strict=True))
            out.append(
                f'<polyline points="{path}" fill="none" stroke="{color}" stroke-width="1.8"/>'
            )
        ly = T + 14 + 16 * i
        out.append(f'<rect x="{W - R - 150}" y="{ly - 9}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{W - R - 135}" y="{ly}">{escape(name)}</text>')
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
