"""sgl-router's load-imbalance rule, the one guard both the gateway and the simulator apply
before they follow prefix affinity. The thresholds are facts about sgl-router and come from the
catalog (`catalog.engines.sgl_router_balance`); nothing here has a default."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace


@dataclass(frozen=True, slots=True)
class BalanceRule:
    """sgl-router's cache-aware policy switches to the least-loaded worker while the load is
    imbalanced: max - min > abs_threshold AND max > rel_threshold x min, over every worker's
    in-flight requests (sgl-router/src/policies/cache_aware.rs, `select_worker`)."""

    abs_threshold: float  # requests
    rel_threshold: float

    def __post_init__(self) -> None:
        if self.abs_threshold < 0 or self.rel_threshold < 1:
            raise ValueError("balance thresholds: abs >= 0 requests and rel >= 1")

    def with_overrides(
        self, abs_threshold: float | None = None, rel_threshold: float | None = None
    ) -> BalanceRule:
        """This rule with the thresholds a deployment sets (None: keep this one's), as the
        gateway's `routing.balance_abs` / `balance_rel` and `simulate --balance-abs/-rel` do."""
        return replace(
            self,
            abs_threshold=self.abs_threshold if abs_threshold is None else abs_threshold,
            rel_threshold=self.rel_threshold if rel_threshold is None else rel_threshold,
        )

    def imbalanced(self, loads: Sequence[float]) -> bool:
        """Whether the spread of `loads` sends the next request to the least-loaded worker."""
        if not loads:
            return False
        high, low = max(loads), min(loads)
        return high - low > self.abs_threshold and high > self.rel_threshold * low
