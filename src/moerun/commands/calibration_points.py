"""Turn measured runs into simulated, recorded calibration points."""

from __future__ import annotations

import random
from dataclasses import replace

from moerun.catalog.engines import get_engine, get_reserve
from moerun.catalog.gpus import get_gpu
from moerun.catalog.measurements import MeasuredRun
from moerun.catalog.models import load_spec
from moerun.core.calibrate.calibration import Point
from moerun.core.deploy.deployment import Deployment
from moerun.core.load.workload import Arrival, LengthDist, Workload
from moerun.core.sim.build import SimOptions, simulate_deployment
from moerun.errors import CatalogError

# Engines moerun schedules; runs on other engines are priced as vLLM schedules them.
SIMULATED_ENGINES = ("vllm", "sglang")


def deployment_for(run: MeasuredRun) -> Deployment:
    """The deployment a measured run describes."""
    engine = run.engine if run.engine in SIMULATED_ENGINES else "vllm"
    return Deployment(
        model=load_spec(run.model),
        gpu=get_gpu(run.gpu),
        num_gpus=run.num_gpus,
        engine=get_engine(engine),
        reserve=get_reserve(),
        weights=run.weights,
        kv_dtype=run.kv_dtype,
        parallel=run.parallel,
        mtp_tokens=run.mtp_tokens,
        max_context=max(run.isl + run.osl, 8192),
    )


def workload_for(run: MeasuredRun) -> Workload:
    """The run's load: fixed lengths, closed loop (or everything at once when offline)."""
    arrival = (
        Arrival("closed", concurrency=run.concurrency) if run.concurrency else Arrival("burst")
    )
    return Workload.single_turn(
        input_len=LengthDist.fixed(run.isl),
        output_len=LengthDist.fixed(run.osl),
        num_requests=run.num_prompts,
        arrival=arrival,
        rng=random.Random(0),
    )


def point_for(run: MeasuredRun, options: SimOptions) -> Point:
    """Simulate a run once with recording, ready for re-pricing."""
    dep = deployment_for(run)
    wl = workload_for(run)
    if run.concurrency is None:
        options = replace(options, max_num_seqs=run.num_prompts)
    result = simulate_deployment(dep, wl, options, record=True)
    if result.trace is None or result.trace_model is None or result.summary()["num_failed"]:
        raise CatalogError(f"measured run {run.id} does not run in the simulator")
    outputs = {r.request_id: r.output_tokens for r in result.results}
    return Point.from_trace(
        run.id, run.group, result.trace_model, result.trace, outputs, run.measured
    )
