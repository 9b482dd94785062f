"""Terminal tables for `moerun bench`: one column per run, or measured against predicted."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from moerun.bench.results import RunResult
from moerun.core.load.metrics import LATENCY_KEYS

RATE_KEYS = ("output_tok_per_s", "input_tok_per_s", "req_per_s")


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return "-" if value != value else f"{value:,.1f}"
    return str(value)


def _rows(s: dict[str, Any]) -> list[tuple[str, object]]:
    rows: list[tuple[str, object]] = [(k, s[k]) for k in RATE_KEYS]
    for k in LATENCY_KEYS:
        for q in ("p50", "p90", "p99"):
            rows.append((f"{k} {q}", s[k][q]))
    rows.append(("prefix_cache_hit_rate", s["prefix_cache_hit_rate"]))
    if "workload_prefix_hit_rate" in s:
        rows.append(("  the workload implies", s["workload_prefix_hit_rate"]))
    if "goodput_req_per_s" in s:
        rows.append(("goodput_req_per_s", s["goodput_req_per_s"]))
    return rows


def print_runs(
    console: Console,
    runs: list[RunResult],
    predicted: list[dict[str, Any]] | None = None,
    *,
    title: str = "moerun bench",
) -> None:
    """Measured metrics per run; with predictions, measured | predicted | ratio per run."""
    t = Table(title=title + (" vs moerun simulate" if predicted else ""))
    t.add_column("metric")
    for run in runs:
        if predicted is None:
            t.add_column(run.label, justify="right")
        else:
            t.add_column(f"{run.label}\nmeasured", justify="right")
            t.add_column("predicted", justify="right")
            t.add_column("meas/pred", justify="right")
    names = [name for name, _ in _rows(runs[0].summary)] if runs else []
    for name in names:
        cells = [name]
        for i, run in enumerate(runs):
            measured = dict(_rows(run.summary)).get(name, float("nan"))
            cells.append(_fmt(measured))
            if predicted is not None:
                pred = dict(_rows(predicted[i])).get(name, float("nan"))
                cells.append(_fmt(pred))
                ok = isinstance(measured, float) and isinstance(pred, float) and pred
                cells.append(f"{measured / pred:.2f}" if ok else "-")  # type: ignore[operator]
        t.add_row(*cells)
    console.print(t)
    for run in runs:
        s = run.summary
        note = f"{run.label}: {s['num_completed']}/{s['num_requests']} completed"
        if s["num_failed"]:
            errors = sorted({r.error or "" for r in run.records if not r.ok})
            note += f", {s['num_failed']} failed ({'; '.join(errors[:3])})"
        if run.interrupted:
            note += f", interrupted with {run.num_unfinished} in flight"
        console.print(note)
