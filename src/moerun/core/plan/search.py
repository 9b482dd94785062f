"""The self-hosted search: GPU x whole nodes x weights x layout x engine x MTP (x xPyD).

Every combination is pruned by the memory fit, then screened by the analytic capacity model
(`core.capacity`). Two rules keep the space to layouts the engines' recipes use:
  - tensor parallelism stays inside a node (TP across nodes puts an all-reduce per layer on the
    network); data-parallel attention, expert and pipeline parallelism may span nodes;
  - bf16 weights are searched only on GPUs without FP8 tensor cores when fp8 is searched too:
    elsewhere the FP8 checkpoint needs half the memory and runs at least as fast.
Disaggregated prefill/decode (xPyD of the same replica) is screened for the best colocated
configurations only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from moerun.core.calibrate.calibration import Calibration
from moerun.core.deploy.deployment import Deployment, hardware_problems
from moerun.core.deploy.engine import EngineMemory
from moerun.core.deploy.hardware import GPU
from moerun.core.deploy.memory_fit import MemoryFit, memory_fit
from moerun.core.deploy.mtp import MTP_OFF, Mtp
from moerun.core.deploy.parallel import candidate_layouts
from moerun.core.load.metrics import Slo
from moerun.core.model.kv_cache import kv_bytes_per_token
from moerun.core.perf.step_time import StepModel
from moerun.core.plan.capacity import (
    Capacity,
    ReplicaLimits,
    colocated_capacity,
    disaggregated_capacity,
)
from moerun.core.plan.demand import WorkloadStats

DISAGG_RATIOS = ((1, 1), (1, 2), (2, 1), (1, 3), (3, 1))
NUM_DISAGG_SEEDS = 12

Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class SearchSpace:
    """What to combine: GPUs, node counts, formats, engines and MTP settings (each MTP
    setting with the acceptance to assume for it)."""

    gpus: tuple[GPU, ...]
    node_counts: tuple[int, ...]
    weights: tuple[str, ...]
    engines: tuple[EngineMemory, ...]
    mtp_choices: tuple[Mtp, ...]
    disaggregation: bool = True


@dataclass(frozen=True, slots=True)
class Screened:
    """One self-hosted configuration, its memory fit and its analytic capacity."""

    dep: Deployment
    fit: MemoryFit
    capacity: Capacity
    calibration: Calibration
    usd_per_gpu_hour: float
    disaggregation: tuple[int, int] | None = None

    @property
    def gpus_per_unit(self) -> int:
        """GPUs of one replica (of one xPyD unit when disaggregated)."""
        x, y = self.disaggregation or (1, 0)
        return self.dep.num_gpus * (x + y)

    @property
    def usd_per_unit_hour(self) -> float:
        """What one replica (or xPyD unit) costs per hour."""
        return self.gpus_per_unit * self.usd_per_gpu_hour

    @property
    def usd_per_request_at_capacity(self) -> float:
        """Cost of a request with the replica fully loaded within the SLO."""
        rate = self.capacity.req_per_s
        return self.usd_per_unit_hour / (rate * 3600) if rate > 0 else float("inf")


@dataclass
class SearchResult:
    """Feasible configurations, the best infeasible ones, and why the rest dropped out."""

    feasible: list[Screened] = field(default_factory=list)
    infeasible: list[Screened] = field(default_factory=list)
    # gpu id -> why its largest configuration could not run (kept only if none could)
    no_fit: dict[str, str] = field(default_factory=dict)
    num_deployments: int = 0
    num_fitting: int = 0
    num_screened: int = 0


def search(
    template: Deployment,
    space: SearchSpace,
    stats: WorkloadStats,
    slo: Slo,
    calibration: Callable[[str, str, str, str], Calibration],
    usd_per_gpu_hour: dict[str, float],
    progress: Progress | None = None,
) -> SearchResult:
    """Screen every configuration of the GPUs that have a usable price."""
    result = SearchResult()
    gpus = [g for g in space.gpus if g.id in usd_per_gpu_hour]
    jobs = [(g, nodes, w) for g in gpus for nodes in space.node_counts for w in space.weights]
    for i, (gpu, nodes, weights) in enumerate(jobs):
        if progress is not None:
            progress(i, len(jobs))
        if weights == "bf16" and "fp8" in space.weights and gpu.supports("fp8"):
            continue
        n = nodes * gpu.gpus_per_node
        base = replace(template, gpu=gpu, num_gpus=n, weights=weights)
        problems = hardware_problems(base)
        if problems:
            result.no_fit[gpu.id] = problems[0]
            continue
        _screen_group(base, space, stats, slo, calibration, usd_per_gpu_hour[gpu.id], result)
    if progress is not None:
        progress(len(jobs), len(jobs))
    if space.disaggregation:
        _screen_disaggregated(space, stats, slo, calibration, result)
    for gpu in gpus:
        if any(s.dep.gpu.id == gpu.id for s in result.feasible + result.infeasible):
            result.no_fit.pop(gpu.id, None)
    return result


def _screen_group(
    base: Deployment,
    space: SearchSpace,
    stats: WorkloadStats,
    slo: Slo,
    calibration: Callable[[str, str, str, str], Calibration],
    price: float,
    result: SearchResult,
) -> None:
    """Every layout, engine and MTP setting of one GPU count and weight format."""
    node = base.gpu.gpus_per_node
    models: dict[tuple[object, ...], StepModel] = {}
    for par in candidate_layouts(base.num_gpus, node):
        if par.tp > node:
            continue
        layout = replace(base, parallel=par).layout_kind()
        for engine in space.engines:
            cal = calibration(base.gpu.id, engine.name, base.model.arch.model_type, layout)
            for mtp in space.mtp_choices:
                dep = replace(base, parallel=par, engine=engine, mtp=mtp)
                result.num_deployments += 1
                fit = memory_fit(dep)
                if not fit.fits:
                    if fit.reasons:
                        result.no_fit[base.gpu.id] = fit.reasons[0]
                    continue
                result.num_fitting += 1
                key = (par, dep.kv_layout)
                if key not in models:
                    models[key] = StepModel(replace(dep, mtp=MTP_OFF), cal.params)
                model = models[key].with_params(cal.params).with_deployment(dep)
                limits = ReplicaLimits.of(dep, fit, cal.kv_capacity_factor)
                cap = colocated_capacity(model, limits, stats, slo)
                result.num_screened += 1
                screened = Screened(dep, fit, cap, cal, price)
                (result.feasible if cap.best else result.infeasible).append(screened)


def _screen_disaggregated(
    space: SearchSpace,
    stats: WorkloadStats,
    slo: Slo,
    calibration: Callable[[str, str, str, str], Calibration],
    result: SearchResult,
) -> None:
    """xPyD units of the best colocated replicas (prefill and decode on the same layout),
    each with the band of a disaggregated prediction."""
    seeds = sorted(result.feasible, key=lambda s: s.usd_per_request_at_capacity)
    seeds += sorted(
        (s for s in result.infeasible if s.capacity.closest is not None),
        key=lambda s: s.capacity.closest.tpot_p99_ms if s.capacity.closest else 0.0,
    )
    done = 0
    for s in seeds:
        if done >= NUM_DISAGG_SEEDS:
            break
        if s.dep.num_gpus < s.dep.gpu.gpus_per_node:
            continue
        done += 1
        dep = s.dep
        cal = calibration(
            dep.gpu.id, dep.engine.name, dep.model.arch.model_type, dep.layout_kind(True)
        )
        model = StepModel(dep, cal.params)
        limits = ReplicaLimits.of(dep, s.fit, cal.kv_capacity_factor)
        bw = dep.gpu.network_bw_bytes_per_s
        transfer_s = (
            (stats.p99_new_tokens + stats.mean_cached_tokens)
            * kv_bytes_per_token(dep.model, dep.kv_layout)
            / (bw * dep.num_gpus)
        )
        for x, y in DISAGG_RATIOS:
            cap = disaggregated_capacity(model, limits, stats, slo, x, y, transfer_s)
            result.num_screened += 1
            screened = Screened(dep, s.fit, cap, cal, s.usd_per_gpu_hour, (x, y))
            (result.feasible if cap.best else result.infeasible).append(screened)
