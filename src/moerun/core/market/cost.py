"""Cost arithmetic: replicas, schedules, $/hour, $/Mtok, API bills, hybrids and break-even.

Conventions (all stated in the plan report):
  - a replica is sized by its highest SLO-meeting request rate (its capacity); an hour's
    replicas are ceil(rate / capacity), at least one;
  - a month is `hours_per_month` hours (730 = 8,760 / 12), a day 24 hours;
  - self-hosted $/Mtok divide the day's GPU bill by the day's tokens; the bill is split between
    input and output by the share of GPU time the replicas spend on prompt tokens;
  - an API bills new prompt tokens at the input price and the part of the reusable prefix its
    cache hits (`cache_hit_fraction`) at the cached-input price.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

HOURS_PER_DAY = 24
SECONDS_PER_HOUR = 3_600
MTOK = 1e6


def replicas_for(req_per_s: float, capacity_req_per_s: float) -> int:
    """Replicas needed so that none runs above its capacity (at least one)."""
    if capacity_req_per_s <= 0:
        raise ValueError("a replica's capacity must be positive")
    # the epsilon keeps 2.0000000001 from becoming 3 through float noise
    return max(1, math.ceil(req_per_s / capacity_req_per_s - 1e-9))


def replica_schedule(
    hourly_req_per_s: Sequence[float], capacity_req_per_s: float, scale_down: bool
) -> tuple[int, ...]:
    """Replicas in each hour: the peak count all day, or each hour's own count."""
    if not scale_down:
        peak = replicas_for(max(hourly_req_per_s), capacity_req_per_s)
        return (peak,) * len(hourly_req_per_s)
    return tuple(replicas_for(r, capacity_req_per_s) for r in hourly_req_per_s)


@dataclass(frozen=True, slots=True)
class DailyTraffic:
    """What a day brings: requests, and input / output tokens."""

    requests: float
    input_tokens: float
    output_tokens: float

    @property
    def tokens(self) -> float:
        """Input plus output tokens."""
        return self.input_tokens + self.output_tokens


@dataclass(frozen=True, slots=True)
class SelfHostedCost:
    """A self-hosted fleet over one day: replicas per hour at a price per replica-hour."""

    usd_per_replica_hour: float
    schedule: tuple[int, ...]
    capacity_req_per_s: float
    traffic: DailyTraffic
    prefill_time_share: float

    @property
    def replica_hours_per_day(self) -> float:
        """Replica-hours billed per day."""
        return float(sum(self.schedule)) * HOURS_PER_DAY / len(self.schedule)

    @property
    def usd_per_day(self) -> float:
        """The day's GPU bill."""
        return self.replica_hours_per_day * self.usd_per_replica_hour

    @property
    def peak_replicas(self) -> int:
        """Replicas in the busiest hour."""
        return max(self.schedule)

    @property
    def utilization(self) -> float:
        """Requests served over what the billed replicas could serve within the SLO."""
        can = self.replica_hours_per_day * SECONDS_PER_HOUR * self.capacity_req_per_s
        return self.traffic.requests / can if can else 0.0

    def usd_per_month(self, hours_per_month: float) -> float:
        """The monthly bill."""
        return self.usd_per_day * hours_per_month / HOURS_PER_DAY

    @property
    def usd_per_mtok_input(self) -> float:
        """Share of the bill spent on prompts, per million input tokens."""
        return _per_mtok(self.usd_per_day * self.prefill_time_share, self.traffic.input_tokens)

    @property
    def usd_per_mtok_output(self) -> float:
        """Share of the bill spent on generation, per million output tokens."""
        share = 1 - self.prefill_time_share
        return _per_mtok(self.usd_per_day * share, self.traffic.output_tokens)

    @property
    def usd_per_mtok_blended(self) -> float:
        """The whole bill per million tokens (input plus output)."""
        return _per_mtok(self.usd_per_day, self.traffic.tokens)


def _per_mtok(usd: float, tokens: float) -> float:
    return usd / tokens * MTOK if tokens > 0 else math.inf


