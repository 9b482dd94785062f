"""Hand-written SVG charts for the plan report: no JavaScript library, no network.

Each chart is an <svg class="chart"> with a <title>; lines are <path class="series">, points
<circle class="point">, bars <rect class="bar">, so a test can check that a chart drew.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from html import escape

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf")
W, H = 720, 360
L, R, T, B = 78, 20, 34, 52


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About `n` round tick values covering [lo, hi]."""
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        hi = lo + 1.0
    raw = (hi - lo) / n
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    first, last = math.floor(lo / step) * step, math.ceil(hi / step) * step
    return [round(first + i * step, 10) for i in range(round((last - first) / step) + 1)]


def _log_ticks(lo: float, hi: float) -> list[float]:
    out = []
    for e in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1):
        for m in (1, 3):
            v = m * 10.0**e
            if lo <= v <= hi:
                out.append(v)
    return out or [lo, hi]


def fmt(v: float) -> str:
    """Compact number, three significant digits: 1.2M, 35K, 0.5."""
    a = abs(v)
    if a >= 1e9:
        return f"{v / 1e9:.3g}B"
    if a >= 1e6:
        return f"{v / 1e6:.3g}M"
    if a >= 1e4:
        return f"{v / 1e3:.3g}K"
    return f"{v:,.0f}" if a >= 100 else f"{v:g}"


class _Frame:
    """Axes of one chart: data -> pixel maps and the SVG of the frame."""

    def __init__(
        self, xs: Sequence[float], ys: Sequence[float], log_x: bool, log_y: bool = False
    ) -> None:
        self.log_x, self.log_y = log_x, log_y
        if log_x:
            self.xt = _log_ticks(min(xs), max(xs))
            self.x0, self.x1 = math.log10(min(xs)), math.log10(max(xs))
        else:
            self.xt = nice_ticks(min(0.0, min(xs)), max(xs))
            self.x0, self.x1 = self.xt[0], self.xt[-1]
        if log_y:
            lo, hi = min(ys), max(ys)
            self.yt = _log_ticks(lo, hi)
            self.y0, self.y1 = math.log10(lo), math.log10(hi)
        else:
            self.yt = nice_ticks(0.0, max(ys) if ys else 1.0)
            self.y0, self.y1 = self.yt[0], self.yt[-1]

    def px(self, x: float) -> float:
        v = math.log10(x) if self.log_x else x
        return L + (v - self.x0) / ((self.x1 - self.x0) or 1) * (W - L - R)

    def py(self, y: float) -> float:
        v = math.log10(max(y, 1e-12)) if self.log_y else y
        return H - B - (v - self.y0) / ((self.y1 - self.y0) or 1) * (H - T - B)

    def svg(self, title: str, x_label: str, y_label: str) -> list[str]:
        out = [
            f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" '
            f'width="{W}" height="{H}" role="img" aria-label="{escape(title)}">',
            f"<title>{escape(title)}</title>",
            f'<text x="{W / 2}" y="18" text-anchor="middle" class="ct">{escape(title)}</text>',
        ]
        for x in self.xt:
            out.append(
                f'<line x1="{self.px(x):.1f}" x2="{self.px(x):.1f}" y1="{T}" '
                f'y2="{H - B}" class="grid"/><text x="{self.px(x):.1f}" y="{H - B + 16}" '
                f'text-anchor="middle">{fmt(x)}</text>'
            )
        for y in self.yt:
            out.append(
                f'<line x1="{L}" x2="{W - R}" y1="{self.py(y):.1f}" y2="{self.py(y):.1f}" '
                f'class="grid"/><text x="{L - 6}" y="{self.py(y) + 4:.1f}" '
                f'text-anchor="end">{fmt(y)}</text>'
            )
        out.append(
            f'<text x="{(L + W - R) / 2}" y="{H - 10}" text-anchor="middle">'
            f"{escape(x_label)}</text>"
        )
        out.append(
            f'<text transform="translate(16 {(T + H - B) / 2}) rotate(-90)" '
            f'text-anchor="middle">{escape(y_label)}</text>'
        )
        return out


def _legend(
    names: Sequence[str], dashed: Sequence[bool] | None = None, right: bool = False
) -> list[str]:
    out = []
    x0 = W - R - 250 if right else L + 10
    for i, name in enumerate(names):
        y = T + 8 + 16 * i
        dash = ' stroke-dasharray="5 3"' if dashed and dashed[i] else ""
        out.append(
            f'<line x1="{x0}" x2="{x0 + 24}" y1="{y}" y2="{y}" '
            f'stroke="{COLORS[i % len(COLORS)]}" stroke-width="2.5"{dash}/>'
            f'<text x="{x0 + 30}" y="{y + 4}" class="lg">{escape(name)}</text>'
        )
    return out


