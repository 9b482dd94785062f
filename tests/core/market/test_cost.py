"""Cost arithmetic against hand-computed cases: replicas, utilisation, $/Mtok, break-even."""

from __future__ import annotations

import math

import pytest

from moerun.core.market.cost import (
    DailyTraffic,
    SelfHostedCost,
    TokenPrices,
    api_usd_per_request,
    break_even,
    break_even_always_on,
    hybrid_cost,
    replica_schedule,
    replicas_for,
)
from moerun.core.market.pricing import GpuPrice


@pytest.mark.parametrize(
    ("rate", "capacity", "replicas"),
    [(10.0, 4.0, 3), (8.0, 4.0, 2), (0.0, 4.0, 1), (4.000000001, 4.0, 1), (4.1, 4.0, 2)],
)
def test_replicas_for(rate: float, capacity: float, replicas: int) -> None:
    assert replicas_for(rate, capacity) == replicas


def test_replicas_need_a_capacity() -> None:
    with pytest.raises(ValueError, match="positive"):
        replicas_for(1.0, 0.0)


def test_schedule_always_on_or_per_hour() -> None:
    hourly = [1.0, 2.0, 4.0]
    # ceil(4 / 1.5) = 3 replicas at the peak
    assert replica_schedule(hourly, 1.5, scale_down=False) == (3, 3, 3)
    # ceil(1/1.5) = 1, ceil(2/1.5) = 2, ceil(4/1.5) = 3
    assert replica_schedule(hourly, 1.5, scale_down=True) == (1, 2, 3)


def test_self_hosted_day_month_utilisation_and_per_mtok() -> None:
    # 86,400 requests/day of 1,000 input and 100 output tokens
    traffic = DailyTraffic(86_400, 86_400 * 1_000, 86_400 * 100)
    cost = SelfHostedCost(20.0, (2,) * 24, 1.0, traffic, prefill_time_share=0.25)
    assert cost.replica_hours_per_day == 48
    assert cost.usd_per_day == 960  # 48 replica-hours x $20
    assert cost.usd_per_month(730) == pytest.approx(960 * 730 / 24)  # $29,200
    # 2 replicas x 1 req/s x 86,400 s could serve 172,800 requests: half used
    assert cost.utilization == pytest.approx(0.5)
    # $240 of prompt time over 86.4M input tokens; $720 of decode over 8.64M output tokens
    assert cost.usd_per_mtok_input == pytest.approx(240 / 86.4)
    assert cost.usd_per_mtok_output == pytest.approx(720 / 8.64)
    assert cost.usd_per_mtok_blended == pytest.approx(960 / 95.04)
    assert cost.peak_replicas == 2


def test_api_bill_with_and_without_cached_input() -> None:
    prices = TokenPrices(1.0, 4.0, 0.2)
    # 10,000 input of which 8,000 reusable, half of that billed as cached; 500 output:
    # 6,000 x $1 + 4,000 x $0.2 + 500 x $4, per million
    assert api_usd_per_request(prices, 10_000, 8_000, 500, 0.5) == pytest.approx(0.0088)
    no_cache = TokenPrices(1.0, 4.0, None)
    assert api_usd_per_request(no_cache, 10_000, 8_000, 500, 0.5) == pytest.approx(0.012)
    # every reusable token cached: 2,000 x $1 + 8,000 x $0.2 + 500 x $4
    assert api_usd_per_request(prices, 10_000, 8_000, 500, 1.0) == pytest.approx(0.0056)


def test_break_even_closed_form() -> None:
    # one replica costs $480/day; the API $0.01/request: even at 48,000 requests/day
    assert break_even_always_on(480, 86_400, 0.01) == pytest.approx(48_000)
    # a replica that carries only 43,200/day never gets there (every R costs $0.0111/request)
    assert break_even_always_on(480, 43_200, 0.01) is None


