"""Per-key rate limits (requests and tokens per minute) and budgets (dollars per period).

In-process by default; through Redis when `redis_url` is set, so several gateway replicas
share one count. Windows are fixed calendar minutes; a budget blocks new requests once the
period's spend reaches it (requests already running may overshoot it by their own cost).
Budgets start from the ledger's spend for the current period, so a restart does not reset them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from moerun.core.traffic.metering import period_end, period_id
from moerun.serve.gateway.config import KeySpec

REQUESTS, TOKENS, BUDGET = "requests", "tokens", "budget"


class Limits(Protocol):
    """Admission control for one key."""

    async def admit(self, key: KeySpec, now_s: float) -> str | None:
        """Count the request; the name of the exhausted limit if it must be refused."""

    async def charge(self, key: KeySpec, num_tokens: int, cost_usd: float, now_s: float) -> None:
        """Add a finished request's tokens and cost."""

    async def seed_spend(self, key: KeySpec, spend_usd: float, now_s: float) -> None:
        """Start a key's budget from the ledger's spend in its current period."""

    async def close(self) -> None:
        """Release connections."""


class Periods:
    """The current period id per period kind, recomputed only when a period ends."""

    def __init__(self) -> None:
        self._cache: dict[str, tuple[str, float]] = {}

    def current(self, period: str, now_s: float) -> str:
        """Id of the period holding now_s, e.g. "month:2026-11"."""
        hit = self._cache.get(period)
        if hit is None or now_s >= hit[1]:
            moment = datetime.fromtimestamp(now_s, UTC)
            hit = (period_id(moment, period), period_end(moment, period).timestamp())
            self._cache[period] = hit
        return hit[0]


class MemoryLimits:
    """Counters in this process."""

    def __init__(self) -> None:
        self._minute: dict[str, tuple[int, int, int]] = {}  # key -> (minute, requests, tokens)
        self._spend: dict[tuple[str, str], float] = {}  # (key, period id) -> dollars
        self.periods = Periods()

    async def admit(self, key: KeySpec, now_s: float) -> str | None:
        """Count the request unless a limit is exhausted."""
        minute = int(now_s // 60)
        m, num_requests, num_tokens = self._minute.get(key.name, (minute, 0, 0))
        if m != minute:
            num_requests, num_tokens = 0, 0
        if key.requests_per_minute is not None and num_requests >= key.requests_per_minute:
            return REQUESTS
        if key.tokens_per_minute is not None and num_tokens >= key.tokens_per_minute:
            return TOKENS
        if key.budget_usd is not None:
            pid = self.periods.current(key.budget_period, now_s)
            if self._spend.get((key.name, pid), 0.0) >= key.budget_usd:
                return BUDGET
        self._minute[key.name] = (minute, num_requests + 1, num_tokens)
        return None

    async def charge(self, key: KeySpec, num_tokens: int, cost_usd: float, now_s: float) -> None:
        """Add tokens to this minute and dollars to this period."""
        minute = int(now_s // 60)
        m, num_requests, tokens = self._minute.get(key.name, (minute, 0, 0))
        if m != minute:
            num_requests, tokens = 0, 0
        self._minute[key.name] = (minute, num_requests, tokens + num_tokens)
        if key.budget_usd is not None and cost_usd:
            pid = self.periods.current(key.budget_period, now_s)
            self._spend[(key.name, pid)] = self._spend.get((key.name, pid), 0.0) + cost_usd

    async def seed_spend(self, key: KeySpec, spend_usd: float, now_s: float) -> None:
        """Start a key's budget from the ledger's spend in its current period."""
        pid = self.periods.current(key.budget_period, now_s)
        self._spend[(key.name, pid)] = spend_usd

    async def close(self) -> None:
        """Nothing to release."""
