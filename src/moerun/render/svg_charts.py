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
LEGEND_WIDTH = 250  # a legend at the right: its lines and text
# predictions whose error was never measured (hollow points, a dashed front)
UNMEASURED_COLOR = "#ff7f0e"


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
    names: Sequence[str],
    dashed: Sequence[bool] | None = None,
    right: bool = False,
    colors: Sequence[str] | None = None,
) -> list[str]:
    out = []
    x0 = W - R - LEGEND_WIDTH if right else L + 10
    for i, name in enumerate(names):
        y = T + 8 + 16 * i
        dash = ' stroke-dasharray="5 3"' if dashed and dashed[i] else ""
        color = colors[i] if colors else COLORS[i % len(COLORS)]
        out.append(
            f'<line x1="{x0}" x2="{x0 + 24}" y1="{y}" y2="{y}" '
            f'stroke="{color}" stroke-width="2.5"{dash}/>'
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
    hlines: Sequence[tuple[float, str]] = (),
) -> str:
    """Lines over shared xs, with vertical markers (e.g. the plan's volume, the break-even)
    and horizontal ones (e.g. the budget)."""
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
    shown = [(x, label) for x, label in markers if L <= f.px(x) <= W - R]
    for i, (x, label) in enumerate(shown):
        # one row per marker, so two markers close together never print over each other
        anchor = "end" if f.px(x) > W - R - 120 else "start"
        dx = -4 if anchor == "end" else 4
        out.append(
            f'<line class="marker" x1="{f.px(x):.1f}" x2="{f.px(x):.1f}" y1="{T}" '
            f'y2="{H - B}" stroke="#444" stroke-dasharray="2 3"/>'
            f'<text x="{f.px(x) + dx:.1f}" y="{H - B - 8 - 14 * i}" text-anchor="{anchor}" '
            f'class="mk">{escape(label)}</text>'
        )
    for y, label in hlines:
        if not f.y0 <= (math.log10(y) if log_y else y) <= f.y1:
            continue
        out.append(
            f'<line class="marker" x1="{L}" x2="{W - R}" y1="{f.py(y):.1f}" y2="{f.py(y):.1f}" '
            f'stroke="#d62728" stroke-dasharray="6 3"/><text x="{W - R - 4}" '
            f'y="{f.py(y) - 4:.1f}" text-anchor="end" class="mk">{escape(label)}</text>'
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
    highlights: Sequence[tuple[float, float, str]] = (),
    unmeasured: Sequence[tuple[float, float, str]] = (),
    unmeasured_front: Sequence[tuple[float, float, str]] = (),
    labels: tuple[str, str, str, str] = (
        "configurations (each at every load)",
        "Pareto front",
        "error never measured",
        "front with those",
    ),
) -> str:
    """Points (with hover titles), the front through the best of them, and highlighted
    configurations (the ranked ones) with labels placed so that none overlaps another.

    `unmeasured` points (predictions no measurement checked) are drawn hollow in their own
    colour, and `unmeasured_front` (the front when they count) dashed in it; `labels` names
    the points, the front and those two in the legend."""
    if not points and not unmeasured:
        return f'<p class="empty">{escape(title)}: no data</p>'
    # the front comes from every point, the scatter from a sample: frame them both
    every = (*points, *unmeasured, *front, *unmeasured_front, *highlights)
    xs = [p[0] for p in every] + ([vline[0]] if vline else [])
    f = _Frame(xs, [p[1] for p in every], False)
    out = f.svg(title, x_label, y_label)
    for x, y, label in points:
        out.append(
            f'<circle class="point" cx="{f.px(x):.1f}" cy="{f.py(y):.1f}" r="2.5" '
            f'fill="{COLORS[0]}" fill-opacity="0.35"><title>{escape(label)}: '
            f"{x:.1f} ms, {y:,.0f} tok/s/GPU</title></circle>"
        )
    for x, y, label in unmeasured:
        out.append(
            f'<circle class="point unmeasured" cx="{f.px(x):.1f}" cy="{f.py(y):.1f}" r="2.5" '
            f'fill="none" stroke="{UNMEASURED_COLOR}" stroke-opacity="0.6"><title>'
            f"{escape(label)}: {x:.1f} ms, {y:,.0f} tok/s/GPU ({escape(labels[2])})"
            "</title></circle>"
        )
    if unmeasured_front:
        out.append(
            f'<path class="series unmeasured" d="{_polyline(f, unmeasured_front)}" fill="none" '
            f'stroke="{UNMEASURED_COLOR}" stroke-width="1.5" stroke-dasharray="5 3"><title>'
            f"{escape(labels[3])}</title></path>"
        )
    if front:
        out.append(
            f'<path class="series" d="{_polyline(f, front)}" fill="none" stroke="{COLORS[1]}" '
            f'stroke-width="1.5"><title>{escape(labels[1])}</title></path>'
        )
        for x, y, label in front:  # the front's own configurations, drawn on top of it
            out.append(
                f'<circle class="point" cx="{f.px(x):.1f}" cy="{f.py(y):.1f}" r="3" '
                f'fill="{COLORS[1]}"><title>{escape(label)}: {x:.1f} ms, {y:,.0f} tok/s/GPU'
                "</title></circle>"
            )
    if vline is not None:
        x = f.px(vline[0])
        out.append(
            f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{T}" y2="{H - B}" '
            f'stroke="#444" stroke-dasharray="2 3"/><text x="{x + 4:.1f}" y="{T + 12}" '
            f'class="mk">{escape(vline[1])}</text>'
        )
    legend = list(labels[:2])
    colors = [COLORS[0], COLORS[1]]
    dashed = [False, False]
    if unmeasured:
        legend.append(labels[2])
        colors.append(UNMEASURED_COLOR)
        dashed.append(False)
    if unmeasured_front:
        legend.append(labels[3])
        colors.append(UNMEASURED_COLOR)
        dashed.append(True)
    # boxes already taken by text: the legend, the bound's label, the axes' tick labels
    taken: list[tuple[float, float, float, float]] = [
        (W - R - LEGEND_WIDTH, T, W - R, T + 16 * len(legend) + 4)
    ]
    if vline is not None:
        x = f.px(vline[0])
        taken.append((x, T, x + 8 + 7 * len(vline[1]), T + 16))
    for x, y, label in highlights:
        cx, cy = f.px(x), f.py(y)
        out.append(
            f'<circle class="point chosen" cx="{cx:.1f}" cy="{cy:.1f}" r="5" fill="none" '
            f'stroke="#111" stroke-width="2"><title>{escape(label)}</title></circle>'
        )
        short = label.split(" ")[0]
        width = 7 * len(short) + 2
        for dx, dy in _LABEL_OFFSETS:
            box = (cx + dx, cy + dy - 11, cx + dx + width, cy + dy + 2)
            inside = box[0] >= L and box[2] <= W - R and box[1] >= T and box[3] <= H - B
            if inside and not any(_overlap(box, t) for t in taken):
                taken.append(box)
                out.append(
                    f'<text x="{box[0]:.1f}" y="{cy + dy:.1f}" class="lg hl">{escape(short)}</text>'
                )
                break
    out += _legend(legend, dashed, right=True, colors=colors)
    return "\n".join(out) + "\n</svg>"


