"""Routing requests across replicas: round robin, least load, or prefix affinity.

One rule with the gateway: prefix affinity ranks replicas by `rank_self_hosted`
(`moerun.core.traffic.routing`), the function `moerun gateway` routes live traffic with, so a
plan that assumes prefix affinity predicts what the gateway does. The gateway remembers the
prompt blocks it sent each replica; here the replicas' own prefix caches answer the same
questions (the longest cached prefix of the prompt, how much a replica holds), counted in the
gateway's blocks of `block_chars / 4` tokens. Its load is the requests waiting or running.
"""

from __future__ import annotations

from collections.abc import Sequence

from moerun.core.sim.engine import EngineReplica, SimRequest
from moerun.core.traffic.balance import BalanceRule
from moerun.core.traffic.routing import SELF_HOSTED, Candidate, RoutingConfig, rank_self_hosted

ROUTINGS = ("round-robin", "least-load", "prefix-affinity")
# the gateway hashes prompts in blocks of `block_chars` characters, about 4 per token
CHARS_PER_TOKEN = 4


class _CacheView:
    """The replicas' prefix caches as the gateway's prefix index sees them (`PrefixView`)."""

    def __init__(
        self, replicas: list[EngineReplica], req: SimRequest, config: RoutingConfig
    ) -> None:
        self.replicas = replicas
        self.req = req
        self.block_tokens = max(1, config.block_chars // CHARS_PER_TOKEN)
        self.config = config

    def blocks(self) -> range:
        """The prompt's whole blocks, as many as the gateway hashes."""
        return range(min(self.req.input_tokens // self.block_tokens, self.config.max_blocks))

    def num_matched(self, replica: str, blocks: Sequence[int]) -> int:
        """See `PrefixView.num_matched`."""
        cached = self.replicas[int(replica)].kv.peek(self.req.segments)
        return min(cached // self.block_tokens, len(blocks))

    def num_blocks(self, replica: str) -> int:
        """See `PrefixView.num_blocks`."""
        held = self.replicas[int(replica)].kv.cached_tokens // self.block_tokens
        return min(held, self.config.blocks_per_replica)


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
        self.replicas = replicas
        # the gateway's routing knobs with sgl-router's balance rule (unused by the others)
        self.config = RoutingConfig(
            policy=policy, balance=balance or BalanceRule(abs_threshold=0, rel_threshold=1.0)
        )
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
        if self.policy == "least-load":
            return min(range(n), key=lambda j: loads[j])
        view = _CacheView(self.replicas, req, self.config)
        candidates = [Candidate(str(j), SELF_HOSTED, in_flight=loads[j]) for j in range(n)]
        best = rank_self_hosted(candidates, view.blocks(), view, None, self.config)[0]
        return int(best.name)
