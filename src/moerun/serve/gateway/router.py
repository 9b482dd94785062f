"""Live state of every backend, and the routing decision for one request.

Policy is applied first and once: for each (key, model) the backends that pass the key's
policy are computed at start, and nothing outside that tuple is ever handed to the routing
rule or to failover.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from urllib.parse import urlsplit

from moerun.core.market.policy import Policy, allows
from moerun.core.traffic.circuit import BreakerConfig, CircuitBreaker
from moerun.core.traffic.latency import LatencyWindow
from moerun.core.traffic.routing import (
    SELF_HOSTED,
    Candidate,
    PrefixIndex,
    SessionTable,
    order_backends,
    prompt_blocks,
)
from moerun.serve.gateway.config import BackendSpec, GatewayConfig, KeySpec
from moerun.wire.client import Pool
from moerun.wire.proxies import proxy_for

_ENDPOINTS = ("chat/completions", "completions")


class BackendState:
    """One backend at run time: its connection pool, load, health, circuit and TTFT."""

    def __init__(self, spec: BackendSpec, breaker: BreakerConfig, loop: asyncio.AbstractEventLoop):
        self.spec = spec
        self.pool = Pool(spec.base_url, loop, proxy=proxy_for(spec.base_url, os.environ))
        self.in_flight = 0
        self.healthy = True
        self.breaker = CircuitBreaker(breaker)
        self.ttft = LatencyWindow()
        self.misconfigured_status: int | None = None  # its last 401/403/404, until a 200
        base_path = urlsplit(spec.base_url).path.rstrip("/")
        fixed = [("content-type", "application/json")]
        if spec.api_key:
            fixed.append(("authorization", f"Bearer {spec.api_key}"))
        extra = "".join(f"{k}: {v}\r\n" for k, v in fixed)
        # Request line and fixed headers per endpoint; content-length is appended per request.
        self.heads = {
            ep: (self.pool.head("POST", f"{base_path}/{ep}") + extra).encode("latin-1")
            for ep in _ENDPOINTS
        }
        self.health_path = base_path + "/" + spec.health_path.lstrip("/")

    def available(self, now_s: float) -> bool:
        """Healthy and its circuit lets a request through."""
        return self.healthy and self.breaker.allows(now_s)

    def candidate(self, now_s: float) -> Candidate:
        """A snapshot for the routing rule."""
        p = self.spec.prices
        return Candidate(
            name=self.spec.name,
            kind=self.spec.kind,
            in_flight=self.in_flight,
            weight=self.spec.weight,
            available=self.available(now_s),
            ttft_p50_s=self.ttft.quantiles(now_s)[0],
            input_usd_per_mtok=p.input_usd_per_mtok,
            output_usd_per_mtok=p.output_usd_per_mtok,
        )


def allowed_backends(policy: Policy, backends: Sequence[BackendSpec]) -> tuple[str, ...]:
    """Names of the backends that pass the policy, in the given order."""
    return tuple(b.name for b in backends if allows(policy, b.facts))


class Router:
    """Per-(key, model) policy-filtered backend lists and the routing state shared by them."""

    def __init__(self, config: GatewayConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.states = {
            name: BackendState(spec, config.breaker, loop) for name, spec in config.backends.items()
        }
        self.index = PrefixIndex(config.routing)
        self.num_routed = 0  # requests ordered so far (round robin's turn)
        self.sessions = SessionTable(config.routing)
        keys: Sequence[KeySpec | None] = config.keys if config.keys is not None else (None,)
        self._static: dict[tuple[str | None, str], tuple[str, ...]] = {}
        for key in keys:
            self._static.update(self._allowed_for(key))
        self.allowed = self._static

    def _allowed_for(self, key: KeySpec | None) -> dict[tuple[str | None, str], tuple[str, ...]]:
        cfg = self.config
        out: dict[tuple[str | None, str], tuple[str, ...]] = {}
        policy = key.policy if key is not None else Policy()
        for model, names in cfg.models.items():
            if key is not None and key.models is not None and model not in key.models:
                continue
            specs = [cfg.backends[n] for n in names]
            out[(key.name if key else None, model)] = allowed_backends(policy, specs)
        return out

    def set_live_keys(self, keys: Sequence[KeySpec]) -> None:
        """Replace the keys managed live (the YAML keys stay); one atomic swap."""
        allowed = dict(self._static)
        for key in keys:
            allowed.update(self._allowed_for(key))
        self.allowed = allowed

    def order(
        self,
        allowed: tuple[str, ...],
        routing_text: bytes,
        session: str | None,
        num_input_tokens: int,
        num_output_tokens: int,
        now_s: float,
    ) -> tuple[list[str], tuple[int, ...]]:
        """The allowed backends in the order to try them, and the prompt's block hashes."""
        cfg = self.config.routing
        blocks = prompt_blocks(routing_text, cfg)
        if len(allowed) == 1:
            return [allowed[0]], blocks
        bound = self.sessions.get(session, now_s) if session else None
        self.num_routed += 1
        order = order_backends(
            [self.states[n].candidate(now_s) for n in allowed],
            blocks,
            self.index,
            bound,
            num_input_tokens,
            num_output_tokens,
            cfg,
            self.num_routed - 1,
        )
        return order, blocks

    def chose(self, name: str, blocks: tuple[int, ...], session: str | None, now_s: float) -> None:
        """Record that a self-hosted replica took the request (prefix index, session binding)."""
        if self.states[name].spec.kind == SELF_HOSTED:
            self.index.insert(name, blocks)
        if session:
            self.sessions.bind(session, name, now_s)

    def close(self) -> None:
        """Close every idle upstream connection."""
        for state in self.states.values():
            state.pool.close()