def _polyline(f: _Frame, points: Sequence[tuple[float, float, str]]) -> str:
    """An SVG path through `points` in order."""
    return " ".join(
        f"{'M' if i == 0 else 'L'}{f.px(x):.1f},{f.py(y):.1f}" for i, (x, y, _) in enumerate(points)
    )


# where a highlighted point's label may go, tried in order (pixels from the point)
_LABEL_OFFSETS = tuple(
    (dx, dy) for dy in (-7, 15, -21, 29, -35, 43, -49) for dx in (8, -40, 30, -70)
)


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def stacked_bars(
    title: str,
    rows: Sequence[tuple[str, Sequence[tuple[str, float]]]],
    *,
    unit: str,
    capacity: float | None = None,
) -> str:
    """Horizontal bars split into named segments (same segment names in every row), on an
    axis with values; each segment wide enough shows its value, `capacity` is marked."""
    if not rows:
        return f'<p class="empty">{escape(title)}: no data</p>'
    top = max([sum(v for _, v in segs) for _, segs in rows] + [capacity or 0.0]) or 1.0
    ticks = nice_ticks(0.0, top)
    total = ticks[-1]
    left, width = 300, W - 300 - R
    axis_y = T + 30 * len(rows) + 4
    height = axis_y + 90
    out = [
        f'<svg class="chart" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" '
        f'width="{W}" height="{height}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<text x="{W / 2}" y="18" text-anchor="middle" class="ct">{escape(title)}</text>',
    ]
    for t in ticks:
        x = left + t / total * width
        out.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{T - 4}" y2="{axis_y}" class="grid"/>'
            f'<text x="{x:.1f}" y="{axis_y + 14}" text-anchor="middle">{fmt(t)}</text>'
        )
    for i, (label, segs) in enumerate(rows):
        y, x = T + 30 * i, float(left)
        out.append(f'<text x="{left - 6}" y="{y + 16}" text-anchor="end">{escape(label)}</text>')
        for j, (name, v) in enumerate(segs):
            w = max(v / total * width, 0.0)
            out.append(
                f'<rect class="bar" x="{x:.1f}" y="{y}" width="{w:.1f}" '
                f'height="22" fill="{COLORS[j % len(COLORS)]}"><title>{escape(name)}: '
                f"{v:,.1f} {unit}</title></rect>"
            )
            text = f"{v:,.0f}"
            if w >= 7 * len(text) + 6:
                out.append(
                    f'<text x="{x + w / 2:.1f}" y="{y + 15}" text-anchor="middle" '
                    f'class="lg" fill="#fff">{text}</text>'
                )
            x += w
    if capacity is not None:
        x = left + capacity / total * width
        out.append(
            f'<line class="marker" x1="{x:.1f}" x2="{x:.1f}" y1="{T - 4}" y2="{axis_y}" '
            'stroke="#111" stroke-dasharray="3 2"/>'
        )
    out.append(
        f'<text x="{left + width / 2}" y="{axis_y + 32}" text-anchor="middle">'
        f"{escape(unit)} per GPU"
        + (f" (dashed: the GPU's {capacity:,.0f} {escape(unit)})" if capacity else "")
        + "</text>"
    )
    y = axis_y + 50
    for j, name in enumerate(n for n, _ in rows[0][1]):
        out.append(
            f'<rect x="{left + 110 * j}" y="{y}" width="12" height="12" '
            f'fill="{COLORS[j % len(COLORS)]}"/><text x="{left + 110 * j + 16}" '
            f'y="{y + 11}" class="lg">{escape(name)}</text>'
        )
    return "\n".join(out) + "\n</svg>"
