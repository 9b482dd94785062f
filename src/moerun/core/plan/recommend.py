"""Options a plan ranks: self-hosted fleets, managed APIs and hybrids, costed at the volume.

Every option carries its monthly cost, its $/Mtok, its predicted or published performance
(with where the number comes from) and the notes a reader needs to trust it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from moerun.core.deploy.support import Support
from moerun.core.market.cost import (
    DailyTraffic,
    HybridCost,
    SelfHostedCost,
    break_even,
    hybrid_cost,
    replica_schedule,
    replicas_for,
)
from moerun.core.market.offers import CloudOffer, ManagedOffer
from moerun.core.plan.demand import Volume, WorkloadStats
from moerun.core.plan.plan_request import PlanRequest
from moerun.core.plan.search import Screened

KINDS = ("self-hosted", "managed", "hybrid")
FOUR_BIT = ("int4", "nvfp4", "mxfp4")


@dataclass(frozen=True, slots=True)
class Performance:
    """What one replica (or xPyD unit) sustains within the SLO, and how we know."""

    capacity_req_per_s: float
    ttft_p99_ms: float | None
    tpot_p99_ms: float | None
    source: str  # simulated | analytic | published
    calibration_status: str
    error_band_pct: dict[str, float]
    warmed_up: bool = True
    # the per-replica load the simulator ran (None: not simulated); the capacity above it is
    # the analytic screen's unless the simulator found it over the SLO there
    simulated_req_per_s: float | None = None
    error_band_basis: str = ""  # what the band rests on (Calibration.error_band_basis)
    # "" when the profile's runs served this model's architecture; else which ones they
    # served (Calibration.model_note)
    calibration_models: str = ""
    # "" when the profile's runs used this kind of layout; else which ones they used
    # (Calibration.layout_note)
    calibration_layouts: str = ""

    def band_shown(self) -> list[tuple[str, float]]:
        """The band a reader of a latency / throughput cell needs: p99 TPOT and TTFT (the
        median's where the p99 was not measured, labelled so), then throughput."""
        out = []
        for name, key in (("TPOT", "tpot"), ("TTFT", "ttft")):
            for label, metric in (("p99", f"{key}_p99_ms"), ("median", f"{key}_p50_ms")):
                if metric in self.error_band_pct:
                    out.append((f"{label} {name}", self.error_band_pct[metric]))
                    break
        if "output_tok_per_s" in self.error_band_pct:
            out.append(("throughput", self.error_band_pct["output_tok_per_s"]))
        return out

    def calibration_label(self) -> str:
        """`calibration <status>`, and the models its profile was fitted on or the kinds of
        layout its runs used, where this prediction is for another."""
        parts = [f"calibration {self.calibration_status}"]
        parts += [t for t in (self.calibration_models, self.calibration_layouts) if t]
        return ", ".join(parts)


@dataclass(frozen=True, slots=True)
class SelfHosted:
    """A screened configuration rented at one cloud price, costed at the plan's volume."""

    screened: Screened
    cloud: CloudOffer
    perf: Performance
    cost: SelfHostedCost
    # verified, or unverified when the request allows it (set by the planner)
    support: Support | None = None

    @property
    def label(self) -> str:
        """e.g. '8x h200_sxm fp8 DP8 x EP8 vllm MTP2' (+ ' 1P2D')."""
        d = self.screened.dep
        text = (
            f"{d.num_gpus}x {d.gpu.id} {d.weights} {d.parallel.describe()} "
            f"{d.engine.name} MTP{d.mtp.num_draft_tokens}"
        )
        if self.screened.disaggregation:
            x, y = self.screened.disaggregation
            text += f" {x}P{y}D"
        return text


@dataclass(frozen=True, slots=True)
class Option:
    """One ranked answer."""

    kind: str
    usd_per_month: float
    usd_per_day: float
    traffic: DailyTraffic
    self_hosted: SelfHosted | None = None
    managed: ManagedOffer | None = None
    hybrid: HybridCost | None = None
    notes: tuple[str, ...] = ()

    @property
    def support(self) -> Support | None:
        """Whether what runs here is verified to serve (managed: the provider serves it)."""
        if self.self_hosted is not None:
            return self.self_hosted.support
        if self.managed is not None:
            return Support("verified", ("served by the provider itself",), ())
        return None

    @property
    def label(self) -> str:
        """What to run, in a few words."""
        parts = []
        if self.self_hosted is not None:
            parts.append(f"{self.self_hosted.label} @ {self.self_hosted.cloud.label}")
        if self.managed is not None:
            parts.append(f"API {self.managed.label}")
        return " + overflow to ".join(parts)

    @property
    def usd_per_mtok_blended(self) -> float:
        """The whole bill per million tokens."""
        return self.usd_per_day / self.traffic.tokens * 1e6


def daily_traffic(volume: Volume, stats: WorkloadStats) -> DailyTraffic:
    """The day's requests and tokens."""
    n = volume.requests_per_day
    return DailyTraffic(n, n * stats.mean_input_tokens, n * stats.mean_output_tokens)


def fleet_cost(
    screened: Screened,
    cloud: CloudOffer,
    capacity: float,
    volume: Volume,
    stats: WorkloadStats,
    prefill_share: float,
) -> SelfHostedCost:
    """The day's fleet: replicas per hour (scaled down where the cloud bills by the minute)."""
    usd_per_unit_hour = cloud.price.usd_per_gpu_hour * screened.gpus_per_unit
    schedule = replica_schedule(volume.hourly_req_per_s(), capacity, cloud.scales_down)
    return SelfHostedCost(
        usd_per_unit_hour, schedule, capacity, daily_traffic(volume, stats), prefill_share
    )


def self_hosted_option(sh: SelfHosted, request: PlanRequest, notes: Sequence[str]) -> Option:
    """A self-hosted option from its costed fleet."""
    cost = sh.cost
    return Option(
        "self-hosted",
        cost.usd_per_month(request.hours_per_month),
        cost.usd_per_day,
        cost.traffic,
        self_hosted=sh,
        notes=tuple(notes),
    )


def managed_option(
    offer: ManagedOffer, request: PlanRequest, traffic: DailyTraffic, notes: Sequence[str]
) -> Option:
    """A managed option: the day's requests at the offer's price per request."""
    per_day = offer.usd_per_request * traffic.requests
    return Option(
        "managed",
        per_day * request.hours_per_month / 24,
        per_day,
        traffic,
        managed=offer,
        notes=tuple(notes),
    )


def best_hybrid(
    sh: SelfHosted, offer: ManagedOffer, request: PlanRequest, stats: WorkloadStats
) -> Option | None:
    """The cheapest base below the peak replica count with the overflow on the API."""
    hourly = request.volume.hourly_req_per_s()
    peak = replicas_for(max(hourly), sh.perf.capacity_req_per_s)
    traffic = daily_traffic(request.volume, stats)
    best: HybridCost | None = None
    for base in range(1, peak):
        h = hybrid_cost(
            hourly,
            base,
            sh.perf.capacity_req_per_s,
            sh.cost.usd_per_replica_hour,
            offer.usd_per_request,
            traffic,
            sh.cost.prefill_time_share,
            sh.cloud.scales_down,
        )
        if best is None or h.usd_per_day < best.usd_per_day:
            best = h
    if best is None:
        return None
    note = (
        f"{best.base.peak_replicas} replica(s) carry {1 - best.overflow_share:.0%} of requests; "
        f"the peak-hour overflow ({best.overflow_share:.0%}) goes to {offer.provider.name} "
        "through the gateway (its p99 is unverified)"
    )
    based = SelfHosted(sh.screened, sh.cloud, sh.perf, best.base, sh.support)
    return Option(
        "hybrid",
        best.usd_per_month(request.hours_per_month),
        best.usd_per_day,
        traffic,
        self_hosted=based,
        managed=offer,
        hybrid=best,
        notes=(note,),
    )


def self_hosted_usd_per_day(sh: SelfHosted, volume: Volume, requests_per_day: float) -> float:
    """The fleet's daily bill at another daily volume (same shape, same replica)."""
    scaled = volume.scaled(requests_per_day)
    schedule = replica_schedule(
        scaled.hourly_req_per_s(), sh.perf.capacity_req_per_s, sh.cloud.scales_down
    )
    return sum(schedule) * 24 / len(schedule) * sh.cost.usd_per_replica_hour


def break_even_requests_per_day(
    sh: SelfHosted, offer: ManagedOffer, volume: Volume
) -> float | None:
    """Daily requests above which this fleet costs less than the API (None: below 1000x)."""
    return break_even(
        lambda v: self_hosted_usd_per_day(sh, volume, v),
        offer.usd_per_request,
        volume.requests_per_day * 1000,
    )


@dataclass(frozen=True, slots=True)
class BreakEvenBand:
    """The break-even with the fleet's capacity off by its typical throughput error either
    way (None: not below 1000x the volume)."""

    band_pct: float
    optimistic_requests_per_day: float | None  # capacity (1 + band) of the predicted
    pessimistic_requests_per_day: float | None  # capacity (1 - band)


def break_even_band(sh: SelfHosted, offer: ManagedOffer, volume: Volume) -> BreakEvenBand | None:
    """The break-even at the ends of the prediction's typical throughput error (a replica's
    capacity scales with its throughput); None where that error was never measured."""
    pct = sh.perf.error_band_pct.get("output_tok_per_s")
    if pct is None:
        return None
    ends = []
    for f in (1 + pct / 100, max(1 - pct / 100, 1e-3)):
        perf = replace(sh.perf, capacity_req_per_s=sh.perf.capacity_req_per_s * f)
        ends.append(break_even_requests_per_day(replace(sh, perf=perf), offer, volume))
    return BreakEvenBand(pct, ends[0], ends[1])


def rank(options: Sequence[Option]) -> list[Option]:
    """Cheapest first; ties go to self-hosted, then fewer GPUs."""

    def key(o: Option) -> tuple[float, int, int]:
        gpus = o.self_hosted.screened.gpus_per_unit if o.self_hosted else 0
        return (round(o.usd_per_month, 2), KINDS.index(o.kind), gpus)

    return sorted(options, key=key)


def reference_api(options: Sequence[Option]) -> Option | None:
    """The cheapest managed option with list prices: the yardstick for API-equivalent prices."""
    priced = [
        o
        for o in options
        if o.kind == "managed"
        and o.managed is not None
        and o.managed.model.input_usd_per_mtok is not None
        and o.managed.model.output_usd_per_mtok is not None
    ]
    return min(priced, key=lambda o: o.usd_per_day, default=None)


def api_equivalent_prices(o: Option, reference: Option) -> tuple[float, float]:
    """Input and output $/Mtok an API priced like `reference` (same input:output ratio, same
    cached-input discount) would list to bill what `o` costs for this workload."""
    assert reference.managed is not None
    m = reference.managed.model
    assert m.input_usd_per_mtok is not None and m.output_usd_per_mtok is not None
    factor = o.usd_per_day / reference.usd_per_day
    return m.input_usd_per_mtok * factor, m.output_usd_per_mtok * factor