def test_break_even_scan_matches_the_closed_form() -> None:
    def fleet(v: float) -> float:  # flat traffic, 1 req/s per replica, $20/hour always on
        return math.ceil(v / 86_400 - 1e-9) * 480.0

    found = break_even(fleet, 0.01, 10_000_000)
    assert found == pytest.approx(48_000, rel=2e-3)
    assert break_even(lambda v: math.ceil(v / 43_200) * 480.0, 0.01, 10_000_000) is None


def test_hybrid_overflow_goes_to_the_api() -> None:
    # 12 hours at 1 req/s, 12 at 3 req/s; one replica carries 2 req/s at $10/hour
    hourly = [1.0] * 12 + [3.0] * 12
    requests = 12 * 3600 * 1 + 12 * 3600 * 3  # 172,800
    traffic = DailyTraffic(requests, requests * 1_000, requests * 100)
    h = hybrid_cost(hourly, 1, 2.0, 10.0, 0.001, traffic, 0.3, scale_down=False)
    assert h.base.usd_per_day == 240  # one replica all day
    assert h.overflow_requests_per_day == pytest.approx(12 * 3600 * 1.0)  # 43,200
    assert h.usd_per_day == pytest.approx(240 + 43.2)
    assert h.overflow_share == pytest.approx(0.25)
    # the base serves the rest, so its utilisation is 129,600 / (24 x 3600 x 2)
    assert h.base.utilization == pytest.approx(129_600 / 172_800)
    # two replicas always on would cost $480/day: the hybrid is cheaper
    assert h.usd_per_day < 480


def test_empty_day_and_free_api_edge_cases() -> None:
    idle = SelfHostedCost(10.0, (1,) * 24, 2.0, DailyTraffic(0, 0, 0), prefill_time_share=0.5)
    assert idle.usd_per_day == 240 and idle.utilization == 0
    assert math.isinf(idle.usd_per_mtok_input) and math.isinf(idle.usd_per_mtok_output)
    assert math.isinf(idle.usd_per_mtok_blended)
    # no replica capacity billed: utilisation is 0, not a division by zero
    none = SelfHostedCost(10.0, (0,) * 24, 2.0, DailyTraffic(5, 5, 5), prefill_time_share=0.5)
    assert none.utilization == 0
    # a free API is never beaten
    assert break_even_always_on(480, 86_400, 0.0) is None
    # a fleet cheaper than the API even at the smallest volume scanned: the first grid point
    assert break_even(lambda v: 0.0, 0.01, 1e6) == pytest.approx(10.0)
    assert DailyTraffic(1, 2, 3).tokens == 5


def test_hybrid_scaling_down_keeps_only_the_replicas_each_hour_needs() -> None:
    # 12 hours at 1 req/s (one replica enough), 12 at 5 req/s; base of 2 replicas of 2 req/s
    hourly = [1.0] * 12 + [5.0] * 12
    requests = 12 * 3600 * (1 + 5)
    traffic = DailyTraffic(requests, requests * 1_000, requests * 100)
    h = hybrid_cost(hourly, 2, 2.0, 10.0, 0.002, traffic, 0.3, scale_down=True)
    assert h.base.schedule == (1,) * 12 + (2,) * 12
    assert h.base.usd_per_day == 10.0 * (12 + 24)
    # above 4 req/s the API takes 1 req/s for 12 hours
    assert h.overflow_requests_per_day == pytest.approx(43_200)
    assert h.base.traffic.requests == pytest.approx(requests - 43_200)
    assert h.base.traffic.input_tokens == pytest.approx((requests - 43_200) * 1_000)
    assert h.base.traffic.output_tokens == pytest.approx((requests - 43_200) * 100)
    assert h.base.prefill_time_share == 0.3 and h.base.capacity_req_per_s == 2.0
    assert h.usd_per_day == pytest.approx(360 + 86.4)
    assert h.usd_per_month(730) == pytest.approx((360 + 86.4) * 730 / 24)
    assert h.overflow_share == pytest.approx(43_200 / requests)
    # an hour that needs no overflow: none at all
    calm = hybrid_cost([1.0] * 24, 1, 2.0, 10.0, 0.002, traffic, 0.3, scale_down=False)
    assert calm.overflow_requests_per_day == 0 and calm.base.traffic == traffic


