"""The HTML report of a bench run: one self-contained page (inline SVG, no scripts, no CDN).

Charts per results file: latency CDFs (TTFT, TPOT, ITL, end-to-end; one line per run),
output throughput over time (1-second buckets; a request's output tokens are spread evenly
over its chunks), and TTFT against prompt length; then a summary table per run.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from moerun.bench.records import RequestRecord
from moerun.bench.results import BenchResults, RunResult
from moerun.bench.svg import cdf, chart
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


def _summary_table(run: RunResult) -> str:
    s = run.summary
    rows = [f"<tr><td>{k}</td><td>{float(s[k]):,.1f}</td></tr>" for k in RATE_KEYS]  # type: ignore[arg-type]
    head = "<tr><th>metric</th><th>mean</th><th>p50</th><th>p90</th><th>p99</th></tr>"
    lat = []
    for k in LATENCY_KEYS:
        d = s[k]
        assert isinstance(d, dict)
        cells = "".join(f"<td>{d[q]:,.1f}</td>" for q in ("mean", "p50", "p90", "p99"))
        lat.append(f"<tr><td>{k}</td>{cells}</tr>")
    counts = (
        f"{s['num_completed']}/{s['num_requests']} completed, {s['num_failed']} failed, "
        f"duration {float(s['duration_s']):.1f} s, prefix-cache hit rate "  # type: ignore[arg-type]
        f"{float(s['prefix_cache_hit_rate']):.1%}"  # type: ignore[arg-type]
    )
    return (
        f"<h2>{html.escape(run.label)}</h2><p class='meta'>{counts}"
        + (" (interrupted)" if run.interrupted else "")
        + f"</p><table>{''.join(rows)}</table><table>{head}{''.join(lat)}</table>"
    )


def render_html(results: BenchResults) -> str:
    """The whole page."""
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
    tables = "".join(_summary_table(r) for r in runs)
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>moerun bench report</title>"
        f"<style>{STYLE}</style></head><body><h1>moerun bench report</h1>"
        f"<p class='meta'>{meta}</p><h2>Latency</h2><div class='charts'>{''.join(cdfs)}</div>"
        f"<h2>Throughput and TTFT</h2><div class='charts'>{thr}{ttft}</div>{tables}"
        "</body></html>\n"
    )


def write_html(path: Path, results: BenchResults) -> None:
    """Write the report."""
    path.write_text(render_html(results), encoding="utf-8")
