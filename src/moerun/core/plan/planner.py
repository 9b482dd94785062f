"""`plan()`: search, screen, simulate the finalists, cost, rank, explain.

1. the workload's per-request means (a sampled workload);
2. GPU cloud prices and managed offerings through the policy and the other constraints;
3. the self-hosted search over the GPUs with an allowed price (`core.search`), each
   configuration costed at the volume on its cheapest allowed cloud;
4. the cheapest configurations simulated at the load the plan gives them (`core.verify`);
   a configuration the simulator finds over the SLO gets its capacity lowered or is dropped;
5. managed options, hybrids (a self-hosted base plus API overflow), the budget, the ranking,
   the break-even volume and which constraint excluded what.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, replace

from moerun.core.deploy.deployment import Deployment
from moerun.core.load.workload import Arrival
from moerun.core.market.offers import CloudOffer
from moerun.core.model.model_spec import ModelSpec
from moerun.core.plan.acceptance_sensitivity import AcceptancePoint, acceptance_sensitivity
from moerun.core.plan.demand import WorkloadPreset, WorkloadStats, workload_stats
from moerun.core.plan.exclusions import (
    idle_clouds_over_budget,
    self_hosted_exclusions,
    within_budget,
)
from moerun.core.plan.funnel import (
    SLO,
    Exclusion,
    Funnel,
    build_funnel,
    filter_clouds,
    filter_managed,
    stage_order,
)
from moerun.core.plan.option_notes import managed_notes, self_hosted_notes
from moerun.core.plan.plan_request import PlanCatalog, PlanRequest
from moerun.core.plan.recommend import (
    BreakEvenBand,
    Option,
    Performance,
    SelfHosted,
    best_hybrid,
    break_even_band,
    break_even_requests_per_day,
    daily_traffic,
    fleet_cost,
    managed_option,
    rank,
    self_hosted_option,
)
from moerun.core.plan.search import Screened, SearchResult, SearchSpace, search
from moerun.core.plan.support_filter import HeldOut, split_by_support, support_exclusions
from moerun.core.plan.verify import verify

STATS_SAMPLE_REQUESTS = 3_000
MAX_VERIFY_ROUNDS = 3
NUM_HYBRID_BASES = 2

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True, slots=True)
class PlanResult:
    """The ranked answer and everything needed to explain it."""

    request: PlanRequest
    stats: WorkloadStats
    options: tuple[Option, ...]
    exclusions: tuple[Exclusion, ...]
    funnel: Funnel
    closest: str | None
    break_even_requests_per_day: float | None
    break_even_between: tuple[Option, Option] | None
    search: SearchResult
    overridden: tuple[str, ...]
    # searched GPUs with no price at any cloud (not endpoints; add one with --prices)
    unpriced_gpus: tuple[str, ...] = ()
    # the first self-hosted option with MTP at the low, assumed and high acceptance
    acceptance_sensitivity: tuple[AcceptancePoint, ...] = ()
    # the cheapest feasible configurations the support gate kept out of the ranking
    held_out: tuple[HeldOut, ...] = ()
    # the break-even at the ends of the self-hosted side's typical throughput error
    break_even_band: BreakEvenBand | None = None


def plan(
    request: PlanRequest, catalog: PlanCatalog, progress: Progress | None = None
) -> PlanResult:
    """Answer the request from the catalog."""
    request.check()
    spec = request.model
    stats = sample_stats(request.preset, spec, request.seed)
    gpu_ids = list(request.gpus or catalog.gpus)
    clouds, exclusions = filter_clouds(request, catalog.clouds, gpu_ids)
    managed, managed_out, num_offerings = filter_managed(request, catalog.providers, stats)
    exclusions += managed_out
    if request.policy.self_hosted_only:
        managed = []
    rates = _cheapest_rates(clouds, catalog)
    result = SearchResult()
    if rates:
        template = Deployment(
            model=spec,
            gpu=catalog.gpus[next(iter(rates))],
            num_gpus=1,
            engine=catalog.engines[request.engines[0]],
            reserve=catalog.reserve,
            max_context=min(request.preset.max_context, spec.max_position_embeddings),
        )
        space = SearchSpace(
            gpus=tuple(catalog.gpus[g] for g in gpu_ids if g in catalog.gpus),
            node_counts=request.node_counts,
            weights=request.weights,
            engines=tuple(catalog.engines[e] for e in request.engines),
            mtp_choices=tuple(
                request.mtp(k) for k in (request.mtp_options if spec.arch.num_mtp_layers else (0,))
            ),
            disaggregation=request.disaggregation,
        )
        screen_progress = None if progress is None else (lambda d, t: progress("screen", d, t))
        result = search(
            template, space, stats, request.slo, catalog.calibration, rates, screen_progress
        )
    allowed, held_out, supports = split_by_support(
        result.feasible, catalog.support, request.allow_unverified
    )
    fleets = _costed(allowed, clouds, request, stats)
    fleets = [replace(sh, support=supports.get(id(sh.screened))) for sh in fleets]
    fleets = _verified(fleets, request, stats, progress)
    options = [
        self_hosted_option(sh, request, self_hosted_notes(sh, catalog, request)) for sh in fleets
    ]
    traffic = daily_traffic(request.volume, stats)
    for offer in managed:
        options.append(managed_option(offer, request, traffic, managed_notes(offer, request)))
    cheapest_api = min(managed, key=lambda o: o.usd_per_request, default=None)
    if cheapest_api is not None:
        for sh in fleets[:NUM_HYBRID_BASES]:
            hybrid = best_hybrid(sh, cheapest_api, request, stats)
            if hybrid is not None and hybrid.usd_per_month < sh.cost.usd_per_month(
                request.hours_per_month
            ):
                options.append(hybrid)
    unsupported = support_exclusions(clouds, result.feasible, allowed)
    gated = {e.subject for e in unsupported}
    exclusions += unsupported
    exclusions += self_hosted_exclusions(
        [c for c in clouds if f"{c.price.gpu} at {c.label}" not in gated], result, fleets
    )
    options, over = within_budget(rank(options), request)
    exclusions += over
    exclusions += idle_clouds_over_budget(clouds, fleets, options, exclusions, request, stats)
    funnel = build_funnel(request, len(clouds_total(catalog, gpu_ids)) + num_offerings, exclusions)
    pair = _break_even_pair(options)
    be, be_band = None, None
    if pair and pair[0].self_hosted and pair[1].managed:
        be = break_even_requests_per_day(pair[0].self_hosted, pair[1].managed, request.volume)
        be_band = break_even_band(pair[0].self_hosted, pair[1].managed, request.volume)
    return PlanResult(
        request=request,
        stats=stats,
        options=tuple(options),
        exclusions=tuple(exclusions),
        funnel=funnel,
        closest=None if options else _closest(result, exclusions, stage_order(request)),
        break_even_requests_per_day=be,
        break_even_between=pair,
        search=result,
        overridden=catalog.overridden,
        held_out=tuple(held_out),
        unpriced_gpus=tuple(
            sorted(g for g in gpu_ids if not any(c.price.gpu == g for c in catalog.clouds))
        ),
        acceptance_sensitivity=_sensitivity(options, request, stats),
        break_even_band=be_band,
    )


def _sensitivity(
    options: list[Option], request: PlanRequest, stats: WorkloadStats
) -> tuple[AcceptancePoint, ...]:
    """The first self-hosted option with MTP, at the acceptance range the catalog spans."""
    sh = next(
        (
            o.self_hosted
            for o in options
            if o.self_hosted and o.self_hosted.screened.dep.mtp.enabled
        ),
        None,
    )
    if sh is None or request.mtp_acceptance_range is None:
        return ()
    low, high = request.mtp_acceptance_range
    assumed = sh.screened.dep.mtp.acceptance
    points = (("low", low), ("assumed", assumed), ("high", high))
    return acceptance_sensitivity(sh.screened, stats, request.slo, points)


def sample_stats(preset: WorkloadPreset, spec: ModelSpec, seed: int) -> WorkloadStats:
    """The per-request means of a sampled workload of the preset (same seed, same means)."""
    rng = random.Random(seed)
    sample = preset.workload(STATS_SAMPLE_REQUESTS, Arrival("poisson", rate_per_s=1.0), rng)
    return workload_stats(sample, spec.arch.indexer.topk if spec.arch.indexer else None)


def clouds_total(catalog: PlanCatalog, gpu_ids: list[str]) -> list[CloudOffer]:
    """The cloud prices of the searched GPUs (the self-hosted side of the funnel)."""
    return [c for c in catalog.clouds if c.price.gpu in gpu_ids]


def _cheapest_rates(clouds: list[CloudOffer], catalog: PlanCatalog) -> dict[str, float]:
    rates: dict[str, float] = {}
    for c in clouds:
        gpu = catalog.gpus.get(c.price.gpu)
        if gpu is None or not c.fits_node(gpu.gpus_per_node, gpu.gpus_per_node):
            continue
        rates[gpu.id] = min(rates.get(gpu.id, c.price.usd_per_gpu_hour), c.price.usd_per_gpu_hour)
    return rates


def _best_cloud(s: Screened, clouds: list[CloudOffer]) -> CloudOffer | None:
    usable = [
        c
        for c in clouds
        if c.price.gpu == s.dep.gpu.id and c.fits_node(s.dep.num_gpus, s.dep.gpu.gpus_per_node)
    ]
    return min(usable, key=lambda c: (c.price.usd_per_gpu_hour, not c.scales_down), default=None)


def _fleet(
    s: Screened,
    cloud: CloudOffer,
    capacity: float,
    perf: Performance,
    request: PlanRequest,
    stats: WorkloadStats,
) -> SelfHosted:
    point = s.capacity.best
    share = point.prefill_time_share if point else 0.5
    cost = fleet_cost(s, cloud, capacity, request.volume, stats, share)
    return SelfHosted(s, cloud, perf, cost)


def _costed(
    screened: list[Screened], clouds: list[CloudOffer], request: PlanRequest, stats: WorkloadStats
) -> list[SelfHosted]:
    """Every feasible configuration on its cheapest cloud; the cheapest layout per shape."""
    best: dict[tuple[object, ...], SelfHosted] = {}
    for s in screened:
        cloud = _best_cloud(s, clouds)
        point = s.capacity.best
        if cloud is None or point is None:
            continue
        perf = Performance(
            point.req_per_s,
            point.ttft_p99_ms,
            point.tpot_p99_ms,
            "analytic",
            s.calibration.status,
            s.calibration.error_band_pct,
            error_band_basis=s.calibration.error_band_basis,
            calibration_models=s.calibration.model_note,
            calibration_layouts=s.calibration.layout_note,
        )
        sh = _fleet(s, cloud, point.req_per_s, perf, request, stats)
        d = s.dep
        key = (d.gpu.id, d.num_gpus, d.weights, s.disaggregation)
        if key not in best or sh.cost.usd_per_day < best[key].cost.usd_per_day:
            best[key] = sh
    return sorted(best.values(), key=lambda sh: sh.cost.usd_per_day)


def _verified(
    fleets: list[SelfHosted], request: PlanRequest, stats: WorkloadStats, progress: Progress | None
) -> list[SelfHosted]:
    """Simulate the cheapest fleets until the top `num_finalists` are all simulated."""
    if not request.simulate:
        return fleets
    done: set[int] = set()
    dropped: list[SelfHosted] = []
    for _ in range(MAX_VERIFY_ROUNDS):
        todo = [sh for sh in fleets[: request.num_finalists] if id(sh.screened) not in done]
        if not todo:
            break
        updated = {}
        total = len(done) + len(todo)
        for sh in todo:
            if progress is not None:
                progress("simulate", len(done), total)
            done.add(id(sh.screened))
            updated[id(sh)] = _verify_one(sh, request, stats)
        fleets = [updated.get(id(sh), sh) for sh in fleets]
        dropped += [sh for sh in fleets if sh.perf.capacity_req_per_s <= 0]
        fleets = sorted(
            (sh for sh in fleets if sh.perf.capacity_req_per_s > 0),
            key=lambda sh: sh.cost.usd_per_day,
        )
    if progress is not None:
        progress("simulate", len(done), len(done))
    return fleets


def _verify_one(sh: SelfHosted, request: PlanRequest, stats: WorkloadStats) -> SelfHosted:
    peak = request.volume.peak_req_per_s
    rate = min(sh.perf.capacity_req_per_s, peak / sh.cost.peak_replicas)
    v = verify(sh.screened, request.preset, request.slo, rate, request.seed)
    capacity = sh.perf.capacity_req_per_s
    if not v.passed:
        capacity = 0.0
    elif v.req_per_s < rate * 0.999:  # it met the SLO only at a lower load
        capacity = v.req_per_s
    ttft, tpot = v.summary.get("ttft_ms"), v.summary.get("tpot_ms")
    perf = Performance(
        capacity,
        ttft.get("p99") if isinstance(ttft, dict) else None,
        tpot.get("p99") if isinstance(tpot, dict) else None,
        "simulated",
        sh.perf.calibration_status,
        sh.perf.error_band_pct,
        v.warmed_up,
        v.req_per_s if v.passed else rate,
        sh.perf.error_band_basis,
        sh.perf.calibration_models,
        sh.perf.calibration_layouts,
    )
    if capacity <= 0:
        return replace(sh, perf=perf)
    return replace(
        _fleet(sh.screened, sh.cloud, capacity, perf, request, stats), support=sh.support
    )


def _break_even_pair(options: list[Option]) -> tuple[Option, Option] | None:
    own = next((o for o in options if o.kind == "self-hosted"), None)
    api = next((o for o in options if o.kind == "managed"), None)
    return (own, api) if own and api else None


def _closest(result: SearchResult, exclusions: list[Exclusion], order: list[str]) -> str | None:
    """The nearest thing to an answer when nothing passes; None only when nothing was excluded.

    First the fastest configuration for an SLO nothing meets; else the API the SLO excluded;
    else the endpoint that got furthest through the constraints (stopped at the latest stage,
    so it passed every one before it), named with what stopped it.
    """
    candidates = [s for s in result.infeasible if s.capacity.closest is not None]
    if not candidates:
        slo_api = [e for e in exclusions if e.kind == "managed" and e.constraint == SLO]
        if slo_api:
            return f"{slo_api[0].subject}: {slo_api[0].reason}"
        return _furthest(exclusions, order)
    s = min(candidates, key=lambda s: s.capacity.closest.tpot_p99_ms if s.capacity.closest else 0.0)
    c = s.capacity.closest
    assert c is not None
    d = s.dep
    pd = f" {s.disaggregation[0]}P{s.disaggregation[1]}D" if s.disaggregation else ""
    return (
        f"{d.num_gpus}x {d.gpu.id} {d.weights} {d.parallel.describe()} {d.engine.name} "
        f"MTP{d.mtp.num_draft_tokens}{pd} reaches p99 TPOT {c.tpot_p99_ms:.0f} ms and p99 TTFT "
        f"{c.ttft_p99_ms:.0f} ms at {c.batch_size:.0f} sequence(s) in flight (analytic)"
    )


def _furthest(exclusions: list[Exclusion], order: list[str]) -> str | None:
    """The excluded endpoint stopped latest in the constraint order (first such on ties)."""
    rank = {name: i for i, name in enumerate(order)}
    if not exclusions:
        return None
    e = max(exclusions, key=lambda x: rank.get(x.constraint, -1))
    return (
        f"{e.subject}: passes every constraint before {e.constraint!r}, which stops it ({e.reason})"
    )
