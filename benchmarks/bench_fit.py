"""Benchmark: the plan's fit table against a tensor-by-tensor baseline, in the same run.

Run: .venv/bin/python benchmarks/bench_fit.py
Prints the seconds per plan table for moerun's path (per-format prefix sums over layers) and
for the baseline (walking every tensor group for every deployment), and their ratio.
"""

from __future__ import annotations

import time
from dataclasses import replace

from moerun.catalog.engines import get_engine, get_reserve
from moerun.catalog.gpus import load_gpus
from moerun.catalog.models import load_spec
from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.fit_table import fit_table
from moerun.core.deploy.memory_fit import _shard_factor, stage_layers, weights_per_gpu
from moerun.core.deploy.parallel import candidate_layouts
from moerun.core.model.weights import WEIGHT_FORMATS, keep_list, tensor_bytes


def baseline_weights_per_gpu(dep: Deployment) -> list[int]:
    """Per-stage weights by walking every tensor group (what the cache replaces)."""
    spec = dep.model
    stages = stage_layers(spec.arch.num_layers, dep.parallel.pp)
    keep = keep_list(spec)
    totals = [0.0] * len(stages)
    for t in spec.tensors:
        if t.mtp and not dep.mtp.enabled:
            continue
        if t.layer is None:
            s = 0 if t.component == "embedding" else len(stages) - 1
        elif t.layer >= spec.arch.num_layers:
            s = len(stages) - 1
        else:
            s = next(i for i, r in enumerate(stages) if t.layer in r)
        totals[s] += tensor_bytes(t, dep.weights, keep) / _shard_factor(t.shard, dep)
    return [int(x) for x in totals]


def main() -> None:
    spec = load_spec("glm-5.1")
    gpus = list(load_gpus().values())
    template = Deployment(
        model=spec, gpu=gpus[0], num_gpus=8, engine=get_engine("vllm"), reserve=get_reserve()
    )
    deployments = [
        replace(template, gpu=g, num_gpus=n * g.gpus_per_node, weights=f, parallel=par)
        for g in gpus
        for n in (1, 2, 4)
        for f in WEIGHT_FORMATS
        for par in candidate_layouts(n * g.gpus_per_node, g.gpus_per_node)
    ]
    for dep in deployments[:50]:  # same answers both ways
        fast, slow = weights_per_gpu(dep), baseline_weights_per_gpu(dep)
        assert all(abs(a - b) <= len(fast) for a, b in zip(fast, slow, strict=True)), (fast, slow)

    start = time.perf_counter()
    for dep in deployments:
        baseline_weights_per_gpu(dep)
    baseline_s = time.perf_counter() - start

    start = time.perf_counter()
    for dep in deployments:
        weights_per_gpu(dep)
    moerun_s = time.perf_counter() - start

    start = time.perf_counter()
    rows = fit_table(template, gpus, (1, 2, 4), WEIGHT_FORMATS)
    table_s = time.perf_counter() - start

    print(f"deployments weighed: {len(deployments)}")
    print(f"baseline (tensor walk): {baseline_s:.3f} s")
    print(f"moerun (prefix sums):   {moerun_s:.3f} s")
    print(f"speed-up: {baseline_s / moerun_s:.1f}x")
    print(f"whole plan table ({len(rows)} rows, best layout search): {table_s:.3f} s")


if __name__ == "__main__":
    main()
