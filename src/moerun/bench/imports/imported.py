"""The shape every importer produces: runs with moerun's workload flags and metrics."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from moerun.core.load.metrics import LATENCY_KEYS, PERCENTILES, RequestResult, summarize

NAN = float("nan")


@dataclass(frozen=True, slots=True)
class ImportedRun:
    """One benchmark of another tool: its label, its load as moerun's workload flags
    (`workload`, `isl`, `osl`, `concurrency` or `request_rate`, `num_requests`) and its
    metrics as `moerun.core.load.metrics.summarize` names them."""

    label: str
    workload: dict[str, Any]
    summary: dict[str, object]


@dataclass(frozen=True, slots=True)
class ImportedFile:
    """A whole results file of another tool."""

    tool: str
    served_model: str | None
    runs: tuple[ImportedRun, ...]
    notes: tuple[str, ...] = field(default=())

    def time_scaled(self, time_scale: float) -> ImportedFile:
        """The runs as the endpoint's own clock saw them, when it ran `time_scale` times
        faster than real time (`moerun emulate --time-scale`): times multiplied by it, rates
        divided by it."""
        if time_scale == 1.0:
            return self
        runs = tuple(
            ImportedRun(r.label, r.workload, scale_summary(r.summary, time_scale))
            for r in self.runs
        )
        return ImportedFile(self.tool, self.served_model, runs, self.notes)


def scale_summary(summary: dict[str, object], time_scale: float) -> dict[str, object]:
    """A summary's times multiplied by `time_scale`, its per-second rates divided by it."""
    out: dict[str, object] = {}
    for key, value in summary.items():
        if key in LATENCY_KEYS and isinstance(value, dict):
            out[key] = {k: v * time_scale for k, v in value.items()}
        elif key == "duration_s" and isinstance(value, int | float):
            out[key] = value * time_scale
        elif "_per_s" in key and isinstance(value, int | float):
            out[key] = value / time_scale
        else:
            out[key] = value
    return out


def summary_from_results(
    results: Sequence[RequestResult], duration_s: float | None
) -> dict[str, object]:
    """moerun's metrics recomputed from per-request timings (ITL falls back to each
    request's mean gap, which equals its TPOT, when chunk times are not in the file). Per-GPU
    rates are left out: the file does not say how many GPUs served it."""
    out = summarize(results, num_gpus=1, duration_s=duration_s)
    for key in ("output_tok_per_s_per_gpu", "input_tok_per_s_per_gpu"):
        del out[key]
    return out


def dist(mean: float | None, p: Mapping[int, float | None]) -> dict[str, float]:
    """A moerun distribution (mean, p50, p90, p99) from a tool's numbers; NaN where absent."""
    out = {"mean": _num(mean)}
    for q in PERCENTILES:
        out[f"p{q}"] = _num(p.get(q))
    return out


def _num(value: object) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    return NAN


def aggregate_summary(
    *,
    num_requests: int,
    num_completed: int,
    duration_s: float,
    input_tokens: float,
    output_tokens: float,
    latencies_ms: dict[str, dict[str, float]],
    cached_tokens: float | None = None,
) -> dict[str, object]:
    """moerun's summary keys from a tool's aggregates (throughputs from token totals over the
    tool's duration; per-GPU rates are filled in when the deployment is known)."""
    dur = max(duration_s, 1e-12)
    empty = dist(None, {})
    out: dict[str, object] = {
        "num_requests": num_requests,
        "num_completed": num_completed,
        "num_failed": num_requests - num_completed,
        "duration_s": duration_s,
        "req_per_s": num_completed / dur,
        "input_tok_per_s": input_tokens / dur,
        "output_tok_per_s": output_tokens / dur,
        "total_tok_per_s": (input_tokens + output_tokens) / dur,
        "total_input_tokens": input_tokens,
        "total_output_tokens": output_tokens,
    }
    for key in ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"):
        out[key] = latencies_ms.get(key, empty)
    if cached_tokens is not None:
        out["total_cached_tokens"] = cached_tokens
        out["prefix_cache_hit_rate"] = cached_tokens / input_tokens if input_tokens else 0.0
    else:
        out["prefix_cache_hit_rate"] = NAN  # the file does not say
    return out
