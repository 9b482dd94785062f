"""Check a screened capacity with the simulator: simulate the replica at that load, lower it
until the simulated p99s meet the SLO.

Sessions arrive as a Poisson process. Metrics count only requests that start after a warm-up
(one session's length, so the replica has filled) and before the last session arrives (so it
has not begun to drain): the steady state the capacity model describes.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from moerun.core.load.metrics import Slo, summarize
from moerun.core.load.workload import Arrival
from moerun.core.plan.demand import WorkloadPreset
from moerun.core.plan.search import Screened
from moerun.core.sim.build import SimOptions, simulate_deployment

LOAD_STEPS = (1.0, 0.8, 0.6)
# a run's requests are capped to bound the plan's time; very fast replicas get a shorter
# warm-up (their window still holds MIN_MEASURED_REQUESTS)
MAX_SIM_REQUESTS = 5_000
MIN_MEASURED_REQUESTS = 250
MIN_WINDOW_S = 120.0
MIN_STEADY_REQUESTS = 20


@dataclass(frozen=True, slots=True)
class Verified:
    """The highest simulated load that met the SLO (0 when none did) and its run."""

    req_per_s: float
    summary: dict[str, object]
    passed: bool
    # False when the run was too short to fill the replica before measuring (long sessions
    # at a high rate): its p99s are then optimistic
    warmed_up: bool = True


def verify(
    screened: Screened,
    preset: WorkloadPreset,
    slo: Slo,
    rate: float,
    seed: int = 0,
) -> Verified:
    """Simulate at `rate` requests/s (the load the plan gives one replica); step down until
    the simulated p99s meet the SLO."""
    assert screened.capacity.best is not None, "verify configurations that met the SLO"
    last: dict[str, object] = {}
    warmed = True
    for factor in LOAD_STEPS:
        summary, warmed = simulate_at(screened, preset, rate * factor, seed)
        last = summary
        if meets(summary, slo):
            return Verified(rate * factor, summary, True, warmed)
    return Verified(0.0, last, False, warmed)


def simulate_at(
    screened: Screened,
    preset: WorkloadPreset,
    rate: float,
    seed: int,
) -> tuple[dict[str, object], bool]:
    """Steady-state metrics of the replica (or xPyD unit) at `rate` requests/s, and whether
    the warm-up lasted a whole session."""
    dep = screened.dep
    turns = preset.mean_turns
    best = screened.capacity.best
    assert best is not None
    session_s = turns * (_think_s(preset) + best.ttft_p99_ms / 1e3)
    session_s += preset.output.mean * best.tpot_p99_ms / 1e3 * turns
    span_s = MAX_SIM_REQUESTS / rate
    window_s = max(MIN_MEASURED_REQUESTS / rate, min(MIN_WINDOW_S, span_s / 2))
    want_s = session_s if turns > 1 else 10.0
    warm_s = min(want_s, max(0.0, span_s - window_s))
    num_requests = max(int(turns), round(rate * (warm_s + window_s)))
    session_rate = rate / turns
    wl = preset.workload(
        num_requests, Arrival("poisson", rate_per_s=session_rate), random.Random(seed)
    )
    last_start = max((s.start_s or 0.0) for s in wl.sessions)
    x, y = screened.disaggregation or (0, 0)
    options = SimOptions(
        num_replicas=1,
        params=screened.calibration.params,
        kv_capacity_factor=screened.calibration.kv_capacity_factor,
        num_prefill=x,
        num_decode=y,
    )
    result = simulate_deployment(dep, wl, options)
    kept = [r for r in result.results if warm_s <= r.start_s <= last_start]
    if len(kept) >= MIN_STEADY_REQUESTS and last_start > warm_s:
        summary = summarize(kept, num_gpus=screened.gpus_per_unit, duration_s=last_start - warm_s)
    else:  # too short a run for a window: count every request
        summary = summarize(result.results, num_gpus=screened.gpus_per_unit)
    summary["num_rejected"] = len(result.rejections)
    summary["num_preemptions"] = result.num_preemptions
    return summary, warm_s >= want_s


def meets(summary: dict[str, object], slo: Slo) -> bool:
    """Whether the run's p99 TTFT and TPOT are within the SLO and nothing failed."""
    if summary.get("num_failed") or summary.get("num_rejected"):
        return False
    for key, bound in (("ttft_ms", slo.ttft_ms), ("tpot_ms", slo.tpot_ms)):
        dist = summary.get(key)
        if bound is not None and isinstance(dist, dict) and dist.get("p99", 0.0) > bound:
            return False
    return True


def _think_s(preset: WorkloadPreset) -> float:
    return preset.agentic.think_s if preset.agentic is not None else 0.0
