"""Routing, circuit breaking, observed latency and metering: pure logic, no I/O."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from moerun.core.market.policy import Policy
from moerun.core.traffic.balance import BalanceRule
from moerun.core.traffic.circuit import (
    CLIENT_ERROR,
    CLOSED,
    HALF_OPEN,
    MISCONFIGURED,
    OPEN,
    SERVER_ERROR,
    THROTTLED,
    TRANSPORT,
    BreakerConfig,
    CircuitBreaker,
    backoff_s,
    classify,
    retryable,
)
from moerun.core.traffic.latency import LatencyWindow
from moerun.core.traffic.metering import Prices, period_end, period_id, period_start
from moerun.core.traffic.routing import (
    MANAGED,
    SELF_HOSTED,
    Candidate,
    PrefixIndex,
    RoutingConfig,
    SessionTable,
    order_backends,
    prompt_blocks,
)

# sglang-router 0.3.2's defaults (sglang_router/router_args.py: balance_abs_threshold 64,
# balance_rel_threshold 1.5)
SGL_ROUTER = BalanceRule(abs_threshold=64, rel_threshold=1.5)
CFG = RoutingConfig(block_chars=8, balance=SGL_ROUTER)
SYSTEM = b"You are a careful assistant. " * 8


def replica(name: str, in_flight: int = 0, **kw: object) -> Candidate:
    return Candidate(name=name, kind=SELF_HOSTED, in_flight=in_flight, **kw)  # type: ignore[arg-type]


def managed(name: str, usd: float, ttft: float | None = None, **kw: object) -> Candidate:
    return Candidate(
        name=name,
        kind=MANAGED,
        input_usd_per_mtok=usd,
        output_usd_per_mtok=usd * 3,
        ttft_p50_s=ttft,
        **kw,  # type: ignore[arg-type]
    )


def order(
    cands: list[Candidate],
    text: bytes = SYSTEM,
    index: PrefixIndex | None = None,
    session: str | None = None,
    config: RoutingConfig = CFG,
) -> list[str]:
    index = index or PrefixIndex(config)
    return order_backends(cands, prompt_blocks(text, config), index, session, 1000, 100, config)


def test_blocks_chain_and_drop_the_partial_tail() -> None:
    a = prompt_blocks(b"abcdefgh" * 3 + b"xyz", CFG)
    b = prompt_blocks(b"abcdefgh" * 3, CFG)
    assert a == b and len(a) == 3
    assert prompt_blocks(b"Xbcdefgh" + b"abcdefgh" * 2, CFG)[1] != a[1]  # chained on the prefix


def test_prefix_affinity_goes_to_the_replica_holding_the_prefix() -> None:
    index = PrefixIndex(CFG)
    index.insert("b", prompt_blocks(SYSTEM, CFG))
    assert order([replica("a"), replica("b")], SYSTEM + b"new question", index)[0] == "b"
    # A different prompt goes by load.
    assert order([replica("a"), replica("b", 1)], b"other " * 20, index)[0] == "a"


def test_load_guard_stops_a_hot_prefix_pinning_one_replica() -> None:
    # sgl-router (cache_aware.rs): imbalanced when max - min > 64 AND max > 1.5 x min; then
    # the least-loaded worker, else the longest cached prefix ("a" holds the prompt)
    index = PrefixIndex(CFG)
    index.insert("a", prompt_blocks(SYSTEM, CFG))
    for a_load, b_load, first in [
        (3, 0, "a"),
        (64, 0, "a"),  # spread 64 is not more than 64
        (65, 0, "b"),
        (66, 2, "a"),  # spread 64 again
        (67, 2, "b"),
        (200, 134, "a"),  # spread 66, but 200 is not more than 1.5 x 134 = 201
        (202, 134, "b"),
        (2, 67, "a"),  # imbalanced, and the prefix holder is the least loaded
    ]:
        cands = [replica("a", a_load), replica("b", b_load)]
        assert order(cands, SYSTEM, index)[0] == first, (a_load, b_load)


def test_imbalance_is_judged_over_every_replica() -> None:
    # max and min over all workers, as sgl-router computes them: a third, busy replica makes
    # the fleet imbalanced, and the request goes to the least loaded even though the prefix
    # holder "a" is not the busiest.
    index = PrefixIndex(CFG)
    index.insert("a", prompt_blocks(SYSTEM, CFG))
    assert order([replica("a", 10), replica("b", 5)], SYSTEM, index)[0] == "a"
    busy = [replica("a", 10), replica("b", 5), replica("c", 70)]
    assert order(busy, SYSTEM, index)[0] == "b"


def test_prefix_index_evicts_oldest_blocks() -> None:
    config = RoutingConfig(balance=SGL_ROUTER, block_chars=8, blocks_per_replica=4)
    index = PrefixIndex(config)
    index.insert("a", prompt_blocks(b"1" * 8 * 3, config))
    index.insert("a", prompt_blocks(b"2" * 8 * 3, config))
    assert index.num_blocks("a") == 4
    assert index.num_matched("a", prompt_blocks(b"2" * 8 * 3, config)) == 3


def test_session_binding_wins_unless_overloaded() -> None:
    sessions = SessionTable(CFG)
    sessions.bind("agent-1", "b", now_s=0.0)
    bound = sessions.get("agent-1", now_s=10.0)
    assert order([replica("a"), replica("b", 2)], b"x" * 40, session=bound)[0] == "b"
    assert order([replica("a"), replica("b", 64)], b"x" * 40, session=bound)[0] == "b"
    assert order([replica("a"), replica("b", 65)], b"x" * 40, session=bound)[0] == "a"
    assert sessions.get("agent-1", now_s=CFG.session_ttl_s + 1) is None


def test_managed_ranked_by_cost_and_latency() -> None:
    cheap_slow = managed("cheap", 0.5, ttft=2.0)
    dear_fast = managed("dear", 2.0, ttft=0.2)
    assert order([cheap_slow, dear_fast])[0] == "dear"  # 0.25 + 1.0 vs 1.0 + 0.1
    cost_only = RoutingConfig(balance=SGL_ROUTER, block_chars=8, latency_weight=0.0)
    assert order([cheap_slow, dear_fast], config=cost_only)[0] == "cheap"


def test_overflow_spills_to_managed_and_comes_back() -> None:
    config = RoutingConfig(
        balance=SGL_ROUTER, block_chars=8, overflow_in_flight=4, overflow_ttft_s=1.0
    )
    busy = [replica("a", 4), replica("b", 5), managed("m", 1.0)]
    assert order(busy, config=config) == ["m", "a", "b"]
    slow = [replica("a", 0, ttft_p50_s=1.5), managed("m", 1.0)]
    assert order(slow, config=config)[0] == "m"
    calm = [replica("a", 1), replica("b", 5), managed("m", 1.0)]
    assert order(calm, config=config) == ["a", "m", "b"]


def test_unavailable_backends_come_last() -> None:
    cands = [replica("a", available=False), replica("b"), managed("m", 1.0, available=False)]
    assert order(cands) == ["b", "a", "m"]


@given(
    st.lists(
        st.tuples(
            st.sampled_from([SELF_HOSTED, MANAGED]),
            st.integers(0, 50),
            st.booleans(),
            st.one_of(st.none(), st.floats(0.01, 5)),
        ),
        min_size=1,
        max_size=8,
    ),
    st.binary(max_size=300),
)
def test_order_is_a_permutation_of_the_candidates(
    specs: list[tuple[str, int, bool, float | None]], text: bytes
) -> None:
    cands = [
        Candidate(f"c{i}", kind, in_flight=n, available=up, ttft_p50_s=ttft, input_usd_per_mtok=i)
        for i, (kind, n, up, ttft) in enumerate(specs)
    ]
    config = RoutingConfig(
        balance=SGL_ROUTER, block_chars=8, overflow_in_flight=10, overflow_ttft_s=1.0
    )
    result = order(cands, text, config=config)
    assert sorted(result) == sorted(c.name for c in cands)


def test_outcomes_are_classified_for_retry_and_breaker() -> None:
    assert classify(None) == TRANSPORT and retryable(TRANSPORT)
    assert classify(429) == THROTTLED and classify(408) == THROTTLED
    assert classify(503) == SERVER_ERROR and retryable(SERVER_ERROR)
    assert classify(400) == CLIENT_ERROR and not retryable(CLIENT_ERROR)
    assert classify(451) == CLIENT_ERROR
    for status in (401, 403, 404):  # the gateway chose the key, URL and model: not the client
        assert classify(status) == MISCONFIGURED and retryable(MISCONFIGURED)


def test_circuit_breaker_state_machine() -> None:
    cb = CircuitBreaker(BreakerConfig(failure_threshold=3, cooldown_s=10.0))
    for t in range(2):
        cb.on_attempt(float(t))
        cb.record_failure(float(t))
    assert cb.state == CLOSED
    cb.record_success()  # a success resets the consecutive count
    for t in range(3):
        cb.record_failure(float(t))
    assert cb.state == OPEN and not cb.allows(5.0) and cb.allows(12.0)
    cb.on_attempt(12.0)
    assert cb.state == HALF_OPEN and not cb.allows(12.1)  # one probe at a time
    cb.record_failure(12.5)
    assert cb.state == OPEN and not cb.allows(20.0)
    cb.on_attempt(23.0)
    cb.record_success()
    assert cb.state == CLOSED and cb.allows(23.0)


def test_backoff_grows_caps_and_jitters() -> None:
    rng = random.Random(0)
    delays = [backoff_s(k, rng, base_s=0.05, cap_s=1.0, jitter=0.0) for k in range(12)]
    assert delays[0] == 0.05 and delays[1] == 0.05 * 1.5 and max(delays) == 1.0
    jittered = [backoff_s(0, rng) for _ in range(100)]
    assert all(0.04 <= d <= 0.06 for d in jittered) and len(set(jittered)) > 50


def test_latency_window_ages_out_and_caches() -> None:
    w = LatencyWindow(horizon_s=10.0, refresh_s=0.0)
    for i in range(100):
        w.add(i / 100, now_s=0.0)
    p50, p99 = w.quantiles(now_s=1.0)
    assert p50 == 0.5 and p99 == 0.99
    assert w.quantiles(now_s=20.0) == (None, None)


def test_cost_and_budget_periods() -> None:
    p = Prices(input_usd_per_mtok=1.0, cached_input_usd_per_mtok=0.1, output_usd_per_mtok=4.0)
    assert p.cost_usd(1_000_000, 500_000, 250_000) == 0.5 + 0.05 + 1.0
    moment = datetime(2026, 12, 30, 15, 0, tzinfo=UTC)
    assert period_start(moment, "month") == datetime(2026, 12, 1, tzinfo=UTC)
    assert period_end(moment, "month") == datetime(2027, 1, 1, tzinfo=UTC)
    assert period_start(moment, "week") == datetime(2026, 12, 28, tzinfo=UTC)  # a Monday
    assert period_id(moment, "month") == "month:2026-12"
    assert period_id(moment, "day") == "day:2026-12-30"


def test_policy_accepts_the_gateway_spelling() -> None:
    short = Policy.from_dict({"jurisdictions": ["eu"], "certifications": ["SOC2-TYPE2"]})
    assert short == Policy.from_dict(
        {"allowed_jurisdictions": ["EU"], "required_certifications": ["soc2-type2"]}
    )


def test_sessions_behind_a_long_shared_system_prompt_keep_their_replicas() -> None:
    # issue 15: an 8k-token system prompt (~45 KiB) shared by every agentic session. Each
    # session's history lives on one replica; its next turn must go back there even when
    # that replica is the busier one (within the guard), not to an idle replica that holds
    # only the system prompt.
    config = RoutingConfig(balance=SGL_ROUTER)
    system = b"You are a coding agent with tools. " * 1300  # 45,500 bytes
    history = {name: system + f" session {name}: ".encode() * 400 for name in ("a", "b")}
    index = PrefixIndex(config)
    for name, text in history.items():
        index.insert(name, prompt_blocks(text, config))
    assert prompt_blocks(history["a"], config) != prompt_blocks(history["b"], config)
    for name, other in (("a", "b"), ("b", "a")):
        turn = history[name] + b" tool output " * 50
        cands = [replica(name, 4), replica(other, 1)]
        assert order(cands, turn, index, config=config)[0] == name
    # a new session (system prompt only) goes by load
    assert order([replica("a", 4), replica("b", 1)], system, index, config=config)[0] == "b"


def test_round_robin_and_least_load_policies() -> None:
    rr = RoutingConfig(balance=SGL_ROUTER, block_chars=8, policy="round-robin")
    index = PrefixIndex(rr)
    index.insert("b", prompt_blocks(SYSTEM, rr))
    cands = [replica("a", 9), replica("b"), replica("c")]
    firsts = [
        order_backends(cands, prompt_blocks(SYSTEM, rr), index, None, 10, 1, rr, turn=t)[0]
        for t in range(6)
    ]
    assert firsts == ["a", "b", "c", "a", "b", "c"]  # blind to the prefix on b and a's load
    ll = RoutingConfig(balance=SGL_ROUTER, block_chars=8, policy="least-load")
    assert order(cands, SYSTEM, index, config=ll)[0] in ("b", "c")
    assert order([replica("a", 3), replica("b", 1)], SYSTEM, index, config=ll) == ["b", "a"]