def line_chart(
    title: str,
    xs: Sequence[float],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    x_label: str,
    y_label: str,
    log_x: bool = False,
    log_y: bool = False,
    markers: Sequence[tuple[float, str]] = (),
) -> str:
    """Lines over shared xs, with vertical markers (e.g. the plan's volume, the break-even)."""
    ys = [y for _, s in series for y in s if math.isfinite(y) and (y > 0 or not log_y)]
    if not xs or not ys:
        return f'<p class="empty">{escape(title)}: no data</p>'
    f = _Frame(xs, ys, log_x, log_y)
    out = f.svg(title, x_label, y_label)
    for i, (name, s) in enumerate(series):
        d = " ".join(
            f"{'M' if j == 0 else 'L'}{f.px(x):.1f},{f.py(y):.1f}"
            for j, (x, y) in enumerate(zip(xs, s, strict=True))
        )
        dash = ' stroke-dasharray="5 3"' if i == len(series) - 1 and len(series) > 2 else ""
        out.append(
            f'<path class="series" d="{d}" fill="none" stroke="{COLORS[i % len(COLORS)]}" '
            f'stroke-width="2.5"{dash}><title>{escape(name)}</title></path>'
        )
    for x, label in markers:
        if f.px(x) < L or f.px(x) > W - R:
            continue
        out.append(
            f'<line class="marker" x1="{f.px(x):.1f}" x2="{f.px(x):.1f}" y1="{T}" '
            f'y2="{H - B}" stroke="#444" stroke-dasharray="2 3"/>'
            f'<text x="{f.px(x) + 4:.1f}" y="{H - B - 8}" class="mk">{escape(label)}</text>'
        )
    dashed = [i == len(series) - 1 and len(series) > 2 for i in range(len(series))]
    out += _legend([n for n, _ in series], dashed)
    return "\n".join(out) + "\n</svg>"


def scatter_chart(
    title: str,
    points: Sequence[tuple[float, float, str]],
    front: Sequence[tuple[float, float, str]],
    *,
    x_label: str,
    y_label: str,
    vline: tuple[float, str] | None = None,
) -> str:
    """Points (with hover titles) and the front through the best of them."""
    if not points:
        return f'<p class="empty">{escape(title)}: no data</p>'
    # the front comes from every point, the scatter from a sample: frame them both
    xs = [p[0] for p in (*points, *front)] + ([vline[0]] if vline else [])
    f = _Frame(xs, [p[1] for p in (*points, *front)], False)
    out = f.svg(title, x_label, y_label)
    for x, y, label in points:
        out.append(
            f'<circle class="point" cx="{f.px(x):.1f}" cy="{f.py(y):.1f}" r="2.5" '
            f'fill="{COLORS[0]}" fill-opacity="0.35"><title>{escape(label)}: '
            f"{x:.1f} ms, {y:,.0f} tok/s/GPU</title></circle>"
        )
    if front:
        d = " ".join(
            f"{'M' if i == 0 else 'L'}{f.px(x):.1f},{f.py(y):.1f}"
            for i, (x, y, _) in enumerate(front)
        )
        out.append(
            f'<path class="series" d="{d}" fill="none" stroke="{COLORS[1]}" '
            'stroke-width="2.5"><title>Pareto front</title></path>'
        )
    if vline is not None:
        x = f.px(vline[0])
        out.append(
            f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{T}" y2="{H - B}" '
            f'stroke="#444" stroke-dasharray="2 3"/><text x="{x + 4:.1f}" y="{T + 12}" '
            f'class="mk">{escape(vline[1])}</text>'
        )
    out += _legend(["configurations (each at every load)", "Pareto front"], right=True)
    return "\n".join(out) + "\n</svg>"


def stacked_bars(
    title: str, rows: Sequence[tuple[str, Sequence[tuple[str, float]]]], *, unit: str
) -> str:
    """Horizontal bars split into named segments (same segment names in every row)."""
    if not rows:
        return f'<p class="empty">{escape(title)}: no data</p>'
    height = T + 30 * len(rows) + 70
    total = max(sum(v for _, v in segs) for _, segs in rows) or 1.0
    left, width = 300, W - 300 - R
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" '
        f'width="{W}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{W / 2}" y="18" text-anchor="middle" class="ct">{escape(title)}</text>',
    ]
    for i, (label, segs) in enumerate(rows):
        y, x = T + 30 * i, float(left)
        out.append(f'<text x="{left - 6}" y="{y + 16}" text-anchor="end">{escape(label)}</text>')
        for j, (name, v) in enumerate(segs):
            w = v / total * width
            out.append(
                f'<rect class="bar" x="{x:.1f}" y="{y}" width="{max(w, 0.0):.1f}" '
                f'height="22" fill="{COLORS[j % len(COLORS)]}"><title>{escape(name)}: '
                f"{v:,.1f} {unit}</title></rect>"
            )
            x += w
    y = T + 30 * len(rows) + 20
    for j, name in enumerate(n for n, _ in rows[0][1]):
        out.append(
            f'<rect x="{20 + 120 * j}" y="{y}" width="12" height="12" '
            f'fill="{COLORS[j % len(COLORS)]}"/><text x="{20 + 120 * j + 16}" '
            f'y="{y + 11}" class="lg">{escape(name)}</text>'
        )
    out.append(
        f'<text x="{left + width / 2}" y="{y + 34}" text-anchor="middle">'
        f"{escape(unit)} per GPU (scale: {total:,.0f} {escape(unit)})</text>"
    )
    return "\n".join(out) + "\n</svg>"