def test_gpu_price_per_node_and_for_a_rental() -> None:
    def price(**kw: object) -> GpuPrice:
        return GpuPrice("x", "X", "h200_sxm", "on_demand", 3.5, **kw)  # type: ignore[arg-type]

    # A listed instance price wins; else GPUs x the GPU price; else not known.
    assert price(num_gpus_per_instance=8, usd_per_instance_hour=30.0).usd_per_node_hour == 30.0
    assert price(num_gpus_per_instance=8).usd_per_node_hour == pytest.approx(28.0)
    assert price().usd_per_node_hour is None
    assert price().usd_for(4, 2.5) == pytest.approx(35.0)  # 4 GPUs x 2.5 h x $3.50


def test_replicas_below_one_request_per_second() -> None:
    # A slow replica (0.5 req/s, long generations) is still a replica: 1.2 req/s needs 3.
    assert replicas_for(1.2, 0.5) == 3
    with pytest.raises(ValueError) as err:
        replicas_for(1.0, -2.0)
    assert str(err.value) == "a replica's capacity must be positive"


def test_api_bill_prices_each_token_kind() -> None:
    # 10,000 prompt tokens, 8,000 of them a reusable prefix that hits the cache half the time:
    # 6,000 fresh x $2 + 4,000 cached x $0.50 + 500 output x $8, per million.
    prices = TokenPrices(2.0, 8.0, 0.5)
    assert api_usd_per_request(prices, 10_000, 8_000, 500, 0.5) == pytest.approx(0.018)
    # A free cache: the cached tokens cost nothing (not the input price, not $1).
    free = TokenPrices(2.0, 8.0, 0.0)
    assert api_usd_per_request(free, 10_000, 8_000, 500, 0.5) == pytest.approx(0.016)


def test_per_mtok_of_a_day_with_one_token() -> None:
    day = DailyTraffic(requests=1, input_tokens=0.5, output_tokens=0.5)
    cost = SelfHostedCost(24.0, (1,), 1.0, day, prefill_time_share=0.5)
    # $576 a day over one token: $576 million per million tokens.
    assert cost.usd_per_mtok_blended == pytest.approx(576e6)


def test_break_even_edges() -> None:
    # Equal costs at every volume: self-hosting is no dearer from the first volume scanned.
    assert break_even(lambda v: 0.01 * v, 0.01, 1e6) == pytest.approx(10.0)
    # A crossing at the top of the range is found; one just above it is not.
    top = 1e6
    at_top = break_even(lambda v: 0.0 if v >= top * (1 - 1e-9) else math.inf, 0.01, top)
    assert at_top == pytest.approx(top, rel=1e-3)
    assert break_even(lambda v: 0.0 if v > 1.01 * top else math.inf, 0.01, top) is None
    # Always-on break-even exactly at one replica's capacity still counts: $512 a day at
    # $0.50 a request crosses at 1,024 requests, which one replica carries.
    assert break_even_always_on(512, 1024, 0.5) == 1024
    assert break_even_always_on(512, 1023, 0.5) is None


def test_hybrid_always_on_keeps_its_base_and_an_empty_day_is_free_of_api() -> None:
    quiet = DailyTraffic(requests=0.5 * 86_400, input_tokens=0.0, output_tokens=0.0)
    h = hybrid_cost([0.5] * 24, 2, 1.0, 10.0, 0.01, quiet, 0.3, scale_down=False)
    assert h.base.schedule == (2,) * 24  # always on: both replicas, though one would do
    assert h.overflow_requests_per_day == 0
    empty = hybrid_cost([0.0] * 24, 1, 1.0, 10.0, 0.01, DailyTraffic(0, 0, 0), 0.3, True)
    assert empty.overflow_requests_per_day == 0 and empty.usd_per_day == 240.0
