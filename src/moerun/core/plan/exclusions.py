"""Exclusions found after the search: GPUs that cannot run the model or meet the SLO, and
options over the budget (one exclusion per endpoint, as the funnel counts them)."""

from __future__ import annotations

from moerun.core.market.offers import CloudOffer
from moerun.core.plan.demand import WorkloadStats
from moerun.core.plan.funnel import BUDGET, HARDWARE, SLO, Exclusion
from moerun.core.plan.plan_request import PlanRequest
from moerun.core.plan.recommend import Option, SelfHosted, fleet_cost
from moerun.core.plan.search import SearchResult


def self_hosted_exclusions(
    clouds: list[CloudOffer], result: SearchResult, fleets: list[SelfHosted]
) -> list[Exclusion]:
    """Allowed cloud prices whose GPU cannot run the model, or meets the SLO nowhere."""
    out = []
    ran = result.feasible + result.infeasible
    meets = {(sh.screened.dep.gpu.id, sh.cloud.price.num_gpus_per_instance) for sh in fleets}
    for c in clouds:
        subject = f"{c.price.gpu} at {c.label}"
        gpu = c.price.gpu
        here = [s for s in ran if s.dep.gpu.id == gpu]
        if not here:
            reason = result.no_fit.get(gpu, "no searched GPU count holds the model")
            out.append(Exclusion(HARDWARE, "self-hosted", subject, reason))
        elif not any(c.fits_node(s.dep.num_gpus, s.dep.gpu.gpus_per_node) for s in here):
            unit = c.price.num_gpus_per_instance
            reason = (
                f"priced per {unit}-GPU instance; every fitting configuration needs whole nodes"
            )
            out.append(Exclusion(HARDWARE, "self-hosted", subject, reason))
        elif not any(g == gpu for g, _ in meets) and not any(
            s.capacity.best is not None for s in here
        ):
            out.append(
                Exclusion(SLO, "self-hosted", subject, "no configuration of this GPU meets the SLO")
            )
        elif not any(g == gpu for g, _ in meets):
            out.append(
                Exclusion(
                    SLO,
                    "self-hosted",
                    subject,
                    "the simulator found its configurations over the SLO",
                )
            )
    return out


def endpoint(o: Option) -> str:
    """The endpoint an option buys from (as the funnel names it)."""
    if o.kind == "managed" and o.managed is not None:
        return o.managed.label
    if o.self_hosted is not None:
        return f"{o.self_hosted.cloud.price.gpu} at {o.self_hosted.cloud.label}"
    return o.label


def within_budget(
    options: list[Option], request: PlanRequest
) -> tuple[list[Option], list[Exclusion]]:
    """Options within the budget; one exclusion per endpoint with no option left under it."""
    cap = request.budget_usd_per_month
    if cap is None:
        return options, []
    kept = [o for o in options if o.usd_per_month <= cap]
    kept_endpoints = {endpoint(o) for o in kept}
    cheapest: dict[str, Option] = {}
    for o in options:  # ranked, so the first is the cheapest
        if o.usd_per_month > cap and endpoint(o) not in kept_endpoints:
            cheapest.setdefault(endpoint(o), o)
    out = [
        Exclusion(
            BUDGET, o.kind, key, f"${o.usd_per_month:,.0f}/month exceeds the ${cap:,.0f} budget"
        )
        for key, o in cheapest.items()
    ]
    return kept, out


def idle_clouds_over_budget(
    clouds: list[CloudOffer],
    fleets: list[SelfHosted],
    options: list[Option],
    exclusions: list[Exclusion],
    request: PlanRequest,
    stats: WorkloadStats,
) -> list[Exclusion]:
    """Allowed clouds no option uses (a cheaper one was chosen): over budget at their price?"""
    cap = request.budget_usd_per_month
    if cap is None:
        return []
    used = {endpoint(o) for o in options} | {e.subject for e in exclusions}
    out = []
    for c in clouds:
        subject = f"{c.price.gpu} at {c.label}"
        if subject in used:
            continue
        costs = [
            fleet_cost(
                sh.screened,
                c,
                sh.perf.capacity_req_per_s,
                request.volume,
                stats,
                sh.cost.prefill_time_share,
            ).usd_per_month(request.hours_per_month)
            for sh in fleets
            if sh.screened.dep.gpu.id == c.price.gpu
            and c.fits_node(sh.screened.dep.num_gpus, sh.screened.dep.gpu.gpus_per_node)
        ]
        if costs and min(costs) > cap:
            reason = f"${min(costs):,.0f}/month exceeds the ${cap:,.0f} budget"
            out.append(Exclusion(BUDGET, "self-hosted", subject, reason))
    return out
