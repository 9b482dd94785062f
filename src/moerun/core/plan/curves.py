"""Chart data of a plan: cost against volume, and the throughput-latency Pareto front."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from moerun.core.plan.planner import PlanResult
from moerun.core.plan.recommend import best_hybrid, self_hosted_usd_per_day
from moerun.core.plan.search import Screened

NUM_VOLUMES = 41
VOLUME_SPAN = 30.0  # the chart spans the plan's volume / 30 to x 30
MAX_SCATTER = 300


@dataclass(frozen=True, slots=True)
class CostCurves:
    """Monthly cost of the best options at each daily volume."""

    requests_per_day: tuple[float, ...]
    series: tuple[tuple[str, tuple[float, ...]], ...]
    planned_requests_per_day: float
    break_even_requests_per_day: float | None


@dataclass(frozen=True, slots=True)
class ParetoPoint:
    """One self-hosted configuration at one load: p99 TPOT against output tokens/s per GPU."""

    tpot_p99_ms: float
    output_tok_per_s_per_gpu: float
    label: str
    calibration: str


def cost_curves(r: PlanResult) -> CostCurves | None:
    """Best self-hosted, best managed and their best hybrid, from 1/30 to 30x the volume."""
    own = next((o for o in r.options if o.kind == "self-hosted"), None)
    api = next((o for o in r.options if o.kind == "managed"), None)
    if own is None and api is None:
        return None
    req = r.request
    base = req.volume.requests_per_day
    vols = tuple(
        float(v) for v in np.geomspace(base / VOLUME_SPAN, base * VOLUME_SPAN, NUM_VOLUMES)
    )
    month = req.hours_per_month / 24
    series: list[tuple[str, tuple[float, ...]]] = []
    if own is not None and own.self_hosted is not None:
        sh = own.self_hosted
        costs = tuple(self_hosted_usd_per_day(sh, req.volume, v) * month for v in vols)
        series.append((f"self-hosted: {sh.label} @ {sh.cloud.label}", costs))
    if api is not None and api.managed is not None:
        offer = api.managed
        series.append(
            (f"managed: {offer.label}", tuple(offer.usd_per_request * v * month for v in vols))
        )
    if own is not None and own.self_hosted is not None and api is not None and api.managed:
        hybrid: list[float] = []
        for v in vols:
            scaled = replace(req, volume=req.volume.scaled(v))
            h = best_hybrid(own.self_hosted, api.managed, scaled, r.stats)
            options = [series[0][1][len(hybrid)], series[1][1][len(hybrid)]]
            if h is not None:
                options.append(h.usd_per_month)
            hybrid.append(min(options))
        series.append(("best of the three, with a hybrid where it wins", tuple(hybrid)))
    return CostCurves(vols, tuple(series), base, r.break_even_requests_per_day)


def pareto(r: PlanResult) -> tuple[list[ParetoPoint], list[ParetoPoint]]:
    """Every screened layout's load curve (sampled), and the front no layout beats."""
    points: list[ParetoPoint] = []
    for s in r.search.feasible + r.search.infeasible:
        points += [_point(s, q.tpot_p99_ms, q.output_tok_per_s) for q in s.capacity.curve]
    front: list[ParetoPoint] = []
    for p in sorted(points, key=lambda p: (p.tpot_p99_ms, -p.output_tok_per_s_per_gpu)):
        if not front or p.output_tok_per_s_per_gpu > front[-1].output_tok_per_s_per_gpu:
            front.append(p)
    if len(points) > MAX_SCATTER:
        step = len(points) / MAX_SCATTER
        sample = [points[int(i * step)] for i in range(MAX_SCATTER)]
        # the front is drawn through points that are shown: its own points join the sample
        points = sample + [p for p in front if p not in sample]
    return points, front


def _point(s: Screened, tpot_ms: float, tok_per_s: float) -> ParetoPoint:
    d = s.dep
    pd = f" {s.disaggregation[0]}P{s.disaggregation[1]}D" if s.disaggregation else ""
    label = (
        f"{d.num_gpus}x {d.gpu.id} {d.weights} {d.parallel.describe()} {d.engine.name} "
        f"MTP{d.mtp.num_draft_tokens}{pd}"
    )
    return ParetoPoint(tpot_ms, tok_per_s / s.gpus_per_unit, label, s.calibration.status)