@dataclass(frozen=True, slots=True)
class TokenPrices:
    """An API's list prices per million tokens (cached input: None when not offered)."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float
    cached_input_usd_per_mtok: float | None = None


def api_usd_per_request(
    prices: TokenPrices,
    input_tokens: float,
    cached_tokens: float,
    output_tokens: float,
    cache_hit_fraction: float,
) -> float:
    """One average request's bill: new prompt tokens, cached prefix, output."""
    cached_price = prices.cached_input_usd_per_mtok
    billed_cached = cached_tokens * cache_hit_fraction if cached_price is not None else 0.0
    fresh = input_tokens - billed_cached
    return (
        fresh * prices.input_usd_per_mtok
        + billed_cached * (cached_price or 0.0)
        + output_tokens * prices.output_usd_per_mtok
    ) / MTOK


@dataclass(frozen=True, slots=True)
class HybridCost:
    """A self-hosted base of replicas with the overflow above its capacity sent to an API."""

    base: SelfHostedCost
    api_usd_per_request: float
    overflow_requests_per_day: float

    @property
    def usd_per_day(self) -> float:
        """GPU bill plus API bill."""
        return self.base.usd_per_day + self.overflow_requests_per_day * self.api_usd_per_request

    @property
    def overflow_share(self) -> float:
        """Share of the day's requests the API serves."""
        total = self.base.traffic.requests + self.overflow_requests_per_day
        return self.overflow_requests_per_day / total if total else 0.0

    def usd_per_month(self, hours_per_month: float) -> float:
        """The monthly bill."""
        return self.usd_per_day * hours_per_month / HOURS_PER_DAY


def hybrid_cost(
    hourly_req_per_s: Sequence[float],
    base_replicas: int,
    capacity_req_per_s: float,
    usd_per_replica_hour: float,
    api_usd_per_request: float,
    traffic: DailyTraffic,
    prefill_time_share: float,
    scale_down: bool,
) -> HybridCost:
    """`base_replicas` serve up to their capacity each hour; the API takes the rest."""
    slot_s = HOURS_PER_DAY * SECONDS_PER_HOUR / len(hourly_req_per_s)
    schedule, overflow = [], 0.0
    for rate in hourly_req_per_s:
        need = replicas_for(rate, capacity_req_per_s)
        schedule.append(min(base_replicas, need) if scale_down else base_replicas)
        overflow += max(0.0, rate - base_replicas * capacity_req_per_s) * slot_s
    kept = 1 - overflow / traffic.requests if traffic.requests else 1.0
    base = SelfHostedCost(
        usd_per_replica_hour,
        tuple(schedule),
        capacity_req_per_s,
        DailyTraffic(
            traffic.requests * kept, traffic.input_tokens * kept, traffic.output_tokens * kept
        ),
        prefill_time_share,
    )
    return HybridCost(base, api_usd_per_request, overflow)


def break_even_always_on(
    usd_per_replica_day: float, capacity_requests_per_day: float, api_usd_per_request: float
) -> float | None:
    """Requests/day above which always-on replicas cost less than the API (None: never).

    With R replicas billed all day, self-hosting costs R x d against a x V for the API; one
    replica carries V up to its capacity, so the curves cross at V = d / a if that is within one
    replica's capacity, and (cost per request at full load being the same for every R) nowhere
    otherwise.
    """
    if api_usd_per_request <= 0:
        return None
    volume = usd_per_replica_day / api_usd_per_request
    return volume if volume <= capacity_requests_per_day * (1 + 1e-9) else None


def break_even(
    self_usd_per_day: Callable[[float], float],
    api_usd_per_request: float,
    max_requests_per_day: float,
    num_points: int = 240,
) -> float | None:
    """The lowest requests/day at which `self_usd_per_day(v) <= api cost`, up to a maximum.

    Scans a geometric grid (self-hosted cost is a step function of volume), then bisects the
    first crossing to 0.1%.
    """
    lo_v = max_requests_per_day / 1e5
    ratio = (max_requests_per_day / lo_v) ** (1 / (num_points - 1))
    prev: float | None = None
    for i in range(num_points):
        v = float(lo_v * ratio**i)
        if self_usd_per_day(v) <= api_usd_per_request * v:
            if prev is None:
                return v
            a, b = prev, v
            while b - a > 1e-3 * b:
                mid = (a + b) / 2
                if self_usd_per_day(mid) <= api_usd_per_request * mid:
                    b = mid
                else:
                    a = mid
            return b
        prev = v
    return None
