"""How the recommended self-hosted option moves with MTP acceptance: its capacity and cost
per request at the low, assumed and high ends of the acceptance the catalog measured for the
model (random benchmark prompts to real text)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from moerun.core.load.metrics import Slo
from moerun.core.perf.step_time import StepModel
from moerun.core.plan.capacity import ReplicaLimits, colocated_capacity
from moerun.core.plan.demand import WorkloadStats
from moerun.core.plan.search import Screened


@dataclass(frozen=True, slots=True)
class AcceptancePoint:
    """One acceptance and what the option does at it."""

    label: str  # low | assumed | high
    acceptance: float
    capacity_req_per_s: float  # one replica within the SLO (0: it cannot meet it)
    output_tok_per_s_per_gpu: float
    usd_per_request: float | None  # at capacity (None: cannot meet the SLO)


def acceptance_sensitivity(
    screened: Screened,
    stats: WorkloadStats,
    slo: Slo,
    points: tuple[tuple[str, float], ...],
) -> tuple[AcceptancePoint, ...]:
    """The colocated option re-screened at each (label, acceptance); () without MTP or for a
    disaggregated one (its capacity mixes two instance kinds)."""
    dep = screened.dep
    if not dep.mtp.enabled or screened.disaggregation:
        return ()
    cal = screened.calibration
    limits = ReplicaLimits.of(dep, screened.fit, cal.kv_capacity_factor)
    out = []
    for label, a in points:
        model = StepModel(replace(dep, mtp=dep.mtp.with_acceptance(a)), cal.params)
        cap = colocated_capacity(model, limits, stats, slo)
        best = cap.best
        rate = best.req_per_s if best else 0.0
        out.append(
            AcceptancePoint(
                label,
                a,
                rate,
                best.output_tok_per_s / dep.num_gpus if best else 0.0,
                screened.usd_per_unit_hour / (rate * 3600) if rate > 0 else None,
            )
        )
    return tuple(out)
