"""The simulator's router: prefix affinity under sgl-router's imbalance rule."""

from __future__ import annotations

import pytest

from moerun.core.sim.build import SimOptions
from moerun.core.sim.engine import SimRequest
from moerun.core.sim.router import Router
from moerun.core.traffic.balance import BalanceRule

# sglang-router 0.3.2's defaults (sglang_router/router_args.py)
SGL_ROUTER = BalanceRule(abs_threshold=64, rel_threshold=1.5)


class _KV:
    def __init__(self, hit: int) -> None:
        self.hit = hit
        self.cached_tokens = hit

    def peek(self, segments: object) -> int:
        return self.hit


class _Replica:
    """What the router reads of a replica: its load and its cached prefix for a prompt."""

    def __init__(self, load: int, hit: int) -> None:
        self._load = load
        self.kv = _KV(hit)

    def load(self) -> int:
        return self._load


def choose(loads_hits: list[tuple[int, int]]) -> int:
    replicas = [_Replica(load, hit) for load, hit in loads_hits]
    router = Router("prefix-affinity", replicas, SGL_ROUTER)  # type: ignore[arg-type]
    return router.choose(SimRequest(0, (("prompt", 2000),), 1, 0.0))


@pytest.mark.parametrize(
    ("loads", "expected"),
    [
        # replica 0 holds the prefix; sgl-router (cache_aware.rs) goes to the least loaded
        # when max - min > 64 AND max > 1.5 x min, over every worker
        ((3, 0), 0),
        ((64, 0), 0),
        ((65, 0), 1),
        ((66, 2), 0),
        ((67, 2), 1),
        ((200, 134), 0),  # spread 66, but 200 <= 1.5 x 134
        ((202, 134), 1),
        ((10, 5, 70), 1),  # a third busy replica makes the fleet imbalanced
    ],
)
def test_prefix_affinity_until_the_loads_are_imbalanced(
    loads: tuple[int, ...], expected: int
) -> None:
    hits = [1000] + [0] * (len(loads) - 1)
    assert choose(list(zip(loads, hits, strict=True))) == expected


def test_no_cached_prefix_goes_to_the_least_loaded() -> None:
    assert choose([(5, 0), (3, 0)]) == 1


def test_prefix_affinity_needs_the_balance_rule() -> None:
    with pytest.raises(ValueError, match="balance rule"):
        Router("prefix-affinity", [])
    with pytest.raises(ValueError, match="balance rule"):
        SimOptions(routing="prefix-affinity")
    Router("least-load", [])  # the other policies do not read it


def test_balance_thresholds_are_validated() -> None:
    with pytest.raises(ValueError):
        BalanceRule(abs_threshold=-1, rel_threshold=1.5)
    with pytest.raises(ValueError):
        BalanceRule(abs_threshold=64, rel_threshold=0.5)
