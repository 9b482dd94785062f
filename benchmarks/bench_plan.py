"""Benchmark: the default `moerun plan` (GLM-5.1, agentic-coding, no policy) with the full
self-hosted search, against the fit table measured in the same run.

Run: .venv/bin/python benchmarks/bench_plan.py

Prints, for the fit table (every GPU x 1, 2, 4 nodes x weight format, best layout by memory:
the old `moerun plan`) and for the default plan (GPU x whole nodes x weights x layout x engine
x MTP x xPyD, screened analytically, finalists simulated): seconds in-process (best of 3), the
ratio, and the end-to-end wall time of `moerun plan --json` as a user runs it (Python start,
imports, catalog, search, simulation, output). Exits 1 if that exceeds the 10 s budget.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

from moerun.catalog.engines import get_engine, get_reserve
from moerun.catalog.gpus import load_gpus
from moerun.catalog.models import load_spec
from moerun.catalog.perf.calibration import DEFAULT_MTP_ACCEPTANCE
from moerun.catalog.plan_catalog import plan_catalog
from moerun.catalog.plan_data import get_preset
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.fit_table import fit_table
from moerun.core.model.weights import WEIGHT_FORMATS
from moerun.core.plan.demand import Volume
from moerun.core.plan.plan_request import PlanRequest
from moerun.core.plan.planner import plan

BUDGET_S = 10.0
REPEATS = 3


def best_of(fn: Callable[[], object]) -> float:
    """Fastest of REPEATS runs, in seconds."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> int:
    spec = load_spec("glm-5.1")
    gpus = list(load_gpus().values())
    template = Deployment(
        model=spec,
        gpu=gpus[0],
        num_gpus=8,
        engine=get_engine("vllm"),
        reserve=get_reserve(),
        max_context=200_000,
    )
    fit_s = best_of(lambda: fit_table(template, gpus, (1, 2, 4), WEIGHT_FORMATS))

    preset = get_preset("agentic-coding")
    request = PlanRequest(
        model=spec,
        preset=preset,
        volume=Volume(preset.requests_per_day, preset.profile),
        slo=preset.slo,
        mtp_acceptance=DEFAULT_MTP_ACCEPTANCE,
    )
    catalog = plan_catalog()
    result = plan(request, catalog)
    plan_s = best_of(lambda: plan(request, catalog))

    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "moerun.cli", "plan", "--json", "--no-progress"],
        capture_output=True,
        text=True,
        check=True,
    )
    cli_s = time.perf_counter() - start
    data = json.loads(proc.stdout)
    num_simulated = sum(
        1 for o in result.options if o.self_hosted and o.self_hosted.perf.source == "simulated"
    )
    print(
        f"fit table (baseline):    {fit_s:6.3f} s  ({len(gpus)} GPUs x 3 node counts x "
        f"{len(WEIGHT_FORMATS)} formats)"
    )
    print(
        f"default plan, in-process: {plan_s:6.3f} s  ({result.search.num_deployments} "
        f"deployments, {result.search.num_screened} screened, "
        f"{num_simulated} simulated options)"
    )
    print(f"ratio plan / fit table:   {plan_s / fit_s:6.1f}x")
    print(
        f"`moerun plan --json` end to end: {cli_s:.2f} s (budget {BUDGET_S:.0f} s); "
        f"recommendation: {data['recommendation']}"
    )
    if cli_s >= BUDGET_S:
        print("OVER BUDGET")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
