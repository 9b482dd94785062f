"""Routing requests across replicas: round robin, least load, or prefix affinity.

Prefix affinity sends a request to the replica whose prefix cache holds the longest prefix of
its prompt (as SGLang's cache-aware router does), unless the replicas' loads are imbalanced by
sgl-router's rule (`BalanceRule`, thresholds from the catalog), when the least-loaded replica
takes it, so a hot prefix cannot pin one replica while others idle. Ties go to the
least-loaded replica.
"""

from __future__ import annotations

from moerun.core.sim.engine import EngineReplica, SimRequest
from moerun.core.traffic.balance import BalanceRule

ROUTINGS = ("round-robin", "least-load", "prefix-affinity")


class Router:
    """Chooses a replica index for each request."""

    def __init__(
        self, policy: str, replicas: list[EngineReplica], balance: BalanceRule | None = None
    ) -> None:
        if policy not in ROUTINGS:
            raise ValueError(f"routing must be one of {ROUTINGS}, not {policy!r}")
        if policy == "prefix-affinity" and balance is None:
            raise ValueError("prefix-affinity routing needs sgl-router's balance rule")
        self.policy = policy
        self.balance = balance
        self.replicas = replicas
        self._next = 0

    def choose(self, req: SimRequest) -> int:
        """The replica for `req`."""
        n = len(self.replicas)
        if n == 1:
            return 0
        if self.policy == "round-robin":
            i = self._next
            self._next = (i + 1) % n
            return i
        loads = [r.load() for r in self.replicas]
        least = min(range(n), key=lambda j: loads[j])
        if self.policy == "least-load":
            return least
        hits = [r.kv.peek(req.segments) for r in self.replicas]
        best = max(range(n), key=lambda j: (hits[j], -loads[j]))
        assert self.balance is not None
        if hits[best] == 0 or self.balance.imbalanced(loads):
            return least
        return best
