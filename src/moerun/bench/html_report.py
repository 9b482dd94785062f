"""The HTML report of a bench run: one self-contained page (inline SVG, no scripts, no CDN).

With a sweep, first throughput (per GPU when the deployment is known) against TTFT and TPOT
p50/p99 across the levels, the SLO dashed, `simulate`'s predictions beside them when given,
and a table with each level's goodput. Then charts per results file: latency CDFs (TTFT,
TPOT, ITL, end-to-end; one line per run), output throughput over time (1-second buckets; a
request's output tokens are spread evenly over its chunks), and TTFT against prompt length;
then a summary table per run (measured, and with --compare-sim predicted and their ratio).
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from moerun.bench.records import RequestRecord
from moerun.bench.results import BenchResults, RunResult
from moerun.bench.svg import Series, cdf, chart
from moerun.bench.table import RATE_KEYS
from moerun.core.load.metrics import LATENCY_KEYS

MAX_SCATTER = 3000
STYLE = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:22px}h2{font-size:18px;margin-top:28px}
.charts{display:flex;flex-wrap:wrap;gap:12px}
svg{background:#fff;border:1px solid #ddd;font-size:11px}
svg .t{font-size:13px;font-weight:600}svg .g{stroke:#eee}
table{border-collapse:collapse;font-size:13px;margin:8px 0}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
.meta{color:#555;font-size:13px}
tr.pred td{color:#666;font-style:italic}
"""


def _latencies(records: Sequence[RequestRecord], key: str) -> list[float]:
    ok = [r for r in records if r.ok]
    if key == "ttft_ms":
        return [(r.chunk_s[0] - r.start_s) * 1e3 for r in ok if r.chunk_s]
    if key == "tpot_ms":
        return [
            (r.end_s - r.chunk_s[0]) / (r.output_tokens - 1) * 1e3
            for r in ok
            if r.chunk_s and r.output_tokens > 1
        ]
    if key == "itl_ms":
        return [g * 1e3 for r in ok for g in np.diff(np.asarray(r.chunk_s)).tolist()]
    return [(r.end_s - r.start_s) * 1e3 for r in ok]


def _throughput(records: Sequence[RequestRecord]) -> tuple[list[float], list[float]]:
    """Output tokens per second in 1-s buckets from the run's start."""
    times: list[float] = []
    weights: list[float] = []
    for r in records:
        if r.ok and r.chunk_s:
            per_chunk = r.output_tokens / len(r.chunk_s)
            times.extend(r.chunk_s)
            weights.extend([per_chunk] * len(r.chunk_s))
    if not times:
        return [], []
    n = math.ceil(max(times)) + 1
    hist, _ = np.histogram(times, bins=n, range=(0, n), weights=weights)
    return [float(i) + 0.5 for i in range(n)], hist.tolist()


def _cell(value: object) -> str:
    return f"{value:,.1f}" if isinstance(value, int | float) else "-"


def _summary_table(run: RunResult, predicted: dict[str, Any] | None) -> str:
    s = run.summary
    p = predicted or {}
    pred_head = "<th>predicted</th><th>meas/pred</th>" if predicted else ""
    rows = [f"<tr><th>metric</th><th>measured</th>{pred_head}</tr>"]
    for k in RATE_KEYS:
        cells = f"<td>{_cell(s.get(k))}</td>"
        if predicted:
            cells += f"<td>{_cell(p.get(k))}</td><td>{_ratio(s.get(k), p.get(k))}</td>"
        rows.append(f"<tr><td>{k}</td>{cells}</tr>")
    qs = ("mean", "p50", "p90", "p99")
    head = "<tr><th>metric</th>" + "".join(f"<th>{q}</th>" for q in qs) + "</tr>"
    lat = []
    for k in LATENCY_KEYS:
        d = s[k]
        assert isinstance(d, dict)
        lat.append(f"<tr><td>{k}</td>{''.join(f'<td>{_cell(d[q])}</td>' for q in qs)}</tr>")
        if predicted and isinstance(p.get(k), dict):
            cells = "".join(f"<td>{_cell(p[k][q])}</td>" for q in qs)
            lat.append(f"<tr class='pred'><td>{k} (simulate)</td>{cells}</tr>")
    counts = (
        f"{s['num_completed']}/{s['num_requests']} completed, {s['num_failed']} failed, "
        f"duration {_cell(s['duration_s'])} s, prefix-cache hit rate "
        f"{_pct(s.get('prefix_cache_hit_rate'))} (the workload implies "
        f"{_pct(s.get('workload_prefix_hit_rate'))})"
    )
    if predicted:
        counts += f"; simulate predicts {_pct(p.get('prefix_cache_hit_rate'))}"
    return (
        f"<h2>{html.escape(run.label)}</h2><p class='meta'>{counts}"
        + (" (interrupted)" if run.interrupted else "")
        + f"</p><table>{''.join(rows)}</table><table>{head}{''.join(lat)}</table>"
    )


def _ratio(a: object, b: object) -> str:
    if isinstance(a, int | float) and isinstance(b, int | float) and b:
        return f"{a / b:.2f}"
    return "-"


