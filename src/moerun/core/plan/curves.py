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
    error_measured: bool  # the prediction has a measured error band (see `Calibration`)


@dataclass(frozen=True, slots=True)
class Pareto:
    """The throughput-latency chart of a plan: sampled points and two fronts.

    `front` is drawn through the points whose prediction error was measured; `all_front`
    through every point, including predictions no measurement ever checked (a GPU, engine or
    layout extrapolated to). Where the two differ, the best-looking layouts are the ones
    nobody measured, and the reader should see that.
    """

    points: list[ParetoPoint]
    front: list[ParetoPoint]
    all_front: list[ParetoPoint]

    @property
    def unmeasured_front(self) -> bool:
        """The front through every point lies beyond the measured one somewhere."""
        return self.all_front != self.front


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


def pareto(r: PlanResult) -> Pareto:
    """Every screened layout's load curve (sampled), and the fronts no layout beats: among
    the predictions whose error was measured, and among all of them."""
    points: list[ParetoPoint] = []
    for s in r.search.feasible + r.search.infeasible:
        measured = bool(s.calibration.error_band_pct)
        points += [_point(s, q.tpot_p99_ms, q.output_tok_per_s, measured) for q in s.capacity.curve]
    front = front_of([p for p in points if p.error_measured])
    all_front = front_of(points)
    if len(points) > MAX_SCATTER:
        step = len(points) / MAX_SCATTER
        sample = [points[int(i * step)] for i in range(MAX_SCATTER)]
        # the fronts are drawn through points that are shown: their own points join the sample
        points = sample + [p for p in dict.fromkeys(front + all_front) if p not in sample]
    return Pareto(points, front, all_front)


def front_of(points: list[ParetoPoint]) -> list[ParetoPoint]:
    """The points no other beats (lower p99 TPOT and more tokens/s per GPU), by TPOT."""
    front: list[ParetoPoint] = []
    for p in sorted(points, key=lambda p: (p.tpot_p99_ms, -p.output_tok_per_s_per_gpu)):
        if not front or p.output_tok_per_s_per_gpu > front[-1].output_tok_per_s_per_gpu:
            front.append(p)
    return front


def _point(s: Screened, tpot_ms: float, tok_per_s: float, measured: bool) -> ParetoPoint:
    d = s.dep
    pd = f" {s.disaggregation[0]}P{s.disaggregation[1]}D" if s.disaggregation else ""
    label = (
        f"{d.num_gpus}x {d.gpu.id} {d.weights} {d.parallel.describe()} {d.engine.name} "
        f"MTP{d.mtp.num_draft_tokens}{pd}"
    )
    return ParetoPoint(
        tpot_ms,
        tok_per_s / s.gpus_per_unit,
        label,
        s.calibration.status,
        measured,
    )


def unmeasured_front_note(chart: Pareto) -> str:
    """What the dashed front means, naming the layouts that make it ('' where it is the
    measured front)."""
    if not chart.unmeasured_front:
        return ""
    beyond = [p for p in chart.all_front if p not in chart.front]
    names = list(dict.fromkeys(p.label for p in beyond))
    best = max(beyond, key=lambda p: p.output_tok_per_s_per_gpu)
    measured = max((p.output_tok_per_s_per_gpu for p in chart.front), default=0.0)
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (
        f"The dashed front runs through predictions whose error was never measured "
        f"(extrapolated to a GPU, engine or layout no measured run covers): {shown}. "
        f"They reach {best.output_tok_per_s_per_gpu:,.0f} output tok/s per GPU, against "
        f"{measured:,.0f} on the measured front; take them as a reason to measure, not as "
        "an answer."
    )
