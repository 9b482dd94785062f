"""Serving metrics, defined once for the simulator, the emulator and the load generator.

Definitions (as `vllm bench serve` has them, see the research notes on benchmark tools):
  TTFT  first output token (or first chunk) time minus the request's start
  TPOT  (end - first token) / (output_tokens - 1), per request, excluding the first token
  ITL   every gap between successive output chunks, pooled over requests
  E2E   end minus start
Throughputs divide completed requests' tokens by the run's duration (first start to last end).
Percentiles are numpy's linear interpolation, as the engines' benchmark scripts use. Goodput
counts the completed requests per second that met every given SLO bound.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

PERCENTILES = (50, 90, 99)
LATENCY_KEYS = ("ttft_ms", "tpot_ms", "itl_ms", "e2e_ms")


@dataclass(frozen=True, slots=True)
class RequestResult:
    """What happened to one request; times in seconds on one clock."""

    request_id: int
    start_s: float
    end_s: float
    input_tokens: int
    output_tokens: int
    first_token_s: float | None = None
    cached_tokens: int = 0
    session_id: int | None = None
    turn: int = 0
    ok: bool = True
    error: str | None = None

    @property
    def ttft_s(self) -> float | None:
        """Time to first token."""
        return None if self.first_token_s is None else self.first_token_s - self.start_s

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first."""
        if self.first_token_s is None or self.output_tokens < 2:
            return None
        return (self.end_s - self.first_token_s) / (self.output_tokens - 1)

    @property
    def e2e_s(self) -> float:
        """End-to-end latency."""
        return self.end_s - self.start_s


@dataclass(frozen=True, slots=True)
class Slo:
    """Latency bounds a request must meet to count toward goodput (None: no bound)."""

    ttft_ms: float | None = None
    tpot_ms: float | None = None
    e2e_ms: float | None = None

    def met_by(self, r: RequestResult) -> bool:
        """Whether one completed request met every bound."""
        if not r.ok:
            return False
        checks = ((self.ttft_ms, r.ttft_s), (self.tpot_ms, r.tpot_s), (self.e2e_ms, r.e2e_s))
        # a one-token answer has no TPOT, so it cannot violate a TPOT bound
        return all(
            bound is None or value_s is None or value_s * 1e3 <= bound for bound, value_s in checks
        )


def distribution(values_ms: np.ndarray, weights: np.ndarray | None = None) -> dict[str, float]:
    """mean, p50, p90, p99 of a sample (weighted: each value counted `weight` times)."""
    if values_ms.size == 0:
        return {"mean": float("nan"), **{f"p{p}": float("nan") for p in PERCENTILES}}
    if weights is None:
        pct = np.percentile(values_ms, PERCENTILES)
        named = {f"p{p}": float(v) for p, v in zip(PERCENTILES, pct, strict=True)}
        return {"mean": float(values_ms.mean()), **named}
    order = np.argsort(values_ms, kind="stable")
    v, w = values_ms[order], weights[order].astype(float)
    total = w.sum()
    cum = np.cumsum(w)
    out = {"mean": float((v * w).sum() / total)}
    for p in PERCENTILES:
        # the weighted sample's linear-interpolated percentile at rank p% of (n - 1)
        rank = p / 100 * (total - 1)
        base = np.floor(rank)
        lo = min(int(np.searchsorted(cum, base, side="right")), v.size - 1)
        hi = min(int(np.searchsorted(cum, base + 1, side="right")), v.size - 1)
        frac = rank - base
        out[f"p{p}"] = float(v[lo] + (v[hi] - v[lo]) * frac)
    return out


def summarize(
    results: Sequence[RequestResult],
    *,
    num_gpus: int,
    itl_ms: np.ndarray | None = None,
    itl_weights: np.ndarray | None = None,
    slo: Slo | None = None,
    duration_s: float | None = None,
) -> dict[str, object]:
    """The shared metric report. `itl_ms` (optionally weighted) is the pooled chunk gaps;
    without it ITL falls back to each request's mean gap."""
    done = [r for r in results if r.ok]
    failed = len(results) - len(done)
    if duration_s is None:
        ends, starts = (r.end_s for r in results), (r.start_s for r in results)
        duration_s = (max(ends) - min(starts)) if results else 0.0
    dur = max(duration_s, 1e-12)
    n_in = sum(r.input_tokens for r in done)
    n_out = sum(r.output_tokens for r in done)
    n_cached = sum(r.cached_tokens for r in done)
    ttft = np.array([r.ttft_s * 1e3 for r in done if r.ttft_s is not None])
    tpot = np.array([t * 1e3 for r in done if (t := r.tpot_s) is not None])
    e2e = np.array([r.e2e_s * 1e3 for r in done])
    itl = tpot if itl_ms is None else itl_ms
    report: dict[str, object] = {
        "num_requests": len(results),
        "num_completed": len(done),
        "num_failed": failed,
        "duration_s": duration_s,
        "req_per_s": len(done) / dur,
        "input_tok_per_s": n_in / dur,
        "output_tok_per_s": n_out / dur,
        "total_tok_per_s": (n_in + n_out) / dur,
        "output_tok_per_s_per_gpu": n_out / dur / num_gpus,
        "input_tok_per_s_per_gpu": n_in / dur / num_gpus,
        "total_input_tokens": n_in,
        "total_output_tokens": n_out,
        "total_cached_tokens": n_cached,
        "prefix_cache_hit_rate": n_cached / n_in if n_in else 0.0,
        "ttft_ms": distribution(ttft),
        "tpot_ms": distribution(tpot),
        "itl_ms": distribution(itl, None if itl_ms is None else itl_weights),
        "e2e_ms": distribution(e2e),
    }
    if slo is not None:
        good = sum(1 for r in done if slo.met_by(r))
        report["goodput_req_per_s"] = good / dur
        report["slo_attainment"] = good / len(results) if results else 0.0
        report["slo"] = {"ttft_ms": slo.ttft_ms, "tpot_ms": slo.tpot_ms, "e2e_ms": slo.e2e_ms}
    return report
