"""Routing requests across replicas: round robin, least load, or prefix affinity.

Prefix affinity sends a request to the replica whose prefix cache holds the longest prefix of
its prompt (as SGLang's cache-aware router does), unless that replica's load exceeds the
least-loaded replica's by more than the guard (`1.5 x min + 8` requests), so a hot prefix
cannot pin one replica while others idle. Ties go to the least-loaded replica.
"""

from __future__ import annotations

from moerun.core.sim.engine import EngineReplica, SimRequest

ROUTINGS = ("round-robin", "least-load", "prefix-affinity")
GUARD_FACTOR = 1.5
GUARD_SLACK = 8


class Router:
    """Chooses a replica index for each request."""

    def __init__(self, policy: str, replicas: list[EngineReplica]) -> None:
        if policy not in ROUTINGS:
            raise ValueError(f"routing must be one of {ROUTINGS}, not {policy!r}")
        self.policy = policy
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
        if hits[best] == 0 or loads[best] > GUARD_FACTOR * loads[least] + GUARD_SLACK:
            return least
        return best
