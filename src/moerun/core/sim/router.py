"""Routing requests across replicas: round robin, least load, or prefix affinity.

Prefix affinity is the gateway's rule (`moerun.core.traffic.routing`), so a plan that assumes
it is what `moerun gateway` does: a request goes to the replica whose prefix cache holds the
longest prefix of its prompt (as SGLang's cache-aware router does), unless that replica is
overloaded by the gateway's test (`overloaded`: more than `balance_abs` requests and
`balance_rel` times above the least-loaded replica), so a hot prefix cannot pin one replica
while others idle. Ties and cold prompts go to the least-loaded replica.
"""

from __future__ import annotations

from moerun.core.sim.engine import EngineReplica, SimRequest
from moerun.core.traffic.routing import RoutingConfig, overloaded

ROUTINGS = ("round-robin", "least-load", "prefix-affinity")
GATEWAY_ROUTING = RoutingConfig()  # the gateway's defaults


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
        if hits[best] == 0 or overloaded(loads[best], loads[least], GATEWAY_ROUTING):
            return least
        return best
