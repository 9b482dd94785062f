"""Benchmark: the cost of pricing steps from measured kernel tables.

Run: .venv/bin/python benchmarks/bench_step_model.py

Three timings, each new against old in the same run (old: the same code with the tables
detached, which prices every operation by the roofline as moerun did before the tables):
  1. `simulate` of 10,000 saturated requests: 4000 in / 1000 out, SGLang, GLM-5-FP8 on 8x H200,
     closed loop at concurrency 256 (the KV cache runs out, so requests are preempted);
  2. the default `plan` (GLM-5.1, agentic-coding), in-process, best of 2;
  3. loading one GPU and engine's tables from the catalog (a fresh interpreter).
Target (issue 12): ratios at most 1.5 and table loading under 0.3 s.
"""

from __future__ import annotations

import functools
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace

from moerun.catalog.engines import get_engine, get_reserve
from moerun.catalog.gpus import get_gpu
from moerun.catalog.models import load_spec
from moerun.catalog.perf.calibration import DEFAULT_MTP_ACCEPTANCE, calibration_for
from moerun.catalog.plan_catalog import plan_catalog
from moerun.catalog.plan_data import get_preset
from moerun.core.calibrate.calibration import Calibration
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.parallel import Parallel
from moerun.core.load.workload import Arrival, LengthDist, Workload
from moerun.core.plan.demand import Volume
from moerun.core.plan.plan_request import PlanRequest
from moerun.core.plan.planner import plan
from moerun.core.sim.build import SimOptions, simulate_deployment

DEP = Deployment(
    model=load_spec("glm-5-fp8"),
    gpu=get_gpu("h200_sxm"),
    num_gpus=8,
    engine=get_engine("sglang"),
    reserve=get_reserve(),
    parallel=Parallel(tp=8),
    max_context=8192,
)


def _best(fn: Callable[[], object], n: int) -> float:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def simulate_saturated(with_tables: bool) -> float:
    params = calibration_for("h200_sxm", "sglang").params
    if not with_tables:
        params = replace(params, kernels=None)
    wl = Workload.single_turn(
        input_len=LengthDist.fixed(4000),
        output_len=LengthDist.fixed(1000),
        num_requests=10_000,
        arrival=Arrival("closed", concurrency=256),
        rng=random.Random(0),
    )
    opts = SimOptions(params=params)
    return _best(lambda: simulate_deployment(DEP, wl, opts), 1)


def default_plan(with_tables: bool) -> float:
    spec = load_spec("glm-5.1")
    preset = get_preset("agentic-coding")
    request = PlanRequest(
        model=spec,
        preset=preset,
        volume=Volume(preset.requests_per_day, preset.profile),
        slo=preset.slo,
        mtp_acceptance=DEFAULT_MTP_ACCEPTANCE,
    )
    catalog = plan_catalog()
    if not with_tables:

        def detached(gpu: str, engine: str) -> Calibration:
            cal = calibration_for(gpu, engine)
            return replace(cal, params=replace(cal.params, kernels=None))

        catalog = replace(catalog, calibration=functools.cache(detached))
    return _best(lambda: plan(request, catalog), 2)


def load_tables() -> tuple[float, float]:
    """(seconds to import the loader, seconds to read one GPU and engine's tables: vLLM's on
    H200, which also reads SGLang's for its graph-timed block-fp8 GEMMs)."""
    code = (
        "import time; t=time.perf_counter();"
        "from moerun.catalog.perf.kernels import load_kernel_tables;"
        "u=time.perf_counter(); load_kernel_tables('h200_sxm','vllm');"
        "print(u-t, time.perf_counter()-u)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imp, load = (float(x) for x in out.stdout.split())
    return imp, load


def main() -> None:
    new, old = simulate_saturated(True), simulate_saturated(False)
    print(
        f"simulate 10,000 saturated requests: tables {new:.2f} s, roofline {old:.2f} s, "
        f"ratio {new / old:.2f} (target <= 1.5)"
    )
    new, old = default_plan(True), default_plan(False)
    print(
        f"default plan (in-process): tables {new:.2f} s, roofline {old:.2f} s, "
        f"ratio {new / old:.2f} (target <= 1.5)"
    )
    imp, load = load_tables()
    print(
        f"kernel tables (fresh interpreter): read and parsed in {load:.3f} s (target < 0.3 s); "
        f"importing the loader (numpy, moerun core) {imp:.3f} s before that"
    )


if __name__ == "__main__":
    main()
