"""Benchmark: simulator speed, and how its cost grows with requests, batch size and replicas.

Run: .venv/bin/python benchmarks/bench_simulator.py
The headline case is 10,000 requests of 1,000 output tokens with prompts of 2,000-4,000
tokens on an 8x H200 GLM-5.1-FP8 replica (target: at least 1 million simulated output tokens
per wall-clock second). The baseline, measured in the same run on the same workload, is the
replica tracking every sequence's tokens each step (what the emulator needs for streaming),
instead of the aggregate closed forms the simulator uses.
"""

from __future__ import annotations

import random
import time

from moerun.catalog.engines import get_engine, get_reserve
from moerun.catalog.gpus import get_gpu
from moerun.catalog.models import load_spec
from moerun.catalog.perf.calibration import calibration_for
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.mtp import Mtp
from moerun.core.deploy.parallel import Parallel
from moerun.core.load.workload import Arrival, LengthDist, Workload
from moerun.core.sim.build import SimOptions, build_replica, simulate_deployment
from moerun.core.sim.simulator import simulate

DEP = Deployment(
    model=load_spec("glm-5.1-fp8"),
    gpu=get_gpu("h200_sxm"),
    num_gpus=8,
    engine=get_engine("vllm"),
    reserve=get_reserve(),
    parallel=Parallel(tp=8),
    mtp=Mtp.drafting(1, 0.85),
    max_context=32_768,
)
PARAMS = calibration_for("h200_sxm", "vllm").params


def workload(n: int, conc: int, osl: int = 1000) -> Workload:
    return Workload.single_turn(
        input_len=LengthDist("uniform", 3000, 2000, 4000),
        output_len=LengthDist.fixed(osl),
        num_requests=n,
        arrival=Arrival("closed", concurrency=conc),
        rng=random.Random(0),
    )


def timed(n: int, conc: int, replicas: int = 1, *, track: bool = False) -> tuple[float, int, int]:
    wl = workload(n, conc)
    opts = SimOptions(num_replicas=replicas, params=PARAMS, routing="least-load")
    t0 = time.perf_counter()
    if track:
        reps = [build_replica(DEP, opts, track_tokens=True) for _ in range(replicas)]
        res = simulate(reps, wl, routing="least-load", num_gpus=8 * replicas)
    else:
        res = simulate_deployment(DEP, wl, opts)
    wall = time.perf_counter() - t0
    return wall, int(res.summary()["total_output_tokens"]), res.num_steps  # type: ignore[call-overload]


def main() -> None:
    wall, tokens, steps = timed(10_000, 256)
    base_wall, _, _ = timed(10_000, 256, track=True)
    print(
        f"headline: 10,000 requests x 1,000 output tokens, concurrency 256: {wall:.2f} s, "
        f"{tokens / wall / 1e6:.2f} M simulated output tokens/s, {steps:,} steps"
    )
    print(
        f"baseline (per-sequence token tracking): {base_wall:.2f} s; "
        f"speed-up {base_wall / wall:.1f}x"
    )
    print("\nscaling (wall seconds; cost ~ steps + requests, not tokens):")
    for n in (2_500, 5_000, 10_000):
        w, _, s = timed(n, 256)
        print(f"  requests {n:>6,}: {w:.2f} s, {s:,} steps")
    for conc in (64, 256, 1024):
        w, _, s = timed(5_000, conc)
        print(f"  concurrency {conc:>5}: {w:.2f} s, {s:,} steps")
    for reps in (1, 4, 16):
        w, _, s = timed(5_000, 256 * reps, reps)
        print(f"  replicas {reps:>3} (concurrency {256 * reps}): {w:.2f} s, {s:,} steps")


if __name__ == "__main__":
    main()
