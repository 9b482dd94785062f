"""Turn measured runs into simulated, recorded calibration points."""

from __future__ import annotations

import random
from dataclasses import replace

from moerun.catalog.engines import get_engine, get_reserve
from moerun.catalog.gpus import get_gpu
from moerun.catalog.models import load_spec
from moerun.catalog.perf.calibration import with_gpu_measurements
from moerun.catalog.perf.measurements import MeasuredRun
from moerun.core.calibrate.calibration import Point
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.mtp import Mtp
from moerun.core.load.workload import Arrival, LengthDist, Workload
from moerun.core.sim.build import SimOptions, simulate_deployment
from moerun.errors import CatalogError

# Engines moerun schedules; runs on other engines are priced as vLLM schedules them.
SIMULATED_ENGINES = ("vllm", "sglang")


def deployment_for(run: MeasuredRun, mtp_acceptance: float) -> Deployment:
    """The deployment a measured run describes, its MTP drafts accepted at `mtp_acceptance`,
    with the per-rank token budget and the memory fraction its launch command gave the
    engine."""
    engine = run.engine if run.engine in SIMULATED_ENGINES else "vllm"
    dep = Deployment(
        model=load_spec(run.model),
        gpu=get_gpu(run.gpu),
        num_gpus=run.num_gpus,
        engine=get_engine(engine),
        reserve=get_reserve(),
        weights=run.weights,
        kv_dtype=run.kv_dtype,
        parallel=run.parallel,
        mtp=Mtp.drafting(run.mtp_tokens, mtp_acceptance, run.mtp_accept_pinned),
        max_context=max(run.isl + run.osl, 8192),
        mem_fraction=run.mem_fraction,
        mixed_chunk=run.mixed_chunk,
        max_prefill_tokens=run.max_prefill_tokens,
    )
    return dep.launched_with_budget_flag(run.max_batched_tokens)


def requests_per_rank(run: MeasuredRun, dep: Deployment) -> int:
    """The run's request cap per scheduler: SGLang splits `--max-running-requests` over its
    attention-DP ranks (`model_runner`: `server_args.max_running_requests // dp_size`); vLLM's
    `--max-num-seqs` is per engine core (each DP rank)."""
    cap = run.max_running_requests
    assert cap is not None
    if dep.engine.name == "sglang":
        return max(1, cap // dep.parallel.dp)
    return cap


def run_lengths(length: int, range_ratio: float) -> LengthDist:
    """The benchmark client's lengths: fixed, or uniform in [max(1, ratio * L), L] as
    sglang.bench_serving's `--random-range-ratio` draws them (its default is 0.0)."""
    if range_ratio >= 1.0:
        return LengthDist.fixed(length)
    low = max(int(length * range_ratio), 1)
    return LengthDist(kind="uniform", mean=(low + length) // 2, low=low, high=length)


def workload_for(run: MeasuredRun) -> Workload:
    """The run's load: its lengths, closed loop (or everything at once when offline)."""
    arrival = (
        Arrival("closed", concurrency=run.concurrency) if run.concurrency else Arrival("burst")
    )
    return Workload.single_turn(
        input_len=run_lengths(run.isl, run.random_range_ratio),
        output_len=run_lengths(run.osl, run.random_range_ratio),
        num_requests=run.num_prompts + run.warmup_requests,
        arrival=arrival,
        rng=random.Random(0),
    )


def point_for(run: MeasuredRun, options: SimOptions, mtp_acceptance: float) -> Point:
    """Simulate a run once with recording, ready for re-pricing (its MTP drafts, if any,
    accepted at `mtp_acceptance`)."""
    dep = deployment_for(run, mtp_acceptance)
    wl = workload_for(run)
    if run.concurrency is None:
        options = replace(options, max_num_seqs=run.num_prompts)
    if run.max_running_requests is not None:
        options = replace(options, max_num_seqs=requests_per_rank(run, dep))
    if options.params.kernels is None:
        params = with_gpu_measurements(options.params, dep.gpu.id, dep.engine.name)
        options = replace(options, params=params)
    result = simulate_deployment(dep, wl, options, record=True)
    if result.trace is None or result.trace_model is None or result.summary()["num_failed"]:
        raise CatalogError(f"measured run {run.id} does not run in the simulator")
    outputs = {r.request_id: r.output_tokens for r in result.results}
    return Point.from_trace(
        run.id,
        run.group,
        result.trace_model,
        result.trace,
        outputs,
        run.measured,
        warmup_requests=run.warmup_requests,
    )
