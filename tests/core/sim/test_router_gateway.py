"""The simulator's prefix-affinity router decides as the gateway does (issue 15, item 7).

The gateway's rule (`moerun.core.traffic.routing.rank_self_hosted`) under a balance rule of
4 requests and a factor 1.5 (small thresholds, so that two replicas cross them; the catalog's
sgl-router thresholds are checked in test_router.py): the fleet is imbalanced when the most
loaded replica exceeds the least loaded one by more than 4 requests and by a factor 1.5; then
the least loaded replica takes the request; otherwise the longest cached prefix wins, then the
lower load.
"""

from __future__ import annotations

import pytest

from moerun.core.sim.build import build_replica
from moerun.core.sim.engine import EngineReplica, SimRequest
from moerun.core.sim.router import Router
from moerun.core.traffic.balance import BalanceRule
from tests.conftest import make_deployment

SYSTEM = ("system", 8000)


def run_once(replica: EngineReplica, rid: int, segments: tuple[tuple[str, int], ...]) -> None:
    """Serve one request to its end, so that its prompt is in the replica's prefix cache."""
    t = 0.0
    replica.submit(SimRequest(rid, segments, 1, t))
    while replica.busy:
        t += replica.step(t).duration_s


def fleet(loads: tuple[int, int], cached: tuple[tuple[tuple[str, int], ...], ...]) -> Router:
    """Two replicas: replica j has served `cached[j]` and has `loads[j]` requests waiting."""
    replicas = [build_replica(make_deployment()) for _ in range(2)]
    rid = 0
    for replica, prompt, load in zip(replicas, cached, loads, strict=True):
        if prompt:
            run_once(replica, rid, prompt)
            rid += 1
        for _ in range(load):
            replica.submit(SimRequest(rid, ((f"other{rid}", 500),), 10, 0.0))
            rid += 1
        assert replica.load() == load
    return Router("prefix-affinity", replicas, BalanceRule(abs_threshold=4, rel_threshold=1.5))


def turn(*segments: tuple[str, int]) -> SimRequest:
    return SimRequest(1000, segments, 10, 0.0)


@pytest.mark.parametrize(
    ("loads", "expected"),
    [
        ((4, 0), 0),  # 4 more than the least loaded: affinity holds
        ((5, 0), 1),  # 5 more, and over 1.5x: overloaded, the least loaded replica takes it
        ((7, 2), 1),  # 5 more and 3.5x
        ((8, 4), 0),  # 4 more
        ((15, 10), 0),  # 5 more but only 1.5x
    ],
)
def test_the_load_guard_is_the_gateways(loads: tuple[int, int], expected: int) -> None:
    router = fleet(loads, ((SYSTEM, ("user", 100)), ()))
    assert router.choose(turn(SYSTEM, ("user2", 200))) == expected


def test_the_longest_cached_prefix_wins_over_load() -> None:
    # replica 1 holds the shared system prompt only; replica 0 holds this session's history
    # too and is busier, within the guard: the history keeps the session
    history = (SYSTEM, ("turn0", 3000))
    router = fleet((3, 0), (history, (SYSTEM, ("another", 300))))
    assert router.choose(turn(*history, ("turn1", 200))) == 0


def test_a_cold_prompt_goes_to_the_least_loaded() -> None:
    router = fleet((1, 2), ((SYSTEM, ("user", 100)), ()))
    assert router.choose(turn(("new-system", 4000), ("user", 100))) == 0
