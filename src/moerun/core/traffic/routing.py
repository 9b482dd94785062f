"""Choosing backends for one request: prefix affinity under a load guard, session binding,
cost and latency scoring for managed APIs, and overflow from self-hosted to managed.

Policy is not decided here: the caller passes only the backends that passed the key's policy,
so every list this module returns is a subset of what it was given (a property test holds it
to that). State that outlives a request (the prefix index, session bindings) lives in plain
classes; time comes in as arguments, never from a clock.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from moerun.core.traffic.balance import BalanceRule

SELF_HOSTED, MANAGED = "self-hosted", "managed"


ROUTING_POLICIES = ("prefix-affinity", "round-robin", "least-load")


@dataclass(frozen=True, slots=True)
class RoutingConfig:
    """Knobs of the routing rule (defaults after llm-d's approximate prefix scorer)."""

    # How self-hosted replicas are ranked: prefix affinity under the load guard (the
    # default), or, to compare with it, round robin (blind to prefixes, sessions and load)
    # or least load (session bindings kept); the simulator's `--routing` names.
    policy: str = "prefix-affinity"

    # llm-d hashes blocks of blockSizeTokens x 4 characters (16 tokens = 64 chars).
    block_chars: int = 64
    # llm-d matches at most 256 blocks (16 KiB). That cap sees an agentic session whose
    # system prompt is longer (8k tokens are ~45 KiB) as every other session, so affinity
    # could not keep a session on the replica holding its history (issue 15). 8192 blocks
    # (512 KiB, ~90k tokens) cover the prompts moerun plans for, at ~1 us of hashing a block.
    max_blocks: int = 8192
    # llm-d lruCapacityPerServer: 31 250 blocks per replica.
    blocks_per_replica: int = 31_250
    # llm-d chart weights: prefix 3, queue 2.
    prefix_weight: float = 3.0
    load_weight: float = 2.0
    session_ttl_s: float = 1800.0
    max_sessions: int = 100_000
    max_session_bytes: int = 32 * 1024 * 1024  # session ids plus a fixed cost per entry
    # Overflow: self-hosted keeps up while some replica is under both limits (None: no limit).
    overflow_in_flight: float | None = None
    overflow_ttft_s: float | None = None
    cost_weight: float = 1.0
    latency_weight: float = 1.0
    # While the replicas' loads are imbalanced by sgl-router's rule, the least loaded come
    # first, ahead of sessions and prefixes (the thresholds come from the catalog).
    balance: BalanceRule = field(kw_only=True)


@dataclass(frozen=True, slots=True)
class Candidate:
    """A snapshot of one policy-compliant backend at decision time."""

    name: str
    kind: str
    in_flight: int = 0
    weight: float = 1.0
    available: bool = True  # healthy and its circuit lets a request through
    ttft_p50_s: float | None = None
    input_usd_per_mtok: float = 0.0
    output_usd_per_mtok: float = 0.0

    @property
    def load(self) -> float:
        """In-flight requests per unit of weight."""
        return self.in_flight / self.weight


def prompt_blocks(text: bytes, config: RoutingConfig) -> tuple[int, ...]:
    """Chained hashes of whole blocks of the prompt; a trailing partial block is dropped."""
    size = config.block_chars
    num = min(len(text) // size, config.max_blocks)
    out: list[int] = []
    h = 0
    for i in range(num):
        # h_i = hash(block_i, h_{i-1}): a block matches only with everything before it.
        h = hash((h, text[i * size : (i + 1) * size]))
        out.append(h)
    return tuple(out)


class PrefixIndex:
    """Which prompt blocks each replica has recently seen (an LRU of block hashes per replica)."""

    def __init__(self, config: RoutingConfig) -> None:
        self.config = config
        self._blocks: dict[str, OrderedDict[int, None]] = {}

    def num_matched(self, replica: str, blocks: Sequence[int]) -> int:
        """Leading blocks of the prompt the replica has seen."""
        seen = self._blocks.get(replica)
        if not seen:
            return 0
        n = 0
        for h in blocks:
            if h not in seen:
                break
            n += 1
        return n

    def insert(self, replica: str, blocks: Sequence[int]) -> None:
        """Record that the replica now holds these blocks, evicting its oldest ones."""
        seen = self._blocks.setdefault(replica, OrderedDict())
        for h in blocks:
            seen[h] = None
            seen.move_to_end(h)
        while len(seen) > self.config.blocks_per_replica:
            seen.popitem(last=False)

    def num_blocks(self, replica: str) -> int:
        """Blocks remembered for a replica."""
        return len(self._blocks.get(replica, ()))


class PrefixView(Protocol):
    """What the ranking reads about replicas' caches: `PrefixIndex` in the gateway, the
    replicas' own caches in the simulator (`moerun.core.sim.router`)."""

    def num_matched(self, replica: str, blocks: Sequence[int]) -> int:
        """Leading blocks of the prompt the replica holds."""
        ...

    def num_blocks(self, replica: str) -> int:
        """Blocks the replica holds."""
        ...


SESSION_ENTRY_BYTES = 200  # the table's own cost per entry beyond the id (dict slot, tuple)


class SessionTable:
    """Session id -> replica bindings with an idle TTL, bounded in entries and bytes (LRU)."""

    def __init__(self, config: RoutingConfig) -> None:
        self.config = config
        self._bound: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.num_bytes = 0

    def __len__(self) -> int:
        return len(self._bound)

    def get(self, session: str, now_s: float) -> str | None:
        """The replica bound to the session, or None if unbound or expired."""
        hit = self._bound.get(session)
        if hit is None or now_s - hit[1] > self.config.session_ttl_s:
            return None
        return hit[0]

    def bind(self, session: str, replica: str, now_s: float) -> None:
        """Bind (or refresh) a session to a replica; evict the least recent over the bounds."""
        if session not in self._bound:
            self.num_bytes += len(session) + SESSION_ENTRY_BYTES
        self._bound[session] = (replica, now_s)
        self._bound.move_to_end(session)
        cfg = self.config
        while len(self._bound) > cfg.max_sessions or (
            self.num_bytes > cfg.max_session_bytes and len(self._bound) > 1
        ):
            old, _ = self._bound.popitem(last=False)
            self.num_bytes -= len(old) + SESSION_ENTRY_BYTES


def keeps_up(c: Candidate, config: RoutingConfig) -> bool:
    """Whether a self-hosted replica is under the overflow limits (queue and measured TTFT)."""
    if not c.available:
        return False
    if (
        config.overflow_in_flight is not None
        and c.in_flight >= config.overflow_in_flight * c.weight
    ):
        return False
    return not (
        config.overflow_ttft_s is not None
        and c.ttft_p50_s is not None
        and c.ttft_p50_s >= config.overflow_ttft_s
    )


def rank_self_hosted(
    replicas: Sequence[Candidate],
    blocks: Sequence[int],
    index: PrefixView,
    session_replica: str | None,
    config: RoutingConfig,
    turn: int = 0,
) -> list[Candidate]:
    """Replicas best first: the session's replica, then the longest cached prefix, then
    prefix share + load; while the loads are imbalanced (sgl-router's rule), the least loaded
    replicas before all of those."""
    if not replicas:
        return []
    if config.policy == "round-robin":  # the `turn`-th replica first, then the next ones
        k = turn % len(replicas)
        return [*replicas[k:], *replicas[:k]]
    if config.policy == "least-load":
        return sorted(replicas, key=lambda c: (c.name != session_replica, c.load))
    min_load = min(c.load for c in replicas)
    max_load = max(c.load for c in replicas)
    spread = max_load - min_load
    imbalanced = config.balance.imbalanced([c.load for c in replicas])
    total = len(blocks)

    def score(c: Candidate) -> float:
        prefix = index.num_matched(c.name, blocks) / total if total else 0.0
        queue = (max_load - c.load) / spread if spread > 0 else 1.0  # llm-d queue-scorer
        return config.prefix_weight * prefix + config.load_weight * queue

    # Sort key: the least loaded while imbalanced, session binding, the longest cached
    # prefix (sgl-router's cache-aware rule, which the simulator's prefix-affinity router
    # models), the weighted score, lower load, then the replica that remembers fewest blocks
    # (sgl-router's "smallest tree"), so cold prompts spread out instead of all landing on
    # the first replica at low concurrency (sglang#32983). The longest prefix comes before
    # the score: with the score first, a session's turn whose shared system prompt is most
    # of its prompt went to a less loaded replica that held only the system prompt, and lost
    # its history's cache (issue 15: 0.67 measured against 0.92 planned).
    ranked = sorted(
        replicas,
        key=lambda c: (
            imbalanced and c.load > min_load,
            c.name != session_replica,
            -index.num_matched(c.name, blocks),
            -score(c),
            c.load,
            index.num_blocks(c.name),
        ),
    )
    return ranked


def rank_managed(
    managed: Sequence[Candidate],
    num_input_tokens: int,
    num_output_tokens: int,
    config: RoutingConfig,
) -> list[Candidate]:
    """Managed backends best first by expected cost and measured p50 TTFT (lower is better)."""
    if not managed:
        return []
    costs = {
        c.name: (
            num_input_tokens * c.input_usd_per_mtok + num_output_tokens * c.output_usd_per_mtok
        )
        / 1e6
        for c in managed
    }
    known = [c.ttft_p50_s for c in managed if c.ttft_p50_s is not None]
    # An unmeasured backend is assumed average, so it gets traffic and a measurement.
    default_ttft = sum(known) / len(known) if known else 0.0
    ttfts = {c.name: c.ttft_p50_s if c.ttft_p50_s is not None else default_ttft for c in managed}
    max_cost = max(costs.values()) or 1.0
    max_ttft = max(ttfts.values()) or 1.0

    def score(c: Candidate) -> float:
        raw = (
            config.cost_weight * costs[c.name] / max_cost
            + config.latency_weight * ttfts[c.name] / max_ttft
        )
        return raw / c.weight

    return sorted(managed, key=score)


def order_backends(
    candidates: Sequence[Candidate],
    blocks: Sequence[int],
    index: PrefixIndex,
    session_replica: str | None,
    num_input_tokens: int,
    num_output_tokens: int,
    config: RoutingConfig,
    turn: int = 0,
) -> list[str]:
    """Every candidate, in the order to try them: first choice, then failover order
    (`turn` counts requests, for round robin).

    Self-hosted replicas that keep up come first, then managed backends, then replicas past
    the overflow limits: when no replica keeps up, new requests spill to managed (overflow)
    and come back as load falls. Backends that are unhealthy or whose circuit is open come
    last, as a last resort, so a fleet whose circuits all opened still answers.
    """
    up = [c for c in candidates if c.available]
    down = [c.name for c in candidates if not c.available]
    hosted = rank_self_hosted(
        [c for c in up if c.kind == SELF_HOSTED], blocks, index, session_replica, config, turn
    )
    managed = rank_managed(
        [c for c in up if c.kind != SELF_HOSTED], num_input_tokens, num_output_tokens, config
    )
    if not managed:
        return [c.name for c in hosted] + down
    fast = [c.name for c in hosted if keeps_up(c, config)]
    slow = [c.name for c in hosted if not keeps_up(c, config)]
    return fast + [c.name for c in managed] + slow + down