def _pct(value: object) -> str:
    return f"{value:.1%}" if isinstance(value, int | float) and value == value else "-"


def _sweep(results: BenchResults, predicted: Sequence[dict[str, Any]] | None) -> tuple[str, str]:
    """Throughput against TTFT and TPOT across the runs (levels), SLO dashed; and a table."""
    runs = results.runs
    per_gpu = results.deployment is not None
    key = "output_tok_per_s_per_gpu" if per_gpu else "output_tok_per_s"
    x_label = "output tokens / s per GPU" if per_gpu else "output tokens / s"
    slo = next((r.summary["slo"] for r in runs if isinstance(r.summary.get("slo"), dict)), {})
    assert isinstance(slo, dict)
    charts = []
    for metric, name, bound in (("ttft_ms", "TTFT", "ttft_ms"), ("tpot_ms", "TPOT", "tpot_ms")):
        series: list[Series] = []
        for q in ("p50", "p99"):
            xs = [float(r.summary[key]) for r in runs]  # type: ignore[arg-type]
            ys = [float(r.summary[metric][q]) for r in runs]  # type: ignore[index]
            series.append((f"{name} {q} measured", xs, ys))
            if predicted:
                pxs = [float(p[key]) for p in predicted]
                pys = [float(p[metric][q]) for p in predicted]
                series.append((f"{name} {q} simulate", pxs, pys))
        lines = [(f"SLO {name} {slo[bound]:g} ms", float(slo[bound]))] if slo.get(bound) else []
        charts.append(
            chart(f"throughput vs {name}", series, x_label=x_label, y_label=f"{name} ms",
                  markers=True, hlines=lines)
        )  # fmt: skip
    cols = ("run", x_label, "TTFT p50", "TTFT p99", "TPOT p50", "TPOT p99", "goodput req/s")
    rows = ["<tr>" + "".join(f"<th>{c}</th>" for c in cols) + "</tr>"]
    for r in runs:
        s = r.summary
        vals = [s[key], s["ttft_ms"]["p50"], s["ttft_ms"]["p99"], s["tpot_ms"]["p50"],  # type: ignore[index]
                s["tpot_ms"]["p99"], s.get("goodput_req_per_s")]  # type: ignore[index]  # fmt: skip
        cells = "".join(f"<td>{_cell(v)}</td>" for v in vals)
        rows.append(f"<tr><td>{html.escape(r.label)}</td>{cells}</tr>")
    return "".join(charts), f"<table>{''.join(rows)}</table>"


def render_html(results: BenchResults, predicted: Sequence[dict[str, Any]] | None = None) -> str:
    """The whole page; `predicted` (one `simulate` summary per run) goes beside each run."""
    runs = results.runs
    cdfs = []
    for key in LATENCY_KEYS:
        series = [(r.label, *cdf(_latencies(r.records, key))) for r in runs]
        cdfs.append(
            chart(
                f"{key} CDF", series, x_label=key.replace("_", " "), y_label="fraction", y_max=1.0
            )
        )
    thr = chart(
        "output throughput over time",
        [(r.label, *_throughput(r.records)) for r in runs],
        x_label="seconds from start",
        y_label="output tokens / s",
    )
    scatter = []
    for r in runs:
        pts = [
            (x.input_tokens, (x.chunk_s[0] - x.start_s) * 1e3)
            for x in r.records
            if x.ok and x.chunk_s
        ]
        pts = pts[:: max(1, len(pts) // MAX_SCATTER)]
        scatter.append((r.label, [float(p[0]) for p in pts], [p[1] for p in pts]))
    ttft = chart(
        "TTFT vs prompt length", scatter, x_label="prompt tokens", y_label="TTFT ms", points=True
    )
    dep = results.deployment
    dep_text = (
        "deployment not given"
        if dep is None
        else ", ".join(f"{k}={v}" for k, v in dep.items() if v is not None)
    )
    meta = (
        f"{html.escape(results.url)} · {results.endpoint} · "
        f"model {html.escape(results.served_model)}"
        f" · token rule: {results.token_rule} · {html.escape(dep_text)}"
    )
    sweep = ""
    if len(runs) > 1:
        charts, table = _sweep(results, predicted)
        sweep = f"<h2>Sweep: throughput against latency</h2><div class='charts'>{charts}</div>"
        sweep += table
    tables = "".join(
        _summary_table(r, predicted[i] if predicted else None) for i, r in enumerate(runs)
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>moerun bench report</title>"
        f"<style>{STYLE}</style></head><body><h1>moerun bench report</h1>"
        f"<p class='meta'>{meta}</p>{sweep}<h2>Latency</h2><div class='charts'>{''.join(cdfs)}"
        f"</div><h2>Throughput and TTFT</h2><div class='charts'>{thr}{ttft}</div>{tables}"
        "</body></html>\n"
    )


def write_html(
    path: Path, results: BenchResults, predicted: Sequence[dict[str, Any]] | None = None
) -> None:
    """Write the report."""
    path.write_text(render_html(results, predicted), encoding="utf-8")
