"""Which constraint excluded what: endpoints through the plan's constraints, in order.

An endpoint is a GPU cloud price (self-hosted) or a provider's offering of the model
(managed). Each is stopped by the first constraint it fails, so the counts after each stage
add up, and the stage after which none is left is the constraint that emptied the list.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from moerun.core.market.cost import TokenPrices, api_usd_per_request
from moerun.core.market.offers import (
    CloudOffer,
    ManagedOffer,
    cap_problem,
    model_offerings,
    policy_failure,
    policy_stages,
    published_slo_problem,
)
from moerun.core.market.providers import Provider, ProviderModel
from moerun.core.plan.demand import WorkloadStats
from moerun.core.plan.plan_request import PlanRequest

CATALOG = "catalog: no price"
CLOUDS = "GPU clouds allowed"
PROVIDERS = "providers named"
PRICING = "pricing kind"
CAPS = "context/output caps"
HARDWARE = "model does not run on the GPU"
SUPPORT = "support (no verified configuration)"
SLO = "SLO"
BUDGET = "budget"


@dataclass(frozen=True, slots=True)
class Exclusion:
    """One endpoint and the first constraint it failed."""

    constraint: str
    kind: str  # self-hosted | managed
    subject: str
    reason: str


@dataclass(frozen=True, slots=True)
class Funnel:
    """How many endpoints remain after each constraint, and the one that left none."""

    total: int
    stages: tuple[tuple[str, int], ...]
    emptied_by: str | None


def stage_order(request: PlanRequest) -> list[str]:
    """Every constraint name in the order endpoints meet them."""
    names = [CATALOG] + [name for name, _ in policy_stages(request.policy)]
    return [*names, CLOUDS, PROVIDERS, PRICING, CAPS, HARDWARE, SUPPORT, SLO, BUDGET]


def build_funnel(request: PlanRequest, total: int, exclusions: Sequence[Exclusion]) -> Funnel:
    """Counts after each stage; `emptied_by` is set only when nothing is left."""
    left, stages, emptied = total, [], None
    for name in stage_order(request):
        failed = sum(1 for e in exclusions if e.constraint == name)
        if not failed:
            continue
        left -= failed
        stages.append((name, left))
        if left <= 0 and emptied is None:
            emptied = name
    return Funnel(total, tuple(stages), emptied)


def filter_clouds(
    request: PlanRequest, clouds: Sequence[CloudOffer], gpu_ids: Sequence[str]
) -> tuple[list[CloudOffer], list[Exclusion]]:
    """Cloud prices of the searched GPUs that pass the policy, the cloud list and pricing."""
    stages = policy_stages(request.policy)
    allowed, out = [], []
    for c in clouds:
        if c.price.gpu not in gpu_ids:
            continue
        subject = f"{c.price.gpu} at {c.label}"
        failure = policy_failure(c.facts, stages)
        if failure is not None:
            out.append(Exclusion(failure[0], "self-hosted", subject, failure[1]))
        elif request.gpu_clouds is not None and c.price.provider not in request.gpu_clouds:
            out.append(Exclusion(CLOUDS, "self-hosted", subject, "cloud not in the allowed list"))
        elif c.price.pricing not in request.pricing:
            reason = f"{c.price.pricing} pricing not requested ({', '.join(request.pricing)})"
            out.append(Exclusion(PRICING, "self-hosted", subject, reason))
        else:
            allowed.append(c)
    return allowed, out


def filter_managed(
    request: PlanRequest, providers: dict[str, Provider], stats: WorkloadStats
) -> tuple[list[ManagedOffer], list[Exclusion], int]:
    """Offerings of the model that are priced, pass the policy, the caps and published SLO.

    Also returns how many offerings there were (the managed side of the funnel's total).
    """
    stages = policy_stages(request.policy)
    preset = request.preset
    offers, out = [], []
    offerings = model_offerings(providers, request.model.name)
    fastest = _fastest_published(offerings)
    for provider, m in offerings:
        subject = f"{provider.id} {m.model_id or m.listed_as}"
        if m.input_usd_per_mtok is None or m.output_usd_per_mtok is None:
            out.append(Exclusion(CATALOG, "managed", subject, "token price not found"))
            continue
        if not provider.base_url:
            out.append(Exclusion(CATALOG, "managed", subject, "no API base URL in the catalog"))
            continue
        prices = TokenPrices(
            m.input_usd_per_mtok, m.output_usd_per_mtok, m.cached_input_usd_per_mtok
        )
        per_request = api_usd_per_request(
            prices,
            stats.mean_input_tokens,
            stats.mean_cached_tokens,
            stats.mean_output_tokens,
            request.api_cache_hit_fraction,
        )
        offer = ManagedOffer(provider, m, prices, per_request)
        failure = policy_failure(offer.facts, stages)
        cap = cap_problem(m, preset.max_context, preset.max_output_tokens)
        slo = published_slo_problem(offer, request.slo, fastest)
        if failure is not None:
            out.append(Exclusion(failure[0], "managed", subject, failure[1]))
        elif request.providers is not None and provider.id not in request.providers:
            out.append(Exclusion(PROVIDERS, "managed", subject, "provider not in the named list"))
        elif cap is not None:
            out.append(Exclusion(CAPS, "managed", subject, cap))
        elif slo is not None:
            out.append(Exclusion(SLO, "managed", subject, slo))
        else:
            offers.append(offer)
    return offers, out, len(offerings)


def _fastest_published(
    offerings: list[tuple[Provider, ProviderModel]],
) -> tuple[float | None, float | None]:
    """The lowest median TTFT and highest median speed any offering publishes."""
    ttfts = [p.ttft_s for _, m in offerings for p in m.perf if p.ttft_s is not None]
    speeds = [p.output_tokens_per_s for _, m in offerings for p in m.perf if p.output_tokens_per_s]
    return (min(ttfts) if ttfts else None, max(speeds) if speeds else None)
