"""The fit table: every GPU type at 1, 2 and 4 nodes in every weight format."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from moerun.core.deploy.deployment import Deployment
from moerun.core.deploy.hardware import GPU
from moerun.core.deploy.memory_fit import MemoryFit, best_layout, memory_fit
from moerun.core.deploy.parallel import Parallel


@dataclass(frozen=True, slots=True)
class PlanRow:
    """One configuration: where it fits, with which layout, and how much KV it leaves."""

    gpu: str
    num_gpus: int
    num_nodes: int
    weights: str
    layout: str
    fits: bool
    reason: str
    weights_bytes_per_gpu: int
    kv_free_bytes_per_gpu: int
    kv_capacity_tokens: int
    concurrency_at_context: int


def fit_table(
    template: Deployment,
    gpus: Iterable[GPU],
    node_counts: Iterable[int],
    formats: Iterable[str],
) -> list[PlanRow]:
    """Fit `template` (model, engine, KV dtype, context) on each GPU x node count x format.

    Each row shows the best valid layout; when none fits, the official recipe layout (TP over
    all GPUs) and its first reason.
    """
    rows = []
    counts = list(node_counts)
    fmts = list(formats)
    for gpu in gpus:
        for nodes in counts:
            n = nodes * gpu.gpus_per_node
            for fmt in fmts:
                dep = replace(template, gpu=gpu, num_gpus=n, weights=fmt, parallel=Parallel(tp=n))
                best = best_layout(dep)
                if best is not None:
                    par, fit = best
                    rows.append(_row(dep, par.describe(), True, "", fit))
                else:
                    fit = memory_fit(dep)
                    rows.append(
                        _row(dep, fit.layout, False, fit.reasons[0] if fit.reasons else "", fit)
                    )
    return rows


def _row(dep: Deployment, layout: str, fits: bool, reason: str, fit: MemoryFit) -> PlanRow:
    return PlanRow(
        gpu=dep.gpu.id,
        num_gpus=dep.num_gpus,
        num_nodes=dep.num_nodes,
        weights=dep.weights,
        layout=layout,
        fits=fits,
        reason=reason,
        weights_bytes_per_gpu=fit.weights_bytes_per_gpu,
        kv_free_bytes_per_gpu=fit.kv_free_bytes_per_gpu,
        kv_capacity_tokens=fit.kv_capacity_tokens,
        concurrency_at_context=fit.concurrency_at(dep.effective_max_context) if fits else 0,
    )
