"""The plan as one self-contained HTML page: recommendation, ranked options, charts, sources.

No CDN and no plotting library: the charts are inline SVG (`render.svg_charts`). A few lines of
inline script only record, on load, each chart's drawn size in `data-rendered-*` attributes
(what a headless-browser test reads back). Every price and spec cites its source ids and date;
every predicted number says whether it was simulated or estimated, its calibration status and
the calibration's typical error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from html import escape

from moerun.core.plan.curves import ParetoPoint, cost_curves, pareto, unmeasured_front_note
from moerun.core.plan.planner import PlanResult
from moerun.core.plan.recommend import Option, api_equivalent_prices, reference_api
from moerun.render.plan_json import assumptions
from moerun.render.plan_text import break_even_band_text, headline
from moerun.render.svg_charts import fmt, line_chart, scatter_chart, stacked_bars

GB = 1e9
MAX_TABLE_ROWS = 40
MAX_MEMORY_ROWS = 6
ZOOM_X_BOUNDS = 3
# (title, ref, date) of each cited source id
Sources = Mapping[str, tuple[str, str, str]]

CSS = """
body{font:14px/1.45 system-ui,sans-serif;margin:24px auto;max-width:1200px;color:#222}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}
table{border-collapse:collapse;width:100%;font-size:12.5px}
th,td{border:1px solid #ddd;padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.n{text-align:right;white-space:nowrap}
.rec{border:2px solid #2ca02c;border-radius:6px;padding:10px 14px;background:#f6fff6}
.none{border:2px solid #d62728;border-radius:6px;padding:10px 14px;background:#fff6f6}
svg.chart{display:block;margin:12px 0;font-size:11px;fill:#333}
svg .grid{stroke:#e6e6e6}svg .ct{font-size:14px;font-weight:600}svg .lg,svg .mk{font-size:11px}
ul.notes{margin:2px 0 0 16px;padding:0}small{color:#666}.warn{color:#b00}
ol.notes{font-size:12.5px}
"""

SELF_REPORT = """
window.addEventListener('load', function () {
  document.querySelectorAll('svg.chart').forEach(function (svg) {
    var box = svg.getBoundingClientRect();
    svg.setAttribute('data-rendered-width', Math.round(box.width));
    svg.setAttribute('data-rendered-height', Math.round(box.height));
    svg.setAttribute('data-rendered-marks',
      svg.querySelectorAll('path.series, circle.point, rect.bar').length);
  });
  // text that overlaps other text, anywhere on the page (SVG labels included)
  var boxes = [];
  document.querySelectorAll('svg.chart text').forEach(function (t) {
    var b = t.getBoundingClientRect();
    if (b.width > 0 && b.height > 0) boxes.push([b, t.textContent]);
  });
  var clashes = [];
  for (var i = 0; i < boxes.length; i++) {
    for (var j = i + 1; j < boxes.length; j++) {
      var a = boxes[i][0], c = boxes[j][0];
      var w = Math.min(a.right, c.right) - Math.max(a.left, c.left);
      var h = Math.min(a.bottom, c.bottom) - Math.max(a.top, c.top);
      if (w > 1 && h > 1) clashes.push(boxes[i][1] + ' | ' + boxes[j][1]);
    }
  }
  document.body.setAttribute('data-text-boxes', boxes.length);
  document.body.setAttribute('data-text-overlaps', clashes.length);
  document.body.setAttribute('data-text-overlap-pairs', clashes.slice(0, 20).join(' ;; '));
  document.body.setAttribute('data-charts-checked', 'true');
});
"""


def _cite(ids: Sequence[str], as_of: str) -> str:
    return f"<small>[{escape(', '.join(ids))}] {escape(as_of)}</small>"


def _perf_cell(o: Option) -> str:
    sh = o.self_hosted
    if sh is not None and o.kind != "managed":
        p = sh.perf
        # the band of what the cell shows (p99 TTFT / TPOT) and of the capacity behind it;
        # what the band rests on is the tooltip
        band = ", ".join(f"{name} ±{v:.0f}%" for name, v in p.band_shown())
        title = f' title="{escape(p.error_band_basis)}"' if p.error_band_basis else ""
        return (
            f"{p.ttft_p99_ms or 0:,.0f} / {p.tpot_p99_ms or 0:.1f}<br><small{title}>{p.source}; "
            f"{escape(p.calibration_label())}"
            + (f" ({band})" if band else " (error never measured)")
            + "</small>"
        )
    if o.managed is not None:
        m = o.managed
        t, s = m.best_ttft_s, m.best_output_tok_per_s
        pub = f"median TTFT {t:.2f} s" if t else "no published TTFT"
        pub += f", {s:.0f} tok/s" if s else ""
        src = sorted({sid for p in m.model.perf for sid in p.source})
        cite = f"published [{escape(', '.join(src))}]" if src else "nothing published"
        return f"{pub}<br><small>{cite}; p99 unverified</small>"
    return "-"


def _price_cell(o: Option) -> str:
    parts = []
    if o.self_hosted is not None:
        p = o.self_hosted.cloud.price
        parts.append(
            f"${p.usd_per_gpu_hour:g}/GPU-h {escape(p.provider)} {escape(p.region or '')} "
            + _cite(p.source, p.as_of)
        )
    if o.managed is not None:
        m = o.managed.model
        parts.append(
            f"${m.input_usd_per_mtok}/{m.cached_input_usd_per_mtok}/"
            f"{m.output_usd_per_mtok} per Mtok in/cached/out " + _cite(m.source, m.as_of)
        )
    return "<br>".join(parts)


# notes the table's columns already show (price, published speed): not repeated per row
_SHOWN_IN_COLUMNS = ("prices ", "price $", "published: ")


def _options_table(r: PlanResult) -> str:
    shown = r.options[:MAX_TABLE_ROWS]
    notes = [[n for n in o.notes if not n.startswith(_SHOWN_IN_COLUMNS)] for o in shown]
    counts: dict[str, int] = {}
    for row in notes:
        for n in dict.fromkeys(row):
            counts[n] = counts.get(n, 0) + 1
    # a note several rows share is written once, below the table, and referenced by number
    shared = [n for n, c in counts.items() if c > 1]
    ref = {n: k + 1 for k, n in enumerate(shared)}
    ref_api = reference_api(r.options)
    rows = []
    for i, (o, row_notes) in enumerate(zip(shown, notes, strict=True)):
        repl = str(o.self_hosted.cost.peak_replicas) if o.self_hosted else "-"
        own = "".join(f"<li>{escape(n)}</li>" for n in row_notes if n not in ref)
        marks = " ".join(f"<sup>[{ref[n]}]</sup>" for n in row_notes if n in ref)
        rows.append(
            f"<tr><td class=n>{i + 1}</td><td>{o.kind}</td><td>{escape(o.label)} {marks}"
            f"{_support_badge(o)}<ul class=notes>{own}</ul></td><td class=n>{repl}</td>"
            f"<td class=n>${o.usd_per_month:,.0f}</td><td class=n>"
            f"${o.usd_per_mtok_blended:.3f}</td><td class=n>{_api_equiv(o, ref_api)}</td>"
            f"<td>{_perf_cell(o)}</td><td>{_price_cell(o)}</td></tr>"
        )
    head = (
        "<tr><th>#</th><th>kind</th><th>what, and what to know</th><th>replicas at peak"
        "</th><th>$/month</th><th>$/Mtok blended</th><th>API-equivalent $/Mtok in / out"
        "</th><th>p99 TTFT / TPOT ms (source)</th><th>price (source, date)</th></tr>"
    )
    more = (
        f"<p><small>{len(r.options) - MAX_TABLE_ROWS} more in --json.</small></p>"
        if len(r.options) > MAX_TABLE_ROWS
        else ""
    )
    legend = (
        "<p><small>$/Mtok blended: the whole bill over every input and output token at this "
        "workload's mix. API-equivalent: the input/output list prices an API priced like "
        f"{escape(ref_api.label)} (same ratio, same cached-input discount) would need to bill "
        "the same; compare these with an API's price list, not a GPU-time split.</small></p>"
        if ref_api is not None
        else ""
    )
    footnotes = (
        "<ol class=notes>" + "".join(f"<li>{escape(n)}</li>" for n in shared) + "</ol>"
        if shared
        else ""
    )
    return f"{legend}<table>{head}{''.join(rows)}</table>{more}{footnotes}"


def _api_equiv(o: Option, ref: Option | None) -> str:
    if o.kind == "managed" and o.managed is not None:
        m = o.managed.model
        return f"${m.input_usd_per_mtok:g} / ${m.output_usd_per_mtok:g}<br><small>list</small>"
    if ref is None:
        return "-"
    i, out = api_equivalent_prices(o, ref)
    return f"${i:.2f} / ${out:.2f}"


def _support_badge(o: Option) -> str:
    sup = o.support
    if sup is None or o.kind == "managed":
        return ""
    links = ", ".join(
        f'<a href="{escape(src.ref)}">{escape(src.id)}</a> ({escape(src.date)})'
        for src in sup.sources
    )
    status = "verified" if sup.verified else f"<b class=warn>{escape(sup.status)}</b>"
    why = "" if sup.verified else ": " + escape("; ".join(sup.reasons))
    return f"<br><small>support: {status}{why}" + (f" [{links}]" if links else "") + "</small>"


def _charts(r: PlanResult) -> str:
    out = []
    curves = cost_curves(r)
    if curves is not None:
        markers = [(curves.planned_requests_per_day, "this plan")]
        if curves.break_even_requests_per_day:
            markers.append(
                (
                    curves.break_even_requests_per_day,
                    f"break-even {fmt(curves.break_even_requests_per_day)}/day",
                )
            )
        budget = r.request.budget_usd_per_month
        out.append(
            line_chart(
                "Monthly cost against daily volume",
                curves.requests_per_day,
                curves.series,
                x_label="requests per day (log scale)",
                y_label="USD per month (log scale)",
                log_x=True,
                log_y=True,
                markers=markers,
                hlines=[(budget, f"budget ${budget:,.0f}")] if budget else [],
            )
        )
    chart = pareto(r)
    points = chart.points
    statuses = sorted({p.calibration for p in points})
    # zoom on the SLO's neighbourhood: far slower layouts crowd the ranked ones into a corner
    bound = r.request.slo.tpot_ms
    x_max = ZOOM_X_BOUNDS * bound if bound else float("inf")
    beyond = sum(1 for p in points if p.tpot_p99_ms > x_max)

    def xy(ps: list[ParetoPoint]) -> list[tuple[float, float, str]]:
        return [
            (p.tpot_p99_ms, p.output_tok_per_s_per_gpu, p.label)
            for p in ps
            if p.tpot_p99_ms <= x_max
        ]

    out.append(
        scatter_chart(
            "Self-hosted layouts: output throughput per GPU against p99 TPOT",
            xy([p for p in points if p.error_measured]),
            xy(chart.front),
            x_label="p99 TPOT, ms (analytic screen)",
            y_label="output tokens/s per GPU",
            vline=(r.request.slo.tpot_ms, f"p99 TPOT bound {r.request.slo.tpot_ms:g} ms")
            if r.request.slo.tpot_ms
            else None,
            highlights=_ranked_points(r),
            unmeasured=xy([p for p in points if not p.error_measured]),
            unmeasured_front=xy(chart.all_front) if chart.unmeasured_front else [],
            labels=(
                "configurations (each at every load)",
                "Pareto front (error measured)",
                "error never measured",
                "front if those were right",
            ),
        )
    )
    if beyond:
        out.append(
            f"<p><small>{beyond} sampled points slower than {x_max:g} ms p99 TPOT "
            f"({ZOOM_X_BOUNDS}x the bound) are not drawn.</small></p>"
        )
    out.append(
        "<p><small>Circled: the ranked self-hosted configurations at the load the plan gives "
        "them (#rank; #1 is the recommendation when it is self-hosted).</small></p>"
    )
    out.append(
        f"<p><small>Screening estimates; calibration status of the points: "
        f"{escape(', '.join(statuses) or 'none')}.</small></p>"
    )
    if chart.unmeasured_front:
        out.append(f"<p><small>{escape(unmeasured_front_note(chart))}</small></p>")
    rows, seen = [], set()
    for o in r.options:
        sh = o.self_hosted
        if sh is None or sh.label in seen:
            continue
        seen.add(sh.label)
        f = sh.screened.fit
        free = max(
            0.0,
            f.gpu_memory_bytes
            - f.weights_bytes_per_gpu
            - f.kv_free_bytes_per_gpu
            - f.reserve_bytes_per_gpu,
        )
        rows.append(
            (
                sh.label,
                [
                    ("weights", f.weights_bytes_per_gpu / GB),
                    ("KV cache", f.kv_free_bytes_per_gpu / GB),
                    ("engine reserve", f.reserve_bytes_per_gpu / GB),
                    ("unused", free / GB),
                ],
            )
        )
        if len(rows) >= MAX_MEMORY_ROWS:
            break
    gpu_gb = max(
        (o.self_hosted.screened.fit.gpu_memory_bytes / GB for o in r.options if o.self_hosted),
        default=None,
    )
    out.append(stacked_bars("Memory per GPU of the top layouts", rows, unit="GB", capacity=gpu_gb))
    return "\n".join(out)


def _ranked_points(r: PlanResult) -> list[tuple[float, float, str]]:
    """Ranked self-hosted options as (p99 TPOT, output tok/s per GPU, '#rank label')."""
    out = []
    seen: set[str] = set()
    for i, o in enumerate(r.options[:MAX_TABLE_ROWS]):
        sh = o.self_hosted
        if sh is None or sh.perf.tpot_p99_ms is None or sh.label in seen:
            continue
        seen.add(sh.label)
        per_gpu = (
            sh.perf.capacity_req_per_s * r.stats.mean_output_tokens / sh.screened.gpus_per_unit
        )
        out.append((sh.perf.tpot_p99_ms, per_gpu, f"#{i + 1} {sh.label}"))
    return out


def _exclusions(r: PlanResult) -> str:
    unpriced = (
        f"<p>Not searched, no cloud price in the catalog: {escape(', '.join(r.unpriced_gpus))}"
        " (add one with --prices).</p>"
        if r.unpriced_gpus
        else ""
    )
    if not r.exclusions:
        return unpriced + "<p>Nothing was excluded.</p>"
    funnel = "".join(
        f"<li>after <b>{escape(n)}</b>: {left} left</li>" for n, left in r.funnel.stages
    )
    rows = "".join(
        f"<tr><td>{escape(e.constraint)}</td><td>{e.kind}</td>"
        f"<td>{escape(e.subject)}</td><td>{escape(e.reason)}</td></tr>"
        for e in r.exclusions
    )
    return unpriced + (
        f"<p>{r.funnel.total} endpoints considered:</p><ul>{funnel}</ul>"
        "<table><tr><th>constraint</th><th>kind</th><th>endpoint</th><th>why</th></tr>"
        f"{rows}</table>"
    )


def _held_out(r: PlanResult) -> str:
    if not r.held_out:
        return ""
    rows = "".join(
        f"<tr><td>{escape(h.label)}</td><td>{escape(h.support.status)}</td>"
        f"<td>{escape('; '.join(h.support.reasons))}</td></tr>"
        for h in r.held_out
    )
    return (
        "<h3>Cheaper configurations not ranked: no source verifies them</h3>"
        "<p><small>--allow-unverified ranks unverified ones (marked); unsupported ones never."
        "</small></p><table><tr><th>configuration</th><th>support</th><th>why</th></tr>"
        f"{rows}</table>"
    )


def _specs(r: PlanResult) -> str:
    gpus = {
        o.self_hosted.screened.dep.gpu.id: o.self_hosted.screened.dep.gpu
        for o in r.options
        if o.self_hosted
    }
    rows = "".join(
        f"<tr><td>{escape(g.name)}</td><td class=n>{g.memory_bytes / GB:,.1f}</td>"
        f"<td class=n>{g.mem_bw_bytes_per_s / 1e12:.2f}</td><td>"
        + escape(", ".join(f"{k} {v:g}" for k, v in g.dense_tflops.items()))
        + f"</td><td>{_cite(g.source, g.as_of)}</td></tr>"
        for g in gpus.values()
    )
    return (
        "<table><tr><th>GPU</th><th>memory GB</th><th>HBM TB/s</th><th>dense TFLOPS</th>"
        f"<th>source, date</th></tr>{rows}</table>"
    )


def _sources(r: PlanResult, sources: Sources) -> str:
    cited: set[str] = set()
    for o in r.options[:MAX_TABLE_ROWS]:
        if o.self_hosted:
            cited |= set(o.self_hosted.cloud.price.source) | set(
                o.self_hosted.screened.dep.gpu.source
            )
        if o.managed:
            cited |= set(o.managed.model.source)
            cited |= {sid for p in o.managed.model.perf for sid in p.source}
    items = "".join(
        f"<li><b>{escape(sid)}</b> {escape(sources[sid][0])} - {escape(sources[sid][1])} "
        f"({escape(sources[sid][2])})</li>"
        for sid in sorted(cited)
        if sid in sources
    )
    return f"<ul>{items}</ul>"


def render_plan_html(r: PlanResult, sources: Sources) -> str:
    """The whole page."""
    if r.options:
        top = r.options[0]
        notes = "".join(f"<li>{escape(n)}</li>" for n in top.notes)
        rec = (
            f'<div class="rec"><b>Recommendation:</b> {top.kind} - {escape(top.label)}<br>'
            f"${top.usd_per_month:,.0f}/month, ${top.usd_per_mtok_blended:.3f}/Mtok blended"
            f"<ul class=notes>{notes}</ul></div>"
        )
    else:
        rec = (
            f'<div class="none"><b>No option satisfies every constraint.</b> Emptied by: '
            f"{escape(r.funnel.emptied_by or 'unknown')}. Closest: "
            f"{escape(r.closest or 'none')}</div>"
        )
    be = ""
    if r.break_even_between is not None:
        own, api = r.break_even_between
        v = r.break_even_requests_per_day
        band = break_even_band_text(r)
        be = (
            f"<p>Break-even: {escape(own.label)} beats {escape(api.label)} from "
            f"{v:,.0f} requests/day.{' ' + escape(band) if band else ''}</p>"
            if v
            else f"<p>Break-even: {escape(own.label)} does not beat {escape(api.label)} below "
            f"1000x this volume.{' ' + escape(band) if band else ''}</p>"
        )
    over = "".join(f"<li>{escape(x)}</li>" for x in r.overridden)
    body = [
        f"<h1>moerun plan</h1><p>{escape(headline(r))}</p>",
        rec,
        be,
        "<h2>Cost, throughput and memory</h2>",
        _charts(r),
        f"<h2>Ranked options ({len(r.options)})</h2>",
        _options_table(r),
        "<h2>Which constraint excluded what</h2>",
        _exclusions(r),
        _held_out(r),
        "<h2>GPU specs</h2>",
        _specs(r),
        "<h2>Assumptions</h2><ul>"
        + "".join(f"<li>{escape(a)}</li>" for a in assumptions(r))
        + "</ul>",
        f"<h2>Prices overridden</h2><ul>{over}</ul>" if over else "",
        "<h2>Sources</h2>",
        _sources(r, sources),
    ]
    return (
        "<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>moerun plan</title>"
        f"<style>{CSS}</style></head><body>"
        + "\n".join(body)
        + f"<script>{SELF_REPORT}</script></body></html>\n"
    )
